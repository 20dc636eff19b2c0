// Package evalrun evaluates a checkpoint on a dataset split for cmd/eval:
// the ELBO, its reconstruction and KL terms, the importance-sampled log p(x)
// with its Monte Carlo standard error, and the active units.
//
// Images are prepared as training evaluated them: a Bernoulli model sees a
// fixed binarization (seed runinfo.EvalBinarizeSeed) of the split, a
// Gaussian model grey levels. The dataset defaults to the one recorded in
// the checkpoint's training state.
//
// Definitions, per image and then averaged over the N images:
//
//	elbo   = log p(x|z) - KL(q(z|x) || p(z)),   one z ~ q(z|x)
//	log_px = log (1/k) sum_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x)   (Burda et al. 2015)
//
// The KL is in closed form for the Gaussian posteriors (diag, fullcov); for
// flow posteriors (planar, radial, iaf) it is the one-sample estimate
// log q(z|x) - log p(z) at the same z, so kl and elbo are then Monte Carlo
// estimates with a spread over seeds.
//
// log_px_stderr, the "±" printed, is the Monte Carlo standard error of the
// mean over images, the spread a different -seed would give on the same
// images: sqrt(sum_n v_n) / N with v_n the delete-a-group jackknife
// variance of image n's estimate over -replicates disjoint groups of its k
// samples (amortized.LLEstimate.ReplicateSE). It is not the spread over
// images, nor over training seeds. log_px_stderr_delta is the older
// delta-method error sd(w) / (sqrt(k) mean(w)), kept for comparison: with
// heavy-tailed importance weights it is several times too small.
// ess_mean is the effective sample size (sum w)^2 / sum w^2 averaged over
// images: far below k means a few weights carry the estimate and even the
// jackknife error is to be taken with care.
// sd_over_images is the standard deviation of the per-image estimates.
// active_units counts latent dimensions u with Var_x(E_q[z_u|x]) > 0.01
// (Burda et al. 2015), with Model.Encode's point summary standing in for
// E_q[z|x]: the mean for Gaussian posteriors, the flow applied to the base
// mean for flows. A two-layer model (amortized.TwoLayer) reports them per
// layer too (active_units_per_layer, z1 first); its point summary of z2 is
// mu2(mu1(x)), the mean of q(z2|z1) at z1's mean, not E_q[z2|x] (the
// average of mu2(z1) over z1 ~ q(z1|x)), which it approximates.
//
// Before anything is printed or written the numbers are checked
// (checkReport): a quantity that is not finite is an error naming it, and
// so are impossible values: log p(x) of any image, the reconstruction term
// or the ELBO above 0 under a Bernoulli likelihood (a probability is at
// most 1), and a closed-form KL (diag, fullcov) below 0. No report is then
// written. -json is checked (atomicfile.CheckOutput) before the checkpoint
// is read. A cancelled context (Ctrl-C) stops the ELBO at its next batch,
// the active units at their next 1000 rows, and log p(x) at once (it runs
// in slices of about 20,000 samples; a slice in progress is abandoned, as
// amortized.LogLikelihoodSE takes no context), returning ErrInterrupted.
// -k is at most MaxK.
package evalrun

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/memstat"
	"github.com/govae/govae/internal/progress"
)

// Config is one evaluation.
type Config struct {
	Checkpoint string
	Dataset    string // "" = the checkpoint's, else mnist
	DataDir    string
	Offline    bool
	Split      string // test (default) or train
	N          int    // first N images; 0 = all
	K          int    // importance samples per image
	// Replicates is the number of groups the k samples are split into for
	// the standard error; 0 means amortized.DefaultReplicates.
	Replicates int
	Seed       uint64
	// WeightDraws is the number of draws of a Bayesian decoder's weights
	// the ELBO and log p(x) average over (bayes.go); 0 = DefaultWeightDraws
	// for such a model, 1 (the only valid value) otherwise.
	WeightDraws int
	JSON        string    // write the report here too; "" = no file
	Stdout      io.Writer // nil = os.Stdout
}

// Report is what cmd/eval prints and writes. Log-likelihoods are in nats per image.
type Report struct {
	Checkpoint       string  `json:"checkpoint"`
	Dataset          string  `json:"dataset"`
	DataDir          string  `json:"data_dir"`
	Split            string  `json:"split"`
	N                int     `json:"n"`
	Binarization     string  `json:"binarization"`
	K                int     `json:"k"`
	Seed             uint64  `json:"seed"`
	ELBO             float64 `json:"elbo"`
	Recon            float64 `json:"recon"`
	KL               float64 `json:"kl"`
	LogPx            float64 `json:"log_px"`
	LogPxStderr      float64 `json:"log_px_stderr"`       // jackknife over the replicate groups
	LogPxStderrDelta float64 `json:"log_px_stderr_delta"` // delta method (too small with heavy tails)
	Replicates       int     `json:"replicates"`
	ESSMean          float64 `json:"ess_mean"`
	LogPxSDOverImage float64 `json:"sd_over_images"`
	NLL              float64 `json:"nll"`
	// ELBOBPD and NLLBPD are -ELBO and NLL in bits per dimension,
	// nats / (D ln 2), for a likelihood of 8-bit levels (absent otherwise).
	ELBOBPD     *float64 `json:"elbo_bpd,omitempty"`
	NLLBPD      *float64 `json:"nll_bpd,omitempty"`
	ActiveUnits int      `json:"active_units"`
	// ActiveUnitsPerLayer is ActiveUnits per stochastic layer, z1 first
	// (omitted for one layer).
	ActiveUnitsPerLayer []int  `json:"active_units_per_layer,omitempty"`
	Latent              int    `json:"latent"`
	Posterior           string `json:"posterior"`
	// KLMethod is how the KL term was computed: "closed form" for a
	// (family, prior) pair that has one, else "monte carlo" (one sample).
	KLMethod string `json:"kl_method"`
	// Prior is p(z) ("normal", "mog:K", "vamp:K").
	Prior string `json:"prior"`
	// KLWeighting is how training weighed the KL when not as the ELBO does
	// (a beta-VAE, a capacity objective); "" means as the ELBO. Note then
	// says what that means for comparisons.
	KLWeighting  string  `json:"kl_weighting,omitempty"`
	Note         string  `json:"note,omitempty"`
	Seconds      float64 `json:"seconds"`
	LogPxSeconds float64 `json:"log_px_seconds"`
	// A Bayesian decoder's evaluation (nil/0/"" otherwise): the draws of
	// the weights, how they are integrated, and KL(q(theta)||p(theta)) in nats.
	WeightDraws int      `json:"weight_draws,omitempty"`
	Integration string   `json:"integration,omitempty"`
	GlobalKL    *float64 `json:"global_kl,omitempty"`
}

// KLMethod names how m computes KL(q || p): "closed form" or "monte carlo".
func KLMethod(m *amortized.Model) string {
	if m.AnalyticKL() {
		return "closed form"
	}
	return "monte carlo"
}

// usagef is an error in the settings: a *cli.UsageError.
var usagef = cli.Usagef

// Run evaluates and prints a summary; it returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	out := cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	if cfg.K < 1 || cfg.K > MaxK {
		return nil, usagef("-k %d: want 1 to %d importance samples per image", cfg.K, MaxK)
	}
	if cfg.Replicates == 0 {
		cfg.Replicates = min(amortized.DefaultReplicates, max(cfg.K, 2))
	}
	if cfg.Replicates < 2 || cfg.Replicates > max(cfg.K, 2) {
		return nil, usagef("-replicates %d: want 2 to k (%d) groups of samples", cfg.Replicates, cfg.K)
	}
	if cfg.N < 0 {
		return nil, usagef("-n %d: want 0 (all) or a positive count", cfg.N)
	}
	if cfg.Split == "" {
		cfg.Split = "test"
	}
	if cfg.Split != "test" && cfg.Split != "train" {
		return nil, usagef("-split %q: want test or train", cfg.Split)
	}
	if cfg.JSON != "" {
		// Before any work: a bad path must not cost a whole evaluation.
		if err := atomicfile.CheckOutput("-json", cfg.JSON, atomicfile.JSONReport); err != nil {
			return nil, cli.Usage(err)
		}
	}
	m, err := checkpoints.Load(cfg.Checkpoint)
	if err != nil {
		return nil, err
	}
	run, _ := runinfo.RunOf(cfg.Checkpoint, m.Config())
	dataset, dataDir := cfg.Dataset, cfg.DataDir
	if dataset == "" {
		dataset = run.Dataset
	}
	if dataset == "" {
		dataset = "mnist"
	}
	label := ""
	if dataDir == "" && dataset == run.Dataset {
		dataDir, label = run.DataDir, data.SourceRun
	}
	// The test split alone unless -split train: the 60,000 MNIST training
	// images cost 0.4 CPU-s to decode and are not looked at.
	lo := data.LoadOptions{Dir: dataDir, DirSource: label, Progress: out, Offline: cfg.Offline, TestOnly: cfg.Split == "test"}
	if mc := m.Config(); runinfo.IsImageFolder(dataDir) {
		// The size and channels the model was trained at.
		lo.Images = data.ImageFolderOptions{Rows: mc.ImageRows, Cols: mc.ImageCols, Channels: mc.Shape().Channels}
	}
	ds, err := data.LoadContext(ctx, dataset, lo)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ErrInterrupted
		}
		return nil, err
	}
	split := ds.Test
	if cfg.Split == "train" {
		split = ds.Train
	}
	if d := split.Images.Dim(); d != m.DataDim() {
		return nil, fmt.Errorf("%s has %d pixels per image, the model in %s wants %d", split.ImagesPath, d, cfg.Checkpoint, m.DataDim())
	}
	n := split.Images.N
	if cfg.N > 0 {
		if cfg.N > n {
			return nil, usagef("-n %d: the %s split has only %d images", cfg.N, cfg.Split, n)
		}
		n = cfg.N
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	bin, binName := runinfo.EvalBinarization(run, m.Config()), fmt.Sprintf("static, seed %d", runinfo.EvalBinarizeSeed)
	if bin == data.BinarizeNone {
		binName = "none (grey levels)"
	}
	loader, err := data.NewLoader(split.Images, idx, data.LoaderOptions{Batch: 1000, Seed: runinfo.EvalBinarizeSeed, Binarize: bin})
	if err != nil {
		return nil, err
	}
	x := loaderRows(loader)
	r := &Report{Checkpoint: cfg.Checkpoint, Dataset: ds.Name, DataDir: ds.Dir, Split: cfg.Split, N: n,
		Binarization: binName, K: cfg.K, Seed: cfg.Seed, Latent: m.LatentDim(), Posterior: m.Config().Posterior,
		KLMethod: KLMethod(m), Prior: runinfo.PriorName(m.Config())}
	if d, err := checkpoints.ReadData(cfg.Checkpoint); err == nil && d != nil && d.KLWeighting != "" {
		r.KLWeighting = d.KLWeighting
	} else if _, _, st, err := checkpoints.Inspect(cfg.Checkpoint); err == nil && st != nil {
		r.KLWeighting = strings.TrimPrefix(runinfo.KLWeighting(st.Options), ", ")
	}
	if r.KLWeighting != "" {
		r.Note = "trained with " + r.KLWeighting + ", not the ELBO: the ELBO and log p(x) here are the true ones (KL weight 1), so they compare with other models' only as bound-based estimates of a model not trained to maximize them"
	}
	fmt.Fprintf(out, "evaluating %s (%s posterior, %s prior) on %s %s (%d images, %s), k = %d\n", cfg.Checkpoint, r.Posterior, r.Prior, ds.Name, cfg.Split, n, ds.Dir, cfg.K)
	if r.Note != "" {
		fmt.Fprintln(out, "note:", r.Note)
	}

	draws, err := weightDraws(m, cfg.WeightDraws)
	if err != nil {
		return nil, err
	}
	var ll []float64
	var est *amortized.LLEstimate
	if draws > 0 { // sets the ELBO terms and r.LogPxSeconds
		var se []float64
		if ll, se, err = evalDraws(ctx, m, loader, x, cfg, draws, r, out); err != nil {
			return nil, err
		}
		est = &amortized.LLEstimate{K: cfg.K, LogPx: ll, DeltaSE: se}
	} else {
		st, err := m.Evaluate(ctxBatches{ctx, loader}, rand.New(rand.NewPCG(cfg.Seed, 1)))
		if err != nil {
			if ctx.Err() != nil {
				return nil, ErrInterrupted
			}
			return nil, err
		}
		r.ELBO, r.Recon, r.KL = st.ELBO, st.Recon, st.KL
		// As in training: the images are held throughout, so they are
		// kept out of the collector's headroom (now that the model's
		// graphs are built).
		memstat.SetGCExcluding(uint64(len(split.Images.Pix)))
		llStart := time.Now()
		if est, err = logLikelihood(ctx, m, x, cfg.K, cfg.Replicates, rand.New(rand.NewPCG(cfg.Seed, 2)), out); err != nil {
			return nil, err
		}
		r.LogPxSeconds = time.Since(llStart).Seconds()
		ll = est.LogPx
	}
	perLayer, err := activeUnitsByLayer(ctx, m, x)
	if err != nil {
		return nil, err
	}
	for _, a := range perLayer {
		r.ActiveUnits += a
	}
	layersText := ""
	if layers := m.LatentLayers(); len(layers) > 1 {
		r.ActiveUnitsPerLayer = perLayer
		var parts []string
		for i, a := range perLayer {
			parts = append(parts, fmt.Sprintf("z%d %d of %d", i+1, a, layers[i]))
		}
		layersText = " (" + strings.Join(parts, ", ") + ")"
	}
	var sum float64
	for i := range ll {
		sum += ll[i]
	}
	r.LogPx = sum / float64(n)
	r.NLL = -r.LogPx
	r.LogPxStderrDelta = est.DeltaSEOfMean()
	errText := fmt.Sprintf("delta method over %d weight draws", draws)
	if len(est.Replicates) > 0 { // weight draws have no replicate groups (bayes.go)
		r.Replicates, r.ESSMean = est.R, est.MeanESS()
		r.LogPxStderr = est.ReplicateSE()
		errText = fmt.Sprintf("standard error over seeds: jackknife over %d groups of samples; delta method %.3f), effective sample size %.1f of %d", r.Replicates, r.LogPxStderrDelta, r.ESSMean, cfg.K)
	} else {
		r.LogPxStderr = r.LogPxStderrDelta
	}
	var ss float64
	for _, l := range ll {
		ss += (l - r.LogPx) * (l - r.LogPx)
	}
	r.LogPxSDOverImage = math.Sqrt(ss / float64(max(n-1, 1)))
	r.Seconds = time.Since(start).Seconds()

	stderr := fmt.Sprintf("± %.3f (%s", r.LogPxStderr, errText)
	if cfg.K == 1 {
		stderr, r.LogPxStderr, r.LogPxStderrDelta, r.Replicates = "(no error estimate with k = 1)", 0, 0, 0
	}
	if err := checkReport(r, ll, m.Config()); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Checkpoint, err)
	}
	bpd := ""
	if mc := m.Config(); amortized.IsPixelLikelihood(mc.Likelihood) {
		e, l := amortized.BitsPerDim(r.ELBO, mc.DataDim), amortized.BitsPerDim(r.LogPx, mc.DataDim)
		r.ELBOBPD, r.NLLBPD = &e, &l
		bpd = fmt.Sprintf("; bits/dim: ELBO %.4f, NLL %.4f", e, l)
	}
	fmt.Fprintf(out, "ELBO %.3f (recon %.3f, KL %.3f, %s); log p(x) %.3f, k = %d, %s; NLL %.3f; active units %d of %d%s%s; %.1fs (nats per image, higher is better except NLL)\n",
		r.ELBO, r.Recon, r.KL, r.KLMethod, r.LogPx, cfg.K, stderr, r.NLL, r.ActiveUnits, r.Latent, layersText, bpd, r.Seconds)
	if r.GlobalKL != nil {
		fmt.Fprintf(out, "Bayesian decoder, %d weight draws: %s; KL(q(theta)||p(theta)) = %.1f nats (the whole model's per-image ELBO subtracts it / N_train)\n",
			r.WeightDraws, r.Integration, *r.GlobalKL)
	}
	if cfg.JSON != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("-json %s: encoding the report: %w; nothing written", cfg.JSON, err)
		}
		if err := atomicfile.WriteFile(cfg.JSON, append(b, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("-json: %w", err)
		}
		fmt.Fprintf(out, "wrote %s\n", cfg.JSON)
	}
	return r, nil
}

// ActiveUnits counts the latent dimensions u with Cov_x(E_q[z_u|x]) > 0.01
// over the rows of x (Burda et al. 2015), with Encode's point summary as
// E_q[z|x].
func ActiveUnits(m *amortized.Model, x [][]float32) (int, error) {
	per, err := activeUnitsByLayer(context.Background(), m, sliceRows(x))
	n := 0
	for _, a := range per {
		n += a
	}
	return n, err
}

// ActiveUnitsByLayer is ActiveUnits per stochastic layer of m
// (Model.LatentLayers), z1 first.
func ActiveUnitsByLayer(m *amortized.Model, x [][]float32) ([]int, error) {
	return activeUnitsByLayer(context.Background(), m, sliceRows(x))
}

func activeUnitsByLayer(ctx context.Context, m *amortized.Model, x rowSource) ([]int, error) {
	var mu [][]float32
	err := x.each(ctx, func(_ int, rows [][]float32) error {
		for i := 0; i < len(rows); i += encodeChunk {
			z, err := m.Encode(rows[i:min(i+encodeChunk, len(rows))])
			if err != nil {
				return err
			}
			mu = append(mu, z...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	layers := m.LatentLayers()
	active := make([]int, len(layers))
	layer, end := 0, layers[0]
	for j := range m.LatentDim() {
		for j >= end {
			layer++
			end += layers[layer]
		}
		var s, ss float64
		for _, r := range mu {
			s += float64(r[j])
			ss += float64(r[j]) * float64(r[j])
		}
		n := float64(len(mu))
		if ss/n-(s/n)*(s/n) > 0.01 {
			active[layer]++
		}
	}
	return active, nil
}

// logLikelihood runs Model.LogLikelihoodEstimate in slices of rows to show
// progress and honour cancellation; the per-row noise streams come from rng
// in row order, so slicing does not change the numbers. A slice holds about
// llChunk samples (one row at least, and at most a batch of x's); when ctx
// is cancelled during one,
// logLikelihood returns at once and leaves the slice to finish in the
// background (the process is about to exit: amortized has no context to
// stop it).
func logLikelihood(ctx context.Context, m *amortized.Model, x rowSource, k, R int, rng *rand.Rand, out io.Writer) (*amortized.LLEstimate, error) {
	step := max(1, llChunk/k)
	bar := progress.New(out, int64(x.len), fmt.Sprintf("log p(x), k = %d", k), progress.WithUnit("images"))
	defer bar.Finish()
	type result struct {
		e   *amortized.LLEstimate
		err error
	}
	all := &amortized.LLEstimate{}
	err := x.each(ctx, func(_ int, rows [][]float32) error {
		for i := 0; i < len(rows); i += step {
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			done := make(chan result, 1)
			go func(rows [][]float32) {
				e, err := m.LogLikelihoodEstimate(rows, k, R, rng)
				done <- result{e, err}
			}(rows[i:min(i+step, len(rows))])
			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				return ErrInterrupted
			}
			if r.err != nil {
				return r.err
			}
			all.Append(r.e)
			bar.Add(int64(len(r.e.LogPx)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

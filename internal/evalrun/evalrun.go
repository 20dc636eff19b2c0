// Package evalrun evaluates a checkpoint on a dataset split for cmd/eval:
// the ELBO, its reconstruction and KL terms, the importance-sampled log p(x)
// with its Monte Carlo standard error, and the active units.
//
// Images are prepared as training evaluated them: a Bernoulli model sees a
// fixed binarization (seed trainrun.EvalBinarizeSeed) of the split, a
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
// log_px_stderr is the Monte Carlo standard error of the mean over images,
// sqrt(sum_n se_n^2) / N with se_n the delta-method error of image n's
// estimate: the spread a different seed would give on the same images.
// sd_over_images is the standard deviation of the per-image estimates.
// active_units counts latent dimensions u with Var_x(E_q[z_u|x]) > 0.01
// (Burda et al. 2015), with Model.Encode's point summary standing in for
// E_q[z|x]: the mean for Gaussian posteriors, the flow applied to the base
// mean for flows.
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
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/progress"
	"github.com/govae/govae/internal/trainrun"
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
	Seed       uint64
	JSON       string    // write the report here too; "" = no file
	Stdout     io.Writer // nil = os.Stdout
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
	LogPxStderr      float64 `json:"log_px_stderr"`
	LogPxSDOverImage float64 `json:"sd_over_images"`
	NLL              float64 `json:"nll"`
	// ELBOBPD and NLLBPD are -ELBO and NLL in bits per dimension,
	// nats / (D ln 2), for a likelihood of 8-bit levels (absent otherwise).
	ELBOBPD     *float64 `json:"elbo_bpd,omitempty"`
	NLLBPD      *float64 `json:"nll_bpd,omitempty"`
	ActiveUnits int      `json:"active_units"`
	Latent      int      `json:"latent"`
	Posterior   string   `json:"posterior"`
	// KLMethod is how the KL term was computed: "closed form" for a
	// (family, prior) pair that has one, else "monte carlo" (one sample).
	KLMethod     string  `json:"kl_method"`
	Seconds      float64 `json:"seconds"`
	LogPxSeconds float64 `json:"log_px_seconds"`
}

// KLMethod names how m computes KL(q || p): "closed form" or "monte carlo".
func KLMethod(m *amortized.Model) string {
	if m.AnalyticKL() {
		return "closed form"
	}
	return "monte carlo"
}

// UsageError is an error in the settings.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error { return &UsageError{fmt.Errorf(format, args...)} }

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
			return nil, &UsageError{err}
		}
	}
	m, err := checkpoints.Load(cfg.Checkpoint)
	if err != nil {
		return nil, err
	}
	run, _ := trainrun.RunOf(cfg.Checkpoint, m.Config())
	dataset, dataDir := cfg.Dataset, cfg.DataDir
	if dataset == "" {
		dataset = run.Dataset
	}
	if dataset == "" {
		dataset = "mnist"
	}
	if dataDir == "" && dataset == run.Dataset {
		dataDir = run.DataDir
	}
	lo := data.LoadOptions{Dir: dataDir, Progress: out, Offline: cfg.Offline}
	if mc := m.Config(); trainrun.IsImageFolder(dataDir) {
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
	bin, binName := trainrun.EvalBinarization(run, m.Config()), fmt.Sprintf("static, seed %d", trainrun.EvalBinarizeSeed)
	if bin == data.BinarizeNone {
		binName = "none (grey levels)"
	}
	loader, err := data.NewLoader(split.Images, idx, data.LoaderOptions{Batch: 1000, Seed: trainrun.EvalBinarizeSeed, Binarize: bin})
	if err != nil {
		return nil, err
	}
	x, err := loader.Rows(0)
	if err != nil {
		return nil, err
	}
	r := &Report{Checkpoint: cfg.Checkpoint, Dataset: ds.Name, DataDir: ds.Dir, Split: cfg.Split, N: n,
		Binarization: binName, K: cfg.K, Seed: cfg.Seed, Latent: m.LatentDim(), Posterior: m.Config().Posterior,
		KLMethod: KLMethod(m)}
	fmt.Fprintf(out, "evaluating %s (%s posterior) on %s %s (%d images, %s), k = %d\n", cfg.Checkpoint, r.Posterior, ds.Name, cfg.Split, n, ds.Dir, cfg.K)

	st, err := m.Evaluate(ctxBatches{ctx, loader}, rand.New(rand.NewPCG(cfg.Seed, 1)))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ErrInterrupted
		}
		return nil, err
	}
	r.ELBO, r.Recon, r.KL = st.ELBO, st.Recon, st.KL
	if r.ActiveUnits, err = activeUnits(ctx, m, x); err != nil {
		return nil, err
	}

	llStart := time.Now()
	ll, se, err := logLikelihood(ctx, m, x, cfg.K, rand.New(rand.NewPCG(cfg.Seed, 2)), out)
	if err != nil {
		return nil, err
	}
	r.LogPxSeconds = time.Since(llStart).Seconds()
	var sum, v float64
	for i := range ll {
		sum += ll[i]
		v += se[i] * se[i]
	}
	r.LogPx = sum / float64(n)
	r.NLL = -r.LogPx
	r.LogPxStderr = math.Sqrt(v) / float64(n)
	var ss float64
	for _, l := range ll {
		ss += (l - r.LogPx) * (l - r.LogPx)
	}
	r.LogPxSDOverImage = math.Sqrt(ss / float64(max(n-1, 1)))
	r.Seconds = time.Since(start).Seconds()

	stderr := fmt.Sprintf("± %.3f", r.LogPxStderr)
	if cfg.K == 1 {
		stderr, r.LogPxStderr = "(no error estimate with k = 1)", 0
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
	fmt.Fprintf(out, "ELBO %.3f (recon %.3f, KL %.3f, %s); log p(x) %.3f %s (k = %d); NLL %.3f; active units %d of %d%s; %.1fs\n",
		r.ELBO, r.Recon, r.KL, r.KLMethod, r.LogPx, stderr, cfg.K, r.NLL, r.ActiveUnits, r.Latent, bpd, r.Seconds)
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
	return activeUnits(context.Background(), m, x)
}

func activeUnits(ctx context.Context, m *amortized.Model, x [][]float32) (int, error) {
	var mu [][]float32
	for i := 0; i < len(x); i += encodeChunk {
		if ctx.Err() != nil {
			return 0, ErrInterrupted
		}
		z, err := m.Encode(x[i:min(i+encodeChunk, len(x))])
		if err != nil {
			return 0, err
		}
		mu = append(mu, z...)
	}
	active := 0
	for j := range m.LatentDim() {
		var s, ss float64
		for _, r := range mu {
			s += float64(r[j])
			ss += float64(r[j]) * float64(r[j])
		}
		n := float64(len(mu))
		if ss/n-(s/n)*(s/n) > 0.01 {
			active++
		}
	}
	return active, nil
}

// logLikelihood runs Model.LogLikelihoodSE in slices of rows to show
// progress and honour cancellation; the per-row noise streams come from rng
// in row order, so slicing does not change the numbers. A slice holds about
// llChunk samples (one row at least); when ctx is cancelled during one,
// logLikelihood returns at once and leaves the slice to finish in the
// background (the process is about to exit: amortized has no context to
// stop it).
func logLikelihood(ctx context.Context, m *amortized.Model, x [][]float32, k int, rng *rand.Rand, out io.Writer) (ll, se []float64, err error) {
	step := max(1, llChunk/k)
	bar := progress.New(out, int64(len(x)), fmt.Sprintf("log p(x), k = %d", k), progress.WithUnit("images"))
	defer bar.Finish()
	type result struct {
		ll, se []float64
		err    error
	}
	for i := 0; i < len(x); i += step {
		if ctx.Err() != nil {
			return nil, nil, ErrInterrupted
		}
		done := make(chan result, 1)
		go func(rows [][]float32) {
			l, s, err := m.LogLikelihoodSE(rows, k, rng)
			done <- result{l, s, err}
		}(x[i:min(i+step, len(x))])
		var r result
		select {
		case r = <-done:
		case <-ctx.Done():
			return nil, nil, ErrInterrupted
		}
		if r.err != nil {
			return nil, nil, r.err
		}
		ll, se = append(ll, r.ll...), append(se, r.se...)
		bar.Add(int64(len(r.ll)))
	}
	return ll, se, nil
}

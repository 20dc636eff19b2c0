package trainrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/imgrid"
	"github.com/govae/govae/internal/memstat"
	"github.com/govae/govae/internal/progress"
	"github.com/govae/govae/internal/report"
)

// File names inside a run directory.
const (
	LatestFile  = "model.safetensors"
	BestFile    = "best.safetensors"
	MetricsFile = "metrics.jsonl"
)

// Config is one training job. Model and Train use the zero-value defaults of
// their packages.
type Config struct {
	Dataset  string // mnist, fashion-mnist, or any name with DataDir
	DataDir  string
	Offline  bool
	Binarize string // none, static, dynamic; "" means dynamic for Bernoulli, none for Gaussian
	Batch    int
	// ValSize is the number of training images held out for validation;
	// negative means 10% of the training set, at most 10,000.
	ValSize int
	Seed    uint64
	Model   amortized.Config // DataDim and image size come from the data
	// Images are the size, channels and split of an image folder (-data-dir
	// of PNG/JPEG files); zero keeps the files' own. Refused for other kinds.
	Images data.ImageFolderOptions
	Train  amortized.TrainOptions

	Out    string
	Resume bool // continue the run in Out
	Force  bool // start over even if Out holds a run
	// Explicit names the settings the user gave (flag names). On resume
	// these must agree with the saved run, except -epochs (the total to
	// reach), -lr (a new step size) and -data-dir (the files may move).
	Explicit map[string]bool
	LogEvery int       // steps between log lines (printed and in metrics.jsonl); 0: per epoch only
	Command  string    // the command line, kept in the run's command.txt; "" writes none
	Stdout   io.Writer // epoch lines and progress; nil means os.Stdout

	// model.safetensors is saved after every epoch and, when cancelled,
	// where training stopped. SaveSteps > 0 saves it also after each step
	// whose number (counted from the start of the run, so resuming keeps
	// the schedule) is a multiple of SaveSteps; SaveInterval > 0 saves it
	// also when that long has passed since the last save.
	SaveSteps    int64
	SaveInterval time.Duration
	// Keep > 0 keeps a copy of each of the Keep most recent saves as
	// KeptFile(step); 0 keeps none.
	Keep int
	// OnNonFinite says what a NaN or infinity does: "" or "stop" ends the
	// run with a *amortized.NonFiniteError; "rollback" reloads
	// model.safetensors (the initial weights if none was saved yet), halves
	// the learning rate and goes on, at most MaxRollbacks times per call
	// (0 means DefaultMaxRollbacks).
	OnNonFinite  string
	MaxRollbacks int

	// afterStep, when set, runs after each step's log line and before any
	// save it is due; tests inject faults with it.
	afterStep func(*amortized.Trainer, amortized.StepStats)
}

// DefaultMaxRollbacks is the number of rollbacks allowed when
// Config.MaxRollbacks is 0.
const DefaultMaxRollbacks = 3

// usagef is an error in the job's settings (the command line), as opposed
// to a failure while running it: a *cli.UsageError.
var usagef = cli.Usagef

// ErrInterrupted is returned when the context was cancelled and a resumable
// checkpoint was saved.
var ErrInterrupted = errors.New("training interrupted")

// run is what a checkpoint must remember to rebuild the same batches.
type run struct {
	Dataset  string `json:"dataset"`
	DataDir  string `json:"data_dir"`
	Binarize string `json:"binarize"`
	Batch    int    `json:"batch"`
	ValSize  int    `json:"val_size"`
	Seed     uint64 `json:"seed"`
}

// Metrics is one line of metrics.jsonl. Train terms are averages over the
// epoch's minibatches as trained (one z per image, the current weights at
// each step); val and test terms are the model at the end of the epoch.
type Metrics struct {
	Epoch      int      `json:"epoch"`
	Step       int64    `json:"step"`
	TrainELBO  float64  `json:"train_elbo"`
	TrainBound float64  `json:"train_bound"` // the objective's estimate: the ELBO, or the IWAE bound
	Recon      float64  `json:"recon"`
	KL         float64  `json:"kl"`
	ValELBO    *float64 `json:"val_elbo"`
	ValRecon   *float64 `json:"val_recon,omitempty"`
	ValKL      *float64 `json:"val_kl,omitempty"`
	TestELBO   float64  `json:"test_elbo"`
	TestRecon  float64  `json:"test_recon"`
	TestKL     float64  `json:"test_kl"`
	// TestBPD is -TestELBO / (D ln 2), bits per dimension, for a
	// likelihood of 8-bit levels (amortized.IsPixelLikelihood).
	TestBPD      *float64 `json:"test_bpd,omitempty"`
	Beta         float64  `json:"beta"`
	ImagesPerSec float64  `json:"images_per_s"`
	TrainSeconds float64  `json:"train_seconds"`
	EvalSeconds  float64  `json:"eval_seconds"`
	Seconds      float64  `json:"seconds"`
	Best         bool     `json:"best"`
	Time         string   `json:"time"`
	// GlobalKL is a Bayesian decoder's KL(q(theta)||p(theta)) in nats
	// (the ELBOs above are per image, with the mean decoder weights).
	GlobalKL *float64 `json:"global_kl,omitempty"`
}

// Train runs the job. It returns ErrInterrupted (after saving) when ctx is
// cancelled, and a *amortized.NonFiniteError when training diverges (the
// last good checkpoint is left in place) and no rollback is allowed.
func Train(ctx context.Context, cfg Config) error {
	out := cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	if err := checkSettings(cfg); err != nil {
		return err
	}
	release, err := prepareOut(cfg, out)
	if err != nil {
		return err
	}
	defer release()
	latest := filepath.Join(cfg.Out, LatestFile)

	var m *amortized.Model
	var state *amortized.TrainState
	r := run{Dataset: cfg.Dataset, DataDir: cfg.DataDir, Binarize: cfg.Binarize, Batch: cfg.Batch, ValSize: cfg.ValSize, Seed: cfg.Seed}
	if cfg.Resume {
		var err error
		if m, state, err = checkpoints.LoadTraining(latest); err != nil {
			return err
		}
		if exp := runinfo.ExperimentOf(state); exp != "" {
			return usagef("-resume: %s is a checkpoint of the %s experiment, not of a cmd/train run: run the experiment again "+
				"with the -out whose checkpoints folder it came from (go run ./experiments -run %s -out DIR) to continue it", latest, exp, exp)
		}
		var saved run
		if err := json.Unmarshal(state.Run, &saved); err != nil {
			return fmt.Errorf("%s: the training state has no run description: %w", latest, err)
		}
		if err := checkResumable(cfg, saved, m.Config(), state.Options); err != nil {
			return usagef("-resume %s: %w", latest, err)
		}
		r = saved
		if !cfg.Explicit["data-dir"] {
			r.DataDir = saved.DataDir
		} else {
			r.DataDir = cfg.DataDir // the same files may have moved
		}
		given := cfg.Train
		cfg.Train = state.Options
		if cfg.Explicit["epochs"] {
			cfg.Train.Epochs = given.Epochs
		}
		if cfg.Explicit["shards"] {
			cfg.Train.Shards = given.Shards // rounding only: free to change
		}
		if cfg.Explicit["lr"] {
			// A changed step size is the usual remedy for a run that diverged.
			cfg.Train.LR = given.LR
			fmt.Fprintf(out, "resuming with learning rate %g (was %g)\n", given.LR, state.Options.LR)
		}
		if state.Epoch >= cfg.Train.Epochs && state.Batch == 0 {
			return usagef("-resume: the run in %s has finished its %d epochs; pass a larger -epochs to train further", cfg.Out, state.Epoch)
		}
	}

	images := cfg.Images
	if m != nil && images == (data.ImageFolderOptions{}) && runinfo.IsImageFolder(r.DataDir) {
		// Resuming on an image folder: the size and channels the model was built for.
		mc := m.Config()
		images = data.ImageFolderOptions{Rows: mc.ImageRows, Cols: mc.ImageCols, Channels: mc.Shape().Channels}
	}
	ds, err := data.LoadContext(ctx, r.Dataset, data.LoadOptions{Dir: r.DataDir, Progress: out, Offline: cfg.Offline, Images: images})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "interrupted while loading the data; nothing was written")
			return ErrInterrupted
		}
		return err
	}
	if cfg.Resume && ds.Train.Images.Dim() != m.DataDim() {
		return usagef("-resume: the data has %d pixels per image, the saved model %d", ds.Train.Images.Dim(), m.DataDim())
	}
	if cfg.Resume {
		// Files of format version 2 say what they were trained on.
		saved, err := checkpoints.ReadData(latest)
		if err != nil {
			return err
		}
		if saved != nil && saved.Dataset != ds.Name {
			return usagef("-resume: %s was trained on %s (found in %s), but the data loaded now is %s (found in %s); resume on %s, or start a new run",
				latest, saved.Dataset, saved.Dir, ds.Name, ds.Dir, saved.Dataset)
		}
	}
	trainedOn := &checkpoints.Data{Dataset: ds.Name, Dir: ds.Dir, EvalSeed: runinfo.EvalBinarizeSeed,
		Rows: ds.Train.Images.Rows, Cols: ds.Train.Images.Cols, Channels: max(ds.Train.Images.Channels, 1)}
	if m == nil {
		mc := cfg.Model
		mc.DataDim, mc.ImageRows, mc.ImageCols = ds.Train.Images.Dim(), ds.Train.Images.Rows, ds.Train.Images.Cols
		mc.ImageChannels = max(ds.Train.Images.Channels, 1)
		if _, err := mc.Normalize(); err != nil {
			return usagef("the model on %s's %dx%dx%d images (channels x rows x cols): %w", ds.Name, mc.ImageChannels, mc.ImageRows, mc.ImageCols, err)
		}
		if err := CheckSizes(mc, r.Batch, cfg.Train.K); err != nil {
			return err
		}
		if m, err = amortized.New(mc, r.Seed); err != nil {
			return err
		}
	}
	if r.Binarize == "" {
		r.Binarize = "dynamic"
		if m.Config().Preprocess() == amortized.PreprocessGrey {
			r.Binarize = "none"
		}
	}
	trainedOn.Binarize = r.Binarize
	bin, err := data.ParseBinarization(r.Binarize)
	if err != nil {
		return usagef("-binarize: %w", err)
	}
	if bin != data.BinarizeNone && m.Config().Preprocess() == amortized.PreprocessGrey {
		fmt.Fprintf(out, "note: a %s likelihood wants grey levels; on binarized pixels it is unusual; -binarize none is the usual choice\n", m.Config().Likelihood)
	}
	n := ds.Train.Images.N
	if r.ValSize < 0 {
		r.ValSize = min(n/10, 10000)
	}
	trainIdx, valIdx, err := data.ValidationSplit(n, r.ValSize, r.Seed)
	if err != nil {
		return usagef("-val: %w", err)
	}
	if cfg.Resume && (r.Batch < 1 || r.Batch > len(trainIdx)) {
		return fmt.Errorf("-resume: the training state in %s has batch size %d, but the data give %d training images after validation: the file was altered, or -data-dir points at other data", latest, r.Batch, len(trainIdx))
	}
	if r.Batch < 1 || r.Batch > len(trainIdx) {
		return usagef("-batch %d: want 1 to %d (the training images left after validation)", r.Batch, len(trainIdx))
	}
	evalBin := data.BinarizeStatic
	if bin == data.BinarizeNone {
		evalBin = data.BinarizeNone
	}
	trainL, err := data.NewLoader(ds.Train.Images, trainIdx, data.LoaderOptions{Batch: r.Batch, Seed: r.Seed, Shuffle: true, Binarize: bin})
	if err != nil {
		return err
	}
	if state != nil {
		if err := checkProgress(*state, trainL.NumBatches()); err != nil {
			return fmt.Errorf("-resume: the training state in %s %w: the file was altered, or -data-dir points at other data", latest, err)
		}
	}
	var valL amortized.Batches
	if len(valIdx) > 0 {
		if valL, err = data.NewLoader(ds.Train.Images, valIdx, data.LoaderOptions{Batch: 1000, Seed: runinfo.EvalBinarizeSeed, Binarize: evalBin}); err != nil {
			return err
		}
	}
	testL, err := data.NewLoader(ds.Test.Images, nil, data.LoaderOptions{Batch: 1000, Seed: runinfo.EvalBinarizeSeed, Binarize: evalBin})
	if err != nil {
		return err
	}

	// vamp:K:data: the pseudo-inputs of a new model start at training
	// images (grey levels), drawn with the run's seed; a rollback to the
	// initial weights does it again.
	initData := func(m *amortized.Model) error {
		if !m.WantsData() {
			return nil
		}
		imgs, err := data.NewLoader(ds.Train.Images, trainIdx, data.LoaderOptions{Batch: 1000, Seed: r.Seed, Binarize: data.BinarizeNone})
		if err != nil {
			return err
		}
		x, err := imgs.Rows(0)
		if err != nil {
			return err
		}
		if err := m.InitFromData(x, r.Seed); err != nil {
			return fmt.Errorf("-prior %s: %w", m.Config().Prior, err)
		}
		return nil
	}
	if state == nil {
		if err := initData(m); err != nil {
			return err
		}
	}
	rj, _ := json.Marshal(r)
	tr, err := amortized.NewTrainer(m, r.Batch, cfg.Train, state)
	if err != nil {
		return err
	}
	defer func() { // a rollback replaces tr
		if tr != nil {
			tr.Close()
		}
	}()
	tr.SetRun(rj)

	mc := m.Config()
	fmt.Fprintf(out, "training %s: %d train / %d validation / %d test images (%s), binarize %s\n",
		ds.Name, len(trainIdx), len(valIdx), ds.Test.Images.N, ds.Dir, r.Binarize)
	o := tr.Options()
	trainedOn.KLWeighting = strings.TrimPrefix(runinfo.KLWeighting(o), ", ")
	kl := "closed-form KL"
	if !m.AnalyticKL() {
		kl = "Monte Carlo KL"
	}
	arch := fmt.Sprintf("%d-%s-%d (%s, ", mc.DataDim, joinInts(mc.Hidden), mc.Latent, mc.Activation)
	if mc.Trunk != "" {
		arch = fmt.Sprintf("%dx%dx%d, z %d, trunk %s (", mc.Shape().Channels, mc.ImageRows, mc.ImageCols, mc.Latent, mc.Trunk)
	}
	fmt.Fprintf(out, "model %s%s likelihood, %s posterior, %s prior, %s, %s), %d parameters; objective %s, %s gradients%s; batch %d, lr %g, epochs %d, seed %d\n",
		arch, mc.Likelihood, mc.Posterior, runinfo.PriorName(mc), kl, mc.Dtype,
		m.Params().Count(), objectiveName(o), o.Estimator, runinfo.KLWeighting(o), r.Batch, o.LR, o.Epochs, r.Seed)
	printUnits(out, mc, o)
	if m.BayesDecoder() {
		fmt.Fprintf(out, "Bayesian decoder: q(theta) = N(mu, softplus(rho)^2) per decoder parameter, prior N(0, %g^2), KL/%d per training image; epoch ELBOs use the mean weights\n",
			mc.DecoderPriorSigma, len(trainIdx))
	}
	if note := runinfo.BoundNote(o); note != "" {
		fmt.Fprintln(out, "note:", note)
	}
	if cfg.Resume {
		st := tr.State()
		fmt.Fprintf(out, "resuming at epoch %d, batch %d (step %d)\n", st.Epoch+1, st.Batch, st.Step)
	}

	if err := recordCommand(cfg); err != nil { // once the settings and data are known good
		return err
	}
	pics, err := newPictures(m, testL)
	if err != nil {
		return err
	}
	sv := &saver{dir: cfg.Out, data: trainedOn, steps: cfg.SaveSteps, interval: cfg.SaveInterval, keep: cfg.Keep, last: time.Now(), step: -1}
	if state != nil {
		sv.step = state.Step
	}
	// Everything is checked: now, and not before, the previous run of a
	// -force goes aside, to come back if the new run fails before its
	// first checkpoint.
	if cfg.Force {
		if sv.aside, err = moveAside(cfg.Out); err != nil {
			return err
		}
		defer func() {
			if sv.aside == nil {
				return
			}
			if rerr := sv.aside.restore(true); rerr != nil {
				fmt.Fprintf(out, "-force: the new run failed before its first checkpoint, and restoring the previous run failed: %v; its files are in %s\n", rerr, filepath.Join(cfg.Out, asideDir))
				return
			}
			fmt.Fprintf(out, "-force: the new run failed before its first checkpoint; the previous run in %s is restored\n", cfg.Out)
		}()
	}
	if err := discardFuture(cfg.Out, tr.State(), out); err != nil {
		return err
	}
	var bar *progress.Reporter
	var running runningMean
	nb := trainL.NumBatches()
	// The images are held for the whole run: by default the collector would
	// let garbage grow to the size of the live heap, data included, so
	// that the peak memory counted the data twice.
	dataBytes := uint64(len(ds.Train.Images.Pix) + len(ds.Test.Images.Pix))
	hooks := amortized.Hooks{
		AfterStep: func(t *amortized.Trainer, s amortized.StepStats) error {
			if bar == nil {
				// Once an epoch, when the graphs are built.
				memstat.SetGCExcluding(dataBytes)
				bar = progress.New(out, int64(nb), fmt.Sprintf("epoch %d/%d", s.Epoch, t.Options().Epochs), progress.WithUnit("batches"))
				bar.Add(int64(s.Batch))
			}
			bar.Add(1)
			running.add(s)
			bar.SetStatus(running.status(t.Options()))
			if cfg.LogEvery > 0 && s.Step%int64(cfg.LogEvery) == 0 {
				fmt.Fprintln(out, stepLine(s, nb, t.Options()))
				st := report.Step{Kind: report.StepKind, Epoch: s.Epoch, Step: s.Step, ELBO: s.Recon - s.KL, Recon: s.Recon, KL: s.KL, Beta: s.Beta, Loss: s.Loss, Bound: s.Bound}
				if err := appendLine(filepath.Join(cfg.Out, MetricsFile), st); err != nil {
					return err
				}
			}
			if cfg.afterStep != nil {
				cfg.afterStep(t, s)
			}
			// AfterEpoch saves the epoch's last step, after evaluating it.
			if t.State().Batch < nb && sv.due(s.Step) {
				return sv.save(t.Model(), t.State(), s.Epoch)
			}
			return nil
		},
		AfterEpoch: func(t *amortized.Trainer, e amortized.EpochStats) error {
			bar.Finish()
			bar = nil
			return endEpoch(cfg.Out, out, t, e, testL, pics, sv)
		},
	}
	maxRollbacks := cfg.MaxRollbacks
	if maxRollbacks == 0 {
		maxRollbacks = DefaultMaxRollbacks
	}
	for rollbacks := 0; ; rollbacks++ {
		err = tr.Fit(ctx, trainL, valL, hooks)
		bar.Finish()
		bar = nil
		var nf *amortized.NonFiniteError
		if cfg.OnNonFinite != "rollback" || !errors.As(err, &nf) {
			break
		}
		if rollbacks == maxRollbacks {
			err = fmt.Errorf("%w; giving up after %d rollbacks (-max-rollbacks)", err, rollbacks)
			break
		}
		// Back to the last save, with half the step size; the new rate is
		// saved with the state, so a later -resume keeps it.
		lr := tr.Options().LR
		opts := tr.Options()
		opts.LR = lr / 2
		gm, gst, from, gerr := lastGood(cfg, latest, mc, r.Seed, initData)
		if gerr != nil {
			return fmt.Errorf("%v; rolling back failed: %w", nf, gerr)
		}
		tr.Close()
		if tr, gerr = amortized.NewTrainer(gm, r.Batch, opts, gst); gerr != nil {
			return fmt.Errorf("rolling back: %w", gerr)
		}
		tr.SetRun(rj)
		pics.m = gm
		sv.last = time.Now()
		fmt.Fprintf(out, "%v\nrollback %d of %d: back to step %d (%s) with learning rate %g (was %g)\n",
			nf, rollbacks+1, maxRollbacks, tr.State().Step, from, opts.LR, lr)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		st := tr.State()
		if err := sv.save(tr.Model(), st, st.Epoch+1); err != nil {
			return fmt.Errorf("interrupted, and saving failed: %w", err)
		}
		fmt.Fprintf(out, "interrupted at epoch %d, batch %d (step %d); saved %s; continue with -resume -out %s\n",
			st.Epoch+1, st.Batch, st.Step, latest, cfg.Out)
		return ErrInterrupted
	}
	var nf *amortized.NonFiniteError
	if errors.As(err, &nf) {
		hint := "nothing was saved yet; start again with a smaller -lr"
		if sv.step >= 0 {
			hint = fmt.Sprintf("%s holds the last good state (step %d): continue with -resume -out %s and a smaller -lr", latest, sv.step, cfg.Out)
		}
		if cfg.OnNonFinite != "rollback" {
			hint += ", or train with -on-nan rollback"
		}
		return fmt.Errorf("%w\n%s", err, hint)
	}
	if err != nil {
		return err
	}
	st := tr.State()
	best := "no validation set, best.safetensors is the last epoch"
	if st.BestEpoch > 0 {
		best = fmt.Sprintf("best validation ELBO %.3f at epoch %d", st.BestValELBO, st.BestEpoch)
	}
	fmt.Fprintf(out, "done: %s, %s; %s; checkpoints in %s\n", plural(st.Epoch, "epoch", "epochs"), plural(int(st.Step), "step", "steps"), best, cfg.Out)
	return nil
}

// lastGood loads the state to roll back to: model.safetensors, or for a new
// run that diverged before its first save, the initial weights. from
// describes it for the log.
func lastGood(cfg Config, latest string, mc amortized.Config, seed uint64, initData func(*amortized.Model) error) (m *amortized.Model, st *amortized.TrainState, from string, err error) {
	m, st, err = checkpoints.LoadTraining(latest)
	if errors.Is(err, os.ErrNotExist) && !cfg.Resume {
		if m, err = amortized.New(mc, seed); err == nil {
			err = initData(m)
		}
		return m, nil, "the initial weights, as nothing was saved yet", err
	}
	return m, st, latest, err
}

// discardFuture drops what the run directory holds beyond the state training
// continues from: metrics lines of later epochs and later kept copies.
func discardFuture(dir string, st amortized.TrainState, out io.Writer) error {
	if err := trimMetrics(filepath.Join(dir, MetricsFile), st.Epoch, st.Step, out); err != nil {
		return err
	}
	return dropKeptAfter(dir, st.Step)
}

// checkProgress checks the counters of a saved state against the number
// of batches an epoch has: the step is the batches of the completed epochs
// plus those of the epoch in progress.
func checkProgress(st amortized.TrainState, nb int) error {
	if st.Batch >= nb {
		return fmt.Errorf("is at batch %d of an epoch of %d batches", st.Batch, nb)
	}
	if want := int64(st.Epoch)*int64(nb) + int64(st.Batch); st.Step != want {
		return fmt.Errorf("says step %d, but %d epochs of %d batches and %d batches more make step %d", st.Step, st.Epoch, nb, st.Batch, want)
	}
	return nil
}

// checkSettings rejects settings that need no data to be found wrong.
func checkSettings(cfg Config) error {
	switch {
	case cfg.SaveSteps < 0 || cfg.SaveInterval < 0:
		return usagef("-save-every: want a step count or a duration >= 0")
	case cfg.Keep < 0:
		return usagef("-keep %d: want >= 0", cfg.Keep)
	case cfg.OnNonFinite != "" && cfg.OnNonFinite != "stop" && cfg.OnNonFinite != "rollback":
		return usagef("-on-nan %q: want stop or rollback", cfg.OnNonFinite)
	case cfg.MaxRollbacks < 0:
		return usagef("-max-rollbacks %d: want >= 1", cfg.MaxRollbacks)
	}
	return nil
}

// endEpoch evaluates the test set and writes metrics, pictures and
// checkpoints. A non-finite evaluation stops it before anything is written,
// so no checkpoint of a diverged model is ever saved.
func endEpoch(dir string, out io.Writer, t *amortized.Trainer, e amortized.EpochStats, test amortized.Batches, pics *pictures, sv *saver) error {
	m := t.Model()
	start := time.Now()
	ts, err := m.Evaluate(test, runinfo.TestNoise(t.Options().Seed))
	if err != nil {
		return fmt.Errorf("test ELBO after epoch %d: %w", e.Epoch, err)
	}
	evalSec := e.EvalSeconds + time.Since(start).Seconds()
	if e.Val != nil && nonFinite(e.Val.ELBO) {
		return &amortized.NonFiniteError{Epoch: e.Epoch, Step: e.Step, What: "the validation ELBO"}
	}
	if nonFinite(ts.ELBO) {
		return &amortized.NonFiniteError{Epoch: e.Epoch, Step: e.Step, What: "the test ELBO"}
	}
	if err := checkFinite(m, e.Epoch, e.Step); err != nil {
		return err
	}
	line := Metrics{
		Epoch: e.Epoch, Step: e.Step, TrainELBO: e.Train.ELBO, TrainBound: e.Train.Bound, Recon: e.Train.Recon, KL: e.Train.KL,
		TestELBO: ts.ELBO, TestRecon: ts.Recon, TestKL: ts.KL, Beta: e.Beta,
		ImagesPerSec: e.ImagesPerSec, TrainSeconds: e.TrainSeconds, EvalSeconds: evalSec,
		Seconds: e.TrainSeconds + evalSec, Best: e.Best, Time: time.Now().UTC().Format(time.RFC3339),
	}
	val, testS := "-", fmt.Sprintf("%.3f", ts.ELBO)
	if e.Val != nil {
		line.ValELBO, line.ValRecon, line.ValKL = &e.Val.ELBO, &e.Val.Recon, &e.Val.KL
		val = fmt.Sprintf("%.3f", e.Val.ELBO)
	}
	if mc := m.Config(); amortized.IsPixelLikelihood(mc.Likelihood) {
		bpd := amortized.BitsPerDim(ts.ELBO, mc.DataDim)
		line.TestBPD = &bpd
		testS += fmt.Sprintf(" (%.4f bits/dim)", bpd)
	}
	if m.BayesDecoder() {
		kl := m.GlobalKL()
		line.GlobalKL = &kl
	}
	if err := appendMetrics(filepath.Join(dir, MetricsFile), line); err != nil {
		return sv.failed(err)
	}
	bound := ""
	if o := t.Options(); o.Objective == amortized.ObjectiveIWAE {
		bound = fmt.Sprintf("train IWAE bound (k=%d) %.3f [optimized]; ", max(o.K, 1), e.Train.Bound)
	}
	warm := ""
	if e.Beta < 1 {
		warm = fmt.Sprintf(" [KL warm-up: beta %.3f]", e.Beta)
	}
	fmt.Fprintf(out, "epoch %d/%d: %strain ELBO %.3f (recon %.3f, KL %.3f; mean over the epoch's batches)%s, validation ELBO %s, test ELBO %s; %.0f images/s, %.1fs\n",
		e.Epoch, t.Options().Epochs, bound, e.Train.ELBO, e.Train.Recon, e.Train.KL, warm, val, testS, e.ImagesPerSec, line.Seconds)
	if line.GlobalKL != nil {
		fmt.Fprintf(out, "  decoder weights: KL(q||p) = %.1f nats, %.3f per training image (not in the ELBOs above)\n", *line.GlobalKL, *line.GlobalKL/float64(t.DataSize()))
	}
	if err := pics.write(dir, e.Epoch); err != nil {
		return sv.failed(err)
	}
	defer func() { // after the checkpoint it describes; a failed page never stops training
		if err := report.Write(dir); err != nil {
			fmt.Fprintf(out, "warning: %s not refreshed: %v\n", report.IndexFile, err)
		}
	}()
	st := t.State()
	if e.Best || e.Val == nil {
		if err := checkpoints.SaveWithData(filepath.Join(dir, BestFile), m, nil, sv.data); err != nil {
			return fmt.Errorf("%w; %s is unchanged", sv.failed(err), BestFile)
		}
	}
	return sv.save(m, st, e.Epoch)
}

// prepareOut creates and locks the run directory, finishes a -force a
// crash interrupted, and refuses to overwrite a run. It deletes nothing of
// a previous run: with Force, Train moves it aside once everything else is
// checked, and deletes it only once the new run has saved a checkpoint.
func prepareOut(cfg Config, out io.Writer) (release func(), err error) {
	if cfg.Out == "" {
		return nil, usagef("-out: want a directory for the run")
	}
	if cfg.Resume && cfg.Force {
		return nil, usagef("-resume and -force contradict each other: -force starts over, -resume continues")
	}
	if _, err := os.Stat(cfg.Out); errors.Is(err, syscall.ELOOP) {
		return nil, usagef("-out: %w", describePathError(err))
	}
	if cfg.Resume {
		// Do not create the folder of a run that is not there.
		if _, err := os.Stat(filepath.Join(cfg.Out, LatestFile)); err != nil && !hasAside(cfg.Out) {
			return nil, usagef("-resume: %s does not exist, so there is no run to continue", filepath.Join(cfg.Out, LatestFile))
		}
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, usagef("-out: %w", describePathError(err))
	}
	unlock, err := lockDir(cfg.Out)
	if errors.Is(err, errNoLocks) {
		fmt.Fprintln(out, err)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	if err := recoverAside(cfg.Out, out); err != nil {
		return nil, fmt.Errorf("-out %s: finishing an interrupted -force: %w", cfg.Out, err)
	}
	latest := filepath.Join(cfg.Out, LatestFile)
	names, err := runFiles(cfg.Out)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Resume && !slices.Contains(names, LatestFile):
		return nil, usagef("-resume: %s does not exist, so there is no run to continue", latest)
	case !cfg.Resume && !cfg.Force && len(names) > 0:
		what := fmt.Sprintf("%s and %d more", names[0], len(names)-1)
		if len(names) == 1 {
			what = names[0]
		}
		if slices.Contains(names, LatestFile) {
			return nil, usagef("-out %s already holds a run (%s); pass -resume to continue it or -force to start over", cfg.Out, what)
		}
		return nil, usagef("-out %s already holds files of a run (%s); pass -force to start over", cfg.Out, what)
	}
	// Fail now, not after the first epoch, if the directory is not writable.
	probe := filepath.Join(cfg.Out, ".write-test")
	if err := atomicfile.WriteFile(probe, nil, 0o644); err != nil {
		return nil, usagef("-out %s is not writable: %w", cfg.Out, err)
	}
	os.Remove(probe)
	if err := removeStaleTemps(cfg.Out); err != nil {
		return nil, err
	}
	return unlock, nil
}

// checkResumable compares the explicitly given settings with the saved run.
func checkResumable(cfg Config, saved run, mc amortized.Config, opts amortized.TrainOptions) error {
	type pair struct{ flag, given, saved string }
	var diffs []string
	for _, p := range []pair{
		{"dataset", cfg.Dataset, saved.Dataset},
		{"binarize", cfg.Binarize, saved.Binarize},
		{"batch", fmt.Sprint(cfg.Batch), fmt.Sprint(saved.Batch)},
		{"val", fmt.Sprint(cfg.ValSize), fmt.Sprint(saved.ValSize)},
		{"seed", fmt.Sprint(cfg.Seed), fmt.Sprint(saved.Seed)},
		{"hidden", joinInts(cfg.Model.Hidden), joinInts(mc.Hidden)},
		{"latent", joinInts(cfg.Model.LatentLayers()), joinInts(mc.LatentLayers())},
		{"latent-hidden", cfg.Model.Posterior, mc.Posterior},
		{"encoder", cfg.Model.Trunk, mc.Trunk},
		{"arch", cfg.Model.Trunk, mc.Trunk},
		{"likelihood", cfg.Model.Likelihood, mc.Likelihood},
		{"activation", cfg.Model.Activation, mc.Activation},
		{"posterior", canonicalPosterior(cfg, mc), mc.Posterior},
		{"dtype", cfg.Model.Dtype, mc.Dtype},
		{"prior", runinfo.CanonicalPrior(cfg.Model.Prior), runinfo.CanonicalPrior(mc.Prior)},
		{"beta", fmt.Sprint(klWeight(cfg.Train)), fmt.Sprint(klWeight(opts))},
		{"capacity", capacityString(cfg.Train), capacityString(opts)},
		{"warmup", fmt.Sprint(cfg.Train.WarmupEpochs), fmt.Sprint(opts.WarmupEpochs)},
		{"free-bits", fmt.Sprint(cfg.Train.FreeBits), fmt.Sprint(opts.FreeBits)},
		{"adam-eps", fmt.Sprint(cfg.Train.AdamEps), fmt.Sprint(opts.AdamEps)},
		{"objective", cfg.Train.Objective, opts.Objective},
		{"k", fmt.Sprint(cfg.Train.K), fmt.Sprint(opts.K)},
		{"estimator", cfg.Train.Estimator, opts.Estimator},
		{"bayes-decoder", fmt.Sprint(cfg.Model.DecoderPriorSigma > 0), fmt.Sprint(mc.DecoderPriorSigma > 0)},
		{"decoder-prior-sigma", fmt.Sprint(cfg.Model.DecoderPriorSigma), fmt.Sprint(mc.DecoderPriorSigma)},
	} {
		if cfg.Explicit[p.flag] && p.given != p.saved {
			diffs = append(diffs, fmt.Sprintf("-%s %s (the run was started with %s)", p.flag, p.given, p.saved))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("these settings differ from the saved run: %s; drop them to resume, or start a new run", strings.Join(diffs, ", "))
	}
	return nil
}

// canonicalPosterior is the -posterior given, in the canonical form the
// saved configuration uses ("iaf:2" is "iaf:2:H" with the default H for the
// latent dimension), or as given when it does not parse.
func canonicalPosterior(cfg Config, saved amortized.Config) string {
	latent := saved.Latent
	if cfg.Explicit["latent"] {
		latent = cfg.Model.Latent
	}
	if p, err := amortized.CanonicalPosterior(cfg.Model.Posterior, latent); err == nil {
		return p
	}
	return cfg.Model.Posterior
}

// klWeight is the options' KL weight, 1 when unset (files before -beta).
func klWeight(o amortized.TrainOptions) float64 {
	if o.KLWeight == 0 {
		return 1
	}
	return o.KLWeight
}

func capacityString(o amortized.TrainOptions) string {
	if !o.Capacity() {
		return ""
	}
	return fmt.Sprintf("%g:%d:%g", o.CapacityMax, o.CapacitySteps, o.CapacityGamma)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func appendMetrics(path string, m Metrics) error { return appendLine(path, m) }

func appendLine(path string, m any) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(m)
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// trimMetrics drops lines for epochs after the checkpoint's (see the
// package doc), step lines (kind "step") after its step, and lines a crash
// cut short or damaged, saying so on out, and rewrites the file atomically
// if anything was dropped.
func trimMetrics(path string, epoch int, step int64, out io.Writer) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	later := 0
	for i, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m struct {
			Epoch int    `json:"epoch"`
			Kind  string `json:"kind"`
			Step  int64  `json:"step"`
		}
		text := bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case line[len(line)-1] != '\n' || json.Unmarshal(text, &m) != nil || m.Epoch < 1:
			what := "is not a metrics record"
			if line[len(line)-1] != '\n' {
				what = "was cut short (no end of line), as a crash while writing it leaves it"
			}
			fmt.Fprintf(out, "note: %s line %d %s: dropped (%d bytes: %.40q)\n", path, i+1, what, len(text), text)
		case m.Kind == report.StepKind && m.Step > step, m.Kind != report.StepKind && m.Epoch > epoch:
			later++
		default:
			keep.Write(line)
		}
	}
	if later > 0 {
		fmt.Fprintf(out, "note: %s: dropped %d lines of epochs after the checkpoint's (epoch %d), which will be trained again\n", path, later, epoch)
	}
	if keep.Len() == len(b) {
		return nil
	}
	return atomicfile.WriteFile(path, keep.Bytes(), 0o644)
}

// pictures draws the per-epoch grids with fixed inputs, so that successive
// epochs show the same z and the same test images.
type pictures struct {
	m       *amortized.Model
	grid    imgrid.Grid
	samples int // images from the prior per epoch; 0: not images
	x       [][]float32
}

func newPictures(m *amortized.Model, testL *data.Loader) (*pictures, error) {
	p := &pictures{m: m}
	c := m.Config()
	if c.ImageRows == 0 {
		return p, nil
	}
	p.grid = imgrid.Grid{Rows: c.ImageRows, Cols: c.ImageCols, Channels: c.DataDim / (c.ImageRows * c.ImageCols), Columns: 8, Pad: 2, Scale: 2, Background: 96}
	p.samples = 64
	buf := make([]float32, testL.BatchSize()*testL.Dim())
	rows, err := testL.Batch(0, 0, buf)
	if err != nil {
		return nil, err
	}
	for i := 0; i < min(16, rows); i++ {
		p.x = append(p.x, slices.Clone(buf[i*testL.Dim():(i+1)*testL.Dim()]))
	}
	return p, nil
}

func (p *pictures) write(dir string, epoch int) error {
	if p.samples == 0 {
		return nil
	}
	// The same noise every epoch, through the prior's sampler (for N(0, I)
	// the very z a seeded N(0, I) draw gives; for a two-layer model z1
	// follows p(z1|z2)).
	imgs, err := p.m.Sample(p.samples, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		return err
	}
	samples := imgrid.Figure{Grid: p.grid, Title: fmt.Sprintf("Samples after epoch %d\n(the same prior noise every epoch)", epoch)}
	var blk imgrid.Block
	for i := 0; i < len(imgs); i += 8 {
		blk.Rows = append(blk.Rows, imgrid.Row{Images: imgs[i:min(i+8, len(imgs))]})
	}
	samples.Blocks = []imgrid.Block{blk}
	if err := samples.WritePNG(filepath.Join(dir, fmt.Sprintf("samples-e%03d.png", epoch))); err != nil {
		return err
	}
	rec, err := p.m.Reconstruct(p.x, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		return err
	}
	recon := imgrid.Figure{Grid: p.grid, Title: fmt.Sprintf("Test images and reconstructions after epoch %d", epoch)}
	for i := 0; i < len(p.x); i += 8 {
		j := min(i+8, len(p.x))
		recon.Blocks = append(recon.Blocks, imgrid.Block{Rows: []imgrid.Row{{Label: "original", Images: p.x[i:j]}, {Label: "reconstruction", Images: rec[i:j]}}})
	}
	return recon.WritePNG(filepath.Join(dir, fmt.Sprintf("recon-e%03d.png", epoch)))
}

// recordCommand appends the command line to the run's command.txt: the
// first line started the run, later ones resumed it.
func recordCommand(cfg Config) error {
	if cfg.Command == "" {
		return nil
	}
	path := filepath.Join(cfg.Out, report.CommandFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, cfg.Command); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

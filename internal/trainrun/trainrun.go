package trainrun

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/imgrid"
	"github.com/govae/govae/internal/progress"
)

// EvalBinarizeSeed fixes the binarization of validation and test images.
const EvalBinarizeSeed = 0

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
	Train   amortized.TrainOptions

	Out    string
	Resume bool // continue the run in Out
	Force  bool // start over even if Out holds a run
	// Explicit names the settings the user gave (flag names). On resume
	// these must agree with the saved run, except -epochs (the total to
	// reach), -lr (a new step size) and -data-dir (the files may move).
	Explicit map[string]bool
	LogEvery int       // steps between log lines; 0: per epoch only
	Stdout   io.Writer // epoch lines and progress; nil means os.Stdout
}

// UsageError is an error in the job's settings (the command line), as
// opposed to a failure while running it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

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
	Epoch        int      `json:"epoch"`
	Step         int64    `json:"step"`
	TrainELBO    float64  `json:"train_elbo"`
	Recon        float64  `json:"recon"`
	KL           float64  `json:"kl"`
	ValELBO      *float64 `json:"val_elbo"`
	ValRecon     *float64 `json:"val_recon,omitempty"`
	ValKL        *float64 `json:"val_kl,omitempty"`
	TestELBO     float64  `json:"test_elbo"`
	TestRecon    float64  `json:"test_recon"`
	TestKL       float64  `json:"test_kl"`
	Beta         float64  `json:"beta"`
	ImagesPerSec float64  `json:"images_per_s"`
	TrainSeconds float64  `json:"train_seconds"`
	EvalSeconds  float64  `json:"eval_seconds"`
	Seconds      float64  `json:"seconds"`
	Best         bool     `json:"best"`
	Time         string   `json:"time"`
}

// Train runs the job. It returns ErrInterrupted (after saving) when ctx is
// cancelled, and a *amortized.NonFiniteError when training diverges (the
// last good checkpoint is left in place).
func Train(ctx context.Context, cfg Config) error {
	out := cfg.Stdout
	if out == nil {
		out = os.Stdout
	}
	if err := prepareOut(cfg); err != nil {
		return err
	}
	latest := filepath.Join(cfg.Out, LatestFile)

	var m *amortized.Model
	var state *amortized.TrainState
	r := run{Dataset: cfg.Dataset, DataDir: cfg.DataDir, Binarize: cfg.Binarize, Batch: cfg.Batch, ValSize: cfg.ValSize, Seed: cfg.Seed}
	if cfg.Resume {
		var err error
		if m, state, err = checkpoints.LoadTraining(latest); err != nil {
			return err
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
		if cfg.Explicit["lr"] {
			// A changed step size is the usual remedy for a run that diverged.
			cfg.Train.LR = given.LR
			fmt.Fprintf(out, "resuming with learning rate %g (was %g)\n", given.LR, state.Options.LR)
		}
		if state.Epoch >= cfg.Train.Epochs && state.Batch == 0 {
			return usagef("-resume: the run in %s has finished its %d epochs; pass a larger -epochs to train further", cfg.Out, state.Epoch)
		}
	}

	ds, err := data.Load(r.Dataset, data.LoadOptions{Dir: r.DataDir, Progress: out, Offline: cfg.Offline})
	if err != nil {
		return err
	}
	if cfg.Resume && ds.Train.Images.Dim() != m.DataDim() {
		return usagef("-resume: the data has %d pixels per image, the saved model %d", ds.Train.Images.Dim(), m.DataDim())
	}
	if m == nil {
		mc := cfg.Model
		mc.DataDim, mc.ImageRows, mc.ImageCols = ds.Train.Images.Dim(), ds.Train.Images.Rows, ds.Train.Images.Cols
		if m, err = amortized.New(mc, r.Seed); err != nil {
			return err
		}
	}
	if r.Binarize == "" {
		r.Binarize = "dynamic"
		if m.Config().Likelihood == amortized.Gaussian {
			r.Binarize = "none"
		}
	}
	bin, err := data.ParseBinarization(r.Binarize)
	if err != nil {
		return usagef("-binarize: %w", err)
	}
	if bin != data.BinarizeNone && m.Config().Likelihood == amortized.Gaussian {
		fmt.Fprintln(out, "note: a Gaussian likelihood on binarized pixels is unusual; -binarize none is the usual choice")
	}
	n := ds.Train.Images.N
	if r.ValSize < 0 {
		r.ValSize = min(n/10, 10000)
	}
	trainIdx, valIdx, err := data.ValidationSplit(n, r.ValSize, r.Seed)
	if err != nil {
		return usagef("-val: %w", err)
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
	var valL amortized.Batches
	if len(valIdx) > 0 {
		if valL, err = data.NewLoader(ds.Train.Images, valIdx, data.LoaderOptions{Batch: 1000, Seed: EvalBinarizeSeed, Binarize: evalBin}); err != nil {
			return err
		}
	}
	testL, err := data.NewLoader(ds.Test.Images, nil, data.LoaderOptions{Batch: 1000, Seed: EvalBinarizeSeed, Binarize: evalBin})
	if err != nil {
		return err
	}

	rj, _ := json.Marshal(r)
	tr, err := amortized.NewTrainer(m, r.Batch, cfg.Train, state)
	if err != nil {
		return err
	}
	defer tr.Close()
	tr.SetRun(rj)
	if err := trimMetrics(filepath.Join(cfg.Out, MetricsFile), tr.State().Epoch); err != nil {
		return err
	}

	mc := m.Config()
	fmt.Fprintf(out, "training %s: %d train / %d validation / %d test images (%s), binarize %s\n",
		ds.Name, len(trainIdx), len(valIdx), ds.Test.Images.N, ds.Dir, r.Binarize)
	fmt.Fprintf(out, "model %d-%s-%d (%s, %s likelihood, %s posterior, %s), %d parameters; batch %d, lr %g, epochs %d, seed %d\n",
		mc.DataDim, joinInts(mc.Hidden), mc.Latent, mc.Activation, mc.Likelihood, mc.Posterior, mc.Dtype,
		m.Params().Count(), r.Batch, tr.Options().LR, tr.Options().Epochs, r.Seed)
	if cfg.Resume {
		st := tr.State()
		fmt.Fprintf(out, "resuming at epoch %d, batch %d (step %d)\n", st.Epoch+1, st.Batch, st.Step)
	}

	pics, err := newPictures(m, testL)
	if err != nil {
		return err
	}
	var bar *progress.Reporter
	nb := trainL.NumBatches()
	hooks := amortized.Hooks{
		AfterStep: func(t *amortized.Trainer, s amortized.StepStats) error {
			if bar == nil {
				bar = progress.New(out, int64(nb), fmt.Sprintf("epoch %d/%d", s.Epoch, t.Options().Epochs), progress.WithUnit("batches"))
				bar.Add(int64(s.Batch))
			}
			bar.Add(1)
			bar.SetStatus(fmt.Sprintf("ELBO %.2f", s.Recon-s.KL))
			if cfg.LogEvery > 0 && s.Step%int64(cfg.LogEvery) == 0 {
				fmt.Fprintf(out, "step %d (epoch %d, batch %d/%d): loss %.3f, recon %.3f, KL %.3f, beta %.3f\n",
					s.Step, s.Epoch, s.Batch+1, nb, s.Loss, s.Recon, s.KL, s.Beta)
			}
			return nil
		},
		AfterEpoch: func(t *amortized.Trainer, e amortized.EpochStats) error {
			bar.Finish()
			bar = nil
			return endEpoch(cfg.Out, out, t, e, testL, pics)
		},
	}
	err = tr.Fit(ctx, trainL, valL, hooks)
	bar.Finish()
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		st := tr.State()
		if err := checkpoints.Save(latest, m, &st); err != nil {
			return fmt.Errorf("interrupted, and saving failed: %w", err)
		}
		fmt.Fprintf(out, "interrupted at epoch %d, batch %d (step %d); saved %s; continue with -resume -out %s\n",
			st.Epoch+1, st.Batch, st.Step, latest, cfg.Out)
		return ErrInterrupted
	}
	if err != nil {
		return err
	}
	st := tr.State()
	best := "no validation set, best.safetensors is the last epoch"
	if st.BestEpoch > 0 {
		best = fmt.Sprintf("best validation ELBO %.3f at epoch %d", st.BestValELBO, st.BestEpoch)
	}
	fmt.Fprintf(out, "done: %d epochs, %d steps; %s; checkpoints in %s\n", st.Epoch, st.Step, best, cfg.Out)
	return nil
}

// endEpoch evaluates the test set and writes metrics, pictures and checkpoints.
func endEpoch(dir string, out io.Writer, t *amortized.Trainer, e amortized.EpochStats, test amortized.Batches, pics *pictures) error {
	m := t.Model()
	start := time.Now()
	ts, err := m.Evaluate(test, rand.New(rand.NewPCG(t.Options().Seed, 0x74657374)))
	if err != nil {
		return fmt.Errorf("test ELBO after epoch %d: %w", e.Epoch, err)
	}
	evalSec := e.EvalSeconds + time.Since(start).Seconds()
	line := Metrics{
		Epoch: e.Epoch, Step: e.Step, TrainELBO: e.Train.ELBO, Recon: e.Train.Recon, KL: e.Train.KL,
		TestELBO: ts.ELBO, TestRecon: ts.Recon, TestKL: ts.KL, Beta: e.Beta,
		ImagesPerSec: e.ImagesPerSec, TrainSeconds: e.TrainSeconds, EvalSeconds: evalSec,
		Seconds: e.TrainSeconds + evalSec, Best: e.Best, Time: time.Now().UTC().Format(time.RFC3339),
	}
	val := "-"
	if e.Val != nil {
		line.ValELBO, line.ValRecon, line.ValKL = &e.Val.ELBO, &e.Val.Recon, &e.Val.KL
		val = fmt.Sprintf("%.3f", e.Val.ELBO)
	}
	if err := appendMetrics(filepath.Join(dir, MetricsFile), line); err != nil {
		return err
	}
	fmt.Fprintf(out, "epoch %d/%d: train ELBO %.3f (recon %.3f, KL %.3f), val %s, test %.3f; %.0f images/s, %.1fs\n",
		e.Epoch, t.Options().Epochs, e.Train.ELBO, e.Train.Recon, e.Train.KL, val, ts.ELBO, e.ImagesPerSec, line.Seconds)
	if err := pics.write(dir, e.Epoch); err != nil {
		return err
	}
	st := t.State()
	if e.Best || e.Val == nil {
		if err := checkpoints.Save(filepath.Join(dir, BestFile), m, nil); err != nil {
			return err
		}
	}
	return checkpoints.Save(filepath.Join(dir, LatestFile), m, &st)
}

// prepareOut creates the run directory and refuses to overwrite a run.
func prepareOut(cfg Config) error {
	if cfg.Out == "" {
		return usagef("-out: want a directory for the run")
	}
	if cfg.Resume && cfg.Force {
		return usagef("-resume and -force contradict each other: -force starts over, -resume continues")
	}
	latest := filepath.Join(cfg.Out, LatestFile)
	_, err := os.Stat(latest)
	exists := err == nil
	switch {
	case cfg.Resume && !exists:
		return usagef("-resume: %s does not exist, so there is no run to continue", latest)
	case !cfg.Resume && exists && !cfg.Force:
		return usagef("-out %s already holds a run (%s); pass -resume to continue it or -force to start over", cfg.Out, LatestFile)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return usagef("-out: %w", err)
	}
	// Fail now, not after the first epoch, if the directory is not writable.
	probe := filepath.Join(cfg.Out, ".write-test")
	if err := atomicfile.WriteFile(probe, nil, 0o644); err != nil {
		return usagef("-out %s is not writable: %w", cfg.Out, err)
	}
	os.Remove(probe)
	if cfg.Force && !cfg.Resume {
		for _, f := range []string{LatestFile, BestFile, MetricsFile} {
			os.Remove(filepath.Join(cfg.Out, f))
		}
	}
	return nil
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
		{"latent", fmt.Sprint(cfg.Model.Latent), fmt.Sprint(mc.Latent)},
		{"likelihood", cfg.Model.Likelihood, mc.Likelihood},
		{"activation", cfg.Model.Activation, mc.Activation},
		{"posterior", cfg.Model.Posterior, mc.Posterior},
		{"dtype", cfg.Model.Dtype, mc.Dtype},
		{"warmup", fmt.Sprint(cfg.Train.WarmupEpochs), fmt.Sprint(opts.WarmupEpochs)},
		{"free-bits", fmt.Sprint(cfg.Train.FreeBits), fmt.Sprint(opts.FreeBits)},
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

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func appendMetrics(path string, m Metrics) error {
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

// trimMetrics drops lines for epochs after the checkpoint's (see the package doc).
func trimMetrics(path string, epoch int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m struct {
			Epoch int `json:"epoch"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Epoch >= 1 && m.Epoch <= epoch {
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
	}
	if keep.Len() == len(b) {
		return nil
	}
	return atomicfile.WriteFile(path, keep.Bytes(), 0o644)
}

// pictures draws the per-epoch grids with fixed inputs, so that successive
// epochs show the same z and the same test images.
type pictures struct {
	m    *amortized.Model
	grid imgrid.Grid
	z    [][]float32
	x    [][]float32
}

func newPictures(m *amortized.Model, testL *data.Loader) (*pictures, error) {
	p := &pictures{m: m}
	c := m.Config()
	if c.ImageRows == 0 {
		return p, nil
	}
	p.grid = imgrid.Grid{Rows: c.ImageRows, Cols: c.ImageCols, Columns: 8, Pad: 2, Scale: 2, Background: 96}
	rng := rand.New(rand.NewPCG(1, 2))
	p.z = make([][]float32, 64)
	for i := range p.z {
		p.z[i] = make([]float32, c.Latent)
		for j := range p.z[i] {
			p.z[i][j] = float32(rng.NormFloat64())
		}
	}
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
	if p.z == nil {
		return nil
	}
	imgs, err := p.m.Decode(p.z)
	if err != nil {
		return err
	}
	if err := p.grid.WritePNG(filepath.Join(dir, fmt.Sprintf("samples-e%03d.png", epoch)), imgs); err != nil {
		return err
	}
	rec, err := p.m.Reconstruct(p.x, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		return err
	}
	var rows [][][]float32
	for i := 0; i < len(p.x); i += 8 {
		j := min(i+8, len(p.x))
		rows = append(rows, p.x[i:j], rec[i:j])
	}
	return p.grid.WriteRowsPNG(filepath.Join(dir, fmt.Sprintf("recon-e%03d.png", epoch)), rows)
}

package main

// Helpers shared by the posteriors, objectives, estimators, gap and burda
// experiments: data, training, evaluation, tables and plots.

import (
	"context"
	"errors"
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/run/evalrun"
)

// Settings every experiment shares: the reference model's optimizer and batch.
const (
	batchSize = 128
	learnRate = 1e-3
)

// plotScale is the resolution of the figures (plotting.DPI times this).
const plotScale = 2

// modelConfig is the reference architecture (784-400-20-400-784, ReLU,
// Bernoulli) with the given posterior family, for images of ds.
func modelConfig(ds *dataset, posterior string) amortized.Config {
	c := amortized.ReferenceConfig()
	c.DataDim, c.ImageRows, c.ImageCols = ds.Train.Dim(), ds.Train.Rows, ds.Train.Cols
	c.Posterior = posterior
	return c
}

// dataset is a training subset and the evaluation images of one dataset.
type dataset struct {
	Name     string
	Dir      string // the folder the images were read from
	Train    *data.Images
	TrainIdx []int        // the training subset: the first len(TrainIdx) training images
	TestSet  *data.Images // every test image, as loaded
	TestX    [][]float32  // the first len(TestX) test images, binarized once
	Test     *data.Loader // the same images, for Model.Evaluate
	Bin      data.Binarization
	// Grey: the 8-bit grey levels themselves (pixels/255) in training and
	// evaluation, for the discretized likelihoods; else binarized.
	Grey bool
}

// loadDataset loads name ("mnist" or "fashion-mnist") from the experiment's
// data root and keeps the first nTrain training and nTest test images. The
// training images are binarized afresh each epoch (dynamic), the test images
// once with the seed internal/run/trainrun uses for every evaluation, so that the
// numbers compare with cmd/train's and cmd/eval's.
func loadDataset(e *env, name string, nTrain, nTest int) (*dataset, error) {
	return loadDatasetIn(e, e.Data, name, nTrain, nTest)
}

// fullMNISTTrain is the number of training images of the full MNIST.
const fullMNISTTrain = 60000

// loadFullMNIST loads MNIST for the experiment who: a full run from the
// GoMNIST module's copy, which has all 60,000 training images (a data root
// may hold the 10,000-image subset), a quick run from the data root, as CI
// has it. nTrain or nTest 0 means all the images.
func loadFullMNIST(e *env, who string, nTrain, nTest int) (*dataset, error) {
	if e.Quick {
		return loadDataset(e, "mnist", nTrain, nTest)
	}
	dir, err := data.GoMNISTDir()
	if err != nil {
		return nil, fmt.Errorf("%s needs the full MNIST of the GoMNIST module: %w", who, err)
	}
	ds, err := loadDatasetIn(e, dir, "mnist", nTrain, nTest)
	if err != nil {
		return nil, err
	}
	if ds.Train.N != fullMNISTTrain {
		return nil, fmt.Errorf("%s: %s has %d training images, want the full %s", who, dir, ds.Train.N, commas(fullMNISTTrain))
	}
	return ds, nil
}

// mnistTrainPhrase names a training set of n MNIST images for the texts.
func mnistTrainPhrase(n int) string {
	if n == fullMNISTTrain {
		return "all 60,000 MNIST training images"
	}
	return "the first " + commas(n) + " MNIST training images"
}

// loadDatasetIn is loadDataset from the folder dir instead of the data root;
// nTrain or nTest 0 means all the images.
func loadDatasetIn(e *env, dir, name string, nTrain, nTest int) (*dataset, error) {
	return loadImages(e, dir, name, nTrain, nTest, false)
}

// loadImages is loadDatasetIn, with the grey levels kept (no binarization
// anywhere) when grey is set.
func loadImages(e *env, dir, name string, nTrain, nTest int, grey bool) (*dataset, error) {
	ds, err := data.Load(name, data.LoadOptions{Dir: dir, Progress: e.Log})
	if err != nil {
		return nil, err
	}
	if nTrain == 0 {
		nTrain = ds.Train.Images.N
	}
	if nTest == 0 {
		nTest = ds.Test.Images.N
	}
	if nTrain > ds.Train.Images.N || nTest > ds.Test.Images.N {
		return nil, fmt.Errorf("%s in %s has %d training and %d test images; the experiment wants %d and %d",
			name, ds.Dir, ds.Train.Images.N, ds.Test.Images.N, nTrain, nTest)
	}
	d := &dataset{Name: name, Dir: ds.Dir, Train: ds.Train.Images, TestSet: ds.Test.Images, TrainIdx: seq(nTrain), Grey: grey}
	d.Bin = runinfo.EvalBinarization(runinfo.RunInfo{Dataset: name, Binarize: "dynamic"}, amortized.Config{})
	trainDesc := "binarized afresh each epoch"
	if grey {
		d.Bin, trainDesc = data.BinarizeNone, "8-bit grey levels"
	}
	d.Test, err = data.NewLoader(ds.Test.Images, seq(nTest), data.LoaderOptions{Batch: 500, Seed: runinfo.EvalBinarizeSeed, Binarize: d.Bin})
	if err != nil {
		return nil, err
	}
	if d.TestX, err = d.Test.Rows(0); err != nil {
		return nil, err
	}
	subset := "all"
	if nTrain < ds.Train.Images.N {
		subset = "the first " + commas(nTrain)
	}
	evalDesc := fmt.Sprintf("binarized once (%v, seed %d)", d.Bin, runinfo.EvalBinarizeSeed)
	if grey {
		evalDesc = "8-bit grey levels"
	}
	e.UseData(fmt.Sprintf("%s (%s): training on %s of its %s training images, %s; evaluation on the first %s of its %s test images, %s",
		name, ds.Dir, subset, commas(ds.Train.Images.N), trainDesc, commas(nTest), commas(ds.Test.Images.N), evalDesc))
	return d, nil
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// trainLoader serves the training subset in a seeded order with dynamic
// binarization (the grey levels for a Grey dataset).
func (d *dataset) trainLoader(seed uint64) (*data.Loader, error) {
	bin := data.BinarizeDynamic
	if d.Grey {
		bin = data.BinarizeNone
	}
	return data.NewLoader(d.Train, d.TrainIdx, data.LoaderOptions{Batch: batchSize, Seed: seed, Shuffle: true, Binarize: bin})
}

// epochPoint is one epoch of a training curve.
type epochPoint struct {
	Epoch      int
	TrainBound float64 // the training objective's estimate (ELBO or IWAE bound), mean over the epoch's batches
	TrainELBO  float64 // ELBO on the epoch's training batches
	TestELBO   float64 // ELBO of the evaluation images after the epoch
}

// trained is a model after training and how training went.
type trained struct {
	Model        *amortized.Model
	Curve        []epochPoint
	TrainSeconds float64 // optimizer steps only, evaluations excluded
	Images       int     // training images processed
	Steps        int64
	// Diverged is the error that stopped training early (a NaN or infinity),
	// nil when it ran to the end.
	Diverged *amortized.NonFiniteError
	// Stopped: training ended at a time budget before its last epoch.
	Stopped bool
}

// addEpoch records one epoch of training and logs it; epochs is the number
// the run aims at.
func (t *trained) addEpoch(e *env, label string, epochs int, es amortized.EpochStats) {
	p := epochPoint{Epoch: es.Epoch, TrainBound: es.Train.Bound, TrainELBO: es.Train.ELBO, TestELBO: math.NaN()}
	if es.Val != nil {
		p.TestELBO = es.Val.ELBO
	}
	t.Curve = append(t.Curve, p)
	t.TrainSeconds += es.TrainSeconds
	t.Images += es.Train.N
	t.Steps = es.Step
	if es.Val == nil {
		e.Logf("%s: epoch %d/%d: train bound %.2f, %.0f images/s", label, es.Epoch, epochs, p.TrainBound, es.ImagesPerSec)
		return
	}
	e.Logf("%s: epoch %d/%d: train bound %.2f, test ELBO %.2f, %.0f images/s", label, es.Epoch, epochs, p.TrainBound, p.TestELBO, es.ImagesPerSec)
}

// ImagesPerSec is the training throughput.
func (t *trained) ImagesPerSec() float64 { return float64(t.Images) / math.Max(t.TrainSeconds, 1e-9) }

// trainModel trains a new model of config cfg (weights seeded by seed) on
// ds's training subset for opts.Epochs epochs, with Adam at learnRate on
// batches of batchSize, recording the test ELBO after every epoch. hooks
// are called as well; label prefixes the progress lines. A NaN or infinity
// during training is not an error: it stops training and is reported in
// Diverged.
func trainModel(ctx context.Context, e *env, label string, ds *dataset, cfg amortized.Config, opts amortized.TrainOptions, seed uint64, hooks amortized.Hooks) (*trained, error) {
	return trainModelVal(ctx, e, label, ds, ds.Test, cfg, opts, seed, hooks)
}

// trainModelVal is trainModel with val as Fit's validation set (nil: none,
// the test ELBO curve left to hooks).
func trainModelVal(ctx context.Context, e *env, label string, ds *dataset, val amortized.Batches, cfg amortized.Config, opts amortized.TrainOptions, seed uint64, hooks amortized.Hooks) (*trained, error) {
	m, err := amortized.New(cfg, seed)
	if err != nil {
		return nil, err
	}
	opts.Seed, opts.LR = seed, learnRate
	tr, err := amortized.NewTrainer(m, batchSize, opts, nil)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	loader, err := ds.trainLoader(seed)
	if err != nil {
		return nil, err
	}
	out := &trained{Model: m}
	h := amortized.Hooks{AfterStep: hooks.AfterStep}
	h.AfterEpoch = func(t *amortized.Trainer, es amortized.EpochStats) error {
		out.addEpoch(e, label, opts.Epochs, es)
		if hooks.AfterEpoch != nil {
			return hooks.AfterEpoch(t, es)
		}
		return nil
	}
	// The evaluation images serve as Fit's validation set only to draw the
	// test ELBO curve: nothing is selected on them, the final model is used.
	err = tr.Fit(ctx, loader, val, h)
	var nf *amortized.NonFiniteError
	if errors.As(err, &nf) {
		e.Logf("%s: %v", label, nf)
		out.Diverged = nf
		return out, nil
	}
	return out, err
}

// evaluation is a model's test-set numbers, means over the evaluation images, in nats.
type evaluation struct {
	N            int
	K            int     // importance samples behind LogPx
	LogPx        float64 // importance-sampled log p(x), k = K
	LogPxSE      float64 // its Monte Carlo standard error over seeds: jackknife over amortized.DefaultReplicates groups of the k samples
	LogPxSEDelta float64 // the delta-method error, too small with heavy-tailed weights
	ESS          float64 // effective sample size of the weights, mean over images
	LogPxRows    []float64
	ELBO         float64 // mean over elboDraws draws per image
	Recon, KL    float64
	IW           map[int]float64 // IWAE bounds L_k for the requested k
	ActiveUnits  int
	Latent       int
	Seconds      float64 // for LogPx
}

// elboDraws is the number of draws per image behind an evaluation's ELBO:
// enough that its Monte Carlo error is small beside the differences we compare.
const elboDraws = 10

// evaluate computes the test ELBO (and its terms), log p(x) with k
// importance samples, the IWAE bounds L_j for each j in iw, and the active
// units of m on ds's evaluation images.
func evaluate(ctx context.Context, m *amortized.Model, ds *dataset, k int, iw []int, seed uint64) (*evaluation, error) {
	ev := &evaluation{N: len(ds.TestX), K: k, IW: map[int]float64{}, Latent: m.LatentDim()}
	rng := rand.New(rand.NewPCG(seed, 0x656c626f))
	for range elboDraws {
		st, err := m.Evaluate(ds.Test, rng)
		if err != nil {
			return nil, err
		}
		ev.ELBO += st.ELBO / elboDraws
		ev.Recon += st.Recon / elboDraws
		ev.KL += st.KL / elboDraws
	}
	var err error
	if ev.ActiveUnits, err = evalrun.ActiveUnits(m, ds.TestX); err != nil {
		return nil, err
	}
	for _, j := range iw {
		e, err := logLikelihood(ctx, m, ds.TestX, j, rand.New(rand.NewPCG(seed, uint64(j))))
		if err != nil {
			return nil, err
		}
		ev.IW[j] = mean(e.LogPx)
	}
	start := time.Now()
	e, err := logLikelihood(ctx, m, ds.TestX, k, rand.New(rand.NewPCG(seed, 0x6c6f6770)))
	if err != nil {
		return nil, err
	}
	ev.Seconds = time.Since(start).Seconds()
	ev.LogPxRows, ev.LogPx = e.LogPx, mean(e.LogPx)
	ev.LogPxSE, ev.LogPxSEDelta, ev.ESS = e.ReplicateSE(), e.DeltaSEOfMean(), e.MeanESS()
	if k == 1 {
		ev.LogPxSE, ev.LogPxSEDelta = 0, 0
	}
	return ev, nil
}

// logLikelihood runs Model.LogLikelihoodEstimate (with
// amortized.DefaultReplicates groups) in slices of rows so that a cancelled
// context stops it; the rows' noise comes from rng in row order, so the
// slicing does not change the numbers (as in internal/run/evalrun).
func logLikelihood(ctx context.Context, m *amortized.Model, x [][]float32, k int, rng *rand.Rand) (*amortized.LLEstimate, error) {
	step := max(50, 20000/k)
	all := &amortized.LLEstimate{}
	for i := 0; i < len(x); i += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := m.LogLikelihoodEstimate(x[i:min(i+step, len(x))], k, amortized.DefaultReplicates, rng)
		if err != nil {
			return nil, err
		}
		all.Append(e)
	}
	return all, nil
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// table is a Markdown table.
type table struct {
	head []string
	rows [][]string
}

func newTable(head ...string) *table { return &table{head: head} }

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// f2 formats a number of nats; NaN (not measured) shows as a dash.
func f2(v float64) string { return fixed(v, 2) }

// f3 is f2 with three decimals, for small differences.
func f3(v float64) string { return fixed(v, 3) }

// f1 is f2 with one decimal.
func f1(v float64) string { return fixed(v, 1) }

// fixed formats v with prec decimals, NaN as a dash.
func fixed(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// secs formats a duration in seconds.
func secs(s float64) string {
	if s >= 100 {
		return fmt.Sprintf("%.0f", s)
	}
	return fmt.Sprintf("%.1f", s)
}

// commas writes an integer with thousands separators: 10000 -> 10,000.
func commas(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// series is one named curve for a figure.
func series(name string, x, y []float64) plotting.Series {
	return plotting.Series{Name: name, X: x, Y: y}
}

// writeFigure draws panels side by side into e.Out/name and returns the
// Markdown that shows it.
func writeFigure(e *env, name, alt string, panels ...plotting.Panel) (string, error) {
	for i := range panels {
		// A series with no finite point cannot be drawn; drop the points
		// that are not finite (a diverged run's last epochs).
		var keep []plotting.Series
		for _, s := range panels[i].Series {
			var x, y []float64
			for j := range s.X {
				if !math.IsNaN(s.Y[j]) && !math.IsInf(s.Y[j], 0) {
					x, y = append(x, s.X[j]), append(y, s.Y[j])
				}
			}
			if len(x) > 0 {
				keep = append(keep, series(s.Name, x, y))
			}
		}
		panels[i].Series = keep
	}
	if err := (plotting.Panels{Panels: panels}).WritePNG(filepath.Join(e.Out, name), plotScale); err != nil {
		return "", err
	}
	return fmt.Sprintf("![%s](%s)\n", alt, name), nil
}

// curveXY returns the epochs and one field of a curve.
func curveXY(c []epochPoint, field func(epochPoint) float64) (x, y []float64) {
	for _, p := range c {
		x, y = append(x, float64(p.Epoch)), append(y, field(p))
	}
	return x, y
}

// signed writes a difference with its sign: +1.23 or -1.23.
func signed(v float64) string { return fmt.Sprintf("%+.2f", v) }

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return commas(n) + " " + noun + "s"
}

// writeReading appends the "Reading the results" section, one paragraph per entry.
func writeReading(b *strings.Builder, paragraphs []string) {
	b.WriteString("\n## Reading the results\n\n")
	for _, r := range paragraphs {
		b.WriteString(r + "\n\n")
	}
}

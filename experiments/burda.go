package main

// burda: Table 1 of Burda, Grosse & Salakhutdinov (2015), "Importance
// Weighted Autoencoders", rerun on the full MNIST here.
//
// The paper's one-stochastic-layer model is 784-200-200-50 with tanh units
// in both networks, a Bernoulli decoder and a diagonal Gaussian q, trained by
// Adam (beta1 0.9, beta2 0.999, eps 1e-4) on dynamically binarized MNIST
// (60,000 images) with the step size 0.001 * 10^(-i/7) for 3^i passes,
// i = 0..7 (3,280 passes), and evaluated by importance sampling with
// k = 5000 on the 10,000 test images (here k = 1000). Its Table 1 (test NLL, nats):
//
//	one layer:  VAE 86.76, IWAE k = 5 85.54, IWAE k = 50 84.78
//	two layers: VAE 85.33, IWAE k = 5 83.89, IWAE k = 50 82.90
//
// Here the schedule is the paper's, cut at stage MaxStage (stages 0..5 are
// 364 passes) and at a wall-time budget per row: training stops at the end of
// the epoch after which another epoch would pass the budget. Each row's
// curve shows whether it was still improving when its budget ran out.
// -stages N runs the schedule to stage N instead (7: the paper's whole
// 3,280 passes), with no budget unless -budget gives one. Each row saves its
// training state after every epoch, and a run with the same -out continues
// it exactly (burdackpt.go), so that a run can span several processes.
// The two-stochastic-layer rows use amortized's twolayer posterior and prior
// with the paper's architecture, 784-100-100-[100]-50-50-[50] with tanh:
// q(z1|x) through two layers of 100 units, q(z2|z1) through two of 50, and
// the mirror image p(z1|z2) (50, 50) and p(x|z1) (100, 100); p(z2) = N(0, I).
// Their KL has no closed form, so their test ELBO is a one-sample Monte
// Carlo estimate; their active units are counted per layer.
//
// Quick run: 500 training images of the data root's MNIST, stages 0..1 (4
// passes), 100 test images, k = 20, 30 s of training per row (the IWAE
// k = 50 rows stop early: six rows must fit in CI).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/nets"
)

// burdaSize is every size of the experiment.
type burdaSize struct {
	TrainImages int // 0: all training images
	MaxStage    int // the schedule's stages 0..MaxStage
	TestImages  int // 0: all test images
	K           int // importance samples for log p(x)
	Budget      time.Duration
}

var (
	// k = 1000 rather than the paper's 5000: five times cheaper on all
	// 10,000 test images; its expectation is a bound that rises with k, so
	// it can only understate log p(x) against the paper's estimator.
	burdaFull  = burdaSize{MaxStage: 5, K: 1000, Budget: 20 * time.Minute}
	burdaQuick = burdaSize{TrainImages: 500, MaxStage: 1, TestImages: 100, K: 20, Budget: 30 * time.Second}
)

// burdaRows are the rows of Table 1 with the paper's test NLL.
var burdaRows = []struct {
	name      string
	objective string
	k         int
	twoLayers bool
	paper     float64 // Table 1, test NLL
}{
	{"VAE (k = 1)", amortized.ObjectiveELBO, 1, false, 86.76},
	{"IWAE, k = 5", amortized.ObjectiveIWAE, 5, false, 85.54},
	{"IWAE, k = 50", amortized.ObjectiveIWAE, 50, false, 84.78},
	{"two layers, VAE (k = 1)", amortized.ObjectiveELBO, 1, true, 85.33},
	{"two layers, IWAE, k = 5", amortized.ObjectiveIWAE, 5, true, 83.89},
	{"two layers, IWAE, k = 50", amortized.ObjectiveIWAE, 50, true, 82.90},
}

func init() {
	register(experiment{
		name:    "burda",
		summary: "Burda et al. (2015) Table 1 on the full MNIST: VAE and IWAE k = 5, 50, one stochastic layer (784-200-200-50) and two (784-100-100-[100]-50-50-[50]), tanh, the paper's schedule cut to a budget",
		run:     runBurda,
	})
}

// burdaSchedule is the paper's step sizes, 0.001 * 10^(-i/7) for 3^i epochs, i = 0..maxStage.
func burdaSchedule(maxStage int) []lrStage {
	var s []lrStage
	for i := 0; i <= maxStage; i++ {
		s = append(s, lrStage{LR: 1e-3 * math.Pow(10, -float64(i)/7), Epochs: int(math.Pow(3, float64(i)))})
	}
	return s
}

// burdaConfig is the paper's one-layer architecture for images of ds.
func burdaConfig(ds *dataset) amortized.Config {
	return amortized.Config{
		DataDim: ds.Train.Dim(), ImageRows: ds.Train.Rows, ImageCols: ds.Train.Cols,
		Hidden: []int{200, 200}, Latent: 50, Activation: "tanh",
	}
}

// burdaTwoLayerConfig is the paper's two-stochastic-layer architecture.
func burdaTwoLayerConfig(ds *dataset) amortized.Config {
	c := burdaConfig(ds)
	c.Hidden = []int{100, 100}
	return amortized.TwoLayerConfig(c, 100, 50, []int{50, 50})
}

type burdaRow struct {
	name     string
	paper    float64
	tr       *trained
	ev       *evaluation
	perLayer []int // active units per stochastic layer
	run      *burdaRun
}

func runBurda(ctx context.Context, e *env) (string, error) {
	sz := burdaFull
	if e.Quick {
		sz = burdaQuick
	}
	if e.Stages != nil {
		// A chosen schedule runs to its end unless -budget says otherwise.
		sz.MaxStage, sz.Budget = *e.Stages, 0
	}
	if e.Budget > 0 {
		sz.Budget = e.Budget
	}
	ds, err := loadFullMNIST(e, "burda", sz.TrainImages, sz.TestImages)
	if err != nil {
		return "", err
	}
	schedule := burdaSchedule(sz.MaxStage)
	ck, err := openBurdaCheckpoints(e)
	if err != nil {
		return "", err
	}
	defer ck.release()
	var rows []burdaRow
	for _, r := range burdaRows {
		if !burdaRowWanted(r.name, e.Rows) {
			continue
		}
		row, err := ck.runRow(ctx, e, sz, ds, r.name, r.objective, r.k, r.twoLayers, schedule)
		if err != nil {
			return "", fmt.Errorf("%s: %w", r.name, err)
		}
		row.paper = r.paper
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return "", fmt.Errorf("-rows %q names none of the rows", e.Rows)
	}
	return burdaReport(e, sz, schedule, rows)
}

// burdaRowWanted says whether -rows sel keeps the row called name: every
// row for "", only that row when sel names one exactly ("two layers, IWAE,
// k = 5" is also a substring of the k = 50 row's name), else the rows whose
// names contain sel.
func burdaRowWanted(name, sel string) bool {
	for _, r := range burdaRows {
		if r.name == sel {
			return name == sel
		}
	}
	return strings.Contains(name, sel)
}

// burdaModel is a model of cfg initialized as the paper's code
// (github.com/yburda/iwae, nnet.py and iwae.py) does: every weight uniform
// on ±sqrt(6/(in+out)) (Glorot & Bengio 2010), every bias zero, and the
// decoder's output bias the logit of the mean training image (clipped to
// [0.001, 0.999]). Their networks output sigma = exp(W h + b), which is
// logvar = 2 (W h + b): the logvar heads' weights are doubled.
// amortized.New's default, uniform on ±1/sqrt(in) with random biases,
// leaves a tanh network of 100-unit layers nearly deaf to z at the start:
// the two-layer VAE's posterior then collapses before the decoder learns
// to read z1 (2 of 150 units active after 74 epochs, against the dozens
// the paper reports).
func burdaModel(ds *dataset, cfg amortized.Config, seed uint64) (*amortized.Model, error) {
	m, err := amortized.New(cfg, seed)
	if err != nil {
		return nil, err
	}
	n := len(ds.TrainIdx)
	if n == 0 {
		return nil, errors.New("burda: no training images")
	}
	mean := make([]float64, ds.Train.Dim())
	for _, i := range ds.TrainIdx {
		for d, p := range ds.Train.Image(i) {
			mean[d] += float64(p) / 255
		}
	}
	rng := rand.New(rand.NewPCG(seed, burdaInitStream))
	for _, p := range m.Params().All() {
		var v []float64
		switch {
		case len(p.Shape) == 1 && p.Name == "decoder.logits.bias":
			if p.Shape[0] != len(mean) {
				return nil, fmt.Errorf("burda: %s has %d values for %d pixels", p.Name, p.Shape[0], len(mean))
			}
			v = make([]float64, len(mean))
			for d := range v {
				q := min(max(mean[d]/float64(n), 0.001), 0.999)
				v[d] = math.Log(q / (1 - q))
			}
		case len(p.Shape) == 1:
			v = make([]float64, p.Shape[0])
		case len(p.Shape) == 2:
			bound := math.Sqrt(6 / float64(p.Shape[0]+p.Shape[1]))
			if strings.HasSuffix(p.Name, ".logvar.weight") {
				bound *= 2
			}
			v = make([]float64, p.Shape[0]*p.Shape[1])
			for i := range v {
				v[i] = (2*rng.Float64() - 1) * bound
			}
		default:
			return nil, fmt.Errorf("burda: parameter %s of shape %v: the paper's initialization covers dense layers only", p.Name, p.Shape)
		}
		if err := setParam(p, v); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// burdaInitStream separates burdaModel's draws from amortized.New's.
const burdaInitStream = 0xb0da

// setParam overwrites p's values with v, in p's dtype.
func setParam(p *nets.Param, v []float64) error {
	if p.Len() != len(v) {
		return fmt.Errorf("%s has %d values, got %d", p.Name, p.Len(), len(v))
	}
	switch d := p.Value.Data().(type) {
	case []float32:
		for i, x := range v {
			d[i] = float32(x)
		}
	case []float64:
		copy(d, v)
	default:
		return fmt.Errorf("%s: dtype %v", p.Name, p.Value.Dtype())
	}
	return nil
}

func burdaReport(e *env, sz burdaSize, schedule []lrStage, rows []burdaRow) (string, error) {
	passes := 0
	for _, s := range schedule {
		passes += s.Epochs
	}
	cut := "cut here at"
	if sz.MaxStage == burdaLastStage {
		cut = "here all of it,"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Burda et al. (2015), Table 1. One stochastic layer: 784-200-200-50; two: 784-100-100-[100]-50-50-[50], "+
		"q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1) with p(z2) = N(0, I) (the two-layer test ELBO uses the one-sample Monte Carlo KL); "+
		"tanh, Bernoulli decoder, diagonal Gaussian conditionals; the paper's code's initialization (Glorot-uniform weights, zero biases, "+
		"the output bias at the logit of the mean training image); "+
		"Adam (0.9, 0.999, eps 1e-4), batch %d, dynamic binarization, seed %d. The step size follows the paper's schedule, "+
		"0.001 * 10^(-i/7) for 3^i epochs, %s i = 0..%d (%s)%s "+
		"(the paper: i = 0..7, 3,280 passes). Test NLL = -log p(x) by importance sampling with k = %d on %s test images "+
		"binarized once; ± is the Monte Carlo standard error of that mean over sampling seeds (jackknife over 10 groups of the k samples).\n\n",
		batchSize, e.Seed, cut, sz.MaxStage, commas(passes)+" passes", burdaBudgetPhrase(sz.Budget), sz.K, commas(rows[0].ev.N))
	t := newTable("model", "test NLL here", "Burda et al.", "difference", "test ELBO", "active units (per layer)", "epochs (of schedule)", "training time", "images/s")
	for _, r := range rows {
		nll := -r.ev.LogPx
		t.add(r.name, fmt.Sprintf("%.2f ± %.2f", nll, r.ev.LogPxSE), f2(r.paper), signed(nll-r.paper), f2(r.ev.ELBO),
			burdaActive(r),
			fmt.Sprintf("%d of %d%s", len(r.tr.Curve), passes, map[bool]string{true: " (budget)", false: ""}[r.tr.Stopped]),
			secs(r.tr.TrainSeconds)+" s", fmt.Sprintf("%.0f", r.tr.ImagesPerSec()))
	}
	b.WriteString(t.String() + "\n")

	var curves []plotting.Series
	for _, r := range rows {
		x, y := curveXY(r.tr.Curve, func(p epochPoint) float64 { return -p.TestELBO })
		curves = append(curves, series(r.name, x, y))
	}
	fig, err := writeFigure(e, "burda.png", "test negative ELBO per epoch",
		plotting.Panel{Title: "test -ELBO (lower is better)", XLabel: "epoch", YLabel: "nats", Series: curves})
	if err != nil {
		return "", err
	}
	b.WriteString(fig)
	b.WriteString("\n## Reading the results\n\n" + burdaReading(rows) + "\n")
	b.WriteString(burdaSegments(rows))
	return b.String(), nil
}

// burdaBudgetPhrase says how the budget cut the schedule.
func burdaBudgetPhrase(budget time.Duration) string {
	if budget == 0 {
		return " with no time budget"
	}
	return fmt.Sprintf(" and at %s of training per row, counted over all its segments", budget.Round(time.Second))
}

// burdaActive is "a of L", with each layer's count for two layers.
func burdaActive(r burdaRow) string {
	s := fmt.Sprintf("%d of %d", r.ev.ActiveUnits, r.ev.Latent)
	if layers := r.tr.Model.LatentLayers(); len(layers) > 1 {
		var parts []string
		for i, a := range r.perLayer {
			parts = append(parts, fmt.Sprintf("%d of %d", a, layers[i]))
		}
		s += " (" + strings.Join(parts, " + ") + ")"
	}
	return s
}

// burdaReading says, row by row, how far from the paper each model is and
// whether its curve was still improving when training stopped.
func burdaReading(rows []burdaRow) string {
	var s strings.Builder
	for _, r := range rows {
		gap := -r.ev.LogPx - r.paper
		c := r.tr.Curve
		trend := "too few epochs to tell its trend"
		if n := len(c); n >= 4 {
			// Improvement of the test ELBO over the last quarter of the epochs.
			q := max(1, n/4)
			d := c[n-1].TestELBO - c[n-1-q].TestELBO
			trend = fmt.Sprintf("its test ELBO rose %.2f nats over its last %s", d, plural(q, "epoch"))
			if d > 0.05*float64(q) {
				trend += ": still improving, so the budget, not the model, limits it"
			} else {
				trend += ": nearly flat"
			}
		}
		fmt.Fprintf(&s, "- %s: %.2f nats from the paper's %.2f; %s.\n", r.name, gap, r.paper, trend)
	}
	return s.String()
}

// lrStage is one stage of a step-size schedule.
type lrStage struct {
	LR     float64
	Epochs int
}

// errBudget stops training at the end of an epoch when the next would pass the budget.
var errBudget = errors.New("training budget reached")

// overBudget says whether another epoch, at out's mean epoch time, would
// take out's training time past budget (0: no budget).
func overBudget(out *trained, budget time.Duration) bool {
	return budget > 0 && len(out.Curve) > 0 && out.TrainSeconds+out.TrainSeconds/float64(len(out.Curve)) > budget.Seconds()
}

// burdaAfterStep, when set (by tests), runs after every training step.
var burdaAfterStep func(t *amortized.Trainer)

// trainSchedule trains out.Model through the stages of a step-size
// schedule, one Trainer per stage continuing the last one's state (Adam's
// moments carry over), from the state st (nil: the start; else a saved
// state, with out holding the curve so far). It stops early at the end of
// the epoch after which another epoch would take out.TrainSeconds past
// budget (0: no budget); out.Stopped says so. save, when not nil, is called
// after every epoch and, before returning ctx's error, when ctx is
// cancelled. It returns the state training ended in.
func trainSchedule(ctx context.Context, e *env, label string, ds *dataset, out *trained, opts amortized.TrainOptions,
	seed uint64, stages []lrStage, budget time.Duration, st *amortized.TrainState, save func(*amortized.Trainer) error) (*amortized.TrainState, error) {
	if st != nil && st.Batch == 0 && overBudget(out, budget) {
		out.Stopped = true
		return st, nil
	}
	epochs := 0
	for _, stage := range stages {
		epochs += stage.Epochs
		if st != nil && st.Epoch >= epochs {
			continue // a stage the saved state has done
		}
		o := opts
		o.Seed, o.LR, o.Epochs = seed, stage.LR, epochs
		tr, err := amortized.NewTrainer(out.Model, batchSize, o, st)
		if err != nil {
			return nil, err
		}
		loader, err := ds.trainLoader(seed)
		if err != nil {
			tr.Close()
			return nil, err
		}
		h := amortized.Hooks{AfterEpoch: func(t *amortized.Trainer, es amortized.EpochStats) error {
			out.addEpoch(e, label, epochs, es)
			if save != nil {
				if err := save(t); err != nil {
					return err
				}
			}
			if overBudget(out, budget) {
				return errBudget
			}
			return nil
		}}
		if burdaAfterStep != nil {
			h.AfterStep = func(t *amortized.Trainer, _ amortized.StepStats) error { burdaAfterStep(t); return nil }
		}
		e.Logf("%s: step size %.3g until epoch %d", label, stage.LR, epochs)
		err = tr.Fit(ctx, loader, ds.Test, h)
		s := tr.State()
		st = &s
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) && save != nil {
			if serr := save(tr); serr != nil {
				err = fmt.Errorf("%w, and saving failed: %w", err, serr)
			}
		}
		tr.Close()
		var nf *amortized.NonFiniteError
		switch {
		case errors.As(err, &nf):
			e.Logf("%s: %v", label, nf)
			out.Diverged = nf
			return st, nil
		case errors.Is(err, errBudget):
			e.Logf("%s: %v after epoch %d (%s of training)", label, err, len(out.Curve), secs(out.TrainSeconds))
			out.Stopped = true
			return st, nil
		case err != nil:
			return st, err
		}
	}
	return st, nil
}

package main

// priors: how much learned priors, a second stochastic layer and a
// Bayesian decoder gain over the standard-normal diagonal VAE, with the
// architecture and the training budget fixed.
//
// Rows: N(0, I) (Kingma & Welling 2014, the baseline), a mixture of 10
// diagonal Gaussians (mog:10), the VampPrior with K pseudo-inputs
// (Tomczak & Welling 2018), two stochastic layers q(z1|x) q(z2|z1),
// p(z2) p(z1|z2) p(x|z1) (Burda et al. 2015), the same with a VampPrior on
// z2, and a Bayesian decoder (Kingma & Welling 2014 appendix F, Blundell et
// al. 2015). Every row is the reference network (784-400-20-400-784, ReLU,
// Bernoulli, diagonal Gaussian q); the two-layer rows add z2 (20 units) on
// top of z1 (20 units) through one hidden layer of 100 ReLU units each way
// (784-400-[20]-100-[20]). All train with the ELBO by Adam (1e-3, batch
// 128) from the same seed for the same number of epochs on all 60,000
// training images of MNIST (the GoMNIST module's) and of Fashion-MNIST,
// with the same KL warm-up (the KL's weight rising linearly from 0 to 1
// over WarmupEpochs epochs, which hierarchical models want (Sønderby et al.
// 2016), given to every row to be fair). Measured on the first TestImages test images:
// log p(x) by importance sampling with k = K, its difference from the
// baseline's with the standard error over the images of the paired
// differences, the ELBO and its KL term (10 draws per image), the active
// units per stochastic layer and the training throughput, as a ratio to the
// baseline's in the same run.
//
// The Bayesian decoder is evaluated by Monte Carlo over its weights:
// BayesDraws draws theta ~ q(theta), each with k = K / BayesDraws
// importance samples (the same number of decoder evaluations as the other
// rows), log p(x) = log mean_s p^(x|theta_s); its ELBO is the mean over the
// draws of the local ELBO, and the KL(q(theta)||p(theta)) / N_train each
// image pays on top is reported beside it.
//
// Full run: 60,000 training images, 4 epochs (warm-up over 1), 1,000 test
// images, k = 1000, vamp:100, sized to finish in about an hour on a third
// of 2 cores. K = 100 rather than the paper's 500: every training step runs
// the encoder on the K pseudo-inputs in each of its 2 shards, and a pilot
// (10,000 MNIST images, 1 epoch, load average about 20) trained vamp:500 at
// 394 images/s against 1,449-4,261 for N(0, I), too slow for the budget.
// Quick run: 500 training images of the data root's MNIST and
// Fashion-MNIST, 2 epochs (warm-up over 1), 50 test images, k = 20,
// vamp:20.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/run/evalrun"
)

// priorsSize is every size of the experiment.
type priorsSize struct {
	TrainImages int // 0: all training images
	Epochs      int
	Warmup      float64 // KL warm-up epochs, every row
	TestImages  int
	K           int // importance samples for log p(x)
	VampK       int // pseudo-inputs of the VampPrior rows
	BayesDraws  int // weight draws of the Bayesian decoder's evaluation
}

var (
	priorsFull  = priorsSize{Epochs: 4, Warmup: 1, TestImages: 1000, K: 1000, VampK: 100, BayesDraws: 10}
	priorsQuick = priorsSize{TrainImages: 500, Epochs: 2, Warmup: 1, TestImages: 50, K: 20, VampK: 20, BayesDraws: 2}
)

// Two-layer rows: z1 of the reference's 20 units, z2 of 20, q(z2|z1) and
// p(z1|z2) through one hidden layer of 100 units.
const (
	priorsZ2     = 20
	priorsZ2Wide = 100
	// priorsDecoderSigma is the Bayesian decoder's prior N(0, sigma^2) (cmd/train's default).
	priorsDecoderSigma = 1.0
)

var priorsDatasets = []string{"mnist", "fashion-mnist"}

func init() {
	register(experiment{
		name:    "priors",
		summary: "N(0, I) against mog:10, the VampPrior, two stochastic layers (with and without a VampPrior on z2) and a Bayesian decoder on the full MNIST and Fashion-MNIST: test log p(x), ELBO, KL, active units, speed",
		run:     runPriors,
	})
}

// priorsRow is one model of the table.
type priorsRow struct {
	name     string
	cfg      amortized.Config
	tr       *trained
	ev       *evaluation
	perLayer []int
	globalKL float64 // the Bayesian decoder's KL(q(theta)||p(theta)) / N_train
}

// priorsConfigs are the rows' configurations for images of ds.
func priorsConfigs(ds *dataset, sz priorsSize) []priorsRow {
	base := modelConfig(ds, amortized.Diagonal)
	mog, vamp := base, base
	mog.Prior = "mog:10"
	vamp.Prior = fmt.Sprintf("vamp:%d", sz.VampK)
	two := amortized.TwoLayerConfig(base, base.Latent, priorsZ2, []int{priorsZ2Wide})
	twoVamp := two
	twoVamp.Prior += fmt.Sprintf(":vamp:%d", sz.VampK)
	bayes := base
	bayes.DecoderPriorSigma = priorsDecoderSigma
	return []priorsRow{
		{name: "normal", cfg: base},
		{name: "mog:10", cfg: mog},
		{name: vamp.Prior, cfg: vamp},
		{name: "two layers", cfg: two},
		{name: "two layers + " + vamp.Prior, cfg: twoVamp},
		{name: "Bayesian decoder", cfg: bayes},
	}
}

func runPriors(ctx context.Context, e *env) (string, error) {
	sz := priorsFull
	if e.Quick {
		sz = priorsQuick
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Every row trains the reference network (784-400-20-400-784, ReLU, Bernoulli decoder, diagonal Gaussian q) with the ELBO for %s "+
		"on %s training images (Adam 1e-3, batch %d, dynamic binarization, seed %d, no validation split), the KL's weight rising linearly from 0 to 1 "+
		"over the first %g epochs in every row. Priors: N(0, I); mog:10, a learned mixture of 10 diagonal Gaussians; vamp:%d, the VampPrior with %d pseudo-inputs "+
		"(Tomczak & Welling 2018). Two layers: q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1), z1 the reference's 20 units, z2 %d units, "+
		"q(z2|z1) and p(z1|z2) through one hidden layer of %d ReLU units (784-400-[20]-%d-[%d]); + vamp: p(z2) = (1/K) sum_k q(z2 | E q(z1|u_k)). "+
		"Bayesian decoder: every decoder weight has q = N(mu, softplus(rho)^2) against N(0, %g), trained by one weight draw per step with KL/N_train per image. "+
		"Test columns are means over the first %s test images (fixed binarization), in nats: log p(x) by importance sampling with k = %d "+
		"(± its Monte Carlo standard error), its difference from N(0, I)'s (± the standard error over the images of the paired differences), "+
		"the ELBO and its KL term (%d draws per image; the KL is a Monte Carlo estimate of E_q[log q(z|x) - log p(z)] for every learned prior), their gap, "+
		"and the active units (Cov_x E_q[z_u|x] > 0.01) per stochastic layer. The Bayesian decoder's log p(x) is log of the mean over %d weight draws "+
		"of p^(x|theta_s) with k = %d each, its ELBO the mean over those draws; the KL(q(theta)||p(theta))/N_train its images also pay is given beside. "+
		"Speed: training images per second, optimizer steps only, and its ratio to N(0, I)'s in the same run (rows train one after the other on a shared machine: "+
		"the load changes, so ratios are rough).\n\n",
		plural(sz.Epochs, "epoch"), priorsTrainText(sz), batchSize, e.Seed, sz.Warmup, sz.VampK, sz.VampK, priorsZ2, priorsZ2Wide, priorsZ2Wide, priorsZ2,
		priorsDecoderSigma*priorsDecoderSigma, commas(sz.TestImages), sz.K, elboDraws, sz.BayesDraws, sz.K/sz.BayesDraws)

	var panels []plotting.Panel
	var reading []string
	for _, name := range priorsDatasets {
		ds, err := priorsData(e, name, sz)
		if err != nil {
			return "", err
		}
		rows := priorsConfigs(ds, sz)
		for i := range rows {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			r := &rows[i]
			label := fmt.Sprintf("priors: %s %s", name, r.name)
			opts := amortized.TrainOptions{Epochs: sz.Epochs, WarmupEpochs: sz.Warmup}
			if r.tr, err = trainModel(ctx, e, label, ds, r.cfg, opts, e.Seed, amortized.Hooks{}); err != nil {
				return "", fmt.Errorf("%s on %s: %w", r.name, name, err)
			}
			if r.tr.Diverged != nil {
				return "", fmt.Errorf("%s on %s: %w", r.name, name, r.tr.Diverged)
			}
			if r.tr.Model.BayesDecoder() {
				r.ev, err = evaluateBayes(ctx, r.tr.Model, ds, sz, e.Seed)
				r.globalKL = r.tr.Model.GlobalKL() / float64(len(ds.TrainIdx))
			} else {
				r.ev, err = evaluate(ctx, r.tr.Model, ds, sz.K, nil, e.Seed)
			}
			if err != nil {
				return "", fmt.Errorf("%s on %s: %w", r.name, name, err)
			}
			if r.perLayer, err = evalrun.ActiveUnitsByLayer(r.tr.Model, ds.TestX); err != nil {
				return "", fmt.Errorf("%s on %s: %w", r.name, name, err)
			}
			e.Logf("%s: log p(x) %.2f ± %.2f, ELBO %.2f, KL %.2f, active units %v, %.0f images/s", label, r.ev.LogPx, r.ev.LogPxSE, r.ev.ELBO, r.ev.KL, r.perLayer, r.tr.ImagesPerSec())
		}
		fmt.Fprintf(&b, "## %s\n\n%s\n", name, priorsTable(rows, sz))
		pn := plotting.Panel{Title: name, XLabel: "epoch", YLabel: "test ELBO (nats)"}
		for _, r := range rows {
			x, y := curveXY(r.tr.Curve, func(p epochPoint) float64 { return p.TestELBO })
			pn.Series = append(pn.Series, series(r.name, x, y))
		}
		panels = append(panels, pn)
		reading = append(reading, priorsReading(name, rows))
	}
	fig, err := writeFigure(e, "priors.png", "test ELBO per epoch of each prior, per dataset", panels...)
	if err != nil {
		return "", err
	}
	b.WriteString(fig)
	writeReading(&b, reading)
	b.WriteString(priorsPapers(sz))
	b.WriteString(priorsPilots)
	return b.String(), nil
}

func priorsTrainText(sz priorsSize) string {
	if sz.TrainImages == 0 {
		return "all 60,000"
	}
	return "the first " + commas(sz.TrainImages)
}

// priorsData loads one dataset: the full MNIST from the GoMNIST module in
// a full run (a data root holds only a 10,000-image subset), Fashion-MNIST
// from the data root; the quick run takes both from the data root.
func priorsData(e *env, name string, sz priorsSize) (*dataset, error) {
	dir := e.Data
	if name == "mnist" && !e.Quick {
		d, err := data.GoMNISTDir()
		if err != nil {
			return nil, fmt.Errorf("priors needs the full MNIST of the GoMNIST module: %w", err)
		}
		dir = d
	}
	ds, err := loadDatasetIn(e, dir, name, sz.TrainImages, sz.TestImages)
	if err != nil {
		return nil, err
	}
	if sz.TrainImages == 0 && ds.Train.N != 60000 {
		return nil, fmt.Errorf("priors: %s in %s has %d training images, want the full 60,000", name, dir, ds.Train.N)
	}
	return ds, nil
}

// evaluateBayes is evaluate for a Bayesian decoder: sz.BayesDraws draws of
// the weights, each with one ELBO pass and k = sz.K / sz.BayesDraws
// importance samples; per image, log p(x) = log mean_s p^(x|theta_s), with
// the standard error of the mean from the spread over the draws
// (amortized.LogMeanExpSE, which contains the z sampling's). The active
// units are left to the caller (the mean weights' encoder is the model's).
func evaluateBayes(ctx context.Context, m *amortized.Model, ds *dataset, sz priorsSize, seed uint64) (*evaluation, error) {
	k := max(1, sz.K/sz.BayesDraws)
	ev := &evaluation{N: len(ds.TestX), K: k, IW: map[int]float64{}, Latent: m.LatentDim()}
	wd, err := m.NewWeightDraws(rand.New(rand.NewPCG(seed, 0x62617973)).Uint64())
	if err != nil {
		return nil, err
	}
	rngE, rngL := rand.New(rand.NewPCG(seed, 0x656c626f)), rand.New(rand.NewPCG(seed, 0x6c6f6770))
	per := make([][]float64, len(ds.TestX))
	for range sz.BayesDraws {
		d := wd.Next()
		st, err := d.Evaluate(ds.Test, rngE)
		if err != nil {
			return nil, err
		}
		n := float64(sz.BayesDraws)
		ev.ELBO, ev.Recon, ev.KL = ev.ELBO+st.ELBO/n, ev.Recon+st.Recon/n, ev.KL+st.KL/n
		e, err := logLikelihood(ctx, d, ds.TestX, k, rngL)
		if err != nil {
			return nil, err
		}
		for i, v := range e.LogPx {
			per[i] = append(per[i], v)
		}
	}
	ev.LogPxRows = make([]float64, len(per))
	var v float64
	for i, p := range per {
		var se float64
		ev.LogPxRows[i], se = amortized.LogMeanExpSE(p)
		v += se * se
	}
	ev.LogPx = mean(ev.LogPxRows)
	ev.LogPxSE = math.Sqrt(v) / float64(len(per))
	return ev, nil
}

func priorsTable(rows []priorsRow, sz priorsSize) string {
	base := rows[0]
	t := newTable("model", fmt.Sprintf("log p(x), k = %d", sz.K), "vs N(0, I)", "ELBO", "KL", "log p(x) − ELBO", "active units", "images/s", "speed vs N(0, I)")
	for _, r := range rows {
		diff := "–"
		if r.name != base.name {
			diff = fmt.Sprintf("%s ± %.2f", signed(r.ev.LogPx-base.ev.LogPx), pairedSE(r.ev.LogPxRows, base.ev.LogPxRows))
		}
		kl := f2(r.ev.KL)
		if r.tr.Model.BayesDecoder() {
			kl += fmt.Sprintf(" (+ %.2f weights)", r.globalKL)
		}
		t.add(r.name, fmt.Sprintf("%.2f ± %.2f", r.ev.LogPx, r.ev.LogPxSE), diff, f2(r.ev.ELBO), kl, f2(r.ev.LogPx-r.ev.ELBO),
			priorsActive(r), fmt.Sprintf("%.0f", r.tr.ImagesPerSec()), fmt.Sprintf("%.2f", r.tr.ImagesPerSec()/base.tr.ImagesPerSec()))
	}
	return t.String()
}

// priorsActive is "a of L", each layer's count for two layers.
func priorsActive(r priorsRow) string {
	layers := r.tr.Model.LatentLayers()
	var parts []string
	for i, a := range r.perLayer {
		parts = append(parts, fmt.Sprintf("%d of %d", a, layers[i]))
	}
	return strings.Join(parts, " + ")
}

// priorsReading states, from the numbers, which rows beat N(0, I) by more
// than their error, and for those that did not, what the run shows of why:
// an inactive top layer, a curve still rising, a train-test gap.
func priorsReading(name string, rows []priorsRow) string {
	base := rows[0]
	var s strings.Builder
	fmt.Fprintf(&s, "**%s**: N(0, I) reaches log p(x) %.2f. ", name, base.ev.LogPx)
	var above, level, below []string
	for _, r := range rows[1:] {
		d, se := r.ev.LogPx-base.ev.LogPx, pairedSE(r.ev.LogPxRows, base.ev.LogPxRows)
		txt := fmt.Sprintf("%s (%s ± %.2f)", r.name, signed(d), se)
		switch {
		case d > 2*se:
			above = append(above, txt)
		case d < -2*se:
			below = append(below, txt)
		default:
			level = append(level, txt)
		}
	}
	if len(above) > 0 {
		fmt.Fprintf(&s, "Above it by more than twice the paired error: %s. ", strings.Join(above, ", "))
	}
	if len(level) > 0 {
		fmt.Fprintf(&s, "Within twice the error of it: %s. ", strings.Join(level, ", "))
	}
	if len(below) > 0 {
		fmt.Fprintf(&s, "Below it by more than twice the error: %s. ", strings.Join(below, ", "))
	}
	for _, r := range rows[1:] {
		d, se := r.ev.LogPx-base.ev.LogPx, pairedSE(r.ev.LogPxRows, base.ev.LogPxRows)
		if d > 2*se {
			continue
		}
		var why []string
		if len(r.perLayer) == 2 && r.perLayer[1] == 0 {
			why = append(why, "its z2 is inactive (no unit of the top layer carries information about x), so it is a one-layer model with the learned Gaussian prior p(z1|z2) of a constant")
		}
		if c := r.tr.Curve; len(c) >= 2 {
			if rise, bl := c[len(c)-1].TestELBO-c[len(c)-2].TestELBO, base.tr.Curve[len(base.tr.Curve)-1].TestELBO-base.tr.Curve[len(base.tr.Curve)-2].TestELBO; rise > bl+0.5 {
				why = append(why, fmt.Sprintf("its test ELBO rose %.2f nats in the last epoch against N(0, I)'s %.2f: still catching up, so the budget limits it", rise, bl))
			}
		}
		if gap, bgap := priorsOverfit(r), priorsOverfit(base); gap > bgap+1 {
			why = append(why, fmt.Sprintf("its last-epoch train ELBO exceeds its test ELBO by %.2f nats against N(0, I)'s %.2f: it overfits more", gap, bgap))
		}
		if r.tr.Model.BayesDecoder() {
			why = append(why, fmt.Sprintf("its decoder pays KL(q(theta)||p(theta))/N = %.2f nats per training image, which pulls the weights' means toward 0 and spreads them (the log p(x) here averages over that spread)", r.globalKL))
		}
		if len(why) == 0 {
			why = append(why, "nothing in these numbers singles out a cause (the curve is not steeper than the baseline's, no layer is inactive, no larger overfitting)")
		}
		fmt.Fprintf(&s, "%s is not above N(0, I) by more than its error: %s. ", r.name, strings.Join(why, "; "))
	}
	var slow []string
	for _, r := range rows[1:] {
		slow = append(slow, fmt.Sprintf("%s %.2f", r.name, r.tr.ImagesPerSec()/base.tr.ImagesPerSec()))
	}
	fmt.Fprintf(&s, "Training speed relative to N(0, I): %s.", strings.Join(slow, ", "))
	return s.String()
}

// priorsOverfit is the last epoch's train ELBO minus its test ELBO.
func priorsOverfit(r priorsRow) float64 {
	c := r.tr.Curve[len(r.tr.Curve)-1]
	return c.TrainELBO - c.TestELBO
}

// priorsPapers quotes the papers' numbers with their conditions.
func priorsPapers(sz priorsSize) string {
	var b strings.Builder
	b.WriteString("## Against the papers\n\n")
	t := newTable("paper", "data", "model", "test log p(x)", "conditions")
	t.add("Tomczak & Welling 2018, Table 2", "static MNIST", "VAE, N(0, I)", "-88.56", "gated MLP 784-300-300-[40], k = 5000, 2,000 epochs with early stopping, warm-up 100 epochs")
	t.add("Tomczak & Welling 2018, Table 2", "static MNIST", "VAE + VampPrior (K = 500)", "-85.57", "the same")
	t.add("Tomczak & Welling 2018, Table 2", "static MNIST", "HVAE (two layers) + VampPrior", "-83.19", "two stochastic layers of 40, the same training")
	t.add("Burda et al. 2015, Table 1", "dynamic MNIST", "VAE, one stochastic layer", "-86.76", "784-200-200-[50] tanh, k = 5000, 3,280 passes")
	t.add("Burda et al. 2015, Table 1", "dynamic MNIST", "VAE, two stochastic layers", "-85.33", "784-100-100-[100]-50-50-[50] tanh, the same")
	b.WriteString(t.String())
	fmt.Fprintf(&b, "\nThe papers' gains are 3.0 nats (VampPrior), 5.4 (HVAE + VampPrior) and 1.4 (two layers). Here every row has %s with %s of warm-up "+
		"(the papers: 2,000 and 3,280 passes), the reference MLP with 20 latent units, dynamic binarization and k = %d on the first %s test images, "+
		"so the absolute numbers are far from theirs (the models are far from converged) and the differences measure what each change gives at a short, equal budget. "+
		"Only one training seed is run: a difference of a few tenths of a nat may not survive another seed; the paired ± is the spread over images of the "+
		"difference of two importance estimates, not a spread over training runs. Fashion-MNIST has no published number for these models in these papers.\n",
		plural(sz.Epochs, "epoch"), plural(int(sz.Warmup), "epoch"), sz.K, commas(sz.TestImages))
	return b.String()
}

// priorsPilots are the pilot runs that chose the two-layer architecture,
// the warm-up and the Bayesian decoder's initial scale: measured before
// this run, not by it.
const priorsPilots = `
## Pilots: why two layers stalled, and the choices made

Measured with this branch's cmd/train and cmd/eval before the run (not by it): 10,000 MNIST training images (the data root's subset), 4 epochs,
Adam 1e-3, batch 128, seed 1; test ELBO on the 10,000 test images; active units (per layer) on the first 1,000.

| model | warm-up | test ELBO | active units |
| --- | --- | --- | --- |
| one layer, 784-400-[20] ReLU (the reference) | 1 epoch | -137.69 | 20 of 20 |
| two layers, 784-400-[20]-100-[20] ReLU (used here) | none | -135.26 | 20 of 20 + 20 of 20 |
| two layers, 784-400-[20]-100-[20] ReLU (used here) | 1 epoch | -133.46 | 20 of 20 + 20 of 20 |
| Burda et al.'s two layers, 784-100-100-[100]-50-50-[50] tanh | none | -207.17 | 0 of 100 + 0 of 50 |
| the same | 2 epochs | -207.13 | 0 of 100 + 0 of 50 |
| the same, Adam 3e-4 | none | -209.07 | 0 of 100 + 0 of 50 |
| its first layer alone, 784-100-100-[100] tanh | none | -211.89 | 0 of 100 |
| Burda et al.'s two layers with ReLU | none | -193.61 | 86 of 100 + 1 of 50 |

The earlier session's stall (test ELBO -197.2 after 10 epochs, 0 of 50 z2 units) was of Burda et al.'s architecture. There the whole latent collapses,
not only z2: the model sits at about -207 nats, the independent-pixel model, with no active unit in either layer, with or without warm-up and at a
smaller step size, and its one-layer part (784-100-100-[100] tanh) collapses the same way. So the plateau is that narrow tanh network's with a
100-unit latent at this budget, not the second layer's; why it collapses at the start (Burda et al. trained it for 3,280 passes; the burda
experiment's 784-200-200-[50] tanh one-layer model kept 36 of 50 units) was not established. With ReLU units the same shapes leave the plateau,
but z2 stays nearly inactive (1 of 50): while q(z1|x)'s aggregate over the data is close to a Gaussian, the learned p(z1|z2) fits it with z2 ignored,
and every z2 unit used costs KL(q(z2|z1) || p(z2)) before it pays (our reading, not tested further). In the reference-based model, whose z1 has
20 units (784-400-[20]-100-[20]), all z2 units are active with or without warm-up, and it is above the one-layer model. This run uses that
architecture and 1 epoch of warm-up for every row.

The Bayesian decoder's q(theta) starts at softplus(rho) = 0.03 (rho = -3.49, in the -3 to -5 range of Blundell et al. 2015) rather than 1e-3: Adam moves
rho by about its step size per step, so from rho = -6.9 the scales barely moved in a short run and the weights' KL stayed near 200 nats per
training image (10,000 images, 4 epochs: 204.7 to 197.4; test ELBO -138.2, the whole model's bound -335.6); from 0.03 the KL is 96.9 to 96.0,
test ELBO -144.3, the whole model's bound -240.3. A step size of its own for rho was not built.
`

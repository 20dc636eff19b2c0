package main

// conv: convolutional against fully connected networks at the same budget.
//
// (a) MNIST, binarized, Bernoulli decoder: the reference MLP
// (784-400-z-400-784, ReLU) against the convolutional trunk of -arch
// convpeer (two 4x4 stride-2 convolutions, 32 and 64 channels, a 256-unit
// dense layer; the mirror decoder with transposed convolutions), each with
// a diagonal Gaussian q and with two inverse autoregressive flows (iaf:2,
// Kingma et al. 2016), the same latent width, epochs, optimizer and seed.
// Measured on the first TestImages test images: log p(x) by importance
// sampling with k = K (Burda et al. 2015) with its Monte Carlo error, the
// ELBO (10 draws per image) and the training speed; the differences
// between rows are given with their paired standard error over the images.
//
// (b) Fashion-MNIST as 8-bit grey levels with the discretized logistic
// likelihood (Salimans et al. 2017; per pixel, no binarization): bits per
// dimension, -log2 p(x) / 784, of the MLP and of the conv model, from the
// ELBO and from log p(x), with a grid of samples (means of p(x|z), z from
// the prior) from each.
//
// Full run: the 10,000-image training subsets, 10 epochs, z = 20, log p(x)
// with k = 1000 on the first 500 MNIST and 250 Fashion-MNIST test images
// (not 1,000: on 2026-12-02 the shared machine ran at a load of 20-28);
// about 25 CPU-minutes at 2026-12 speeds (the conv models dominate: about
// 475 training images per CPU-second, 0.27 CPU-seconds per image for log
// p(x) with k = 1000).
// Quick run: 300 training images, 1 epoch, 20 test images, k = 10.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/imgrid"
	"github.com/govae/govae/nets"
)

// convSize is every size of the experiment.
type convSize struct {
	TrainImages int // the first TrainImages training images of each dataset
	Epochs      int
	TestImages  int // MNIST: evaluation on the first TestImages test images
	K           int
	GreyTest    int // Fashion-MNIST: test images and importance samples
	GreyK       int
	Latent      int
}

var (
	convFull  = convSize{TrainImages: 10000, Epochs: 10, TestImages: 500, K: 1000, GreyTest: 250, GreyK: 1000, Latent: 20}
	convQuick = convSize{TrainImages: 300, Epochs: 1, TestImages: 20, K: 10, GreyTest: 20, GreyK: 10, Latent: 20}
)

// convFamilies are the posteriors of table (a); convGreyLiks the
// likelihoods of table (b).
var (
	convFamilies = []string{"diag", "iaf:2"}
	convGreyLiks = []string{amortized.Logistic}
)

// convTrunks are the two networks compared: "" is the MLP.
var convTrunks = []struct{ name, trunk string }{{"MLP", ""}, {"conv", amortized.ConvPeerTrunk}}

func init() {
	register(experiment{
		name:    "conv",
		summary: "convolutional (convpeer) against MLP VAEs: MNIST log p(x) with diag and IAF posteriors; Fashion-MNIST grey bits/dim with the discretized logistic, with samples",
		run:     runConv,
	})
}

// convConfig is the reference configuration with latent width L on the
// MLP trunk (trunk "") or a convolutional one.
func convConfig(ds *dataset, trunk, posterior, likelihood string, L int) amortized.Config {
	c := modelConfig(ds, posterior)
	c.Latent, c.Likelihood, c.ImageChannels = L, likelihood, 1
	if trunk != "" {
		c.Trunk, c.Hidden, c.DecoderHidden = trunk, nil, nil
	}
	return c
}

// convRow is one trained and evaluated model.
type convRow struct {
	trunk, family, lik string
	params             int64
	tr                 *trained
	ev                 *evaluation
}

func runConv(ctx context.Context, e *env) (string, error) {
	sz := convFull
	if e.Quick {
		sz = convQuick
	}
	train := func(label string, ds *dataset, cfg amortized.Config) (convRow, error) {
		r := convRow{family: cfg.Posterior, lik: cfg.Likelihood}
		var err error
		if r.params, err = cfg.NumParams(); err != nil {
			return r, fmt.Errorf("%s: %w", label, err)
		}
		if r.tr, err = trainModel(ctx, e, label, ds, cfg, amortized.TrainOptions{Epochs: sz.Epochs}, e.Seed, amortized.Hooks{}); err != nil {
			return r, fmt.Errorf("%s: %w", label, err)
		}
		if r.tr.Diverged != nil {
			return r, fmt.Errorf("%s: %w", label, r.tr.Diverged)
		}
		k := sz.K
		if ds.Grey {
			k = sz.GreyK
		}
		if r.ev, err = evaluate(ctx, r.tr.Model, ds, k, nil, e.Seed); err != nil {
			return r, fmt.Errorf("%s: %w", label, err)
		}
		e.Logf("%s: log p(x) %.2f ± %.2f, ELBO %.2f, %.0f images/s", label, r.ev.LogPx, r.ev.LogPxSE, r.ev.ELBO, r.tr.ImagesPerSec())
		return r, nil
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Two networks at the same budget: the reference MLP (784-400-z-400-784, ReLU) and the convolutional trunk of `-arch convpeer` "+
		"(`%s` / `%s`: 4x4 stride-2 convolutions with 32 and 64 channels and a 256-unit dense layer; the mirror decoder with transposed convolutions), "+
		"both with z = %d, trained with the ELBO for %s on the first %s training images (Adam 1e-3, batch %d, seed %d, no validation split). "+
		"Log p(x) is importance-sampled (± its Monte Carlo standard error: jackknife over %d groups of the k samples); the ELBO is averaged over %d draws of z per image. "+
		"Training time counts optimizer steps only, on a shared 2-core machine.\n\n",
		nets.ConvPeerEncoder, nets.ConvPeerDecoder, sz.Latent, plural(sz.Epochs, "epoch"), commas(sz.TrainImages), batchSize, e.Seed,
		amortized.DefaultReplicates, elboDraws)

	// (a) MNIST.
	mn, err := loadDataset(e, "mnist", sz.TrainImages, sz.TestImages)
	if err != nil {
		return "", err
	}
	var rows []convRow
	for _, tk := range convTrunks {
		for _, f := range convFamilies {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			r, err := train(fmt.Sprintf("conv: mnist %s %s", tk.name, f), mn, convConfig(mn, tk.trunk, f, amortized.Bernoulli, sz.Latent))
			if err != nil {
				return "", err
			}
			r.trunk = tk.name
			rows = append(rows, r)
		}
	}
	fmt.Fprintf(&b, "## (a) MNIST, binarized, Bernoulli decoder\n\nTest images: the first %s (fixed binarization); log p(x) with k = %d.\n\n%s\n",
		commas(sz.TestImages), sz.K, convTableA(rows, sz))
	b.WriteString(convPairs(rows) + "\n")

	// (b) Fashion-MNIST, grey levels.
	fm, err := loadImages(e, e.Data, "fashion-mnist", sz.TrainImages, sz.GreyTest, true)
	if err != nil {
		return "", err
	}
	var grey []convRow
	var figRows []imgrid.Row
	for _, lik := range convGreyLiks {
		for _, tk := range convTrunks {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			label := fmt.Sprintf("conv: fashion-mnist %s %s", tk.name, lik)
			r, err := train(label, fm, convConfig(fm, tk.trunk, "diag", lik, sz.Latent))
			if err != nil {
				return "", err
			}
			r.trunk = tk.name
			grey = append(grey, r)
			s, err := r.tr.Model.Sample(32, rand.New(rand.NewPCG(e.Seed, 0x73616d70)))
			if err != nil {
				return "", fmt.Errorf("%s: samples: %w", label, err)
			}
			name := tk.name + ", " + lik
			figRows = append(figRows, imgrid.Row{Label: name, Images: s[:16]}, imgrid.Row{Images: s[16:]})
		}
	}
	fmt.Fprintf(&b, "## (b) Fashion-MNIST, 8-bit grey levels, discretized logistic\n\nThe same training images as grey levels (no binarization), "+
		"each pixel a discretized logistic over its 256 levels (Salimans et al. 2017), the diagonal Gaussian q. Test images: the first %s; "+
		"log p(x) with k = %d. Bits per dimension are -log2 p(x) / 784 (lower is better); the ELBO's is an upper bound on the true value.\n\n%s\n",
		commas(sz.GreyTest), sz.GreyK, convTableB(grey))
	b.WriteString(convPairs(grey) + "\n")
	fig := imgrid.Figure{
		Grid:  imgrid.Grid{Rows: fm.Train.Rows, Cols: fm.Train.Cols, Channels: 1, Pad: 2, Scale: 2, Background: 96},
		Title: fmt.Sprintf("Fashion-MNIST samples: means of p(x|z), z ~ N(0, I)\n(32 per model, after %s)", plural(sz.Epochs, "epoch")),
	}
	for i := 0; i < len(figRows); i += 2 {
		fig.Blocks = append(fig.Blocks, imgrid.Block{Rows: figRows[i : i+2]})
	}
	if err := fig.WritePNG(filepath.Join(e.Out, "samples-fashion.png")); err != nil {
		return "", err
	}
	b.WriteString("![Fashion-MNIST samples of the MLP and the conv model](samples-fashion.png)\n\n")

	b.WriteString("## Reading the results\n\n")
	b.WriteString(convReading(rows, grey, sz) + "\n")
	return b.String(), nil
}

func convTableA(rows []convRow, sz convSize) string {
	t := newTable("network", "posterior", "parameters", fmt.Sprintf("log p(x), k = %d", sz.K), "ELBO", "KL", "log p(x) − ELBO", "training s", "images/s")
	for _, r := range rows {
		t.add(r.trunk, r.family, commas(int(r.params)), fmt.Sprintf("%.2f ± %.2f", r.ev.LogPx, r.ev.LogPxSE), f2(r.ev.ELBO), f2(r.ev.KL),
			f2(r.ev.LogPx-r.ev.ELBO), secs(r.tr.TrainSeconds), fmt.Sprintf("%.0f", r.tr.ImagesPerSec()))
	}
	return t.String()
}

// bitsPerDim is -log2 p(x) / D for a log-likelihood in nats.
func bitsPerDim(nats float64, D int) float64 { return -nats / (float64(D) * math.Ln2) }

func convTableB(rows []convRow) string {
	t := newTable("network", "likelihood", "parameters", "log p(x) (nats)", "bits/dim, log p(x)", "bits/dim, ELBO", "training s", "images/s")
	for _, r := range rows {
		D := r.tr.Model.DataDim()
		t.add(r.trunk, r.lik, commas(int(r.params)), fmt.Sprintf("%.1f ± %.1f", r.ev.LogPx, r.ev.LogPxSE),
			fmt.Sprintf("%.4f ± %.4f", bitsPerDim(r.ev.LogPx, D), r.ev.LogPxSE/(float64(D)*math.Ln2)),
			fmt.Sprintf("%.4f", bitsPerDim(r.ev.ELBO, D)), secs(r.tr.TrainSeconds), fmt.Sprintf("%.0f", r.tr.ImagesPerSec()))
	}
	return t.String()
}

// convPairs lists, for each posterior and likelihood, conv minus MLP in
// log p(x), and for each network every other posterior minus diag, each
// with its paired standard error over the test images (the spread of the
// per-image differences: it includes the images' variety the shared test
// set cancels, not the training seed's).
func convPairs(rows []convRow) string {
	find := func(trunk, family, lik string) *convRow {
		for i := range rows {
			if rows[i].trunk == trunk && rows[i].family == family && rows[i].lik == lik {
				return &rows[i]
			}
		}
		return nil
	}
	var lines []string
	diff := func(what string, a, c *convRow) {
		lines = append(lines, fmt.Sprintf("- %s: %s ± %.2f nats", what, signed(a.ev.LogPx-c.ev.LogPx), pairedSE(a.ev.LogPxRows, c.ev.LogPxRows)))
	}
	for _, r := range rows {
		if r.trunk == "conv" {
			if m := find("MLP", r.family, r.lik); m != nil {
				diff(fmt.Sprintf("conv − MLP, %s, %s", r.family, r.lik), &r, m)
			}
		}
	}
	for _, r := range rows {
		if r.family != "diag" {
			if d := find(r.trunk, "diag", r.lik); d != nil {
				diff(fmt.Sprintf("%s − diag, %s", r.family, r.trunk), &r, d)
			}
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "Differences in log p(x) (± the paired standard error over the test images):\n\n" + strings.Join(lines, "\n") + "\n"
}

// convReading states the outcome from the numbers.
func convReading(mnist, grey []convRow, sz convSize) string {
	var s strings.Builder
	best := mnist[0]
	for _, r := range mnist {
		if r.ev.LogPx > best.ev.LogPx {
			best = r
		}
	}
	fmt.Fprintf(&s, "**MNIST**: the highest test log p(x) is the %s with %s, %.2f nats. ", best.trunk, best.family, best.ev.LogPx)
	for _, f := range convFamilies {
		var m, c *convRow
		for i := range mnist {
			if mnist[i].family == f {
				if mnist[i].trunk == "MLP" {
					m = &mnist[i]
				} else {
					c = &mnist[i]
				}
			}
		}
		if m == nil || c == nil {
			continue
		}
		verb := "above"
		if c.ev.LogPx <= m.ev.LogPx {
			verb = "at or below"
		}
		fmt.Fprintf(&s, "With %s the conv model is %s the MLP (%s ± %.2f nats) with %.1f times its parameters, training at %.2f times its speed. ",
			f, verb, signed(c.ev.LogPx-m.ev.LogPx), pairedSE(c.ev.LogPxRows, m.ev.LogPxRows),
			float64(c.params)/float64(m.params), c.tr.ImagesPerSec()/math.Max(m.tr.ImagesPerSec(), 1e-9))
	}
	if len(grey) > 0 {
		var parts []string
		for _, r := range grey {
			parts = append(parts, fmt.Sprintf("the %s with %s reaches %.4f bits/dim (log p(x), k = %d; %.4f from the ELBO)", r.trunk, r.lik,
				bitsPerDim(r.ev.LogPx, r.tr.Model.DataDim()), r.ev.K, bitsPerDim(r.ev.ELBO, r.tr.Model.DataDim())))
		}
		fmt.Fprintf(&s, "\n\n**Fashion-MNIST, grey levels**: %s.", strings.Join(parts, "; "))
	}
	fmt.Fprintf(&s, "\n\nOne training seed per row: the ± are Monte Carlo and paired test-image errors, not seed-to-seed spread, which for these "+
		"short runs can be several nats (a model's escape from the early plateau near the mean image varies with the seed). "+
		"Published conv VAEs train for hundreds of epochs on the full 50,000-60,000 training images; here %s on %s images, "+
		"so the conv models, with more parameters and slower per step, are compared at an early point of their training.",
		plural(sz.Epochs, "epoch"), commas(sz.TrainImages))
	return s.String()
}

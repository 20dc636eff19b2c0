package amortized

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLossGradientsMatchFiniteDifferences checks gorgonia's backward pass
// through the whole training loss (reparameterization, both likelihoods, the
// KL with beta and free bits, padding rows, k-sample ELBO, the IWAE bound,
// and the score-function surrogate at fixed z and advantages) against
// central differences of the loss itself.
func TestLossGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		lik  string
		opts TrainOptions
	}{
		{Bernoulli, TrainOptions{}},
		{Gaussian, TrainOptions{}},
		{Bernoulli, TrainOptions{FreeBits: 0.3}},
		{Bernoulli, TrainOptions{K: 3}},
		{Gaussian, TrainOptions{Objective: ObjectiveIWAE, K: 1}},
		{Bernoulli, TrainOptions{Objective: ObjectiveIWAE, K: 4}},
		{Bernoulli, TrainOptions{Estimator: EstimatorScore}},
		{Bernoulli, TrainOptions{Estimator: EstimatorScore, K: 2, FreeBits: 0.2}},
	} {
		checkLossGradients(t, newSmall(t, "float64", tc.lik, 7), tc.opts)
	}
}

// TestLossGradientsEveryFamily is the finite-difference check of the
// training loss for every posterior family: the ELBO with one and with
// several samples (with the Monte Carlo KL of flows), the IWAE bound, and
// for the full covariance the score-function surrogate (log q at a given z
// through forward substitution) and the analytic KL.
func TestLossGradientsEveryFamily(t *testing.T) {
	for _, post := range []string{"fullcov", "planar:3", "radial:3", "iaf:2:7", "householder:3", "sylvester:2:2",
		"sylvester-householder:2:2", "sylvester-triangular:2"} {
		cases := []TrainOptions{{}, {K: 2}, {Objective: ObjectiveIWAE, K: 3}}
		if strings.HasPrefix(post, "sylvester") || strings.HasPrefix(post, Householder) {
			// One case each: the flows' own gradients are checked in package flows.
			cases = cases[:1]
		}
		if post == "fullcov" || post == "householder:3" {
			cases = append(cases, TrainOptions{Estimator: EstimatorScore, K: 2})
		}
		for _, o := range cases {
			lik := Bernoulli
			if o.K == 2 {
				lik = Gaussian
			}
			m := newFamily(t, post, "float64", lik, 7)
			name := fmt.Sprintf("%s/%s/k=%d/%s", post, o.Objective, o.K, o.Estimator)
			t.Run(name, func(t *testing.T) { checkLossGradients(t, m, o) })
		}
	}
}

// checkLossGradients compares the training graph's gradient of the loss
// with central differences of the loss, on a batch of 3 real rows padded
// to 4, at fixed noise (or fixed z and advantages for the score estimator).
func checkLossGradients(t *testing.T, m *Model, opts TrainOptions) {
	t.Helper()
	x := synthetic(3, 12, 8) // 3 real rows in a batch of 4: padding must not matter
	if m.cfg.Likelihood == Gaussian {
		for i := range x {
			x[i] = 0.1 + 0.8*x[i]
		}
	}
	checkLossGradientsOn(t, m, opts, x)
}

// TestLossGradientsWithSparseData is the same check on images with few
// pixels on (binary, and grey for the Gaussian), as binarized MNIST is.
func TestLossGradientsWithSparseData(t *testing.T) {
	for _, lik := range []string{Bernoulli, Gaussian} {
		x := make([]float32, 3*12)
		for _, i := range []int{1, 5, 14, 20, 29, 33} { // 6 of 36 on
			x[i] = 1
			if lik == Gaussian {
				x[i] = 0.3 + float32(i)/60
			}
		}
		checkLossGradientsOn(t, newSmall(t, "float64", lik, 7), TrainOptions{}, x)
	}
}

// checkLossGradientsOn is checkLossGradients on the 3 rows x.
func checkLossGradientsOn(t *testing.T, m *Model, opts TrainOptions, x []float32) {
	t.Helper()
	opts.Epochs = 1
	tr, err := NewTrainer(m, 4, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	fixed := 2.5
	tr.fixedBaseline = &fixed
	if _, err := tr.gradients(x, 3, 0.8, rand.New(rand.NewPCG(9, 9))); err != nil {
		t.Fatal(err)
	}
	grads := make([][]float64, len(tr.batchGrads()))
	for i, g := range tr.batchGrads() {
		grads[i] = tensorValues(g, nil)
	}
	// Rerunning the graph keeps its inputs (x, noise, z, advantages).
	loss := func() float64 {
		if err := tr.g.run(); err != nil {
			t.Fatal(err)
		}
		return tr.g.scalar(outLoss)
	}
	checked := 0
	for i, p := range m.params.All() {
		w := p.Float64s()
		for j := 0; j < len(w); j += 1 + len(w)/12 {
			const h = 1e-6
			old := w[j]
			w[j] = old + h
			fp := loss()
			w[j] = old - h
			fm := loss()
			w[j] = old
			fd := (fp - fm) / (2 * h)
			if math.Abs(fd-grads[i][j]) > 1e-5*(1+math.Abs(fd)) {
				t.Errorf("%s %s %+v: dloss/d%s[%d] = %v, finite difference %v", m.cfg.Posterior, m.cfg.Likelihood, opts, p.Name, j, grads[i][j], fd)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d coordinates checked", checked)
	}
}

// TestIWAEBoundBetweenELBOAndLogPx trains nothing: on a fixed model the
// training graph's IWAE bound (k = 20) must sit above the ELBO and below the
// quadrature log p(x), averaged over draws.
func TestIWAEBoundBetweenELBOAndLogPx(t *testing.T) {
	m := latent2Model(t)
	x := []float32{1, 0, 1, 1, 0, 0, 1, 0}
	truth := quadLogPx(t, m, x)
	batch := make([]float32, 0, 16*8)
	for range 16 {
		batch = append(batch, x...)
	}
	bound := func(o TrainOptions) float64 {
		o.Epochs = 1
		tr, err := NewTrainer(m, 16, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var s float64
		for d := range 50 {
			st, err := tr.gradients(batch, 16, 1, rand.New(rand.NewPCG(uint64(d), 5)))
			if err != nil {
				t.Fatal(err)
			}
			s += st.Bound / 50
		}
		return s
	}
	elbo, iwae := bound(TrainOptions{}), bound(TrainOptions{Objective: ObjectiveIWAE, K: 20})
	if !(elbo < iwae && iwae < truth+0.01) {
		t.Fatalf("ELBO %.4f, IWAE(20) %.4f, log p(x) %.4f: want ELBO < IWAE <= log p(x)", elbo, iwae, truth)
	}
}

// TestScoreEstimatorIsUnbiasedWithHigherVariance compares the two
// estimators on one model and batch: same mean encoder gradient within Monte
// Carlo error, identical decoder gradients (same z), and a larger variance
// for the score function.
func TestScoreEstimatorIsUnbiasedWithHigherVariance(t *testing.T) {
	m := newSmall(t, "float64", Bernoulli, 3)
	x := rowsOf(synthetic(8, 12, 4), 12)
	const draws = 4000
	pw, err := GradientVariance(m, x, TrainOptions{}, draws, 1)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := GradientVariance(m, x, TrainOptions{Estimator: EstimatorScore}, draws, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pw[0].Group != "encoder" || pw[1].Group != "decoder" || len(pw) != 2 {
		t.Fatalf("groups %+v", pw)
	}
	enc, dec := 0, 1
	if math.Abs(pw[dec].Variance-sf[dec].Variance) > 1e-9*pw[dec].Variance {
		t.Errorf("decoder gradient variance differs: %v vs %v", pw[dec].Variance, sf[dec].Variance)
	}
	if !(sf[enc].Variance > 3*pw[enc].Variance) {
		t.Errorf("encoder variance: score %v, pathwise %v; want the score function clearly noisier", sf[enc].Variance, pw[enc].Variance)
	}
	// Unbiased: the difference of the means is within the standard error of
	// the difference, summed over coordinates (a chi-square-like statistic).
	var diff2 float64
	for i := range pw[enc].Mean {
		d := sf[enc].Mean[i] - pw[enc].Mean[i]
		diff2 += d * d
	}
	expected := (sf[enc].Variance + pw[enc].Variance) / draws
	if diff2 > 3*expected {
		t.Errorf("mean encoder gradients differ by %v (squared norm), noise level %v", diff2, expected)
	}
	t.Logf("encoder gradient variance: pathwise %.4g, score %.4g (ratio %.1f)", pw[enc].Variance, sf[enc].Variance, sf[enc].Variance/pw[enc].Variance)
}

// TestScoreAndIWAETrainingImproveLogLikelihood trains with each alternative
// objective or estimator and requires a much better log p(x) (k = 100). The
// ELBO is not the yardstick: IWAE-trained encoders make loose single-sample
// bounds (Rainforth et al. 2018).
func TestScoreAndIWAETrainingImproveLogLikelihood(t *testing.T) {
	for _, o := range []TrainOptions{{Estimator: EstimatorScore}, {Objective: ObjectiveIWAE, K: 5}} {
		m := newSmall(t, "float32", Bernoulli, 3)
		x := synthetic(200, 12, 1)
		data := &memBatches{x: x, n: 200, dim: 12, bsz: 32, seed: 3}
		ll := func() float64 {
			v, err := m.LogLikelihood(rowsOf(x, 12), 100, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			return mean(v)
		}
		before := ll()
		o.Epochs, o.Seed, o.LR = 30, 3, 1e-2
		tr, err := NewTrainer(m, 32, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Fit(context.Background(), data, nil, Hooks{}); err != nil {
			t.Fatal(err)
		}
		// 12 pixels with 10% flips: the best possible is about -12 H(0.1) = -3.9 nats.
		if after := ll(); !(after > before+3) || after < -5.5 {
			t.Errorf("%+v: log p(x) %.3f -> %.3f", o, before, after)
		}
	}
}

func TestObjectiveOptionErrors(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 3)
	for _, o := range []TrainOptions{
		{Objective: "elbo2"}, {Estimator: "magic"}, {K: -1},
		{Objective: ObjectiveIWAE, Estimator: EstimatorScore},
		{Objective: ObjectiveIWAE, WarmupEpochs: 2},
	} {
		o.Epochs = 1
		if _, err := NewTrainer(m, 4, o, nil); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

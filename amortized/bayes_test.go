package amortized

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
)

// newBayes is the small float64 model with a Bayesian decoder whose
// scales are spread over [0.05, 0.5] (not the tiny initial one), so the
// noise term of every gradient matters.
func newBayes(t *testing.T, lik string, sigma float64, seed uint64) *Model {
	t.Helper()
	c := smallConfig("float64", lik)
	c.DecoderPriorSigma = sigma
	m, err := New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, pr := range bayesPairs(m.params, m.cfg) {
		for j, r := range m.params.All()[pr.rho].Float64s() {
			_ = r
			s := 0.05 + 0.45*rng.Float64()
			m.params.All()[pr.rho].Float64s()[j] = math.Log(math.Expm1(s))
		}
	}
	return m
}

// TestBayesParameters checks the names, order and count of a Bayesian
// decoder's parameters and its initial scales.
func TestBayesParameters(t *testing.T) {
	plain := newSmall(t, "float64", Bernoulli, 3)
	c := smallConfig("float64", Bernoulli)
	c.DecoderPriorSigma = 1
	m, err := New(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	n0 := len(plain.params.All())
	var dec int
	for i, p := range plain.params.All() {
		q := m.params.All()[i]
		if q.Name != p.Name || !q.Value.Eq(p.Value) {
			t.Fatalf("parameter %d: %s differs from the plain model's %s (or its value does)", i, q.Name, p.Name)
		}
		if strings.HasPrefix(p.Name, "decoder.") {
			rho := m.params.All()[n0+dec]
			if rho.Name != p.Name+".rho" {
				t.Fatalf("scale %d named %s, want %s.rho", dec, rho.Name, p.Name)
			}
			for _, v := range rho.Float64s() {
				if math.Abs(softplus(v)-bayesInitScale) > 1e-12 {
					t.Fatalf("%s: initial scale %g, want %g", rho.Name, softplus(v), bayesInitScale)
				}
			}
			dec++
		}
	}
	if len(m.params.All()) != n0+dec || dec == 0 {
		t.Fatalf("%d parameters, want %d + %d scales", len(m.params.All()), n0, dec)
	}
	if n, err := m.cfg.NumParams(); err != nil || n != int64(m.params.Count()) {
		t.Fatalf("NumParams = %d, %v; the store holds %d", n, err, m.params.Count())
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		c.DecoderPriorSigma = bad
		if _, err := New(c, 1); err == nil || !strings.Contains(err.Error(), "decoder_prior_sigma") {
			t.Errorf("sigma %g: error %v, want one naming decoder_prior_sigma", bad, err)
		}
	}
}

// TestGlobalKLClosedFormAndMonteCarlo checks the per-weight KL against a
// Monte Carlo estimate E_q[log q - log p], and GlobalKL against the sum of
// closed forms over every decoder parameter.
func TestGlobalKLClosedFormAndMonteCarlo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range [][3]float64{{0, 1, 1}, {0.3, 0.05, 1}, {-1.2, 0.7, 0.5}, {2, 3, 2}} {
		mu, s, sp := tc[0], tc[1], tc[2]
		const n = 400000
		var sum, sq float64
		for range n {
			th := mu + s*rng.NormFloat64()
			lq := -0.5*math.Pow((th-mu)/s, 2) - math.Log(s)
			lp := -0.5*math.Pow(th/sp, 2) - math.Log(sp)
			sum += lq - lp
			sq += (lq - lp) * (lq - lp)
		}
		mean := sum / n
		se := math.Sqrt((sq/n - mean*mean) / n)
		if got := gaussKL(mu, s, sp); math.Abs(got-mean) > 5*se+1e-12 {
			t.Errorf("KL(N(%g,%g^2)||N(0,%g^2)) = %g, Monte Carlo %g ± %g", mu, s, sp, got, mean, se)
		}
	}
	m := newBayes(t, Bernoulli, 0.8, 4)
	var want float64
	for _, p := range m.params.All() {
		if !strings.HasPrefix(p.Name, "decoder.") || strings.HasSuffix(p.Name, rhoSuffix) {
			continue
		}
		rho := m.params.Get(p.Name + rhoSuffix).Float64s()
		for j, mu := range p.Float64s() {
			s := math.Log1p(math.Exp(rho[j]))
			want += math.Log(0.8/s) + (s*s+mu*mu)/(2*0.64) - 0.5
		}
	}
	if got := m.GlobalKL(); math.Abs(got-want) > 1e-9*math.Abs(want) {
		t.Fatalf("GlobalKL = %v, direct sum %v", got, want)
	}
	if got := newSmall(t, "float64", Bernoulli, 4).GlobalKL(); got != 0 {
		t.Fatalf("plain decoder: GlobalKL = %v, want 0", got)
	}
}

// TestBayesGradientsMatchFiniteDifferences: at fixed noise (z's and the
// weights'), the gradient of the loss (local terms at theta = mu + s eps,
// plus beta KL(q||p)/N) with respect to every parameter, the means and the
// scales rho included, against gonum's central differences of the loss,
// with one and two shards and for the IWAE objective.
func TestBayesGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		lik  string
		opts TrainOptions
	}{
		{Bernoulli, TrainOptions{Shards: 1}},
		{Gaussian, TrainOptions{Shards: 2}},
		{Bernoulli, TrainOptions{Objective: ObjectiveIWAE, K: 3, Shards: 2}},
	} {
		m := newBayes(t, tc.lik, 0.7, 7)
		tc.opts.Epochs = 1
		tr, err := NewTrainer(m, 4, tc.opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.SetDataSize(5); err != nil {
			t.Fatal(err)
		}
		x := synthetic(3, 12, 8)
		if tc.lik == Gaussian {
			for i := range x {
				x[i] = 0.1 + 0.8*x[i]
			}
		}
		const beta = 0.8
		loss := func() float64 {
			for _, r := range tr.reps { // shard 1's copy of the weights
				if err := r.CopyFrom(m.params); err != nil {
					t.Fatal(err)
				}
			}
			s, err := tr.gradients(x, 3, beta, rand.New(rand.NewPCG(9, 9)))
			if err != nil {
				t.Fatal(err)
			}
			return s.Loss
		}
		loss()
		grads := make([][]float64, len(tr.batchGrads()))
		for i, g := range tr.batchGrads() {
			grads[i] = tensorValues(g, nil)
		}
		checked := map[string]int{}
		for i, p := range m.params.All() {
			w := p.Float64s()
			for j := 0; j < len(w); j += 1 + len(w)/10 {
				old := w[j]
				d := fd.Derivative(func(v float64) float64 {
					w[j] = v
					return loss()
				}, old, &fd.Settings{Formula: fd.Central, Step: 1e-6})
				w[j] = old
				if math.Abs(d-grads[i][j]) > 1e-5*(1+math.Abs(d)) {
					t.Errorf("%s %+v: dloss/d%s[%d] = %v, finite difference %v", tc.lik, tc.opts, p.Name, j, grads[i][j], d)
				}
				kind := "other"
				switch {
				case strings.HasSuffix(p.Name, rhoSuffix):
					kind = "rho"
				case strings.HasPrefix(p.Name, "decoder."):
					kind = "mu"
				}
				checked[kind]++
			}
		}
		if checked["rho"] < 20 || checked["mu"] < 20 || checked["other"] < 20 {
			t.Fatalf("too few coordinates checked: %v", checked)
		}
		tr.Close()
	}
}

// TestBayesTinyScaleIsThePlainDecoder: as every scale goes to 0 the loss is
// the plain model's plus beta KL/N, and the means' gradients are the plain
// weights' plus the KL's, mu beta/(sigma^2 N).
func TestBayesTinyScaleIsThePlainDecoder(t *testing.T) {
	plain := newSmall(t, "float64", Bernoulli, 5)
	c := smallConfig("float64", Bernoulli)
	c.DecoderPriorSigma = 2
	m, err := New(c, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range bayesPairs(m.params, m.cfg) {
		for j := range m.params.All()[pr.rho].Float64s() {
			m.params.All()[pr.rho].Float64s()[j] = -40 // softplus: 4e-18
		}
	}
	x := synthetic(4, 12, 8)
	const beta, n = 0.6, 7
	run := func(m *Model) (StepStats, [][]float64) {
		tr, err := NewTrainer(m, 4, TrainOptions{Epochs: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		tr.SetDataSize(n)
		s, err := tr.gradients(x, 4, beta, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		var g [][]float64
		for _, gt := range tr.batchGrads() {
			g = append(g, tensorValues(gt, nil))
		}
		return s, g
	}
	sp, gp := run(plain)
	sb, gb := run(m)
	kl := m.GlobalKL()
	if math.Abs(sb.GlobalKL-kl/n) > 1e-12*kl {
		t.Fatalf("step's global KL %v, want KL/N = %v", sb.GlobalKL, kl/n)
	}
	if d := sb.Loss - beta*kl/n - sp.Loss; math.Abs(d) > 1e-9 {
		t.Fatalf("loss %v - beta KL/N %v = %v, plain decoder's %v", sb.Loss, beta*kl/n, sb.Loss-beta*kl/n, sp.Loss)
	}
	for i, p := range plain.params.All() {
		for j, g := range gp[i] {
			want := g
			if strings.HasPrefix(p.Name, "decoder.") {
				want += beta * p.Float64s()[j] / (4 * n)
			}
			if math.Abs(gb[i][j]-want) > 1e-9*(1+math.Abs(want)) {
				t.Fatalf("d/d%s[%d] = %v, plain gradient + KL's %v", p.Name, j, gb[i][j], want)
			}
		}
	}
}

// TestBayesEpochKLSumsToFullKL: the per-example global terms of one epoch
// (batches of 4, 4 and 2 rows) add up to KL(q||p), and a step without the
// training-set size is refused.
func TestBayesEpochKLSumsToFullKL(t *testing.T) {
	m := newBayes(t, Bernoulli, 1, 2)
	data := &memBatches{x: synthetic(10, 12, 3), n: 10, dim: 12, bsz: 4, seed: 1}
	tr, err := NewTrainer(m, 4, TrainOptions{Epochs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	buf := make([]float32, 4*12)
	if _, err := tr.gradients(buf, 4, 1, rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), "SetDataSize") {
		t.Fatalf("step without the training-set size: error %v", err)
	}
	tr.SetDataSize(data.Len())
	var sum float64
	for b := range data.NumBatches() {
		rows, _ := data.Batch(0, b, buf)
		s, err := tr.gradients(buf, rows, 1, rand.New(rand.NewPCG(1, uint64(b))))
		if err != nil {
			t.Fatal(err)
		}
		sum += s.GlobalKL * float64(rows)
	}
	if kl := m.GlobalKL(); math.Abs(sum-kl) > 1e-10*kl {
		t.Fatalf("one epoch's global terms sum to %v, KL(q||p) = %v", sum, kl)
	}
	// Fit sets the size itself, and training restores the means after each draw.
	before := m.GlobalKL()
	if err := tr.Fit(t.Context(), data, nil, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if after := m.GlobalKL(); after >= before {
		t.Errorf("an epoch of training did not lower the KL from the (large) initial scales: %v -> %v", before, after)
	}
}

// TestLogMeanExp against direct evaluation, and where direct evaluation
// overflows or underflows.
func TestLogMeanExp(t *testing.T) {
	v := []float64{-3.2, -1.1, -7, 0.4}
	var s float64
	for _, x := range v {
		s += math.Exp(x)
	}
	if got, want := logMeanExp(v), math.Log(s/4); math.Abs(got-want) > 1e-14 {
		t.Fatalf("logMeanExp = %v, direct %v", got, want)
	}
	if got, want := logMeanExp([]float64{-1000, -1001}), -1000+math.Log((1+math.Exp(-1))/2); math.Abs(got-want) > 1e-12 {
		t.Fatalf("logMeanExp underflowing = %v, want %v", got, want)
	}
	if got, want := logMeanExp([]float64{800, 800}), 800.0; got != want {
		t.Fatalf("logMeanExp overflowing = %v, want %v", got, want)
	}
	if got := logMeanExp([]float64{math.Inf(-1), -2}); math.Abs(got-(-2-math.Log(2))) > 1e-14 {
		t.Fatalf("logMeanExp with a zero weight = %v", got)
	}
	if got := logMeanExp([]float64{math.Inf(-1), math.Inf(-1)}); !math.IsInf(got, -1) {
		t.Fatalf("logMeanExp of zero weights = %v, want -Inf", got)
	}
}

// TestLogLikelihoodDrawsAveragesOverWeights: LogLikelihoodDraws is the log
// of the mean over weight draws of the per-draw importance-sampled
// likelihoods, recomputed here directly from the same draws; ELBODraws is
// the mean of the per-draw ELBOs.
func TestLogLikelihoodDrawsAveragesOverWeights(t *testing.T) {
	m := newBayes(t, Bernoulli, 1, 6)
	x := rowsOf(synthetic(5, 12, 2), 12)
	const k, S = 7, 4
	got, err := m.LogLikelihoodDraws(x, k, S, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	gotE, err := m.ELBODraws(x, S, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	for _, elbo := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(5, 5))
		wd, err := m.NewWeightDraws(rng.Uint64())
		if err != nil {
			t.Fatal(err)
		}
		sum := make([]float64, len(x))
		for range S {
			d := wd.Next()
			var v []float64
			if elbo {
				v, err = d.ELBO(x, rng)
			} else {
				v, err = d.LogLikelihood(x, k, rng)
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range v {
				if elbo {
					sum[i] += v[i] / S
				} else {
					sum[i] += math.Exp(v[i]) / S
				}
			}
		}
		for i := range x {
			if elbo {
				if math.Abs(gotE[i]-sum[i]) > 1e-9 {
					t.Errorf("ELBODraws[%d] = %v, mean of the draws' ELBOs %v", i, gotE[i], sum[i])
				}
			} else if want := math.Log(sum[i]); math.Abs(got[i]-want) > 1e-9 {
				t.Errorf("LogLikelihoodDraws[%d] = %v, log mean of the draws' likelihoods %v", i, got[i], want)
			}
		}
	}
	if _, err := newSmall(t, "float64", Bernoulli, 1).LogLikelihoodDraws(x, k, 2, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("2 weight draws of a plain decoder accepted")
	}
}

// TestWeightDrawsFollowQ: the decoder weights of many draws, standardized
// by q's mean and scale, have mean 0 and variance 1; the model they came
// from keeps its means.
func TestWeightDrawsFollowQ(t *testing.T) {
	m := newBayes(t, Bernoulli, 1, 8)
	name := "decoder." + m.lik.Heads(m.cfg)[0].Name + ".weight"
	mu := append([]float64(nil), m.params.Get(name).Float64s()...)
	rho := m.params.Get(name + rhoSuffix).Float64s()
	wd, err := m.NewWeightDraws(3)
	if err != nil {
		t.Fatal(err)
	}
	var sum, sq float64
	n := 0
	for range 200 {
		for j, v := range wd.Next().params.Get(name).Float64s() {
			z := (v - mu[j]) / softplus(rho[j])
			sum += z
			sq += z * z
			n++
		}
	}
	mean, vr := sum/float64(n), sq/float64(n)
	if math.Abs(mean) > 5/math.Sqrt(float64(n)) || math.Abs(vr-1) > 5*math.Sqrt(2/float64(n)) {
		t.Fatalf("standardized draws: mean %v, second moment %v over %d", mean, vr, n)
	}
	for j, v := range m.params.Get(name).Float64s() {
		if v != mu[j] {
			t.Fatalf("the model's mean %s[%d] changed", name, j)
		}
	}
}

// TestFloat32ScaleFunctions: the float32 softplus and sigmoid of the
// training loop against the math package, over the range of rho.
func TestFloat32ScaleFunctions(t *testing.T) {
	for r := float32(-100); r <= 40; r += 0.173 {
		s, ds := scale32(r)
		ws, wds := softplus(float64(r)), sigmoid(float64(r))
		if math.Abs(s-ws) > 2e-6*ws || math.Abs(ds-wds) > 2e-6*wds {
			t.Fatalf("rho %g: softplus %g (want %g), sigmoid %g (want %g)", r, s, ws, ds, wds)
		}
	}
}

// TestBayesFloat32StepKL: a float32 model's per-step global KL (float32
// scales, logs summed as one product) is KL/N to float32 accuracy, also
// with scales far apart (the product's exponent bookkeeping).
func TestBayesFloat32StepKL(t *testing.T) {
	c := smallConfig("float32", Bernoulli)
	c.DecoderPriorSigma = 1.5
	m, err := New(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range bayesPairs(m.params, m.cfg) {
		for j := range m.params.All()[pr.rho].Float32s() {
			m.params.All()[pr.rho].Float32s()[j] = float32(-80 + 90*math.Abs(math.Sin(float64(j))))
		}
	}
	tr, err := NewTrainer(m, 4, TrainOptions{Epochs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.SetDataSize(3)
	s, err := tr.gradients(synthetic(4, 12, 1), 4, 1, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if kl := m.GlobalKL(); math.Abs(s.GlobalKL*3-kl) > 1e-5*kl {
		t.Fatalf("step's KL %v, GlobalKL %v", s.GlobalKL*3, kl)
	}
}

// TestLogMeanExpSE: the delta-method error against its direct formula on
// the likelihoods themselves, and NaN with one value.
func TestLogMeanExpSE(t *testing.T) {
	v := []float64{-101.2, -100.1, -100.7, -102}
	w := make([]float64, len(v))
	var mean float64
	for i, x := range v {
		w[i] = math.Exp(x + 100)
		mean += w[i] / 4
	}
	var ss float64
	for _, x := range w {
		ss += (x - mean) * (x - mean)
	}
	lme, se := LogMeanExpSE(v)
	if want := math.Sqrt(ss/3/4) / mean; math.Abs(se-want) > 1e-12 || math.Abs(lme-(math.Log(mean)-100)) > 1e-12 {
		t.Fatalf("LogMeanExpSE = %v ± %v, want %v ± %v", lme, se, math.Log(mean)-100, want)
	}
	if _, se := LogMeanExpSE([]float64{-3}); !math.IsNaN(se) {
		t.Fatalf("one value: error %v, want NaN", se)
	}
}

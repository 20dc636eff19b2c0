package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
)

// setParam overwrites a float64 parameter's values.
func setParam(t *testing.T, m *Model, name string, v []float64) {
	t.Helper()
	p := m.params.Get(name)
	if p == nil {
		t.Fatalf("no parameter %s", name)
	}
	d := p.Value.Data().([]float64)
	if len(d) != len(v) {
		t.Fatalf("%s has %d values, setting %d", name, len(d), len(v))
	}
	copy(d, v)
}

// logNormalDiag is log N(z; mu, diag(exp(lv))), written out.
func logNormalDiag(z, mu, lv []float64) float64 {
	s := 0.0
	for j := range z {
		d := z[j] - mu[j]
		s += -0.5*math.Log(2*math.Pi) - 0.5*lv[j] - 0.5*d*d/math.Exp(lv[j])
	}
	return s
}

// mogRef is a mixture written out in Go: weights from logits, means and
// log-scales K x L.
type mogRef struct {
	logits, means, logscales []float64
	k, l                     int
}

func (r mogRef) logw() []float64 {
	lse := logSumExp(r.logits)
	out := make([]float64, r.k)
	for i := range out {
		out[i] = r.logits[i] - lse
	}
	return out
}

func (r mogRef) logP(z []float64) float64 {
	lw := r.logw()
	a := make([]float64, r.k)
	for k := range a {
		lv := make([]float64, r.l)
		for j := range lv {
			lv[j] = 2 * r.logscales[k*r.l+j]
		}
		a[k] = lw[k] + logNormalDiag(z, r.means[k*r.l:(k+1)*r.l], lv)
	}
	return logSumExp(a)
}

func newMog(t *testing.T, r mogRef, seed uint64) *Model {
	t.Helper()
	m, err := New(Config{DataDim: 6, Hidden: []int{5}, Latent: r.l, Activation: "tanh", Prior: fmt.Sprintf("mog:%d", r.k), Dtype: "float64"}, seed)
	if err != nil {
		t.Fatal(err)
	}
	setParam(t, m, "prior.logits", r.logits)
	setParam(t, m, "prior.means", r.means)
	setParam(t, m, "prior.logscales", r.logscales)
	return m
}

func randomMog(k, l int, seed uint64) mogRef {
	rng := rand.New(rand.NewPCG(seed, 1))
	r := mogRef{k: k, l: l, logits: make([]float64, k), means: make([]float64, k*l), logscales: make([]float64, k*l)}
	for i := range r.logits {
		r.logits[i] = rng.NormFloat64()
	}
	for i := range r.means {
		r.means[i] = 2 * rng.NormFloat64()
		r.logscales[i] = 0.5 * rng.NormFloat64()
	}
	return r
}

// TestMixturePriorDensity: log p(z) of mog:K against the mixture written
// out in float64, including z far in the tails, where an unshifted log sum
// exp underflows to -Inf.
func TestMixturePriorDensity(t *testing.T) {
	r := randomMog(3, 2, 1)
	m := newMog(t, r, 1)
	z := []float64{0, 0, 1.5, -2, 40, -35, -200, 300}
	got := evalNodes(t, m, func(bd *Builder) []*G.Node {
		return []*G.Node{bd.Prior().LogP(constRows(bd, "z", z, 4, 2))}
	})[0]
	for n := range 4 {
		want := r.logP(z[n*2 : n*2+2])
		if math.IsInf(got[n], 0) || math.Abs(got[n]-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("log p(z_%d) = %v, want %v", n, got[n], want)
		}
	}
	if m.AnalyticKL() {
		t.Error("AnalyticKL() = true for (diag, mog): no closed form is registered")
	}
	np, err := m.Config().NumParams()
	if err != nil || np != int64(m.params.Count()) {
		t.Errorf("NumParams = %d (%v), the store holds %d", np, err, m.params.Count())
	}
}

// TestMixturePriorInit: the stated initialization (equal weights, unit
// scales, means drawn from N(0, 1)), reproducible from the seed.
func TestMixturePriorInit(t *testing.T) {
	cfg := Config{DataDim: 6, Hidden: []int{5}, Latent: 4, Prior: "mog:50", Dtype: "float64"}
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prior.logits", "prior.logscales"} {
		for i, v := range m.params.Get(name).Float64s() {
			if v != 0 {
				t.Fatalf("%s[%d] = %v, want 0", name, i, v)
			}
		}
	}
	mu := m.params.Get("prior.means").Float64s()
	var s, s2 float64
	for _, v := range mu {
		s += v
		s2 += v * v
	}
	mean, vr := s/float64(len(mu)), s2/float64(len(mu))-(s/float64(len(mu)))*(s/float64(len(mu)))
	if math.Abs(mean) > 0.25 || math.Abs(vr-1) > 0.3 { // 200 draws of N(0,1)
		t.Errorf("means: sample mean %v, variance %v, want about 0 and 1", mean, vr)
	}
	m2, _ := New(cfg, 3)
	if m2.params.Get("prior.means").Float64s()[7] != mu[7] {
		t.Error("the initialization is not reproducible from the seed")
	}
	// The prior's draws come from their own stream: the network's weights
	// are those of the same model with the standard normal prior.
	cfg.Prior = ""
	m3, _ := New(cfg, 3)
	if m3.params.Get("encoder.0.weight").Float64s()[2] != m.params.Get("encoder.0.weight").Float64s()[2] {
		t.Error("the mixture's initialization changed the network's weights")
	}
}

// sampleZ runs the sampling graph on n rows of noise from rng, and returns
// z (n x L) and the images Model.Sample would return for that noise.
func sampleZ(t *testing.T, m *Model, n int, seed uint64) []float64 {
	t.Helper()
	normal, uniform := m.priorNoise()
	rng := rand.New(rand.NewPCG(seed, 5))
	eps := make([]float64, n*normal)
	for i := range eps {
		eps[i] = rng.NormFloat64()
	}
	u := make([]float64, n*uniform)
	for i := range u {
		u[i] = rng.Float64()
	}
	g, err := m.buildGraph(kindSample, n, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	setRows64(g.input(inEps), eps)
	if uniform > 0 {
		setRows64(g.input(inU), u)
	}
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	return g.read(outZ, nil)
}

// TestMixturePriorSampleMoments: the sample mean and variance of z ~ mog
// against the mixture's, E z = sum pi_k m_k and
// Var z = sum pi_k (s_k^2 + m_k^2) - (E z)^2, within 5 standard errors.
func TestMixturePriorSampleMoments(t *testing.T) {
	r := randomMog(4, 2, 2)
	m := newMog(t, r, 1)
	const n = 20000
	z := sampleZ(t, m, n, 1)
	w := r.logw()
	for j := range r.l {
		var mean, second, fourth float64
		for k := range r.k {
			pi, mu, s2 := math.Exp(w[k]), r.means[k*r.l+j], math.Exp(2*r.logscales[k*r.l+j])
			mean += pi * mu
			second += pi * (s2 + mu*mu)
			fourth += pi * (mu*mu*mu*mu + 6*mu*mu*s2 + 3*s2*s2)
		}
		vr := second - mean*mean
		var s, s2 float64
		for i := range n {
			s += z[i*r.l+j]
			s2 += z[i*r.l+j] * z[i*r.l+j]
		}
		gm, g2 := s/n, s2/n
		if se := math.Sqrt(vr / n); math.Abs(gm-mean) > 5*se {
			t.Errorf("dim %d: sample mean %v, mixture mean %v (se %v)", j, gm, mean, se)
		}
		// E z^2's standard error from the fourth moment
		if se := math.Sqrt((fourth - second*second) / n); math.Abs(g2-second) > 5*se {
			t.Errorf("dim %d: sample E z^2 %v, mixture %v (se %v)", j, g2, second, se)
		}
	}
}

// TestMixturePriorSamplesClusterAtMeans: with distant, narrow components,
// every draw lies next to a mean, in proportions near the weights, and
// Model.Sample returns the decoded draws.
func TestMixturePriorSamplesClusterAtMeans(t *testing.T) {
	r := mogRef{k: 2, l: 2, logits: []float64{0, math.Log(3)}, means: []float64{-20, 20, 20, -20}, logscales: []float64{-3, -3, -3, -3}}
	m := newMog(t, r, 1)
	const n = 4000
	z := sampleZ(t, m, n, 2)
	second := 0
	for i := range n {
		switch {
		case math.Hypot(z[2*i]+20, z[2*i+1]-20) < 0.5:
		case math.Hypot(z[2*i]-20, z[2*i+1]+20) < 0.5:
			second++
		default:
			t.Fatalf("draw %d = %v, near neither mean", i, z[2*i:2*i+2])
		}
	}
	if f := float64(second) / n; math.Abs(f-0.75) > 5*math.Sqrt(0.75*0.25/n) {
		t.Errorf("fraction from the second component %v, want 0.75", f)
	}
	// Model.Sample: normal noise first, then the uniforms, from one rng.
	imgs, err := m.Sample(3, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	zs := make([][]float32, 3)
	for i := range zs {
		zs[i] = make([]float32, 2)
	}
	eps := make([]float64, 6)
	for i := range eps {
		eps[i] = float64(float32(rng.NormFloat64()))
	}
	for i := range 3 {
		k := 0
		if rng.Float64() >= 0.25 {
			k = 1
		}
		for j := range 2 {
			zs[i][j] = float32(r.means[k*2+j] + math.Exp(-3)*eps[i*2+j])
		}
	}
	want, err := m.Decode(zs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		for j := range want[i] {
			if math.Abs(float64(want[i][j]-imgs[i][j])) > 1e-6 {
				t.Fatalf("Sample image %d pixel %d = %v, decoding the prior draw gives %v", i, j, imgs[i][j], want[i][j])
			}
		}
	}
}

// klEstimates evaluates x repeated n times through the evaluation graph
// and returns the per-row KL column (one-sample estimates, or the closed
// form), log q and log p.
func klEstimates(t *testing.T, m *Model, x []float32, n int, seed uint64) (kl, logq, logp []float64, analytic bool) {
	t.Helper()
	flat := make([]float32, 0, n*len(x))
	for range n {
		flat = append(flat, x...)
	}
	kl, logq, logp = make([]float64, n), make([]float64, n), make([]float64, n)
	err := m.evalFlat(flat, n, rand.New(rand.NewPCG(seed, 9)), func(g *graph, start, rows int) {
		copy(kl[start:start+rows], g.read(outKL, nil))
		copy(logq[start:start+rows], g.read(outLogQ, nil))
		copy(logp[start:start+rows], g.read(outLogP, nil))
		if start == 0 {
			analytic = g.analyticKL
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return kl, logq, logp, analytic
}

// TestMixturePriorMonteCarloKL: the model's KL(q || mog) estimates,
// averaged over draws, against a large-sample oracle computed in Go from
// q's mean and variance (the reference forward pass) and the mixture
// written out.
func TestMixturePriorMonteCarloKL(t *testing.T) {
	r := randomMog(3, 2, 3)
	m := newMog(t, r, 4)
	x := []float32{1, 0, 1, 1, 0, 0}
	kl, _, _, analytic := klEstimates(t, m, x, 4000, 1)
	if analytic {
		t.Fatal("the (diag, mog) KL claims a closed form")
	}
	got, se := meanSE(kl)
	// oracle: 400k draws of z ~ q(z|x) in Go
	h := ref{m}.trunk("encoder", 1, f64(x))
	mu, lv := ref{m}.linear("encoder.mean", h), ref{m}.linear("encoder.logvar", h)
	rng := rand.New(rand.NewPCG(11, 11))
	oracle := make([]float64, 400000)
	z := make([]float64, 2)
	for i := range oracle {
		for j := range z {
			z[j] = mu[j] + math.Exp(lv[j]/2)*rng.NormFloat64()
		}
		oracle[i] = logNormalDiag(z, mu, lv) - r.logP(z)
	}
	want, wse := meanSE(oracle)
	if d := math.Abs(got - want); d > 5*math.Hypot(se, wse) {
		t.Errorf("Monte Carlo KL %v ± %v, oracle %v ± %v", got, se, want, wse)
	}
}

// TestNormalPriorMonteCarloKLMatchesClosedForm: where both exist (diag, N(0,
// I)), the mean of log q - log p over draws matches the closed-form KL.
func TestNormalPriorMonteCarloKLMatchesClosedForm(t *testing.T) {
	m, err := New(Config{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Dtype: "float64"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	kl, logq, logp, analytic := klEstimates(t, m, []float32{1, 1, 0, 1, 0, 1}, 20000, 2)
	if !analytic {
		t.Fatal("(diag, normal) should use its closed form")
	}
	d := make([]float64, len(logq))
	for i := range d {
		d[i] = logq[i] - logp[i]
	}
	got, se := meanSE(d)
	if math.Abs(got-kl[0]) > 5*se {
		t.Errorf("Monte Carlo KL %v ± %v, closed form %v", got, se, kl[0])
	}
}

// lossAt returns the training loss at the model's current weights with
// fixed noise, and its gradient.
func lossAt(t *testing.T, m *Model, x []float32, rows int, opts TrainOptions) (float64, map[string][]float64) {
	t.Helper()
	s, grads := stepAt(t, m, x, rows, opts, 0)
	return s.Loss, grads
}

// stepAt is lossAt after step steps (the KL weight and capacity of that
// step), returning the step's statistics.
func stepAt(t *testing.T, m *Model, x []float32, rows int, opts TrainOptions, step int64) (StepStats, map[string][]float64) {
	t.Helper()
	tr, err := NewTrainer(m, rows, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.state.Step = step
	s, err := tr.gradients(x, rows, tr.beta(1), rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float64{}
	for i, g := range tr.batchGrads() {
		grads[m.params.All()[i].Name] = tensorValues(g, nil)
	}
	return s, grads
}

// checkPriorGradients compares the loss's gradient with respect to some
// entries of the named parameters with central finite differences.
func checkPriorGradients(t *testing.T, m *Model, x []float32, rows int, names []string) {
	t.Helper()
	checkGradients(t, m, x, rows, names, TrainOptions{Epochs: 1, Shards: 1})
}

func checkGradients(t *testing.T, m *Model, x []float32, rows int, names []string, opts TrainOptions) {
	t.Helper()
	checkGradientsAt(t, m, x, rows, names, opts, 0)
}

// checkGradientsAt is checkGradients after step steps.
func checkGradientsAt(t *testing.T, m *Model, x []float32, rows int, names []string, opts TrainOptions, step int64) {
	t.Helper()
	_, grads := stepAt(t, m, x, rows, opts, step)
	nonzero := 0
	defer func() {
		if nonzero == 0 {
			t.Error("every checked gradient is zero: the check is empty")
		}
	}()
	for _, name := range names {
		v := m.params.Get(name).Value.Data().([]float64)
		for _, i := range []int{0, len(v) / 2, len(v) - 1} {
			orig := v[i]
			num := fd.Derivative(func(w float64) float64 {
				v[i] = w
				s, _ := stepAt(t, m, x, rows, opts, step)
				v[i] = orig
				return s.Loss
			}, orig, &fd.Settings{Formula: fd.Central, Step: 1e-5})
			if math.Abs(num) > 1e-6 {
				nonzero++
			}
			if g := grads[name][i]; math.Abs(g-num) > 1e-6+1e-4*math.Abs(num) {
				t.Errorf("d loss / d %s[%d] = %v, finite differences %v", name, i, g, num)
			}
		}
	}
}

// TestMixturePriorGradients: the training loss's gradient with respect to
// the mixture's logits, means and log-scales against finite differences.
func TestMixturePriorGradients(t *testing.T) {
	m := newMog(t, randomMog(3, 2, 5), 6)
	x := synthetic(4, 6, 1)
	checkPriorGradients(t, m, x, 4, []string{"prior.logits", "prior.means", "prior.logscales"})
}

func TestMixturePriorParser(t *testing.T) {
	for _, s := range []string{"mog", "mog:0", "mog:x", "mog:2:3", "mog:-1", "mog:+2"} {
		if _, err := New(Config{DataDim: 4, Latent: 2, Prior: s}, 1); err == nil {
			t.Errorf("prior %q accepted", s)
		}
	}
	m, err := New(Config{DataDim: 4, Latent: 2, Prior: "mog:7"}, 1)
	if err != nil || m.Config().Prior != "mog:7" {
		t.Errorf("mog:7: %v, stored %q", err, m.Config().Prior)
	}
}

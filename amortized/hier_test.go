package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// newTwoLayer is a float64 two-layer model: data width D, encoder hidden
// widths hidden, layers l1, l2, q(z2|z1) hidden widths up.
func newTwoLayer(t *testing.T, D int, hidden []int, l1, l2 int, up []int, seed uint64) *Model {
	t.Helper()
	c := TwoLayerConfig(Config{DataDim: D, Hidden: hidden, Activation: "tanh", Dtype: "float64"}, l1, l2, up)
	m, err := New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gaussAt is (mu, logvar) of a diagonal Gaussian from the heads name.mean,
// name.logvar after an n-layer tanh trunk named name.
func (r ref) gaussAt(name string, n int, in []float64) (mu, lv []float64) {
	h := r.trunk(name, n, append([]float64(nil), in...))
	return r.linear(name+".mean", h), r.linear(name+".logvar", h)
}

// logNormal is sum_j log N(v_j; mu_j, exp(lv_j)).
func logNormal(v, mu, lv []float64) float64 {
	s := 0.0
	for j := range v {
		d := v[j] - mu[j]
		s += -0.5 * (math.Log(2*math.Pi) + lv[j] + d*d/math.Exp(lv[j]))
	}
	return s
}

// twoLayerRef evaluates every term of the two-layer model for one row x
// and noise eps = [eps1, eps2], in plain Go from the parameters.
func (r ref) twoLayer(x, eps []float64) (z []float64, recon, logq, logp float64) {
	c := r.m.cfg
	l2 := r.m.LatentLayers()[1]
	l1 := c.Latent - l2
	f := r.m.family.(*twoLayerFamily)
	p := r.m.prior.(*twoLayerPrior)
	h := r.trunk("encoder", len(c.Hidden), append([]float64(nil), x...))
	mu1, lv1 := r.linear("encoder.mean", h), r.linear("encoder.logvar", h)
	z1 := make([]float64, l1)
	for j := range z1 {
		z1[j] = mu1[j] + math.Exp(lv1[j]/2)*eps[j]
	}
	mu2, lv2 := r.gaussAt("encoder.z2", len(f.hidden), z1)
	z2 := make([]float64, l2)
	for j := range z2 {
		z2[j] = mu2[j] + math.Exp(lv2[j]/2)*eps[l1+j]
	}
	logq = logNormal(z1, mu1, lv1) + logNormal(z2, mu2, lv2)
	logp = r.logPrior(z1, z2, len(p.hidden))
	return append(z1, z2...), r.logLik(x, z1), logq, logp
}

// logPrior is log N(z2; 0, I) + log p(z1|z2).
func (r ref) logPrior(z1, z2 []float64, layers int) float64 {
	mu, lv := r.gaussAt("prior.z1", layers, z2)
	return logNormal(z2, make([]float64, len(z2)), make([]float64, len(z2))) + logNormal(z1, mu, lv)
}

// logLik is the Bernoulli log p(x|z1).
func (r ref) logLik(x, z1 []float64) float64 {
	l := r.linear("decoder.logits", r.trunk("decoder", len(r.m.cfg.DecoderHidden), append([]float64(nil), z1...)))
	s := 0.0
	for d := range x {
		s += x[d]*-math.Log1p(math.Exp(-l[d])) + (1-x[d])*-math.Log1p(math.Exp(l[d]))
	}
	return s
}

func TestTwoLayerConfigForms(t *testing.T) {
	m := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 1)
	c := m.Config()
	if c.Latent != 5 || c.Posterior != "twolayer:2:4,5" || c.Prior != "twolayer:5,4" {
		t.Fatalf("config %+v", c)
	}
	if got := m.LatentLayers(); len(got) != 2 || got[0] != 3 || got[1] != 2 {
		t.Fatalf("LatentLayers %v, want [3 2]", got)
	}
	if got := newSmall(t, "float64", Bernoulli, 1).LatentLayers(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("one-layer LatentLayers %v, want [3]", got)
	}
	// Parameter names and shapes: q(z2|z1) under encoder.z2, p(z1|z2) under
	// prior.z1, the decoder reads z1 (3 wide).
	for name, shape := range map[string][2]int{
		"encoder.mean.weight": {7, 3}, "encoder.z2.0.weight": {3, 4}, "encoder.z2.1.weight": {4, 5},
		"encoder.z2.mean.weight": {5, 2}, "encoder.z2.logvar.bias": {2, 0},
		"prior.z1.0.weight": {2, 5}, "prior.z1.1.weight": {5, 4}, "prior.z1.logvar.weight": {4, 3},
		"decoder.0.weight": {3, 7},
	} {
		p := m.params.Get(name)
		if p == nil {
			t.Errorf("no parameter %s", name)
			continue
		}
		if p.Shape[0] != shape[0] || (shape[1] != 0 && p.Shape[1] != shape[1]) {
			t.Errorf("%s has shape %v, want %v", name, p.Shape, shape)
		}
	}
	n, err := c.NumParams()
	if err != nil || n != int64(m.params.Count()) {
		t.Errorf("NumParams %d (%v), the model has %d", n, err, m.params.Count())
	}
	// The prior's widths may differ from the mirror; no widths means none.
	c2 := c
	c2.Prior, c2.Posterior = "twolayer:6", "twolayer:2"
	if c2, err = c2.Normalize(); err != nil || c2.Posterior != "twolayer:2:" || c2.Prior != "twolayer:6" {
		t.Errorf("twolayer:2 with twolayer:6: %+v %v", c2, err)
	}
}

func TestTwoLayerConfigErrors(t *testing.T) {
	base := Config{DataDim: 4, Hidden: []int{3}, Latent: 3}
	for _, tc := range []struct{ post, prior, want string }{
		{"twolayer:1:2", "", "needs prior twolayer"},
		{"diag", "twolayer", "needs posterior twolayer"},
		{"twolayer:3:2", "twolayer", "from 1 to 2"},
		{"twolayer:0", "twolayer", "from 1 to 2"},
		{"twolayer", "twolayer", "takes L2"},
		{"twolayer:1:2,x", "twolayer", "hidden width W of q(z2|z1)"},
		{"twolayer:1:2", "twolayer:0", "hidden width W of p(z1|z2)"},
		{"twolayer:1:2", "twolayer:2:2", "takes nothing or W"},
	} {
		c := base
		c.Posterior, c.Prior = tc.post, tc.prior
		_, err := c.Normalize()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("posterior %q prior %q: error %v, want one containing %q", tc.post, tc.prior, err, tc.want)
		}
	}
}

// TestTwoLayerTermsMatchDirectEvaluation checks z, log p(x|z1), log q(z|x)
// = log q(z1|x) + log q(z2|z1), log p(z) = log p(z2) + log p(z1|z2) and the
// Monte Carlo KL of the evaluation graph against plain Go, and Encode's
// point summary [mu1, mu2(mu1)].
func TestTwoLayerTermsMatchDirectEvaluation(t *testing.T) {
	m := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 3)
	const B = 4
	x := synthetic(B, 12, 5)
	rng := rand.New(rand.NewPCG(4, 4))
	eps := make([]float64, B*5)
	for i := range eps {
		eps[i] = rng.NormFloat64()
	}
	g, err := m.buildGraph(kindEval, B, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	setRows(g.input(inX), x)
	setRows64(g.input(inEps), eps)
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	rec, lq, lp, kl := g.read(outRecon, nil), g.read(outLogQ, nil), g.read(outLogP, nil), g.read(outKL, nil)
	if g.analyticKL || m.AnalyticKL() {
		t.Error("two-layer KL reported as closed form")
	}
	r := ref{m}
	for i := range B {
		_, wr, wq, wp := r.twoLayer(f64(x[i*12:(i+1)*12]), eps[i*5:(i+1)*5])
		for _, c := range []struct {
			name      string
			got, want float64
		}{{"log p(x|z1)", rec[i], wr}, {"log q(z|x)", lq[i], wq}, {"log p(z)", lp[i], wp}, {"KL", kl[i], wq - wp}} {
			if math.Abs(c.got-c.want) > 1e-9*(1+math.Abs(c.want)) {
				t.Errorf("row %d: %s = %.12g, direct %.12g", i, c.name, c.got, c.want)
			}
		}
	}
	pts, err := m.Encode(rowsOf(x, 12))
	if err != nil {
		t.Fatal(err)
	}
	for i := range B {
		h := r.trunk("encoder", 2, f64(x[i*12:(i+1)*12]))
		mu1 := r.linear("encoder.mean", h)
		mu2, _ := r.gaussAt("encoder.z2", 2, mu1)
		want := append(mu1, mu2...)
		for j := range want {
			if math.Abs(float64(pts[i][j])-want[j]) > 1e-6 {
				t.Errorf("Encode row %d [%d] = %v, want %v", i, j, pts[i][j], want[j])
			}
		}
	}
}

// TestTwoLayerLogQAtMatchesSample: log q at a given z (the score
// estimator's) equals the log q of the draw that produced z.
func TestTwoLayerLogQAtMatchesSample(t *testing.T) {
	m := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 3)
	x := synthetic(2, 12, 5)
	eps := []float64{0.3, -1.2, 0.5, 2.1, -0.4, 1.1, 0.2, -0.7, 0.9, -1.5}
	r := ref{m}
	for i := range 2 {
		z, _, lq, _ := r.twoLayer(f64(x[i*12:(i+1)*12]), eps[i*5:(i+1)*5])
		v, err := logQAtGraph(m, x[i*12:(i+1)*12], z)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(v-lq) > 1e-9*(1+math.Abs(lq)) {
			t.Errorf("row %d: LogQAt %.12g, log q of the draw %.12g", i, v, lq)
		}
	}
}

// logQAtGraph is the family's LogQAt for one row x at z, in a graph of its own.
func logQAtGraph(m *Model, x []float32, z []float64) (v float64, err error) {
	defer recoverBuild(&err, "test graph")
	bd := m.newBuilder(m.params)
	in := bd.input("x", 1, len(x))
	setRows(in, x)
	zn := bd.input("z", 1, len(z))
	setRows64(zn, z)
	got := bd.bindQ(bd.encodeData(in), in).(Invertible).LogQAt(zn)
	vm := G.NewTapeMachine(bd.g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return 0, err
	}
	return valueFloats(got.Value(), nil)[0], nil
}

// TestTwoLayerSampleFollowsPrior: Sample's z2 is its noise and z1 =
// mu(z2) + exp(logvar(z2)/2) n1, the draw of p(z1|z2); the images are the
// decoder's means at z1.
func TestTwoLayerSampleFollowsPrior(t *testing.T) {
	m := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 3)
	const B = 3
	g, err := m.buildGraph(kindSample, B, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	rng := rand.New(rand.NewPCG(1, 9))
	n := make([]float64, B*5)
	for i := range n {
		n[i] = rng.NormFloat64()
	}
	setRows64(g.input(inEps), n)
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	z, mean := g.read(outZ, nil), g.read(outMean, nil)
	r := ref{m}
	for i := range B {
		row := n[i*5 : (i+1)*5]
		mu, lv := r.gaussAt("prior.z1", 2, row[3:])
		want := []float64{0, 0, 0, row[3], row[4]}
		for j := range 3 {
			want[j] = mu[j] + math.Exp(lv[j]/2)*row[j]
		}
		for j := range want {
			if math.Abs(z[i*5+j]-want[j]) > 1e-12 {
				t.Errorf("sample %d: z[%d] = %v, want %v", i, j, z[i*5+j], want[j])
			}
		}
		l := r.linear("decoder.logits", r.trunk("decoder", 2, want[:3]))
		for d := range 12 {
			if p := 1 / (1 + math.Exp(-l[d])); math.Abs(mean[i*12+d]-p) > 1e-12 {
				t.Errorf("sample %d: mean[%d] = %v, want sigmoid(logit) %v", i, d, mean[i*12+d], p)
			}
		}
	}
	// Model.Sample end to end: images in (0, 1), right sizes.
	imgs, err := m.Sample(5, rand.New(rand.NewPCG(2, 2)))
	if err != nil || len(imgs) != 5 || len(imgs[0]) != 12 {
		t.Fatalf("Sample: %d images, err %v", len(imgs), err)
	}
}

// TestTwoLayerLogLikelihoodMatchesQuadrature: D = 3 binary pixels, z1 and
// z2 one-dimensional; log p(x) = log ∫∫ p(x|z1) p(z1|z2) N(z2; 0, 1)
// dz1 dz2 on a fine grid against the importance-sampled estimate with
// weights p(x|z1) p(z1|z2) p(z2) / (q(z1|x) q(z2|z1)).
func TestTwoLayerLogLikelihoodMatchesQuadrature(t *testing.T) {
	m := newTwoLayer(t, 3, []int{3}, 1, 1, []int{2}, 11)
	// Sharpen the decoder and the prior's conditional, so that p(z1|z2) is
	// not flat and the untrained q a poor proposal.
	for _, name := range []string{"decoder.logits.weight", "decoder.0.weight", "prior.z1.mean.weight", "prior.z1.0.weight"} {
		for i, w := range m.params.Get(name).Float64s() {
			m.params.Get(name).Float64s()[i] = 3 * w
		}
	}
	r := ref{m}
	const lim, h = 12.0, 0.01
	n := int(2*lim/h) + 1
	grid := make([]float64, n)
	for i := range grid {
		grid[i] = -lim + h*float64(i)
	}
	// p(z1|z2) per z2 node; N(z2; 0, 1)
	type cond struct{ mu, lv, lz2 float64 }
	conds := make([]cond, n)
	for i, z2 := range grid {
		mu, lv := r.gaussAt("prior.z1", 1, []float64{z2})
		conds[i] = cond{mu[0], lv[0], -0.5 * (math.Log(2*math.Pi) + z2*z2)}
	}
	xs := [][]float32{{1, 0, 1}, {0, 0, 0}, {1, 1, 0}}
	ll, se, err := m.LogLikelihoodSE(xs, 20000, rand.New(rand.NewPCG(3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	for xi, x := range xs {
		lik := make([]float64, n)
		for j, z1 := range grid {
			lik[j] = r.logLik(f64(x), []float64{z1})
		}
		terms := make([]float64, 0, n*n)
		for _, c := range conds {
			for j, z1 := range grid {
				d := z1 - c.mu
				terms = append(terms, lik[j]+c.lz2-0.5*(math.Log(2*math.Pi)+c.lv+d*d/math.Exp(c.lv))+2*math.Log(h))
			}
		}
		truth := logSumExp(terms)
		if math.Abs(ll[xi]-truth) > 4*se[xi]+1e-3 || se[xi] > 0.05 {
			t.Errorf("x = %v: estimate %.4f ± %.4f, quadrature %.4f", x, ll[xi], se[xi], truth)
		}
		t.Logf("x = %v: estimate %.4f ± %.4f, quadrature %.4f", x, ll[xi], se[xi], truth)
	}
}

// TestTwoLayerLossGradients: the training loss's gradient (every
// parameter: the encoder, q(z2|z1), p(z1|z2), the decoder) against central
// differences, for the ELBO with one and two samples, IWAE and the score
// estimator.
func TestTwoLayerLossGradients(t *testing.T) {
	for _, o := range []TrainOptions{{}, {K: 2}, {Objective: ObjectiveIWAE, K: 3}, {Estimator: EstimatorScore, K: 2}} {
		m := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 7)
		t.Run(fmt.Sprintf("%s/k=%d/%s", o.Objective, o.K, o.Estimator), func(t *testing.T) { checkLossGradients(t, m, o) })
	}
}

// TestTwoLayerLocalAndImpute: local optimization of q(z1|x)'s parameters
// (q(z2|z1) stays the shared network) raises the ELBO on the same draws,
// and Impute keeps the observed pixels, through both layers.
func TestTwoLayerLocalAndImpute(t *testing.T) {
	m := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 5)
	x := rowsOf(synthetic(3, 12, 6), 12)
	res, err := m.LocalELBO(x, LocalOptions{}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if !(res.LocalELBO[i] > res.AmortizedELBO[i]) {
			t.Errorf("row %d: local ELBO %v not above the amortized %v", i, res.LocalELBO[i], res.AmortizedELBO[i])
		}
	}
	observed := make([][]bool, len(x))
	for i := range observed {
		observed[i] = make([]bool, 12)
		for j := range 6 {
			observed[i][j] = true
		}
	}
	out, err := m.Impute(x, observed, ImputeOptions{Iters: 3}, rand.New(rand.NewPCG(2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		for j := range 6 {
			if out[i][j] != x[i][j] {
				t.Errorf("Impute changed observed pixel [%d][%d]", i, j)
			}
		}
	}
}

// newTwoLayerVamp is newTwoLayer (D = 6, tanh, L1 = 3, L2 = 2) with a
// VampPrior p(z2) of k pseudo-inputs spread over [-0.3, 1.3], so that the
// clamp acts on some of them.
func newTwoLayerVamp(t *testing.T, k int, seed uint64) *Model {
	t.Helper()
	c := TwoLayerConfig(Config{DataDim: 6, Hidden: []int{5}, Activation: "tanh", Dtype: "float64"}, 3, 2, []int{4})
	c.Prior += fmt.Sprintf(":vamp:%d", k)
	m, err := New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Config().Prior; got != fmt.Sprintf("twolayer:4:vamp:%d", k) {
		t.Fatalf("prior %q", got)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	w := m.params.Get("prior.pseudo").Value.Data().([]float64)
	for i := range w {
		w[i] = -0.3 + 1.6*rng.Float64()
	}
	return m
}

// twoLayerVampComponents are p(z2)'s components, q(z2 | z1 = E q(z1|u_k))
// at each clamped pseudo-input, by the reference forward pass.
func twoLayerVampComponents(m *Model) (mu, lv [][]float64) {
	mu1, _ := vampComponents(m)
	for _, z1 := range mu1 {
		a, b := ref{m}.gaussAt("encoder.z2", 1, z1)
		mu, lv = append(mu, a), append(lv, b)
	}
	return mu, lv
}

// TestTwoLayerVampTopDensity: log p(z) = log p(z2) + log p(z1|z2) with the
// VampPrior p(z2) against the mixture written out in Go, far tails
// included; the pseudo-inputs start as vamp:K's do.
func TestTwoLayerVampTopDensity(t *testing.T) {
	m := newTwoLayerVamp(t, 4, 1)
	mu, lv := twoLayerVampComponents(m)
	z := []float64{0, 0, 0, 0, 0, 0.3, -1, 0.5, 25, -30, 1, 2, 3, -150, 80}
	got := evalNodes(t, m, func(bd *Builder) []*G.Node { return []*G.Node{bd.Prior().LogP(constRows(bd, "z", z, 3, 5))} })[0]
	for n := range 3 {
		z1, z2 := z[5*n:5*n+3], z[5*n+3:5*n+5]
		cm, clv := ref{m}.gaussAt("prior.z1", 1, z2)
		want := vampLogP(z2, mu, lv) + logNormal(z1, cm, clv)
		if math.IsInf(got[n], 0) || math.Abs(got[n]-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("log p(z_%d) = %v, want %v", n, got[n], want)
		}
	}
	fresh, err := New(m.Config(), 2)
	if err != nil {
		t.Fatal(err)
	}
	mean, _ := meanSE(fresh.params.Get("prior.pseudo").Float64s())
	if math.Abs(mean-vampInitMean) > 0.01 {
		t.Errorf("pseudo-inputs start with mean %v, want %v", mean, vampInitMean)
	}
	for _, bad := range []string{"twolayer:4:mog:3", "twolayer:4:vamp:0", "twolayer:4:vamp"} {
		c := m.Config()
		c.Prior = bad
		if _, err := c.Normalize(); err == nil {
			t.Errorf("prior %q accepted", bad)
		}
	}
}

// TestTwoLayerVampTopSampleMoments: z2 of Model samples has the first two
// moments of the VampPrior mixture.
func TestTwoLayerVampTopSampleMoments(t *testing.T) {
	m := newTwoLayerVamp(t, 3, 4)
	mu, lv := twoLayerVampComponents(m)
	const n = 20000
	checkMixtureMoments(t, sampleZ(t, m, n, 3), 5, 3, mu, lv)
}

// TestTwoLayerVampTopGradients: the loss's gradient with respect to the
// pseudo-inputs and to the networks p(z2) reads (q(z1|x)'s and q(z2|z1)'s)
// against finite differences.
func TestTwoLayerVampTopGradients(t *testing.T) {
	m := newTwoLayerVamp(t, 3, 5)
	checkPriorGradients(t, m, synthetic(4, 6, 2), 4, []string{"prior.pseudo", "encoder.0.weight", "encoder.z2.0.weight"})
}

// TestTwoLayerWithStandardConditionalsIsOneLayer: with p(z1|z2) and
// q(z2|z1) both N(0, I) (their heads zeroed) the z2 terms cancel at every
// draw, so the two-layer model is the one-layer model of the same encoder
// and decoder with the one-sample KL: same log p(x|z1), same
// log q - log p row by row at the same eps1, and the same mean ELBO as the
// one-layer model with its closed-form KL.
func TestTwoLayerWithStandardConditionalsIsOneLayer(t *testing.T) {
	two := newTwoLayer(t, 12, []int{9, 7}, 3, 2, []int{4, 5}, 3)
	for _, p := range two.params.All() {
		for _, pre := range []string{"prior.z1.mean.", "prior.z1.logvar.", "encoder.z2.mean.", "encoder.z2.logvar."} {
			if strings.HasPrefix(p.Name, pre) {
				p.Value.Zero()
			}
		}
	}
	one := newSmall(t, "float64", Bernoulli, 4)
	shared := 0
	for _, p := range one.params.All() {
		q := two.params.Get(p.Name)
		if q == nil {
			t.Fatalf("the two-layer model has no %s", p.Name)
		}
		copy(p.Float64s(), q.Float64s())
		shared++
	}
	if shared < 10 {
		t.Fatalf("only %d shared parameters", shared)
	}
	const B = 4
	x := synthetic(B, 12, 5)
	rng := rand.New(rand.NewPCG(6, 6))
	eps2, eps1 := make([]float64, B*5), make([]float64, B*3)
	for i := range B {
		for j := range 5 {
			eps2[i*5+j] = rng.NormFloat64()
			if j < 3 {
				eps1[i*3+j] = eps2[i*5+j]
			}
		}
	}
	run := func(m *Model, eps []float64) (rec, kl []float64) {
		g, err := m.buildGraph(kindEval, B, TrainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer g.close()
		setRows(g.input(inX), x)
		setRows64(g.input(inEps), eps)
		if err := g.run(); err != nil {
			t.Fatal(err)
		}
		rec, lq, lp := g.read(outRecon, nil), g.read(outLogQ, nil), g.read(outLogP, nil)
		kl = make([]float64, B)
		for i := range kl {
			kl[i] = lq[i] - lp[i]
		}
		return rec, kl
	}
	rec2, kl2 := run(two, eps2)
	rec1, kl1 := run(one, eps1)
	for i := range B {
		if math.Abs(rec2[i]-rec1[i]) > 1e-10*(1+math.Abs(rec1[i])) || math.Abs(kl2[i]-kl1[i]) > 1e-10*(1+math.Abs(kl1[i])) {
			t.Errorf("row %d: two layers recon %.12g KL %.12g, one layer recon %.12g KL %.12g", i, rec2[i], kl2[i], rec1[i], kl1[i])
		}
	}
	// Its mean ELBO is the one-layer model's, whose KL is the closed form.
	const n = 20000
	xs := make([]float32, 0, n*12)
	for range n {
		xs = append(xs, x[:12]...)
	}
	elbo, err := two.ELBO(rowsOf(xs, 12), rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	var s, ss float64
	for _, v := range elbo {
		s += v
		ss += v * v
	}
	mean := s / n
	se := math.Sqrt((ss/n - mean*mean) / n)
	ref1, err := one.ELBO(rowsOf(xs, 12), rand.New(rand.NewPCG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	var s1 float64
	for _, v := range ref1 {
		s1 += v
	}
	if d := mean - s1/n; math.Abs(d) > 4*se {
		t.Errorf("mean ELBO: two layers %.4f ± %.4f, one layer (closed-form KL) %.4f", mean, se, s1/n)
	}
}

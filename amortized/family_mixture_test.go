package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var mixtureFamilies = []string{"mixture:3", "mixture:1"}

// TestMixtureEveryToolAndResume: the public API, exact resume, learning and
// parallel log p(x), as for the other families.
func TestMixtureEveryToolAndResume(t *testing.T) {
	saved := families
	defer func() { families = saved }()
	families = append([]string{"diag"}, mixtureFamilies...)
	t.Run("API", TestEveryFamilyPublicAPI)
	t.Run("resume", TestEveryFamilyResumesExactly)
	t.Run("learns", TestEveryFamilyLearnsThePrototypes)
	t.Run("parallel", TestLogLikelihoodEveryFamilyIndependentOfParallelism)
}

// TestMixtureLossGradients: the stratified objectives' gradients (ELBO,
// k = 2, SIWAE) against central differences of the loss.
func TestMixtureLossGradients(t *testing.T) {
	for _, post := range []string{"mixture:3"} {
		for _, o := range []TrainOptions{{}, {K: 2}, {Objective: ObjectiveIWAE, K: 3}} {
			lik := Bernoulli
			if o.K == 2 {
				lik = Gaussian
			}
			m := newFamily(t, post, "float64", lik, 7)
			t.Run(fmt.Sprintf("%s/%s/k=%d", post, o.Objective, o.K), func(t *testing.T) { checkLossGradients(t, m, o) })
		}
	}
}

// TestMixtureLogLikelihoodMatchesQuadrature: importance sampling with the
// stratified weights sum_c pi_c p(x, z_c)/q(z_c|x) estimates the exact
// log p(x) (2-D quadrature).
func TestMixtureLogLikelihoodMatchesQuadrature(t *testing.T) {
	xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
	m := latent2ModelFor(t, "mixture:3")
	ll, se, err := m.LogLikelihoodSE(xs, 3000, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range xs {
		truth := quadLogPx(t, m, x)
		t.Logf("row %d: IS %.4f ± %.4f, quadrature %.4f", i, ll[i], se[i], truth)
		if math.Abs(ll[i]-truth) > 4*se[i]+1e-3 || se[i] > 0.15 {
			t.Errorf("row %d: estimate %.4f ± %.4f, quadrature %.4f", i, ll[i], se[i], truth)
		}
	}
}

// mixtureRef evaluates the mixture's formulas directly from its heads
// (logits, means, logvars of one row).
type mixtureRef struct {
	C, L          int
	logits, m, lv []float64
}

func (r mixtureRef) logPi() []float64 {
	mx := math.Inf(-1)
	for _, v := range r.logits {
		mx = math.Max(mx, v)
	}
	s := 0.0
	for _, v := range r.logits {
		s += math.Exp(v - mx)
	}
	out := make([]float64, r.C)
	for c, v := range r.logits {
		out[c] = v - mx - math.Log(s)
	}
	return out
}

// logQ is log sum_c pi_c N(z; mu_c, e^lv_c), summed directly.
func (r mixtureRef) logQ(z []float64) float64 {
	lp, s := r.logPi(), 0.0
	for c := range r.C {
		ln := 0.0
		for j := range r.L {
			v := math.Exp(r.lv[c*r.L+j])
			d := z[j] - r.m[c*r.L+j]
			ln += -0.5*d*d/v - 0.5*math.Log(2*math.Pi*v)
		}
		s += math.Exp(lp[c] + ln)
	}
	return math.Log(s)
}

// bernoulliLogProb is log p(x|z) from the decoder's means.
func bernoulliLogProb(x []float32, p []float32) float64 {
	s := 0.0
	for i, v := range x {
		if v > 0.5 {
			s += math.Log(float64(p[i]))
		} else {
			s += math.Log1p(-float64(p[i]))
		}
	}
	return s
}

// TestMixtureLogWeightIsStratified: the log-weight graph's value per row is
// log sum_c pi_c p(x|z_c) p(z_c) / q(z_c|x) with z_c = mu_c + sigma_c eps_c,
// the mixture's density and the decoder evaluated directly.
func TestMixtureLogWeightIsStratified(t *testing.T) {
	m := latent2ModelFor(t, "mixture:3")
	const C, L, n = 3, 2, 4
	xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 0, 0, 0, 0, 0}}
	q, err := m.encodeHeads(f32flat(xs), n)
	if err != nil {
		t.Fatal(err)
	}
	g, err := m.buildGraph(kindLogW, n, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	rng := rand.New(rand.NewPCG(3, 3))
	// Logits far from equal, so that the weights matter.
	for i := range q[0] {
		q[0][i] = 2 * rng.NormFloat64()
	}
	eps := randn(rng, n*(C*L+2))
	setRows(g.input(inX), f32flat(xs))
	for h, hd := range m.qHeads() {
		setRows64(g.input(inHead+hd.Name), q[h])
	}
	setRows64(g.input(inEps), eps)
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	lw := g.read(outLogW, nil)
	for r := range n {
		ref := mixtureRef{C: C, L: L, logits: q[0][r*C : (r+1)*C], m: q[1][r*C*L : (r+1)*C*L], lv: q[2][r*C*L : (r+1)*C*L]}
		lp := ref.logPi()
		want := 0.0
		for c := range C {
			z := make([]float64, L)
			for j := range L {
				z[j] = ref.m[c*L+j] + math.Exp(ref.lv[c*L+j]/2)*eps[r*(C*L+2)+c*L+j]
			}
			p, err := m.Decode([][]float32{{float32(z[0]), float32(z[1])}})
			if err != nil {
				t.Fatal(err)
			}
			logw := bernoulliLogProb(xs[r], p[0]) + logStdNormalRow(z) - ref.logQ(z)
			want += math.Exp(lp[c] + logw)
		}
		want = math.Log(want)
		if math.Abs(lw[r]-want) > 1e-4*(1+math.Abs(want)) {
			t.Errorf("row %d: log w %v, direct %v", r, lw[r], want)
		}
	}
}

// TestMixtureStratifiedELBOIsUnbiased: the mean of the stratified ELBO
// estimate sum_c pi_c (log p(x|z_c) + log p(z_c) - log q(z_c|x)) over many
// draws equals the ELBO estimated by sampling the mixture directly
// (component c ~ pi, z ~ N(mu_c, sigma_c²)) with many samples, evaluated
// from the heads and the decoder outside the graph.
func TestMixtureStratifiedELBOIsUnbiased(t *testing.T) {
	m := latent2ModelFor(t, "mixture:3")
	const C, L = 3, 2
	// Unequal weights that depend on x.
	b := m.params.Get("encoder.mix.logits.bias").Float64s()
	b[0], b[1], b[2] = 1.2, -0.8, 0.1
	x := []float32{1, 0, 1, 1, 0, 0, 1, 0}
	const N = 4000
	rows := make([][]float32, N)
	for i := range rows {
		rows[i] = x
	}
	strat, err := m.ELBO(rows, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	sMean, sSE := meanSE(strat)

	q, err := m.encodeHeads(x, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := mixtureRef{C: C, L: L, logits: q[0], m: q[1], lv: q[2]}
	lp := ref.logPi()
	rng := rand.New(rand.NewPCG(2, 2))
	const M = 40000
	zs := make([][]float32, M)
	z64 := make([][]float64, M)
	for i := range zs {
		u, c := rng.Float64(), 0
		for acc := math.Exp(lp[0]); u >= acc && c < C-1; acc += math.Exp(lp[c]) {
			c++
		}
		z64[i] = make([]float64, L)
		zs[i] = make([]float32, L)
		for j := range L {
			z64[i][j] = ref.m[c*L+j] + math.Exp(ref.lv[c*L+j]/2)*rng.NormFloat64()
			z64[i][j] = float64(float32(z64[i][j]))
			zs[i][j] = float32(z64[i][j])
		}
	}
	probs, err := m.Decode(zs)
	if err != nil {
		t.Fatal(err)
	}
	direct := make([]float64, M)
	for i := range direct {
		direct[i] = bernoulliLogProb(x, probs[i]) + logStdNormalRow(z64[i]) - ref.logQ(z64[i])
	}
	dMean, dSE := meanSE(direct)
	t.Logf("pi %.3f %.3f %.3f: stratified ELBO %.4f ± %.4f (sd per draw %.3f), direct %.4f ± %.4f (sd per draw %.3f)",
		math.Exp(lp[0]), math.Exp(lp[1]), math.Exp(lp[2]), sMean, sSE, sSE*math.Sqrt(N), dMean, dSE, dSE*math.Sqrt(M))
	if math.Abs(sMean-dMean) > 4*math.Hypot(sSE, dSE) {
		t.Errorf("stratified ELBO %.4f ± %.4f, direct %.4f ± %.4f: biased", sMean, sSE, dMean, dSE)
	}
	// The mixture is not one of its components: with unequal, overlapping
	// components the check distinguishes a wrong log q.
	if math.Min(math.Exp(lp[1]), math.Exp(lp[2])) < 0.05 {
		t.Errorf("weights %v: the test case is too close to a single component", lp)
	}
}

// TestMixtureSampleFollowsTheWeights: the single z per row that Sample
// draws (Reconstruct, Impute) picks component c with probability pi_c.
func TestMixtureSampleFollowsTheWeights(t *testing.T) {
	m := latent2ModelFor(t, "mixture:3")
	const C, L, n = 3, 2, 3000
	g, err := m.buildGraph(kindLogW, n, TrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	logits, means, lvs := []float64{0.7, -1, 0.2}, []float64{-20, 0, 0, 0, 20, 5}, []float64{-2, -2, -2, -2, -2, -2}
	heads := [][]float64{nil, nil, nil}
	for range n {
		heads[0], heads[1], heads[2] = append(heads[0], logits...), append(heads[1], means...), append(heads[2], lvs...)
	}
	for h, hd := range m.qHeads() {
		setRows64(g.input(inHead+hd.Name), heads[h])
	}
	setRows(g.input(inX), make([]float32, n*8))
	setRows64(g.input(inEps), randn(rand.New(rand.NewPCG(4, 4)), n*(C*L+2)))
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	z := g.read(outZ, nil)
	lp := mixtureRef{C: C, L: L, logits: logits}.logPi()
	count := make([]int, C)
	for r := range n {
		c := 1
		switch {
		case z[r*L] < -10:
			c = 0
		case z[r*L] > 10:
			c = 2
		}
		count[c]++
		if d := math.Hypot(z[r*L]-means[c*L], z[r*L+1]-means[c*L+1]); d > 3 {
			t.Fatalf("row %d: z %v is %v from component %d's mean", r, z[r*L:(r+1)*L], d, c)
		}
	}
	for c := range C {
		p := math.Exp(lp[c])
		if sd := math.Sqrt(n * p * (1 - p)); math.Abs(float64(count[c])-n*p) > 5*sd {
			t.Errorf("component %d drawn %d times of %d, want %v ± %v", c, count[c], n, n*p, sd)
		}
	}
}

// TestMixtureBoundsOrdered: averaged over draws, the stratified ELBO sits
// below the SIWAE bound with k = 20, itself below log p(x).
func TestMixtureBoundsOrdered(t *testing.T) {
	checkBoundsOrdered(t, "mixture:2", "SIWAE")
}

// TestLocalELBOMixtureAndAux: per-example optimization of q's heads works
// for the stratified mixture and the auxiliary posterior: the optimized
// bound rises above the amortized one and stays below log p(x), and
// importance sampling with the optimized q finds log p(x).
func TestLocalELBOMixtureAndAux(t *testing.T) {
	base := latent2Model(t)
	xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
	for _, post := range []string{"mixture:2", "aux:2"} {
		m := localWithDecoderOf(t, base, post)
		res, err := m.LocalELBO(xs, LocalOptions{Steps: 300, EvalSamples: 3000}, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			truth := quadLogPx(t, base, x)
			t.Logf("%s row %d: log p(x) %.4f, IW(q*) %.4f, ELBO* %.4f, ELBO %.4f", post, i, truth, res.LocalIW[i], res.LocalELBO[i], res.AmortizedELBO[i])
			if !(res.LocalELBO[i] <= truth+0.02 && res.LocalELBO[i] > res.AmortizedELBO[i]) || math.Abs(res.LocalIW[i]-truth) > 0.03 {
				t.Errorf("%s row %d: log p(x) %.4f, IW(q*) %.4f, ELBO* %.4f, ELBO %.4f", post, i, truth, res.LocalIW[i], res.LocalELBO[i], res.AmortizedELBO[i])
			}
		}
	}
}

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

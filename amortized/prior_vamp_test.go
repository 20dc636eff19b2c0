package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// newVamp is a float64 model with the VampPrior of k pseudo-inputs, whose
// pre-clamp values are spread over [-0.3, 1.3] so that the clamp acts on
// some of them.
func newVamp(t *testing.T, k int, posterior string, seed uint64) *Model {
	t.Helper()
	m, err := New(Config{DataDim: 6, Hidden: []int{5}, Latent: 2, Activation: "tanh", Posterior: posterior,
		Prior: fmt.Sprintf("vamp:%d", k), Dtype: "float64"}, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	w := m.params.Get("prior.pseudo").Value.Data().([]float64)
	for i := range w {
		w[i] = -0.3 + 1.6*rng.Float64()
	}
	return m
}

// vampComponents are the encoder's mean and log-variance at each clamped
// pseudo-input, by the reference forward pass.
func vampComponents(m *Model) (mu, lv [][]float64) {
	w := m.params.Get("prior.pseudo")
	k, d := w.Shape[0], w.Shape[1]
	for i := range k {
		u := make([]float64, d)
		for j := range u {
			u[j] = math.Min(1, math.Max(0, w.Float64s()[i*d+j]))
		}
		h := ref{m}.trunk("encoder", len(m.cfg.Hidden), u)
		mu = append(mu, ref{m}.linear("encoder.mean", h))
		lv = append(lv, ref{m}.linear("encoder.logvar", h))
	}
	return mu, lv
}

// vampLogP is log (1/K) sum_k N(z; mu_k, e^lv_k), written out.
func vampLogP(z []float64, mu, lv [][]float64) float64 {
	a := make([]float64, len(mu))
	for k := range a {
		a[k] = logNormalDiag(z, mu[k], lv[k]) - math.Log(float64(len(mu)))
	}
	return logSumExp(a)
}

// TestVampPriorDensity: log p(z) of the VampPrior, by the closed-form path
// of the diag family and by the tiled path any invertible family takes,
// against the encoder run on the clamped pseudo-inputs in Go and the
// mixture written out; far tails included.
func TestVampPriorDensity(t *testing.T) {
	m := newVamp(t, 4, Diagonal, 1)
	mu, lv := vampComponents(m)
	z := []float64{0, 0, 0.3, -1, 25, -30, -150, 80}
	got := evalNodes(t, m, func(bd *Builder) []*G.Node {
		zn := constRows(bd, "z", z, 4, 2)
		return []*G.Node{bd.Prior().LogP(zn), bd.Prior().(*boundVamp).logPTiled(zn)}
	})
	for path, vals := range got {
		for n := range 4 {
			want := vampLogP(z[2*n:2*n+2], mu, lv)
			if math.IsInf(vals[n], 0) || math.Abs(vals[n]-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("path %d: log p(z_%d) = %v, want %v", path, n, vals[n], want)
			}
		}
	}
}

// TestVampPriorFamilies: fullcov (invertible) works through the tiled path
// and agrees with its own log q at each pseudo-input averaged by hand;
// flows are refused with a message naming the reason.
func TestVampPriorFamilies(t *testing.T) {
	m := newVamp(t, 3, FullCov, 2)
	z := []float64{0.5, -0.2, 2, 1}
	got := evalNodes(t, m, func(bd *Builder) []*G.Node {
		zn := constRows(bd, "z", z, 2, 2)
		out := []*G.Node{bd.Prior().LogP(zn)}
		// log q(z_n | u_k) one pseudo-input at a time, as the oracle
		heads := bd.Prior().(*boundVamp).heads
		for k := range 3 {
			sel := make([]float64, 2*3) // 2 x 3 selecting row k twice
			sel[k], sel[3+k] = 1, 1
			s := bd.Const(fmt.Sprintf("sel%d", k), sel, 2, 3)
			hk := HeadValues{}
			for name, h := range heads {
				hk[name] = must(G.Mul(s, h))
			}
			out = append(out, bd.Family().Bind(bd, QInput{Heads: hk}).(Invertible).LogQAt(zn))
		}
		return out
	})
	for n := range 2 {
		want := logSumExp([]float64{got[1][n], got[2][n], got[3][n]}) - math.Log(3)
		if math.Abs(got[0][n]-want) > 1e-9 {
			t.Errorf("fullcov: log p(z_%d) = %v, want %v", n, got[0][n], want)
		}
	}
	for _, post := range []string{"planar:2", "iaf:1"} {
		_, err := New(Config{DataDim: 6, Latent: 2, Posterior: post, Prior: "vamp:3"}, 1)
		if err == nil || !strings.Contains(err.Error(), "log q(z|u_k)") {
			t.Errorf("vamp with %s: %v, want a refusal naming log q(z|u_k)", post, err)
		}
	}
	for _, s := range []string{"vamp", "vamp:0", "vamp:2:images", "vamp:2:data:1"} {
		if _, err := New(Config{DataDim: 4, Latent: 2, Prior: s}, 1); err == nil {
			t.Errorf("prior %q accepted", s)
		}
	}
}

// TestVampPriorInit: W ~ N(0.05, 0.01^2) (inside hardtanh's linear range);
// vamp:K:data starts at K training images instead.
func TestVampPriorInit(t *testing.T) {
	m, err := New(Config{DataDim: 50, Hidden: []int{5}, Latent: 2, Prior: "vamp:20", Dtype: "float64"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := m.params.Get("prior.pseudo").Float64s()
	var s, s2 float64
	for _, v := range w {
		s += v
		s2 += v * v
	}
	n := float64(len(w))
	if mean, sd := s/n, math.Sqrt(s2/n-s*s/n/n); math.Abs(mean-0.05) > 0.002 || math.Abs(sd-0.01) > 0.001 {
		t.Errorf("pseudo-inputs: mean %v, sd %v, want 0.05 and 0.01", mean, sd)
	}
	if m.WantsData() {
		t.Error("vamp:20 wants data")
	}
	md, err := New(Config{DataDim: 4, Latent: 2, Prior: "vamp:3:data", Dtype: "float64"}, 1)
	if err != nil || md.Config().Prior != "vamp:3:data" || !md.WantsData() {
		t.Fatalf("vamp:3:data: %v, stored %q", err, md.Config().Prior)
	}
	x := [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}, {1, 1, 1, 1}}
	if err := md.InitFromData(x, 3); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	p := md.params.Get("prior.pseudo").Float64s()
	for k := range 3 {
		row := fmt.Sprint(p[k*4 : k*4+4])
		found := false
		for _, r := range x {
			found = found || row == fmt.Sprint(f64(r))
		}
		if !found || seen[row] {
			t.Errorf("pseudo-input %d = %s: not a distinct training image", k, row)
		}
		seen[row] = true
	}
	if err := md.InitFromData([][]float32{{2, 0, 0, 0}}, 3); err == nil {
		t.Error("a pixel of 2 accepted for a Bernoulli model's pseudo-inputs")
	}
}

// TestVampPriorSampleMoments: z ~ p(z) by the sampler against the mean and
// variance of the equal mixture of the q(z|u_k).
func TestVampPriorSampleMoments(t *testing.T) {
	m := newVamp(t, 3, Diagonal, 4)
	mu, lv := vampComponents(m)
	const n = 20000
	checkMixtureMoments(t, sampleZ(t, m, n, 3), 2, 0, mu, lv)
}

// checkMixtureMoments checks the first two moments of columns off.. of z
// (rows of width stride) against those of the equal-weight mixture of
// N(mu_k, diag(exp(lv_k))), within 5 standard errors.
func checkMixtureMoments(t *testing.T, z []float64, stride, off int, mu, lv [][]float64) {
	t.Helper()
	n, K := len(z)/stride, float64(len(mu))
	for j := range mu[0] {
		var mean, second, fourth float64
		for k := range mu {
			a, s2 := mu[k][j], math.Exp(lv[k][j])
			mean += a / K
			second += (s2 + a*a) / K
			fourth += (a*a*a*a + 6*a*a*s2 + 3*s2*s2) / K
		}
		var s, s2 float64
		for i := range n {
			v := z[i*stride+off+j]
			s, s2 = s+v, s2+v*v
		}
		N := float64(n)
		if se := math.Sqrt((second - mean*mean) / N); math.Abs(s/N-mean) > 5*se {
			t.Errorf("dim %d: sample mean %v, mixture %v (se %v)", off+j, s/N, mean, se)
		}
		if se := math.Sqrt((fourth - second*second) / N); math.Abs(s2/N-second) > 5*se {
			t.Errorf("dim %d: sample E z^2 %v, mixture %v (se %v)", off+j, s2/N, second, se)
		}
	}
}

// TestVampPriorGradients: the training loss's gradient with respect to the
// pseudo-inputs (through the encoder) and to an encoder weight (which the
// prior reads too) against finite differences.
func TestVampPriorGradients(t *testing.T) {
	m := newVamp(t, 3, Diagonal, 5)
	checkPriorGradients(t, m, synthetic(4, 6, 2), 4, []string{"prior.pseudo", "encoder.0.weight"})
}

// TestVampPriorMonteCarloKL: the model's KL estimates against a large-sample
// oracle in Go.
func TestVampPriorMonteCarloKL(t *testing.T) {
	m := newVamp(t, 3, Diagonal, 6)
	x := []float32{0, 1, 1, 0, 1, 0}
	kl, _, _, analytic := klEstimates(t, m, x, 4000, 3)
	if analytic || m.AnalyticKL() {
		t.Fatal("the (diag, vamp) KL claims a closed form")
	}
	got, se := meanSE(kl)
	cmu, clv := vampComponents(m)
	h := ref{m}.trunk("encoder", 1, f64(x))
	mu, lv := ref{m}.linear("encoder.mean", h), ref{m}.linear("encoder.logvar", h)
	rng := rand.New(rand.NewPCG(12, 12))
	oracle := make([]float64, 200000)
	z := make([]float64, 2)
	for i := range oracle {
		for j := range z {
			z[j] = mu[j] + math.Exp(lv[j]/2)*rng.NormFloat64()
		}
		oracle[i] = logNormalDiag(z, mu, lv) - vampLogP(z, cmu, clv)
	}
	want, wse := meanSE(oracle)
	if d := math.Abs(got - want); d > 5*math.Hypot(se, wse) {
		t.Errorf("Monte Carlo KL %v ± %v, oracle %v ± %v", got, se, want, wse)
	}
}

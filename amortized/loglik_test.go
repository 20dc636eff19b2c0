package amortized

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// quadLogPx computes log p(x) = log ∫ p(x|z) N(z; 0, I) dz for a model with
// a 2-D latent space by a Riemann sum on [-7, 7]^2: a known answer to check
// the importance-sampling estimator against, for any decoder.
func quadLogPx(t *testing.T, m *Model, x []float32) float64 {
	t.Helper()
	const n, lim = 281, 7.0
	h := 2 * lim / float64(n-1)
	z := make([][]float32, 0, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			z = append(z, []float32{float32(-lim + h*float64(i)), float32(-lim + h*float64(j))})
		}
	}
	probs, err := m.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	terms := make([]float64, len(z))
	for r, p := range probs {
		lp := -0.5*(float64(z[r][0])*float64(z[r][0])+float64(z[r][1])*float64(z[r][1])) - math.Log(2*math.Pi)
		for d, v := range p {
			if x[d] == 1 {
				lp += math.Log(float64(v))
			} else {
				lp += math.Log1p(-float64(v))
			}
		}
		terms[r] = lp + 2*math.Log(h)
	}
	return logSumExp(terms)
}

func logSumExp(v []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = math.Max(mx, x)
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - mx)
	}
	return mx + math.Log(s)
}

func latent2Model(t *testing.T) *Model { return latent2ModelFor(t, Diagonal) }

// latent2ModelFor is the 2-D latent test model with posterior post.
func latent2ModelFor(t *testing.T, post string) *Model {
	t.Helper()
	return latent2ModelOf(t, post, "float64")
}

// latent2ModelOf is latent2ModelFor in the dtype.
func latent2ModelOf(t *testing.T, post, dtype string) *Model {
	t.Helper()
	m, err := New(Config{DataDim: 8, Hidden: []int{6}, Latent: 2, Activation: "tanh", Dtype: dtype, Posterior: post}, 21)
	if err != nil {
		t.Fatal(err)
	}
	drawZeroInitHeads(m, 21)
	// Sharpen the decoder so the posterior is far from the prior and the
	// untrained encoder a poor proposal: the estimator must still converge.
	for _, name := range []string{"decoder.logits.weight", "decoder.0.weight"} {
		for i, w := range m.params.Get(name).Float64s() {
			m.params.Get(name).Float64s()[i] = 3 * w
		}
		for i, w := range m.params.Get(name).Float32s() {
			m.params.Get(name).Float32s()[i] = 3 * w
		}
	}
	return m
}

// TestLogLikelihoodMatchesQuadrature checks the estimate against
// quadrature, in float64 (the graph path) and float32 (diagLogW's).
func TestLogLikelihoodMatchesQuadrature(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		m := latent2ModelOf(t, Diagonal, dtype)
		if got, want := m.diagLogW(), dtype == "float32"; got != want {
			t.Fatalf("%s: direct path %v, want %v", dtype, got, want)
		}
		xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
		ll, se, err := m.LogLikelihoodSE(xs, 5000, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			truth := quadLogPx(t, m, x)
			if math.Abs(ll[i]-truth) > 4*se[i]+1e-3 || se[i] > 0.05 {
				t.Errorf("%s row %d: estimate %.4f ± %.4f, quadrature %.4f", dtype, i, ll[i], se[i], truth)
			}
		}
	}
}

// TestLogLikelihoodTightensWithK averages the gap to the truth over many
// independent estimates: it must shrink as k grows, the ELBO must lie below
// every k's estimate, and no estimate may exceed the truth by more than noise.
func TestLogLikelihoodTightensWithK(t *testing.T) {
	m := latent2Model(t)
	x := []float32{1, 0, 1, 1, 0, 0, 1, 0}
	truth := quadLogPx(t, m, x)
	reps := make([][]float32, 300)
	for i := range reps {
		reps[i] = x
	}
	rng := rand.New(rand.NewPCG(3, 4))
	elbo, err := m.ELBO(reps, rng)
	if err != nil {
		t.Fatal(err)
	}
	// k = 1 is the ELBO with a sampled KL: equal in expectation.
	elboGap := truth - mean(elbo)
	prevGap := math.Inf(1)
	for _, k := range []int{1, 10, 100, 1000} {
		ll, err := m.LogLikelihood(reps, k, rng)
		if err != nil {
			t.Fatal(err)
		}
		gap := truth - mean(ll)
		t.Logf("k=%4d: log p(x) - estimate = %.4f (ELBO gap %.4f)", k, gap, elboGap)
		switch {
		case k == 1 && math.Abs(gap-elboGap) > 0.25*elboGap:
			t.Errorf("k=1: gap %.4f, the ELBO's %.4f", gap, elboGap)
		case gap < -0.01:
			t.Errorf("k=%d: estimate %.4f above log p(x) on average", k, -gap)
		case gap > 0.01 && !(gap < prevGap):
			// Beyond noise the bias must shrink with k (Burda et al. 2015).
			t.Errorf("k=%d: mean gap %.4f, previous %.4f", k, gap, prevGap)
		}
		prevGap = gap
	}
	if prevGap > 0.01 {
		t.Errorf("k=1000 still %.4f nats below the truth", prevGap)
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestLogLikelihoodSeedsAgreeWithinError evaluates the same data with two
// seeds: the dataset means must agree within their reported Monte Carlo error.
func TestLogLikelihoodSeedsAgreeWithinError(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 5)
	x := rowsOf(synthetic(60, 12, 2), 12)
	var means, ses [2]float64
	for i, seed := range []uint64{10, 11} {
		ll, se, err := m.LogLikelihoodSE(x, 50, rand.New(rand.NewPCG(seed, 0)))
		if err != nil {
			t.Fatal(err)
		}
		var v float64
		for j := range ll {
			means[i] += ll[j] / float64(len(ll))
			v += se[j] * se[j]
		}
		ses[i] = math.Sqrt(v) / float64(len(ll))
	}
	if d := math.Abs(means[0] - means[1]); d > 4*math.Hypot(ses[0], ses[1]) || d == 0 {
		t.Fatalf("seeds give %.5f and %.5f (standard errors %.5f, %.5f)", means[0], means[1], ses[0], ses[1])
	}
}

func TestLogLikelihoodIndependentOfParallelism(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 5)
	x := rowsOf(synthetic(33, 12, 2), 12)
	run := func(procs int) []float64 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		ll, err := m.LogLikelihood(x, 700, rand.New(rand.NewPCG(1, 1))) // k > chunk: rows split across chunks
		if err != nil {
			t.Fatal(err)
		}
		return ll
	}
	a, b := run(1), run(3)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("row %d: %v with 1 worker, %v with 3", i, a[i], b[i])
		}
	}
}

func TestLogLikelihoodBadInput(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 5)
	x := rowsOf(synthetic(2, 12, 2), 12)
	if _, err := m.LogLikelihood(x, 0, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("k = 0 accepted")
	}
	if _, err := m.LogLikelihood(x, 5, nil); err == nil {
		t.Error("nil rng accepted")
	}
	if _, err := m.LogLikelihood([][]float32{{1}}, 5, rand.New(rand.NewPCG(1, 1))); err == nil {
		t.Error("short row accepted")
	}
	_, se, _ := m.LogLikelihoodSE(x, 1, rand.New(rand.NewPCG(1, 1)))
	if !math.IsNaN(se[0]) {
		t.Errorf("k = 1 standard error %v, want NaN", se[0])
	}
}

// TestLSEAccumulatorIsStable feeds weights far outside float64's exp range.
func TestLSEAccumulatorIsStable(t *testing.T) {
	var a lseAcc
	for _, v := range []float64{-1000, -1001, -999, -1000.5} {
		a.add(v)
	}
	got, _ := a.result(4)
	want := logSumExp([]float64{-1000, -1001, -999, -1000.5}) - math.Log(4)
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("got %v, want %v", got, want)
	}
}

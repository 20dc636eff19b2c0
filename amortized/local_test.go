package amortized

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// localFamilies are the posterior forms LocalELBO is tested on.
var localFamilies = []string{"diag", "fullcov", "planar:2", "radial:2", "iaf:1", "householder:2", "sylvester-triangular:2"}

// TestLocalELBOGradientMatchesFiniteDifferences checks the gradient of the
// local objective (-ELBO summed over real rows, at fixed noise) with respect
// to every per-row parameter of q against central differences, for every
// family and both likelihoods, with several draws per row and a padding row
// whose gradient must be zero.
func TestLocalELBOGradientMatchesFiniteDifferences(t *testing.T) {
	for _, post := range localFamilies {
		for _, lik := range []string{Bernoulli, Gaussian} {
			if lik == Gaussian && post != "diag" && post != "planar:2" {
				continue
			}
			cfg := smallConfig("float64", lik)
			cfg.Posterior = post
			m, err := New(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			const B, M = 3, 4
			L, D := m.cfg.Latent, m.cfg.DataDim
			lg, err := m.newLocalGraph(m.params, B, M)
			if err != nil {
				t.Fatal(err)
			}
			x := synthetic(2, D, 5) // two real rows, one padding row
			if lik == Gaussian {
				for i := range x {
					x[i] = 0.1 + 0.8*x[i]
				}
			}
			xk := make([]float32, 0, 2*M*D)
			for b := range 2 {
				for range M {
					xk = append(xk, x[b*D:(b+1)*D]...)
				}
			}
			setRows(lg.x, xk)
			setRows64(lg.w, []float64{1, 1, 0})
			rng := rand.New(rand.NewPCG(4, 4))
			eps := make([]float64, B*M*L)
			for i := range eps {
				eps[i] = rng.NormFloat64()
			}
			setRows64(lg.eps, eps)
			widths := m.headWidths()
			params := make([][]float64, len(widths))
			for h, w := range widths {
				params[h] = make([]float64, B*w)
				for i := range params[h] {
					params[h][i] = 0.5 * rng.NormFloat64()
				}
			}
			run := func() [][]float64 {
				for h, p := range params {
					setRows64(lg.leaves[h], p)
				}
				grads := make([][]float64, len(widths))
				if _, err := lg.step(nil, grads); err != nil {
					t.Fatal(err)
				}
				return grads
			}
			grads := run()
			loss := func() float64 {
				run()
				return valueFloats(lg.outLoss, nil)[0]
			}
			for h, w := range widths {
				for i := range params[h] {
					const eps = 1e-6
					old := params[h][i]
					params[h][i] = old + eps
					fp := loss()
					params[h][i] = old - eps
					fm := loss()
					params[h][i] = old
					fd := (fp - fm) / (2 * eps)
					if math.Abs(fd-grads[h][i]) > 1e-5*(1+math.Abs(fd)) {
						t.Errorf("%s %s: d(-ELBO)/d head %d [%d] = %v, finite difference %v", post, lik, h, i, grads[h][i], fd)
					}
					if i/w == 2 && grads[h][i] != 0 {
						t.Errorf("%s %s: padding row has gradient %v (head %d, %d)", post, lik, grads[h][i], h, i)
					}
				}
			}
			lg.vm.Close()
		}
	}
}

// TestLocalELBOImprovesOnAmortized: with an untrained encoder, optimizing
// each row's parameters must raise its ELBO (measured with the same noise),
// each IW bound must be at least its ELBO, the trace must rise, and the
// result must not depend on parallelism.
func TestLocalELBOImprovesOnAmortized(t *testing.T) {
	for _, post := range []string{"diag", "planar:2"} {
		cfg := smallConfig("float32", Bernoulli)
		cfg.Posterior = post
		m, err := New(cfg, 11)
		if err != nil {
			t.Fatal(err)
		}
		x := rowsOf(synthetic(30, 12, 2), 12)
		opts := LocalOptions{Steps: 150, Samples: 8, EvalSamples: 400}
		run := func(procs int) LocalResult {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			res, err := m.LocalELBO(x, opts, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		res := run(2)
		var gain float64
		for i := range x {
			d := res.LocalELBO[i] - res.AmortizedELBO[i]
			if d < -0.02 {
				t.Errorf("%s row %d: local ELBO %.4f below the amortized %.4f", post, i, res.LocalELBO[i], res.AmortizedELBO[i])
			}
			if res.LocalIW[i] < res.LocalELBO[i]-1e-9 || res.AmortizedIW[i] < res.AmortizedELBO[i]-1e-9 {
				t.Errorf("%s row %d: IW bounds %.4f, %.4f below the ELBOs %.4f, %.4f", post, i, res.AmortizedIW[i], res.LocalIW[i], res.AmortizedELBO[i], res.LocalELBO[i])
			}
			gain += d / float64(len(x))
		}
		if gain < 0.05 {
			t.Errorf("%s: mean gain of the local optimization %.3f nats, want > 0.05 for an untrained encoder", post, gain)
		}
		if n := len(res.Trace); n != opts.Steps || !(res.Trace[n-1] > res.Trace[0]+0.05) {
			t.Errorf("%s: trace of %d steps from %.3f to %.3f, want %d steps rising", post, n, res.Trace[0], res.Trace[n-1], opts.Steps)
		}
		width := 0
		for _, h := range res.Heads {
			width += h.Width
		}
		if len(res.Q) != len(x) || len(res.Q[0]) != width || res.Heads[0].Name != "mean" {
			t.Fatalf("%s: parameters have %d rows of %d, heads %+v", post, len(res.Q), len(res.Q[0]), res.Heads)
		}
		one := run(1)
		for i := range x {
			if one.LocalELBO[i] != res.LocalELBO[i] || one.AmortizedIW[i] != res.AmortizedIW[i] || !slices.Equal(one.Q[i], res.Q[i]) {
				t.Fatalf("%s row %d: 1 and 2 workers disagree: %v vs %v", post, i, one.LocalELBO[i], res.LocalELBO[i])
			}
		}
	}
}

// localWithDecoderOf returns a model of family post whose decoder is src's, so
// that both define the same p(x).
func localWithDecoderOf(t *testing.T, src *Model, post string) *Model {
	t.Helper()
	cfg := src.cfg
	cfg.Posterior = post
	m, err := New(cfg, 9)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range src.params.All() {
		if strings.HasPrefix(p.Name, "decoder.") {
			copy(m.params.Get(p.Name).Float64s(), p.Float64s())
		}
	}
	return m
}

// TestLocalELBOBelowLogPx uses the 2-D model whose log p(x) is known by
// quadrature: for every family the optimized ELBO is a lower bound, above
// the amortized one, and importance sampling with the optimized q recovers
// log p(x).
func TestLocalELBOBelowLogPx(t *testing.T) {
	base := latent2Model(t)
	xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
	truth := make([]float64, len(xs))
	for i, x := range xs {
		truth[i] = quadLogPx(t, base, x)
	}
	for _, post := range localFamilies {
		m := localWithDecoderOf(t, base, post)
		res, err := m.LocalELBO(xs, LocalOptions{Steps: 400, EvalSamples: 5000}, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range xs {
			t.Logf("%s row %d: log p(x) %.4f, IW(q*) %.4f, ELBO* %.4f, ELBO %.4f", post, i, truth[i], res.LocalIW[i], res.LocalELBO[i], res.AmortizedELBO[i])
			if !(res.LocalELBO[i] <= truth[i]+0.02) {
				t.Errorf("%s row %d: local ELBO %.4f above log p(x) %.4f", post, i, res.LocalELBO[i], truth[i])
			}
			if !(res.LocalELBO[i] > res.AmortizedELBO[i]) {
				t.Errorf("%s row %d: local ELBO %.4f not above the amortized %.4f", post, i, res.LocalELBO[i], res.AmortizedELBO[i])
			}
			if math.Abs(res.LocalIW[i]-truth[i]) > 0.02 {
				t.Errorf("%s row %d: importance sampling with q* gives %.4f, log p(x) is %.4f", post, i, res.LocalIW[i], truth[i])
			}
		}
	}
}

// localLinearModel is a model with a 2-D latent space whose decoder's logits are
// linear in z, l_d = w1_d z1 + w2_d z2: its posterior is log-concave and,
// with 40 pixels, close to Gaussian. The encoder is untrained.
func localLinearModel(t *testing.T, post string, w1, w2 func(d int) float64) (*Model, []float32) {
	t.Helper()
	const D = 40
	m, err := New(Config{DataDim: D, Hidden: []int{}, Latent: 2, Dtype: "float64", Posterior: post}, 5)
	if err != nil {
		t.Fatal(err)
	}
	w := m.params.Get("decoder.logits.weight").Float64s() // (2, D)
	clear(m.params.Get("decoder.logits.bias").Float64s())
	x := make([]float32, D)
	for d := range D {
		w[d], w[D+d] = w1(d), w2(d)
		if (w1(d)+w2(d) > 0) != (d%5 == 0) {
			x[d] = 1
		}
	}
	return m, x
}

func localSign(d int) float64 {
	if d%3 == 0 {
		return -1
	}
	return 1
}

// TestLocalELBOClosesGapForFactorizedPosterior: when each pixel depends on
// one latent coordinate, p(z|x) factorizes into two near-Gaussian factors,
// and the optimized diagonal Gaussian comes within a few hundredths of a
// nat of log p(x), while the untrained encoder stays far below. The start
// is far from the optimum, hence more steps than the default.
func TestLocalELBOClosesGapForFactorizedPosterior(t *testing.T) {
	m, x := localLinearModel(t, "diag",
		func(d int) float64 { return 1.2 * localSign(d) * float64(1-d/20) },
		func(d int) float64 { return 1.2 * localSign(d) * float64(d/20) })
	truth := quadLogPx(t, m, x)
	res, err := m.LocalELBO([][]float32{x}, LocalOptions{Steps: 1000, Samples: 20, EvalSamples: 5000}, rand.New(rand.NewPCG(8, 8)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("log p(x) %.4f, ELBO* %.4f, amortized ELBO %.4f", truth, res.LocalELBO[0], res.AmortizedELBO[0])
	if gap := truth - res.LocalELBO[0]; gap < -0.03 || gap > 0.05 {
		t.Errorf("log p(x) - ELBO* = %.4f, want within [-0.03, 0.05] for a near-Gaussian factorized posterior", gap)
	}
	if gap := truth - res.AmortizedELBO[0]; gap < 1 {
		t.Errorf("log p(x) - amortized ELBO = %.4f: the untrained encoder should be far off", gap)
	}
}

// TestLocalELBOApproximationGapOfCorrelatedPosterior: when every pixel
// depends on z1 + z2 alone, the posterior is a near-Gaussian strongly
// correlated along z1 = -z2. The diagonal family cannot represent it (an
// approximation gap remains after optimization); the full-covariance family
// can (none remains).
func TestLocalELBOApproximationGapOfCorrelatedPosterior(t *testing.T) {
	c := func(d int) float64 { return 0.9 * localSign(d) }
	gaps := map[string]float64{}
	for _, post := range []string{"diag", "fullcov"} {
		m, x := localLinearModel(t, post, c, c)
		truth := quadLogPx(t, m, x)
		res, err := m.LocalELBO([][]float32{x}, LocalOptions{Steps: 1000, Samples: 20, EvalSamples: 5000}, rand.New(rand.NewPCG(8, 9)))
		if err != nil {
			t.Fatal(err)
		}
		gaps[post] = truth - res.LocalELBO[0]
		t.Logf("%s: log p(x) %.4f, ELBO* %.4f, IW(q*) %.4f", post, truth, res.LocalELBO[0], res.LocalIW[0])
	}
	if !(gaps["diag"] > 0.3 && gaps["fullcov"] < 0.05 && gaps["fullcov"] > -0.03) {
		t.Errorf("approximation gaps: diag %.4f (want > 0.3), fullcov %.4f (want about 0)", gaps["diag"], gaps["fullcov"])
	}
}

func TestLocalELBOErrors(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 1)
	x := rowsOf(synthetic(2, 12, 1), 12)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		x    [][]float32
		opts LocalOptions
		rng  *rand.Rand
	}{
		{x, LocalOptions{Steps: -1}, rng},
		{x, LocalOptions{Samples: -2}, rng},
		{x, LocalOptions{EvalSamples: -2}, rng},
		{x, LocalOptions{LR: math.NaN()}, rng},
		{x, LocalOptions{LR: math.Inf(1)}, rng},
		{x, LocalOptions{}, nil},
		{nil, LocalOptions{}, rng},
		{[][]float32{{1, 2}}, LocalOptions{}, rng},
		{[][]float32{{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}, LocalOptions{}, rng},
	} {
		if _, err := m.LocalELBO(tc.x, tc.opts, tc.rng); err == nil {
			t.Errorf("%+v, %d rows: no error", tc.opts, len(tc.x))
		}
	}
}

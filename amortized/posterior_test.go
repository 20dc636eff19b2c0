package amortized

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// families are the posterior forms every family-wide test runs on.
var families = []string{"diag", "fullcov", "planar:3", "radial:3", "iaf:2:7", "iaf:1",
	"householder:2", "sylvester:2", "sylvester-householder:2:2", "sylvester-triangular:2"}

// newFamily is the small test model with posterior post, every head drawn
// at random (fullcov's lower included: see drawZeroInitHeads).
func newFamily(t *testing.T, post, dtype, lik string, seed uint64) *Model {
	t.Helper()
	c := smallConfig(dtype, lik)
	c.Posterior = post
	m, err := New(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	drawZeroInitHeads(m, seed)
	return m
}

// drawZeroInitHeads gives the heads that New starts at zero (fullcov's
// lower) uniform draws like every other layer's, so that the family-wide
// tests see a correlated q rather than the diagonal family.
func drawZeroInitHeads(m *Model, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 77))
	for _, hd := range m.qHeads() {
		if !hd.ZeroInit {
			continue
		}
		for _, name := range []string{"encoder." + hd.Name + ".weight", "encoder." + hd.Name + ".bias"} {
			p := m.params.Get(name)
			bound := 1 / math.Sqrt(float64(max(p.FanIn, 1)))
			for j := range p.Float32s() {
				p.Float32s()[j] = float32((2*rng.Float64() - 1) * bound)
			}
			for j := range p.Float64s() {
				p.Float64s()[j] = (2*rng.Float64() - 1) * bound
			}
		}
	}
}

func TestPosteriorForms(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		latent   int
	}{
		{"", "diag", 3},
		{"diag", "diag", 3},
		{"fullcov", "fullcov", 3},
		{"fullcov", "fullcov", 1},
		{"planar:1", "planar:1", 3},
		{"planar:10", "planar:10", 3},
		{"radial:4", "radial:4", 3},
		{"iaf:2", "iaf:2:7", 3}, // DefaultIAFHidden(3) = 7
		{"iaf:2", "iaf:2:41", 20},
		{"iaf:3:64", "iaf:3:64", 20},
		{"planar:1000", "planar:1000", 2},
	} {
		c := Config{DataDim: 4, Latent: tc.latent, Posterior: tc.in}
		n, err := c.Normalize()
		if err != nil || n.Posterior != tc.want {
			t.Errorf("%q (latent %d): %q, %v; want %q", tc.in, tc.latent, n.Posterior, err, tc.want)
			continue
		}
		// Canonical forms are fixed points.
		if again, err := n.Normalize(); err != nil || again.Posterior != tc.want {
			t.Errorf("%q normalizes to %q, then %q, %v", tc.in, tc.want, again.Posterior, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"gaussian", `unknown family "gaussian"`},
		{"Diag", `unknown family "Diag"`},
		{"diag:2", "diag takes no parameters"},
		{"fullcov:3", "fullcov takes no parameters"},
		{"planar", "planar takes K"},
		{"planar:", `K "" is not an integer`},
		{"planar:0", `K "0" is not an integer from 1 to 1000`},
		{"planar:-2", `K "-2"`},
		{"planar:+2", `K "+2"`},
		{"planar:1001", `K "1001"`},
		{"radial:x", `K "x"`},
		{"radial:2:3", "radial takes K;"},
		{"iaf", "iaf takes K or K:H"},
		{"iaf:2:0", `the hidden width H "0"`},
		{"iaf:2:8:1", "iaf takes K or K:H"},
		{"iaf: 2", `K " 2"`},
		{"iaf:2:99999999999", `H "99999999999"`},
	} {
		c := Config{DataDim: 4, Latent: 3, Posterior: tc.in}
		_, err := c.Normalize()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("posterior %q", tc.in)) ||
			!strings.Contains(err.Error(), "want diag, fullcov, planar:K, radial:K, iaf:K or iaf:K:H") {
			t.Errorf("%q: err = %v, want it to name the value, say %q and list the forms", tc.in, err, tc.want)
		}
	}
}

// TestNumParamsEveryFamily: NumParams is the sum of the parameters' sizes,
// for every family, with and without hidden layers, at latent 1 (fullcov
// has no strict lower triangle there) and beyond.
func TestNumParamsEveryFamily(t *testing.T) {
	for _, post := range append(families, "iaf:3:5", "radial:1", "planar:5") {
		for _, c := range []Config{
			{DataDim: 7, Hidden: []int{6, 5}, Latent: 3},
			{DataDim: 7, Hidden: []int{}, Latent: 1, Likelihood: Gaussian},
			{DataDim: 7, Hidden: []int{4}, Latent: 2, DecoderHidden: []int{}},
			{DataDim: 7, Hidden: []int{4}, Latent: 6},
		} {
			c.Posterior = post
			m, err := New(c, 1)
			if err != nil {
				t.Fatalf("%s: %v", post, err)
			}
			n, err := c.NumParams()
			if err != nil || n != int64(m.Params().Count()) {
				t.Errorf("%s %+v: NumParams %d (%v), the model has %d", post, c, n, err, m.Params().Count())
			}
		}
	}
	m, err := New(Config{DataDim: 5, Hidden: []int{4}, Latent: 3, Posterior: "fullcov"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Params().Get("encoder.lower.weight"); p == nil || p.Shape[0] != 4 || p.Shape[1] != 3 {
		t.Errorf("encoder.lower.weight %+v, want shape [4 3]", p)
	}
	// Overflow is reported, not wrapped around.
	for _, c := range []Config{
		{DataDim: 5, Latent: 1 << 40, Posterior: "fullcov"},
		{DataDim: 5, Latent: math.MaxInt64 / 2, Posterior: "iaf:1:1"},
		{DataDim: 5, Latent: 1 << 20, Posterior: "iaf:1000:2147483647"},
	} {
		if n, err := c.NumParams(); err == nil {
			t.Errorf("%s latent %d: NumParams %d, want an overflow error", c.Posterior, c.Latent, n)
		}
	}
}

// qRig is a graph holding q(z|x) built directly on head values fed as
// inputs, B rows, so the posterior's formulas can be checked on any
// parameters, away from the encoder.
type qRig struct {
	t     *testing.T
	m     *Model
	B     int
	heads []*G.Node
	eps   *G.Node
	z     *G.Node
	logq  *G.Node
	kl    *G.Node // analytic KL (Gaussian families)
	logQA *G.Node // log q at z through logQAt (Gaussian families)
	point *G.Node
	outs  map[*G.Node]*G.Value
	vm    G.VM
}

func newQRig(t *testing.T, m *Model, B int) *qRig {
	t.Helper()
	g := G.NewGraph()
	bd := m.newBuilder(m.params)
	g = bd.g
	r := &qRig{t: t, m: m, B: B, outs: map[*G.Node]*G.Value{}}
	hv := HeadValues{}
	for _, hd := range m.qHeads() {
		r.heads = append(r.heads, bd.input("q."+hd.Name, B, hd.Width))
		hv[hd.Name] = r.heads[len(r.heads)-1]
	}
	r.eps = bd.input("eps", B, m.cfg.Latent)
	tm := bd.newTerms(draw{heads: hv, eps: r.eps})
	r.z, r.logq = tm.z, tm.logq
	r.point = tm.q.Point()
	if kl := tm.KL(); kl.analytic {
		r.kl, r.logQA = kl.row, tm.q.(Invertible).LogQAt(r.z)
	}
	for _, n := range []*G.Node{r.z, r.logq, r.kl, r.logQA, r.point} {
		if n != nil {
			v := new(G.Value)
			G.Read(n, v)
			r.outs[n] = v
		}
	}
	r.vm = G.NewTapeMachine(g)
	t.Cleanup(func() { r.vm.Close() })
	return r
}

// setHeads draws every head's values: scales chosen so that each family
// is far from the identity (strong correlations, flows that bend).
func (r *qRig) setHeads(rng *rand.Rand) [][]float64 {
	vals := make([][]float64, len(r.heads))
	for i, hd := range r.m.qHeads() {
		scale := 1.0
		switch {
		case hd.Name == "logvar":
			scale = 0.5
		case hd.Name == "mean" || hd.Name == "context" || strings.HasSuffix(hd.Name, ".w"):
			scale = 1.5
		}
		vals[i] = make([]float64, r.B*hd.Width)
		for j := range vals[i] {
			vals[i][j] = scale * rng.NormFloat64()
		}
		setRows64(r.heads[i], vals[i])
	}
	return vals
}

func (r *qRig) run(eps []float64) {
	r.t.Helper()
	setRows64(r.eps, eps)
	if err := r.vm.RunAll(); err != nil {
		r.t.Fatal(err)
	}
	r.vm.Reset()
}

func (r *qRig) get(n *G.Node) []float64 {
	return tensorValues((*r.outs[n]).(tensor.Tensor), nil)
}

func randn(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// logStdNormalRow is sum_j log N(v_j; 0, 1).
func logStdNormalRow(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += -0.5*x*x - 0.5*math.Log(2*math.Pi)
	}
	return s
}

// TestLogQIsChangeOfVariablesOfTheWholeMap checks, for every family, the
// graph's log q(z|x) against the change of variables computed from scratch:
// z is a function of the noise eps ~ N(0, I) (base sampling and flow steps
// together), so log q(z) = log N(eps; 0, I) - log|det dz/deps|, with the
// Jacobian taken by central finite differences of the graph's own z and its
// determinant by gonum's LU factorization.
func TestLogQIsChangeOfVariablesOfTheWholeMap(t *testing.T) {
	for _, post := range append(families, "fullcov@1", "iaf:3:4@1", "planar:2@1", "radial:2@5",
		"sylvester:2:2", "sylvester:3:1@4", "householder:1@1", "sylvester-triangular:1@1", "sylvester-householder:3:1@4") {
		latent := 3
		if name, l, ok := strings.Cut(post, "@"); ok {
			post, latent = name, int(l[0]-'0')
		}
		t.Run(fmt.Sprintf("%s/latent=%d", post, latent), func(t *testing.T) {
			c := smallConfig("float64", Bernoulli)
			c.Posterior, c.Latent = post, latent
			m, err := New(c, 3)
			if err != nil {
				t.Fatal(err)
			}
			// Larger IAF weights than the initialization, so every step
			// departs from the identity.
			for _, p := range m.params.All() {
				if strings.HasPrefix(p.Name, "encoder.iaf.") {
					for i := range p.Float64s() {
						p.Float64s()[i] *= 3
					}
				}
			}
			const B = 4
			L := latent
			r := newQRig(t, m, B)
			rng := rand.New(rand.NewPCG(5, uint64(L)))
			r.setHeads(rng)
			eps := randn(rng, B*L)
			r.run(eps)
			logq := r.get(r.logq)
			jac := make([][]float64, B) // row-major L x L per example
			for i := range jac {
				jac[i] = make([]float64, L*L)
			}
			const h = 1e-5
			for j := range L {
				// Rows are independent: move coordinate j of every row at once.
				e := append([]float64(nil), eps...)
				for b := range B {
					e[b*L+j] = eps[b*L+j] + h
				}
				r.run(e)
				zp := r.get(r.z)
				for b := range B {
					e[b*L+j] = eps[b*L+j] - h
				}
				r.run(e)
				zm := r.get(r.z)
				for b := range B {
					for i := range L {
						jac[b][i*L+j] = (zp[b*L+i] - zm[b*L+i]) / (2 * h)
					}
				}
			}
			maxLogDet := 0.0
			for b := range B {
				var lu mat.LU
				lu.Factorize(mat.NewDense(L, L, jac[b]))
				logDet, sign := lu.LogDet()
				if sign == 0 {
					t.Fatalf("row %d: singular Jacobian", b)
				}
				want := logStdNormalRow(eps[b*L:(b+1)*L]) - logDet
				if math.Abs(logq[b]-want) > 1e-6*(1+math.Abs(want)) {
					t.Errorf("row %d: log q %v, change of variables %v", b, logq[b], want)
				}
				maxLogDet = math.Max(maxLogDet, math.Abs(logDet))
			}
			if maxLogDet < 0.2 {
				t.Errorf("log|det| at most %v: the test maps are too close to volume-preserving to check anything", maxLogDet)
			}
		})
	}
}

// TestFullCovLogQMatchesMultivariateNormal evaluates log N(z; mu, Sigma)
// directly, with Sigma = C C^T for C = (I + N) diag(exp(logvar/2))
// assembled entry by entry from the heads (C_ii = exp(logvar_i/2),
// C_ij = n_ij exp(logvar_j/2) for i > j) and its determinant and inverse
// from gonum (no triangular solve, no eps):
// the graph's log q at its sampled z, and its log q at a given z (the
// forward substitution behind the score estimator), must both agree.
// The analytic KL is checked against 1/2 (tr Sigma + |mu|^2 - L - log det Sigma).
func TestFullCovLogQMatchesMultivariateNormal(t *testing.T) {
	for _, L := range []int{1, 2, 5} {
		c := smallConfig("float64", Bernoulli)
		c.Posterior, c.Latent = "fullcov", L
		m, err := New(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		const B = 6
		r := newQRig(t, m, B)
		rng := rand.New(rand.NewPCG(7, uint64(L)))
		heads := r.setHeads(rng)
		eps := randn(rng, B*L)
		r.run(eps)
		z, logq, logQA, kl := r.get(r.z), r.get(r.logq), r.get(r.logQA), r.get(r.kl)
		for b := range B {
			mu := heads[0][b*L : (b+1)*L]
			low := mat.NewDense(L, L, nil)
			for i := range L {
				low.Set(i, i, math.Exp(heads[1][b*L+i]/2))
				for j := range i {
					low.Set(i, j, heads[2][b*(L*(L-1)/2)+i*(i-1)/2+j]*math.Exp(heads[1][b*L+j]/2))
				}
			}
			var sigma, inv mat.Dense
			sigma.Mul(low, low.T())
			if err := inv.Inverse(&sigma); err != nil {
				t.Fatal(err)
			}
			det := mat.Det(&sigma)
			d := mat.NewVecDense(L, nil)
			for i := range L {
				d.SetVec(i, z[b*L+i]-mu[i])
			}
			quad := mat.Inner(d, &inv, d)
			want := -0.5 * (float64(L)*math.Log(2*math.Pi) + math.Log(det) + quad)
			if math.Abs(logq[b]-want) > 1e-9*(1+math.Abs(want)) {
				t.Errorf("L=%d row %d: log q %v, direct multivariate normal %v", L, b, logq[b], want)
			}
			if math.Abs(logQA[b]-want) > 1e-9*(1+math.Abs(want)) {
				t.Errorf("L=%d row %d: log q at z (forward substitution) %v, direct %v", L, b, logQA[b], want)
			}
			muNorm := 0.0
			for _, v := range mu {
				muNorm += v * v
			}
			wantKL := 0.5 * (mat.Trace(&sigma) + muNorm - float64(L) - math.Log(det))
			if math.Abs(kl[b]-wantKL) > 1e-9*(1+wantKL) {
				t.Errorf("L=%d row %d: KL %v, direct %v", L, b, kl[b], wantKL)
			}
			// z = mu + C eps exactly.
			for i := range L {
				zi := mu[i]
				for j := range L {
					zi += low.At(i, j) * eps[b*L+j]
				}
				if math.Abs(zi-z[b*L+i]) > 1e-12*(1+math.Abs(zi)) {
					t.Errorf("L=%d row %d: z[%d] %v, mu + C eps %v", L, b, i, z[b*L+i], zi)
				}
			}
		}
	}
}

// TestFullCovWithZeroLowerIsDiag: with its lower head at zero, as New
// starts it, fullcov is the diagonal family computed the same way. Given
// the diag model's weights (mean, logvar, trunk and decoder copied over),
// the fullcov model matches it bit for bit: z, log q at the sample and at
// a given z (the forward substitution), the analytic KL, ELBO, Evaluate,
// LogLikelihood, and the training gradients of every shared parameter under
// the pathwise and score-function estimators and IWAE; only the lower
// head's own gradient is extra (and nonzero: training can leave the
// diagonal family).
func TestFullCovWithZeroLowerIsDiag(t *testing.T) {
	for _, dtype := range []string{"float32", "float64"} {
		c := smallConfig(dtype, Bernoulli)
		c.Posterior = "fullcov"
		fc, err := New(c, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"encoder.lower.weight", "encoder.lower.bias"} {
			vals := tensorValues(fc.params.Get(name).Value, nil)
			if len(vals) == 0 || slices.ContainsFunc(vals, func(v float64) bool { return v != 0 }) {
				t.Fatalf("%s: New's %s is %v, want zeros", dtype, name, vals)
			}
		}
		c.Posterior = "diag"
		dg, err := New(c, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range dg.params.All() {
			src := fc.params.Get(p.Name)
			copy(p.Float32s(), src.Float32s())
			copy(p.Float64s(), src.Float64s())
		}
		same := func(what string, a, b []float64) {
			t.Helper()
			if len(a) != len(b) || len(a) == 0 {
				t.Fatalf("%s %s: %d values from fullcov, %d from diag", dtype, what, len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] || math.IsNaN(a[i]) {
					t.Fatalf("%s %s[%d]: fullcov %v, diag %v", dtype, what, i, a[i], b[i])
				}
			}
		}

		const B = 7
		flat := synthetic(B, 12, 3)
		x := rowsOf(flat, 12)
		// The posterior's formulas on the encoder's own head values.
		hf, err := fc.encodeHeads(flat, B)
		if err != nil {
			t.Fatal(err)
		}
		hd, err := dg.encodeHeads(flat, B)
		if err != nil {
			t.Fatal(err)
		}
		same("mean head", hf[0], hd[0])
		same("logvar head", hf[1], hd[1])
		rf, rd := newQRig(t, fc, B), newQRig(t, dg, B)
		for i := range hf {
			setRows64(rf.heads[i], hf[i])
		}
		for i := range hd {
			setRows64(rd.heads[i], hd[i])
		}
		eps := randn(rand.New(rand.NewPCG(2, 2)), B*3)
		rf.run(eps)
		rd.run(eps)
		for _, n := range []struct {
			what   string
			nf, nd *G.Node
		}{{"z", rf.z, rd.z}, {"log q", rf.logq, rd.logq}, {"log q at z", rf.logQA, rd.logQA}, {"KL", rf.kl, rd.kl}, {"point", rf.point, rd.point}} {
			same(n.what, rf.get(n.nf), rd.get(n.nd))
		}

		// The public API.
		ef, err := fc.ELBO(x, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		ed, err := dg.ELBO(x, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		same("ELBO", ef, ed)
		data := &memBatches{x: flat, n: B, dim: 12, bsz: 4}
		sf, err := fc.Evaluate(data, rand.New(rand.NewPCG(4, 4)))
		if err != nil {
			t.Fatal(err)
		}
		sd, err := dg.Evaluate(data, rand.New(rand.NewPCG(4, 4)))
		if err != nil {
			t.Fatal(err)
		}
		same("Evaluate ELBO, recon, KL", []float64{sf.ELBO, sf.Recon, sf.KL}, []float64{sd.ELBO, sd.Recon, sd.KL})
		lf, err := fc.LogLikelihood(x, 600, rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		ld, err := dg.LogLikelihood(x, 600, rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		same("LogLikelihood", lf, ld)

		// Training gradients.
		for _, o := range []TrainOptions{{}, {Estimator: EstimatorScore, K: 2}, {Objective: ObjectiveIWAE, K: 3}} {
			o.Epochs = 1
			grads := func(m *Model) (map[string][]float64, float64) {
				tr, err := NewTrainer(m, 8, o, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				st, err := tr.gradients(flat, B, 1, rand.New(rand.NewPCG(6, 6)))
				if err != nil {
					t.Fatal(err)
				}
				out := map[string][]float64{}
				for i, n := range tr.g.bind.Nodes() {
					out[n.Name()] = tensorValues(tr.batchGrads()[i], nil)
				}
				return out, st.Bound
			}
			gf, bf := grads(fc)
			gd, bd := grads(dg)
			what := fmt.Sprintf("%s/%s/k=%d", o.Objective, o.Estimator, o.K)
			same(what+" bound", []float64{bf}, []float64{bd})
			for name, g := range gd {
				same(what+" gradient of "+name, gf[name], g)
			}
			if g := gf["encoder.lower.weight"]; !slices.ContainsFunc(g, func(v float64) bool { return v != 0 }) {
				t.Errorf("%s %s: the lower head's gradient is zero", dtype, what)
			}
		}
	}
}

// TestAnalyticKLMatchesMonteCarlo compares the closed-form KL of the
// Gaussian families with E_q[log q(z|x) - log p(z)] estimated from the
// graph's own log-densities at 20,000 sampled z.
func TestAnalyticKLMatchesMonteCarlo(t *testing.T) {
	for _, post := range []string{"diag", "fullcov", "householder:3"} {
		c := smallConfig("float64", Bernoulli)
		c.Posterior, c.Latent = post, 4
		m, err := New(c, 2)
		if err != nil {
			t.Fatal(err)
		}
		const B, L = 20000, 4
		r := newQRig(t, m, B)
		one := newQRig(t, m, 1)
		vals := one.setHeads(rand.New(rand.NewPCG(8, 8)))
		for i, v := range vals { // every row the same example
			rows := make([]float64, 0, B*len(v))
			for range B {
				rows = append(rows, v...)
			}
			setRows64(r.heads[i], rows)
		}
		eps := randn(rand.New(rand.NewPCG(9, 9)), B*L)
		r.run(eps)
		z, logq, kl := r.get(r.z), r.get(r.logq), r.get(r.kl)
		diffs := make([]float64, B)
		for b := range B {
			diffs[b] = logq[b] - logStdNormalRow(z[b*L:(b+1)*L])
		}
		mean, se := meanSE(diffs)
		if math.Abs(mean-kl[0]) > 4*se || kl[0] < 1 {
			t.Errorf("%s: Monte Carlo KL %v ± %v, analytic %v (want > 1 to mean something)", post, mean, se, kl[0])
		}
	}
}

// TestPointSummaryIsTheMapAtZeroNoise: Encode's summary is mu for the
// Gaussian families and f_K(...f_1(mu)) for flows, that is z at eps = 0;
// and Encode returns it through the encoder.
func TestPointSummaryIsTheMapAtZeroNoise(t *testing.T) {
	for _, post := range families {
		m := newFamily(t, post, "float64", Bernoulli, 4)
		const B, L = 5, 3
		r := newQRig(t, m, B)
		heads := r.setHeads(rand.New(rand.NewPCG(1, 1)))
		r.run(make([]float64, B*L))
		z, point := r.get(r.z), r.get(r.point)
		moved := false
		for i := range z {
			if math.Abs(z[i]-point[i]) > 1e-12 {
				t.Fatalf("%s: point[%d] = %v, z at eps = 0 is %v", post, i, point[i], z[i])
			}
			moved = moved || math.Abs(point[i]-heads[0][i]) > 1e-3
		}
		// Householder's closed-form KL comes with a rotated mean.
		if moved != (!m.AnalyticKL() || strings.HasPrefix(post, Householder)) {
			t.Errorf("%s: point summary differs from the mean: %v", post, moved)
		}
		// Through the public API: Encode is the point summary of the encoder's heads.
		x := rowsOf(synthetic(B, 12, 2), 12)
		enc, err := m.Encode(x)
		if err != nil {
			t.Fatal(err)
		}
		q, err := m.encodeHeads(f32flat(x), B)
		if err != nil {
			t.Fatal(err)
		}
		for i := range q {
			setRows64(r.heads[i], q[i])
		}
		r.run(make([]float64, B*L))
		point = r.get(r.point)
		for b := range B {
			for j := range L {
				if float32(point[b*L+j]) != enc[b][j] {
					t.Fatalf("%s: Encode[%d][%d] = %v, the point summary %v", post, b, j, enc[b][j], point[b*L+j])
				}
			}
		}
	}
}

func f32flat(x [][]float32) []float32 {
	var out []float32
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

// TestLogLikelihoodMatchesQuadratureEveryFamily: on the 2-D latent model,
// each family's importance-sampled log p(x) (k = 5000, q as the proposal,
// log w = log p(x|z_K) + log p(z_K) - log q0(z_0) + sum log|det|) agrees with
// the quadrature truth within its Monte Carlo error.
func TestLogLikelihoodMatchesQuadratureEveryFamily(t *testing.T) {
	xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
	for _, post := range families[1:] {
		m := latent2ModelFor(t, post)
		ll, se, err := m.LogLikelihoodSE(xs, 5000, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			truth := quadLogPx(t, m, x)
			// The untrained flows are rougher proposals than the Gaussian
			// families, hence the looser bound on the error.
			if math.Abs(ll[i]-truth) > 4*se[i]+1e-3 || se[i] > 0.15 {
				t.Errorf("%s row %d: estimate %.4f ± %.4f, quadrature %.4f", post, i, ll[i], se[i], truth)
			}
		}
	}
}

// TestIWAEBoundAboveELBOEveryFamily: averaged over draws, the training
// graph's IWAE bound with k = 20 sits above its ELBO (for flows, with the
// Monte Carlo KL) and below the quadrature log p(x).
func TestIWAEBoundAboveELBOEveryFamily(t *testing.T) {
	for _, post := range families[1:] {
		checkBoundsOrdered(t, post, "IWAE")
	}
}

// checkBoundsOrdered trains nothing: it averages the training graph's
// bound over 100 draws on one image for the ELBO and for the
// importance-weighted bound with k = 20 (named iw in messages: IWAE, or
// SIWAE for a stratified mixture), and requires ELBO < IW <= log p(x) by
// quadrature, within two standard errors.
func checkBoundsOrdered(t *testing.T, post, iw string) {
	t.Helper()
	x := []float32{1, 0, 1, 1, 0, 0, 1, 0}
	batch := make([]float32, 0, 16*8)
	for range 16 {
		batch = append(batch, x...)
	}
	m := latent2ModelFor(t, post)
	truth := quadLogPx(t, m, x)
	bound := func(o TrainOptions) (float64, float64) {
		o.Epochs = 1
		tr, err := NewTrainer(m, 16, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		v := make([]float64, 100)
		for d := range v {
			st, err := tr.gradients(batch, 16, 1, rand.New(rand.NewPCG(uint64(d), 5)))
			if err != nil {
				t.Fatal(err)
			}
			v[d] = st.Bound
		}
		return meanSE(v)
	}
	elbo, elboSE := bound(TrainOptions{})
	iwae, iwaeSE := bound(TrainOptions{Objective: ObjectiveIWAE, K: 20})
	t.Logf("%s: ELBO %.4f ± %.4f, %s(20) %.4f ± %.4f, log p(x) %.4f", post, elbo, elboSE, iw, iwae, iwaeSE, truth)
	if !(elbo+2*math.Hypot(elboSE, iwaeSE) < iwae && iwae < truth+2*iwaeSE) {
		t.Errorf("%s: ELBO %.4f ± %.4f, %s(20) %.4f ± %.4f, log p(x) %.4f: want ELBO < %s <= log p(x)",
			post, elbo, elboSE, iw, iwae, iwaeSE, truth, iw)
	}
}

// TestLogLikelihoodEveryFamilyIndependentOfParallelism: the flow and
// full-covariance parameters fed to the concurrent workers (each on its own
// copy of the weights, IAF steps included) give the same numbers whatever
// the number of workers.
func TestLogLikelihoodEveryFamilyIndependentOfParallelism(t *testing.T) {
	for _, post := range families[1:] {
		m := newFamily(t, post, "float32", Bernoulli, 5)
		x := rowsOf(synthetic(5, 12, 2), 12)
		run := func(procs int) []float64 {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			ll, err := m.LogLikelihood(x, 600, rand.New(rand.NewPCG(1, 1))) // k > chunk
			if err != nil {
				t.Fatal(err)
			}
			return ll
		}
		a, b := run(1), run(3)
		for i := range a {
			if a[i] != b[i] || math.IsNaN(a[i]) {
				t.Fatalf("%s row %d: %v with 1 worker, %v with 3", post, i, a[i], b[i])
			}
		}
	}
}

// TestEveryFamilyResumesExactly: for each family, a run resumed from
// copies of its weights and optimizer state ends bit for bit where the
// uninterrupted one does.
func TestEveryFamilyResumesExactly(t *testing.T) {
	for _, post := range families[1:] {
		for _, o := range []TrainOptions{{WarmupEpochs: 1}, {Objective: ObjectiveIWAE, K: 3}} {
			a, sa := trainSyntheticFamily(t, post, o, 4, 3, 0)
			b, sb := trainSyntheticFamily(t, post, o, 4, 3, 2)
			if !sameWeights(a, b) || sa.Step != sb.Step || sa.BestValELBO != sb.BestValELBO {
				t.Errorf("%s %+v: the resumed run differs from the uninterrupted one", post, o)
			}
		}
	}
}

// TestEveryFamilyLearnsThePrototypes trains each family as
// TestTrainingImprovesELBO does the diagonal one.
func TestEveryFamilyLearnsThePrototypes(t *testing.T) {
	data := &memBatches{x: synthetic(200, 12, 1), n: 200, dim: 12, bsz: 32, seed: 3}
	for _, post := range families[1:] {
		m := newFamily(t, post, "float32", Bernoulli, 3)
		before, err := m.Evaluate(data, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(m, 32, TrainOptions{Epochs: 20, Seed: 3, LR: 1e-2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Fit(context.Background(), data, nil, Hooks{}); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		after, err := m.Evaluate(data, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: ELBO %.3f -> %.3f (recon %.3f, KL %.3f)", post, before.ELBO, after.ELBO, after.Recon, after.KL)
		// 12 pixels with 10% flips: the best possible is about 12 * H(0.1) = 3.9 nats.
		if !(after.ELBO > before.ELBO+3) || after.ELBO < -7 || math.Abs(after.ELBO-(after.Recon-after.KL)) > 1e-9 {
			t.Errorf("%s: ELBO %v -> %v: training did not learn the two prototypes", post, before.ELBO, after.ELBO)
		}
	}
}

// TestFamilyOptionRefusals: free bits need a per-dimension analytic KL
// (diag only); the score-function estimator needs log q at a given z
// (not for flows). Each refusal names the posterior and the reason.
func TestFamilyOptionRefusals(t *testing.T) {
	for _, tc := range []struct {
		post string
		opts TrainOptions
		want string
	}{
		{"fullcov", TrainOptions{FreeBits: 0.5}, `free bits floor each latent dimension's closed-form KL, which the fullcov posterior does not have`},
		{"planar:2", TrainOptions{FreeBits: 0.5}, `the planar:2 posterior does not have`},
		{"iaf:1", TrainOptions{FreeBits: 0.1}, `the iaf:1:7 posterior does not have`},
		{"planar:2", TrainOptions{Estimator: EstimatorScore}, "the planar:2 posterior's map from noise to z has no closed-form inverse"},
		{"radial:1", TrainOptions{Estimator: EstimatorScore}, "radial:1 posterior's map from noise to z has no closed-form inverse"},
		{"iaf:2:4", TrainOptions{Estimator: EstimatorScore}, "iaf:2:4 posterior's map"},
		{"sylvester:1", TrainOptions{Estimator: EstimatorScore}, "sylvester:1:3 posterior's map"},
		{"aux:2", TrainOptions{Estimator: EstimatorScore}, "aux:2:10 posterior's map"},
		{"aux:2", TrainOptions{FreeBits: 0.5}, "the aux:2:10 posterior does not have"},
		{"householder:2", TrainOptions{FreeBits: 0.5}, "the householder:2 posterior does not have"},
	} {
		m := newFamily(t, tc.post, "float32", Bernoulli, 1)
		tc.opts.Epochs = 1
		if _, err := NewTrainer(m, 4, tc.opts, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: err = %v, want %q", tc.post, tc.opts, err, tc.want)
		}
		if _, err := GradientVariance(m, rowsOf(synthetic(4, 12, 1), 12), tc.opts, 3, 1); err == nil {
			t.Errorf("%s %+v: GradientVariance accepted", tc.post, tc.opts)
		}
	}
	// What each family does accept.
	for _, tc := range []struct {
		post string
		opts TrainOptions
	}{
		{"diag", TrainOptions{FreeBits: 0.5, Estimator: EstimatorScore}},
		{"fullcov", TrainOptions{Estimator: EstimatorScore, K: 2}},
		{"radial:2", TrainOptions{Objective: ObjectiveIWAE, K: 4}},
		{"iaf:1", TrainOptions{WarmupEpochs: 2, K: 3}},
		{"householder:2", TrainOptions{Estimator: EstimatorScore, K: 2}},
		{"aux:1", TrainOptions{Objective: ObjectiveIWAE, K: 3}},
	} {
		tc.opts.Epochs = 1
		tr, err := NewTrainer(newFamily(t, tc.post, "float32", Bernoulli, 1), 4, tc.opts, nil)
		if err != nil {
			t.Errorf("%s %+v: %v", tc.post, tc.opts, err)
			continue
		}
		tr.Close()
	}
}

// TestEveryFamilyPublicAPI runs every method of the public API on every
// family: shapes, finiteness, ELBO = recon - KL through Evaluate, and
// GradientVariance's groups (the flows' parameters belong to the encoder).
func TestEveryFamilyPublicAPI(t *testing.T) {
	x := rowsOf(synthetic(7, 12, 1), 12)
	for _, post := range families[1:] {
		m := newFamily(t, post, "float32", Bernoulli, 1)
		rng := rand.New(rand.NewPCG(1, 2))
		z, err := m.Encode(x)
		if err != nil || len(z) != 7 || len(z[0]) != 3 {
			t.Fatalf("%s: Encode: %v", post, err)
		}
		if imgs, err := m.Decode(z); err != nil || len(imgs) != 7 {
			t.Fatalf("%s: Decode: %v", post, err)
		}
		if s, err := m.Sample(3, rng); err != nil || len(s) != 3 {
			t.Fatalf("%s: Sample: %v", post, err)
		}
		if rec, err := m.Reconstruct(x, rng); err != nil || len(rec) != 7 {
			t.Fatalf("%s: Reconstruct: %v", post, err)
		}
		elbo, err := m.ELBO(x, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		ll, err := m.LogLikelihood(x, 50, rng)
		if err != nil {
			t.Fatal(err)
		}
		data := &memBatches{x: synthetic(7, 12, 1), n: 7, dim: 12, bsz: 7}
		st, err := m.Evaluate(data, rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		// Evaluate's batch is epoch 0's permutation of the same rows.
		if math.Abs(st.ELBO-mean(elbo)) > 0.5 || math.Abs(st.ELBO-(st.Recon-st.KL)) > 1e-9 {
			t.Errorf("%s: Evaluate %+v, mean ELBO %v", post, st, mean(elbo))
		}
		for i := range x {
			if math.IsNaN(elbo[i]) || math.IsNaN(ll[i]) || ll[i] < elbo[i]-5 {
				t.Errorf("%s row %d: ELBO %v, log p(x) %v", post, i, elbo[i], ll[i])
			}
		}
		out, err := m.Impute(x, randomMask(7, 12, 3), ImputeOptions{Iters: 2, Chains: 2}, rng)
		if err != nil || len(out) != 7 {
			t.Fatalf("%s: Impute: %v", post, err)
		}
		gv, err := GradientVariance(m, x, TrainOptions{}, 3, 1)
		if err != nil || len(gv) != 2 || gv[0].Group != "encoder" || gv[1].Group != "decoder" || gv[0].Params+gv[1].Params != m.Params().Count() {
			t.Errorf("%s: GradientVariance groups %+v, %v", post, gv, err)
		}
	}
}

package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// iafCase is one IAF configuration; steps > 1 composes that many steps
// with alternating order, starting from reverse.
type iafCase struct {
	dim, context int
	hidden       []int
	act          nets.Activation
	reverse      bool
	steps        int
}

func (c iafCase) String() string {
	return fmt.Sprintf("D=%d/ctx=%d/hidden=%v/%s/reverse=%v/steps=%d", c.dim, c.context, c.hidden, c.act, c.reverse, max(c.steps, 1))
}

var iafCases = []iafCase{
	{dim: 3, hidden: []int{5}, act: nets.Tanh},
	{dim: 3, hidden: []int{5}, act: nets.Tanh, reverse: true},
	{dim: 3, context: 2, hidden: []int{5}, act: nets.Tanh},
	{dim: 3, context: 2, hidden: []int{5}, act: nets.Softplus, reverse: true},
	{dim: 4, context: 3, hidden: []int{6, 5}, act: nets.ReLU, reverse: true},
	{dim: 3, context: 2, hidden: []int{5}, act: nets.ReLU}, // the fused chain (iafChainOp)
	{dim: 4, hidden: []int{2}, act: nets.Tanh},             // narrower than D-1
	{dim: 2, context: 2, act: nets.Tanh},                   // no hidden layer: context on [m, s]
	{dim: 1, context: 2, hidden: []int{3}, act: nets.Tanh},
	{dim: 2, hidden: []int{4}, act: nets.Tanh, steps: 3},
	{dim: 3, context: 2, hidden: []int{6}, act: nets.Softplus, steps: 3},
}

// iafRig is a rig holding Compose(steps...) applied to an input z with
// context h (nil without context), with parameters drawn at random and
// larger than at initialization, so that m, s and the masks all matter.
type iafRig struct {
	*rig
	ps            *nets.Params
	steps         []flows.IAF
	z, h, out, ld *G.Node
	zVals, hVals  []float64
	B             int
	bind          *nets.Binding
}

func newIAFRig(t *testing.T, c iafCase, B int, seed uint64) *iafRig {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	ps, err := nets.NewParams(tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	ir := &iafRig{rig: newRig(t), ps: ps, B: B}
	for k := range max(c.steps, 1) {
		rev := c.reverse
		if c.steps > 1 {
			rev = k%2 == 0
		}
		f, err := flows.NewIAF(ps, fmt.Sprintf("iaf%d", k), c.dim, c.hidden, c.context, c.act, rev)
		if err != nil {
			t.Fatal(err)
		}
		ir.steps = append(ir.steps, f)
	}
	for _, p := range ps.All() {
		v := p.Float64s()
		for i := range v {
			v[i] = 0.8 * rng.NormFloat64()
		}
	}
	ir.zVals = randn(rng, B*c.dim, 1.5)
	ir.z = ir.input(ir.zVals, B, c.dim)
	if c.context > 0 {
		ir.hVals = randn(rng, B*c.context, 1)
		ir.h = ir.input(ir.hVals, B, c.context)
	}
	ir.bind = ps.Bind(ir.g)
	fs := make([]flows.Flow, len(ir.steps))
	for k, f := range ir.steps {
		fs[k] = f.Bind(ir.bind, ir.h)
	}
	if ir.out, ir.ld, err = flows.Compose(fs...).Forward(ir.z); err != nil {
		t.Fatal(err)
	}
	ir.watch(ir.out, ir.ld)
	return ir
}

func (ir *iafRig) eval(z []float64) (out, logDet []float64) {
	set(ir.z, z)
	ir.run()
	return ir.get(ir.out), ir.get(ir.ld)
}

// iafRef is a plain-Go transcription of one IAF step: the MADE with its
// masks, the context added to the first layer's pre-activation, and the
// gate. It returns f(z), σ and log σ, all (B, D) row-major; log σ is
// -softplus(-a) with softplus as gorgonia computes it.
func iafRef(f flows.IAF, ps *nets.Params, z, h []float64, B int) (out, sigma, logSigma []float64) {
	D := f.Dim()
	made := f.MADE()
	x := slices.Clone(z)
	for k, l := range made.Layers {
		w, b := ps.Get(l.WeightName()).Float64s(), ps.Get(l.BiasName()).Float64s()
		y := make([]float64, B*l.Out)
		for r := range B {
			for j := range l.Out {
				acc := b[j]
				for i := range l.In {
					acc += x[r*l.In+i] * w[i*l.Out+j] * l.Mask[i*l.Out+j]
				}
				y[r*l.Out+j] = acc
			}
		}
		if k == 0 && f.Context() > 0 {
			name := strings.TrimSuffix(l.Name, ".made.0") + ".context"
			cw, cb := ps.Get(name+".weight").Float64s(), ps.Get(name+".bias").Float64s()
			C := f.Context()
			for r := range B {
				for j := range l.Out {
					acc := cb[j]
					for i := range C {
						acc += h[r*C+i] * cw[i*l.Out+j]
					}
					y[r*l.Out+j] += acc
				}
			}
		}
		if k < len(made.Layers)-1 {
			for i, v := range y {
				switch made.Act {
				case nets.Tanh:
					y[i] = math.Tanh(v)
				case nets.ReLU:
					y[i] = max(v, 0)
				case nets.Softplus:
					y[i] = softplus(v)
				}
			}
		}
		x = y
	}
	out, sigma, logSigma = make([]float64, B*D), make([]float64, B*D), make([]float64, B*D)
	for r := range B {
		for j := range D {
			m, s := x[r*2*D+j], x[r*2*D+D+j]
			a := s + flows.IAFForgetBias
			sg := 1 / (1 + math.Exp(-a))
			sigma[r*D+j] = sg
			logSigma[r*D+j] = -softplus(-a)
			out[r*D+j] = sg*z[r*D+j] + m/(1+math.Exp(a))
		}
	}
	return out, sigma, logSigma
}

// refChain runs iafRef through every step and returns the output, the
// summed log σ per row, and the first step's σ.
func (ir *iafRig) refChain(z []float64) (out, logDet, sigma0 []float64) {
	D := ir.steps[0].Dim()
	logDet = make([]float64, ir.B)
	out = z
	for k, f := range ir.steps {
		var sg, lsg []float64
		out, sg, lsg = iafRef(f, ir.ps, out, ir.hVals, ir.B)
		if k == 0 {
			sigma0 = sg
		}
		for r := range ir.B {
			for j := range D {
				logDet[r] += lsg[r*D+j]
			}
		}
	}
	return out, logDet, sigma0
}

// Forward computes the step as Kingma et al. (2016) write it, checked
// against a plain-Go transcription of the MADE, the context term and the
// gate, with and without context, in both orders, for composed steps, and
// for D = 1 and a MADE with no hidden layer.
func TestIAFForwardMatchesFormula(t *testing.T) {
	const B = 5
	for i, c := range iafCases {
		t.Run(c.String(), func(t *testing.T) {
			ir := newIAFRig(t, c, B, uint64(i))
			got, gotLD := ir.eval(ir.zVals)
			want, wantLD, _ := ir.refChain(ir.zVals)
			for k := range want {
				if math.Abs(got[k]-want[k]) > 1e-12*(1+math.Abs(want[k])) {
					t.Errorf("out[%d] = %.15g, formula gives %.15g", k, got[k], want[k])
				}
			}
			for r := range B {
				if math.Abs(gotLD[r]-wantLD[r]) > 1e-12*(1+math.Abs(wantLD[r])) {
					t.Errorf("logDet[%d] = %.15g, Σ log σ = %.15g", r, gotLD[r], wantLD[r])
				}
			}
		})
	}
}

// The log-determinant equals log|det| of a central finite-difference
// Jacobian of Forward, row by row. For a single step the Jacobian is
// triangular in the step's order (d out_{order[i]} / d z_{order[j]} = 0 for
// j > i, exactly: masked weights contribute exact zeros) and its diagonal
// is σ; composed steps with alternating order are checked on the
// determinant only.
func TestIAFLogDetMatchesFiniteDifferenceJacobian(t *testing.T) {
	const B, h = 6, 1e-5
	for i, c := range iafCases {
		t.Run(c.String(), func(t *testing.T) {
			ir := newIAFRig(t, c, B, uint64(100+i))
			D := c.dim
			z := ir.zVals
			_, logDet := ir.eval(z)
			// gonum's central differences, one row at a time (rows are
			// independent; the others stay at z).
			jac := make([][]float64, B)
			for r := range B {
				J := mat.NewDense(D, D, nil)
				fd.Jacobian(J, func(y, x []float64) {
					zr := slices.Clone(z)
					copy(zr[r*D:(r+1)*D], x)
					out, _ := ir.eval(zr)
					copy(y, out[r*D:(r+1)*D])
				}, z[r*D:(r+1)*D], &fd.JacobianSettings{Formula: fd.Central, Step: h})
				jac[r] = J.RawMatrix().Data
			}
			_, _, sigma := ir.refChain(z)
			order := ir.steps[0].Order()
			for r := range B {
				det := mat.Det(mat.NewDense(D, D, jac[r]))
				want := math.Log(math.Abs(det))
				if math.Abs(logDet[r]-want) > 1e-7*(1+math.Abs(want)) {
					t.Errorf("row %d: logDet %.10g, FD log|det J| %.10g", r, logDet[r], want)
				}
				if !(det > 0) {
					t.Errorf("row %d: det J = %g, want > 0 (σ > 0 on the diagonal)", r, det)
				}
				if len(ir.steps) > 1 {
					continue
				}
				for a, oi := range order {
					for b, zj := range order {
						d := jac[r][oi*D+zj]
						switch {
						case b > a && d != 0:
							t.Errorf("row %d: d out_%d / d z_%d = %g, want 0 (z_%d comes later in order %v)", r, oi, zj, d, zj, order)
						case b == a && math.Abs(d-sigma[r*D+oi]) > 1e-8:
							t.Errorf("row %d: diagonal d out_%d / d z_%d = %.10g, σ = %.10g", r, oi, oi, d, sigma[r*D+oi])
						}
					}
				}
			}
			// The checks have power only if some below-diagonal entry lives.
			if len(ir.steps) == 1 && D > 1 && len(c.hidden) > 0 && c.hidden[0] >= D-1 {
				live := false
				for r := range B {
					for a := 1; a < D; a++ {
						live = live || jac[r][order[a]*D+order[0]] != 0
					}
				}
				if !live {
					t.Errorf("no output depends on the first variable %d: the step is trivial", order[0])
				}
			}
		})
	}
}

// G.Grad of sum(logDet) + sum(c ⊙ out) with respect to every MADE and
// context weight, z and h matches central finite differences, through
// three composed steps with context.
func TestIAFGradientsMatchFiniteDifferences(t *testing.T) {
	const B, h = 3, 1e-6
	for i, c := range []iafCase{
		{dim: 3, context: 2, hidden: []int{4}, act: nets.Tanh, steps: 3},
		{dim: 2, context: 2, hidden: []int{3, 3}, act: nets.Softplus, reverse: true},
		{dim: 3, context: 2, hidden: []int{5}, act: nets.ReLU, steps: 3}, // the fused chain (iafChainOp)
	} {
		t.Run(c.String(), func(t *testing.T) {
			ir := newIAFRig(t, c, B, uint64(200+i))
			rng := rand.New(rand.NewPCG(7, uint64(i)))
			weights := ir.input(randn(rng, B*c.dim, 1), B, c.dim)
			loss, err := G.Add(must(G.Sum(ir.ld)), must(G.Sum(must(G.HadamardProd(weights, ir.out)))))
			if err != nil {
				t.Fatal(err)
			}
			wrt := append(G.Nodes{ir.z, ir.h}, ir.bind.Nodes()...)
			grads, err := G.Grad(loss, wrt...)
			if err != nil {
				t.Fatal(err)
			}
			ir.watch(loss)
			ir.watch(grads...)
			ir.run()
			grad := make([][]float64, len(wrt))
			for a := range wrt {
				grad[a] = ir.get(grads[a])
			}
			checked := 0
			for a, n := range wrt {
				vals := slices.Clone(n.Value().Data().([]float64))
				fdGrad := fd.Gradient(nil, func(x []float64) float64 {
					set(n, x)
					ir.run()
					return ir.get(loss)[0]
				}, vals, &fd.Settings{Formula: fd.Central, Step: h})
				set(n, vals)
				for e, want := range fdGrad {
					if math.Abs(grad[a][e]-want) > 1e-6*(1+math.Abs(want)) {
						t.Errorf("d/d%s[%d]: G.Grad %.8g, finite difference %.8g", n.Name(), e, grad[a][e], want)
					}
					checked++
				}
			}
			if want := B*(c.dim+c.context) + ir.ps.Count(); checked != want {
				t.Errorf("checked %d derivatives, want %d", checked, want)
			}
		})
	}
}

// The change of variables holds for composed IAF steps: a 2-D standard
// Gaussian pushed through three steps with alternating order (and a
// context, tiled) keeps total mass 1 when each z-grid cell's image carries
// N(c) exp(-logDet(c)) × its area; every cell keeps its orientation. As in
// TestPushforwardDensityIntegratesToOne, dropping the log-determinant
// misses 1 by far more than the tolerance.
func TestIAFPushforwardIntegratesToOne(t *testing.T) {
	const (
		n    = 320
		half = 7.0
		cell = 2 * half / n
		L    = 2
		C    = 2
	)
	corners, centres := (n+1)*(n+1), n*n
	B := corners + centres
	z := make([]float64, 0, B*L)
	for i := range n + 1 {
		for j := range n + 1 {
			z = append(z, -half+float64(i)*cell, -half+float64(j)*cell)
		}
	}
	for i := range n {
		for j := range n {
			z = append(z, -half+(float64(i)+0.5)*cell, -half+(float64(j)+0.5)*cell)
		}
	}
	ps, err := nets.NewParams(tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	var steps []flows.IAF
	for k := range 3 {
		f, err := flows.NewIAF(ps, fmt.Sprintf("iaf%d", k), L, []int{8}, C, nets.Tanh, k%2 == 1)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, f)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for _, p := range ps.All() {
		v := p.Float64s()
		for i := range v {
			v[i] = 0.7 * rng.NormFloat64()
		}
	}
	r := newRig(t)
	zn := r.input(z, B, L)
	hn := r.input(slices.Repeat([]float64{0.5, -1}, B), B, C)
	bind := ps.Bind(r.g)
	var fs []flows.Flow
	for _, f := range steps {
		fs = append(fs, f.Bind(bind, hn))
	}
	out, logDet, err := flows.Compose(fs...).Forward(zn)
	if err != nil {
		t.Fatal(err)
	}
	r.watch(out, logDet)
	r.run()
	x, ld := r.get(out), r.get(logDet)
	checkPushforwardMass(t, x, z, ld, n, corners, 2e-3)
}

// In float32 (the VAE's usual dtype) the step computes what the float64
// reference does, to float32 precision.
func TestIAFFloat32(t *testing.T) {
	const B, D, C = 4, 3, 2
	ps64, _ := nets.NewParams(tensor.Float64)
	ps32, _ := nets.NewParams(tensor.Float32)
	f64, err := flows.NewIAF(ps64, "iaf", D, []int{5}, C, nets.Tanh, true)
	if err != nil {
		t.Fatal(err)
	}
	f32, err := flows.NewIAF(ps32, "iaf", D, []int{5}, C, nets.Tanh, true)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i, p := range ps64.All() {
		v, v32 := p.Float64s(), ps32.All()[i].Float32s()
		for j := range v {
			v32[j] = float32(0.8 * rng.NormFloat64())
			v[j] = float64(v32[j])
		}
	}
	z, h := randn(rng, B*D, 1.5), randn(rng, B*C, 1)
	toF32 := func(v []float64) []float32 {
		o := make([]float32, len(v))
		for i := range v {
			o[i] = float32(v[i])
			v[i] = float64(o[i])
		}
		return o
	}
	g := G.NewGraph()
	zn := G.NewMatrix(g, tensor.Float32, G.WithShape(B, D), G.WithName("z"), G.WithValue(tensor.New(tensor.WithShape(B, D), tensor.WithBacking(toF32(z)))))
	hn := G.NewMatrix(g, tensor.Float32, G.WithShape(B, C), G.WithName("h"), G.WithValue(tensor.New(tensor.WithShape(B, C), tensor.WithBacking(toF32(h)))))
	out, ld, err := f32.Bind(ps32.Bind(g), hn).Forward(zn)
	if err != nil {
		t.Fatal(err)
	}
	var outV, ldV G.Value
	G.Read(out, &outV)
	G.Read(ld, &ldV)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	want, _, logSigma := iafRef(f64, ps64, z, h, B)
	got := outV.Data().([]float32)
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			t.Errorf("out[%d] = %g, float64 reference %g", i, got[i], want[i])
		}
	}
	gotLD := ldV.Data().([]float32)
	for r := range B {
		want := 0.0
		for j := range D {
			want += logSigma[r*D+j]
		}
		if math.Abs(float64(gotLD[r])-want) > 1e-5*(1+math.Abs(want)) {
			t.Errorf("logDet[%d] = %g, float64 reference %g", r, gotLD[r], want)
		}
	}
}

// The gate saturates without NaN or -Inf: log σ = -softplus(-(s + 2))
// stays finite and accurate for pre-activations far below zero, where
// log(sigmoid(·)) would give log(0).
func TestIAFSaturatedGateStaysFinite(t *testing.T) {
	const B, D = 2, 2
	ps, _ := nets.NewParams(tensor.Float64)
	f, err := flows.NewIAF(ps, "iaf", D, nil, 0, nets.Tanh, false)
	if err != nil {
		t.Fatal(err)
	}
	// No hidden layer: s_j is the bias of output D+j (all weights 0).
	bias := ps.Get("iaf.made.0.bias").Float64s()
	bias[D], bias[D+1] = -800, -30
	r := newRig(t)
	z := r.input([]float64{1, 2, 3, 4}, B, D)
	_, ld, err := f.Bind(ps.Bind(r.g), nil).Forward(z)
	if err != nil {
		t.Fatal(err)
	}
	r.watch(ld)
	r.run()
	want := -(798 + math.Log1p(math.Exp(-798))) - (28 + math.Log1p(math.Exp(-28)))
	for i, v := range r.get(ld) {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v-want) > 1e-9*math.Abs(want) {
			t.Errorf("logDet[%d] = %g, want %g", i, v, want)
		}
	}
}

// Parameters get the documented names and shapes.
func TestIAFParameterNames(t *testing.T) {
	ps, _ := nets.NewParams(tensor.Float64)
	if _, err := flows.NewIAF(ps, "enc.iaf1", 3, []int{7, 6}, 4, nets.ReLU, false); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"enc.iaf1.made.0.weight (3, 7)", "enc.iaf1.made.0.bias (7)",
		"enc.iaf1.made.1.weight (7, 6)", "enc.iaf1.made.1.bias (6)",
		"enc.iaf1.made.2.weight (6, 6)", "enc.iaf1.made.2.bias (6)",
		"enc.iaf1.context.weight (4, 7)", "enc.iaf1.context.bias (7)",
	}
	var got []string
	for _, p := range ps.All() {
		got = append(got, fmt.Sprintf("%s %v", p.Name, tensor.Shape(p.Shape)))
	}
	if !slices.Equal(got, want) {
		t.Errorf("parameters\n%v\nwant\n%v", got, want)
	}
}

// Bad arguments are errors that say what was wrong, not panics.
func TestIAFErrors(t *testing.T) {
	ps, _ := nets.NewParams(tensor.Float64)
	f, err := flows.NewIAF(ps, "ok", 3, []int{4}, 2, nets.Tanh, false)
	if err != nil {
		t.Fatal(err)
	}
	noCtx, err := flows.NewIAF(ps, "noctx", 3, []int{4}, 0, nets.Tanh, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		err        func() error
	}{
		{"dim", "dimension 0", func() error { _, err := flows.NewIAF(ps, "a", 0, nil, 0, nets.Tanh, false); return err }},
		{"context", "context width -1", func() error { _, err := flows.NewIAF(ps, "b", 2, nil, -1, nets.Tanh, false); return err }},
		{"hidden", "hidden layer 1 has width 0", func() error { _, err := flows.NewIAF(ps, "c", 2, []int{3, 0}, 0, nets.Tanh, false); return err }},
		{"activation", "unknown activation", func() error { _, err := flows.NewIAF(ps, "d", 2, nil, 0, "sigmoid", false); return err }},
		{"duplicate", "defined twice", func() error { _, err := flows.NewIAF(ps, "ok", 3, []int{4}, 2, nets.Tanh, false); return err }},
		{"nil params", "nil parameter store", func() error { _, err := flows.NewIAF(nil, "e", 3, nil, 0, nets.Tanh, false); return err }},
	} {
		if err := c.err(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}

	const B = 4
	r := newRig(t)
	m := func(rows, cols int) *G.Node { return r.input(make([]float64, rows*cols), rows, cols) }
	b := ps.Bind(r.g)
	for _, c := range []struct {
		name, want string
		flow       flows.Flow
		z          *G.Node
	}{
		{"z width", "IAF z has shape (4, 2), want (B, 3)", f.Bind(b, m(B, 2)), m(B, 2)},
		{"z vector", "want (B, 3)", f.Bind(b, m(B, 2)), r.input(make([]float64, 3), 3)},
		{"missing h", "IAF context h has shape nil, want (4, 2)", f.Bind(b, nil), m(B, 3)},
		{"h width", "IAF context h has shape (4, 3), want (4, 2)", f.Bind(b, m(B, 3)), m(B, 3)},
		{"h batch", "IAF context h has shape (5, 2), want (4, 2)", f.Bind(b, m(B+1, 2)), m(B, 3)},
		{"h without context", "built without context", noCtx.Bind(b, m(B, 2)), m(B, 3)},
		{"nil binding", "nil binding", f.Bind(nil, m(B, 2)), m(B, 3)},
		{"other graph", "not in the binding's graph", f.Bind(b, m(B, 2)), newRig(t).input(make([]float64, B*3), B, 3)},
	} {
		_, _, err := c.flow.Forward(c.z)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	g32 := G.NewGraph()
	z32 := G.NewMatrix(g32, tensor.Float32, G.WithShape(B, 3), G.WithName("z32"))
	if _, _, err := noCtx.Bind(ps.Bind(g32), nil).Forward(z32); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("float32 z with float64 parameters: error %v, want one about the dtype", err)
	}
}

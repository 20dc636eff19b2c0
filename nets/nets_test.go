package nets

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	gonumBLAS "gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// mlpRef computes the MLP in plain Go for checking the graph.
func mlpRef(ps *Params, m MLP, x []float64, rows int) []float64 {
	h, in := x, len(x)/rows
	for _, l := range m.Layers {
		w, b := ps.Get(l.WeightName()).Float64s(), ps.Get(l.BiasName()).Float64s()
		out := make([]float64, rows*l.Out)
		for r := 0; r < rows; r++ {
			for j := 0; j < l.Out; j++ {
				s := b[j]
				for i := 0; i < in; i++ {
					s += h[r*in+i] * w[i*l.Out+j]
				}
				switch m.Act {
				case ReLU:
					s = math.Max(s, 0)
				case Tanh:
					s = math.Tanh(s)
				case Softplus:
					s = math.Log1p(math.Exp(s))
				}
				out[r*l.Out+j] = s
			}
		}
		h, in = out, l.Out
	}
	return h
}

func newTestMLP(t *testing.T, act Activation, seed uint64) (*Params, MLP) {
	t.Helper()
	ps, err := NewParams(tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMLP(ps, "enc", 5, []int{7, 3}, act)
	if err != nil {
		t.Fatal(err)
	}
	ps.InitUniform(rand.New(rand.NewPCG(seed, 1)))
	return ps, m
}

func runMLP(t *testing.T, ps *Params, m MLP, x []float64, rows int) []float64 {
	t.Helper()
	g := G.NewGraph()
	b := ps.Bind(g)
	xn := G.NewMatrix(g, tensor.Float64, G.WithShape(rows, len(x)/rows), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(rows, len(x)/rows), tensor.WithBacking(x))))
	y, err := m.Forward(b, xn)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float64(nil), y.Value().Data().([]float64)...)
}

func TestMLPForwardMatchesReference(t *testing.T) {
	for _, act := range []Activation{ReLU, Tanh, Softplus} {
		ps, m := newTestMLP(t, act, 3)
		rng := rand.New(rand.NewPCG(9, 9))
		x := make([]float64, 4*5)
		for i := range x {
			x[i] = rng.NormFloat64() * 2
		}
		got, want := runMLP(t, ps, m, x, 4), mlpRef(ps, m, x, 4)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Fatalf("%s: out[%d] = %v, want %v", act, i, got[i], want[i])
			}
		}
	}
}

func TestParamsShareMemoryAcrossGraphs(t *testing.T) {
	ps, m := newTestMLP(t, Tanh, 1)
	x := []float64{1, 2, 3, 4, 5}
	before := runMLP(t, ps, m, x, 1)
	// An in-place update (what the optimizer does) must be seen by a graph
	// built before it and by one built after it.
	w := ps.Get("enc.1.bias").Float64s()
	w[0] += 1
	after, want := runMLP(t, ps, m, x, 1), mlpRef(ps, m, x, 1)
	if after[0] == before[0] || math.Abs(after[0]-want[0]) > 1e-12 || after[1] != before[1] {
		t.Fatalf("bias update not seen: before %v after %v, want %v", before, after, want)
	}
}

// TestGradientMatchesFiniteDifferences checks gorgonia's backward pass through
// our layers against central differences (gonum's fd) of the plain-Go reference.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, act := range []Activation{ReLU, Tanh, Softplus} {
		ps, m := newTestMLP(t, act, 5)
		rows := 3
		rng := rand.New(rand.NewPCG(4, 4))
		x := make([]float64, rows*5)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		g := G.NewGraph()
		b := ps.Bind(g)
		xn := G.NewMatrix(g, tensor.Float64, G.WithShape(rows, 5), G.WithName("x"),
			G.WithValue(tensor.New(tensor.WithShape(rows, 5), tensor.WithBacking(x))))
		y, err := m.Forward(b, xn)
		if err != nil {
			t.Fatal(err)
		}
		// loss = sum(y^2) gives every output a distinct weight.
		loss := G.Must(G.Sum(G.Must(G.Square(y))))
		if _, err := G.Grad(loss, b.Nodes()...); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(b.Nodes()...))
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		f := func() float64 {
			s := 0.0
			for _, v := range mlpRef(ps, m, x, rows) {
				s += v * v
			}
			return s
		}
		for i, p := range ps.All() {
			gv, err := b.Nodes()[i].Grad()
			if err != nil {
				t.Fatal(err)
			}
			grad := gv.Data().([]float64)
			for j, fd := range fdGradient(p.Float64s(), f) {
				if math.Abs(fd-grad[j]) > 1e-5*(1+math.Abs(fd)) {
					t.Fatalf("%s: d/d%s[%d] = %v, finite difference %v", act, p.Name, j, grad[j], fd)
				}
			}
		}
		vm.Close()
	}
}

func TestInitIsSeededAndBounded(t *testing.T) {
	a, _ := newTestMLP(t, ReLU, 7)
	b, _ := newTestMLP(t, ReLU, 7)
	c, _ := newTestMLP(t, ReLU, 8)
	same, differ := true, false
	for i, p := range a.All() {
		bound := 1 / math.Sqrt(float64(p.FanIn))
		for j, v := range p.Float64s() {
			if math.Abs(v) > bound {
				t.Fatalf("%s[%d] = %v outside ±%v", p.Name, j, v, bound)
			}
			same = same && v == b.All()[i].Float64s()[j]
			differ = differ || v != c.All()[i].Float64s()[j]
		}
	}
	if !same || !differ {
		t.Fatalf("same seed equal: %v, other seed different: %v", same, differ)
	}
}

func TestNamesAndShapes(t *testing.T) {
	ps, _ := newTestMLP(t, ReLU, 1)
	want := []struct {
		name  string
		shape []int
	}{{"enc.0.weight", []int{5, 7}}, {"enc.0.bias", []int{7}}, {"enc.1.weight", []int{7, 3}}, {"enc.1.bias", []int{3}}}
	if len(ps.All()) != len(want) {
		t.Fatalf("%d params, want %d", len(ps.All()), len(want))
	}
	for i, w := range want {
		p := ps.All()[i]
		if p.Name != w.name || len(p.Shape) != len(w.shape) || p.Shape[0] != w.shape[0] {
			t.Errorf("param %d = %s %v, want %s %v", i, p.Name, p.Shape, w.name, w.shape)
		}
	}
	if ps.Count() != 5*7+7+7*3+3 {
		t.Errorf("Count = %d", ps.Count())
	}
}

func TestBadDefinitions(t *testing.T) {
	ps, _ := NewParams(tensor.Float32)
	if _, err := NewMLP(ps, "m", 3, []int{0}, ReLU); err == nil {
		t.Error("zero-width layer accepted")
	}
	if _, err := NewMLP(ps, "m", 3, []int{2}, "sigmoidish"); err == nil {
		t.Error("unknown activation accepted")
	}
	if _, err := NewLinear(ps, "a", 2, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := NewLinear(ps, "a", 2, 2); err == nil {
		t.Error("duplicate parameter name accepted")
	}
	if _, err := NewParams(tensor.Int); err == nil {
		t.Error("int dtype accepted")
	}
}

// TestCounterCountsWithoutAllocating: a counting store records shapes and
// sums sizes, allocates no values and refuses to pass its limit.
func TestCounterCountsWithoutAllocating(t *testing.T) {
	ps, err := NewCounter(tensor.Float32, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMLP(ps, "enc", 10, []int{20, 5}, ReLU); err != nil {
		t.Fatal(err)
	}
	if want := 10*20 + 20 + 20*5 + 5; ps.Count() != want || !ps.Counting() {
		t.Errorf("Count = %d, want %d", ps.Count(), want)
	}
	for _, p := range ps.All() {
		if p.Value != nil {
			t.Errorf("%s has a value", p.Name)
		}
	}
	if _, err := ps.New("big", 1, 1<<40, 1<<40); !errors.Is(err, ErrTooMany) {
		t.Errorf("a parameter past the limit: err = %v", err)
	}
	if _, err := ps.New("over", 1, 1000); !errors.Is(err, ErrTooMany) {
		t.Errorf("the count past the limit: err = %v", err)
	}
}

// TestUseFastBLAS: importing nets installed the fast BLAS; another one
// installed with gorgonia.Use stays until UseFastBLAS restores ours.
func TestUseFastBLAS(t *testing.T) {
	if !UsingFastBLAS() {
		t.Fatal("importing nets did not install internal/kernels/gemm")
	}
	defer UseFastBLAS()
	G.Use(gonumBLAS.Implementation{})
	if UsingFastBLAS() {
		t.Fatal("gorgonia.Use did not replace the BLAS")
	}
	UseFastBLAS()
	UseFastBLAS()
	if !UsingFastBLAS() {
		t.Fatal("UseFastBLAS did not restore internal/kernels/gemm")
	}
}

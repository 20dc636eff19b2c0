package tape

import (
	"runtime"
	"strings"
	"testing"
	"weak"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestRunMatchesRunAll runs the same graph through Run and RunAll on
// changing inputs, and checks that an op's failure comes back as an error.
func TestRunMatchesRunAll(t *testing.T) {
	g := G.NewGraph()
	xv := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float64{1, 2, 3, 4, 5, 6}))
	x := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("x"), G.WithValue(xv))
	y := G.Must(G.Sum(G.Must(G.Square(G.Must(G.Tanh(x)))), 1))
	var out G.Value
	G.Read(y, &out)
	direct, err := New(G.NewTapeMachine(g))
	if err != nil {
		t.Fatal(err)
	}
	ref := G.NewTapeMachine(g)
	for round := 0; round < 3; round++ {
		for i := range xv.Float64s() {
			xv.Float64s()[i] = float64(round*7+i) / 5
		}
		if err := direct.Run(); err != nil {
			t.Fatal(err)
		}
		got := append([]float64(nil), out.Data().([]float64)...)
		if err := ref.RunAll(); err != nil {
			t.Fatal(err)
		}
		ref.Reset()
		want := out.Data().([]float64)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("round %d: Run gives %v, RunAll %v", round, got, want)
			}
		}
	}

	// A matrix product of mismatched shapes fails at run time.
	g2 := G.NewGraph()
	a := G.NewMatrix(g2, tensor.Float64, G.WithShape(2, 3), G.WithValue(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float64, 6)))))
	b := G.NewMatrix(g2, tensor.Float64, G.WithShape(3, 2), G.WithValue(tensor.New(tensor.WithShape(3, 2), tensor.WithBacking(make([]float64, 6)))))
	G.Must(G.Mul(a, b))
	m2, err := New(G.NewTapeMachine(g2))
	if err != nil {
		t.Fatal(err)
	}
	b.Value().(*tensor.Dense).Reshape(2, 3) // now 2x3 times 2x3
	if err := m2.Run(); err == nil || !strings.Contains(err.Error(), "PC") {
		t.Fatalf("err = %v, want the machine's error", err)
	}
	if _, err := New(G.NewLispMachine(g)); err == nil {
		t.Fatal("a lisp machine was accepted")
	}
}

// TestMachineFreedInOneCollection: what a machine reaches (its graph, the
// graph's values) must go in the first collection after it is dropped.
// gorgonia gives every tape machine a finalizer (empty without CUDA), and
// an object with a finalizer keeps all it reaches alive for one more
// collection: with a new graph per call (log p(x), each with a copy of the
// weights) the live heap then grew with the number of calls.
func TestMachineFreedInOneCollection(t *testing.T) {
	build := func() weak.Pointer[tensor.Dense] {
		g := G.NewGraph()
		xv := tensor.New(tensor.WithShape(64, 64), tensor.WithBacking(make([]float64, 64*64)))
		x := G.NewMatrix(g, tensor.Float64, G.WithShape(64, 64), G.WithValue(xv))
		G.Must(G.Sum(G.Must(G.Tanh(x))))
		m, err := New(G.NewTapeMachine(g))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(); err != nil {
			t.Fatal(err)
		}
		return weak.Make(xv)
	}
	p := build()
	runtime.GC()
	if p.Value() != nil {
		t.Fatal("the graph's input is still alive one collection after its machine was dropped")
	}
}

package nets

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDenseHeadsMatchesSeparateHeads checks x [W_1 W_2 W_3] + [b_1 b_2 b_3]
// against the heads computed one by one, and every input's gradient (x,
// each W_i and b_i, through ConcatCols and its blocks) against finite
// differences of a weighted sum of the outputs.
func TestDenseHeadsMatchesSeparateHeads(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	rows, in := 3, 4
	widths := []int{2, 1, 3}
	N := 0
	for _, w := range widths {
		N += w
	}
	x := randSlice(rng, rows*in, 1)
	ws, bs := make([][]float64, len(widths)), make([][]float64, len(widths))
	for i, w := range widths {
		ws[i], bs[i] = randSlice(rng, in*w, 1), randSlice(rng, w, 1)
	}
	c := randSlice(rng, rows*N, 1) // loss = sum c ⊙ y
	ref := func() []float64 {
		y := make([]float64, 0, rows*N)
		for r := range rows {
			for i, w := range widths {
				for j := range w {
					v := bs[i][j]
					for k := range in {
						v += x[r*in+k] * ws[i][k*w+j]
					}
					y = append(y, v)
				}
			}
		}
		return y
	}
	loss := func() float64 {
		s := 0.0
		for i, v := range ref() {
			s += c[i] * v
		}
		return s
	}
	g := G.NewGraph()
	xn := matNode(g, "x", rows, in, x)
	var wn, bn []*G.Node
	for i, w := range widths {
		wn = append(wn, matNode(g, "w"+string(rune('0'+i)), in, w, ws[i]))
		bn = append(bn, G.NewVector(g, tensor.Float64, G.WithShape(w), G.WithName("b"+string(rune('0'+i))),
			G.WithValue(tensor.New(tensor.WithShape(w), tensor.WithBacking(bs[i])))))
	}
	y, err := DenseHeads(xn, wn, bn)
	if err != nil {
		t.Fatal(err)
	}
	cn := matNode(g, "c", rows, N, c)
	l := G.Must(G.Sum(G.Must(G.HadamardProd(y, cn))))
	wrt := append(append(G.Nodes{xn}, wn...), bn...)
	if _, err := G.Grad(l, wrt...); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(wrt...))
	defer vm.Close()
	for run := range 2 { // the second run reuses every op's output buffer
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for i, v := range ref() {
			if got := y.Value().Data().([]float64)[i]; math.Abs(got-v) > 1e-12 {
				t.Fatalf("run %d: y[%d] = %v, separate heads %v", run, i, got, v)
			}
		}
		if run > 0 {
			break // dual values accumulate gradients across runs
		}
		check := func(name string, n *G.Node, v []float64) {
			gv, err := n.Grad()
			if err != nil {
				t.Fatal(err)
			}
			grad := gv.Data().([]float64)
			for j, fd := range fdGradient(v, loss) {
				if math.Abs(fd-grad[j]) > 1e-6*(1+math.Abs(fd)) {
					t.Fatalf("run %d: d/d%s[%d] = %v, finite difference %v", run, name, j, grad[j], fd)
				}
			}
		}
		check("x", xn, x)
		for i := range widths {
			check(wn[i].Name(), wn[i], ws[i])
			check(bn[i].Name(), bn[i], bs[i])
		}
		vm.Reset()
	}
}

func TestConcatColsErrors(t *testing.T) {
	g := G.NewGraph()
	a := matNode(g, "a", 2, 3, make([]float64, 6))
	b := matNode(g, "b", 3, 3, make([]float64, 9))
	v := G.NewVector(g, tensor.Float64, G.WithShape(3), G.WithName("v"))
	if _, err := ConcatCols(); err == nil {
		t.Error("no inputs accepted")
	}
	if _, err := ConcatCols(a, b); err == nil {
		t.Error("matrices of 2 and 3 rows accepted")
	}
	if _, err := ConcatCols(a, v); err == nil {
		t.Error("a matrix and a vector accepted")
	}
	if _, err := DenseHeads(a, []*G.Node{a}, nil); err == nil {
		t.Error("one weight and no bias accepted")
	}
}

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// recorder wraps Implementation and records the Sgemm call patterns that
// gorgonia issues.
type recorder struct {
	Implementation
	mu    *sync.Mutex
	calls map[string]int
}

func (r recorder) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	r.mu.Lock()
	r.calls[fmt.Sprintf("%s m=%d n=%d k=%d alpha=%g beta=%g lda=%d ldb=%d ldc=%d", transName(tA, tB), m, n, k, alpha, beta, lda, ldb, ldc)]++
	r.mu.Unlock()
	r.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// mlpGrads builds a two-layer graph cost = Σ (tanh(x·W1)·W2)², runs it with
// a tape machine and returns the cost, dcost/dx, dcost/dW1 and dcost/dW2.
func mlpGrads(t *testing.T, x, w1, w2 *tensor.Dense) (cost float32, grads [3][]float32) {
	t.Helper()
	g := G.NewGraph()
	xn := G.NewMatrix(g, G.Float32, G.WithShape(x.Shape()...), G.WithName("x"), G.WithValue(x.Clone()))
	w1n := G.NewMatrix(g, G.Float32, G.WithShape(w1.Shape()...), G.WithName("w1"), G.WithValue(w1.Clone()))
	w2n := G.NewMatrix(g, G.Float32, G.WithShape(w2.Shape()...), G.WithName("w2"), G.WithValue(w2.Clone()))
	h := G.Must(G.Tanh(G.Must(G.Mul(xn, w1n))))
	y := G.Must(G.Mul(h, w2n))
	c := G.Must(G.Sum(G.Must(G.Square(y))))
	if _, err := G.Grad(c, xn, w1n, w2n); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	cost = c.Value().Data().(float32)
	for i, n := range []*G.Node{xn, w1n, w2n} {
		gv, err := n.Grad()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = append([]float32(nil), gv.Data().([]float32)...)
	}
	return cost, grads
}

// TestGorgonia plugs Implementation into gorgonia, runs a forward and
// backward pass through two matrix products and compares with gonum's BLAS.
func TestGorgonia(t *testing.T) {
	defer G.Use(gonum.Implementation{})
	r := rand.New(rand.NewPCG(21, 22))
	rnd := func(rows, cols int) *tensor.Dense {
		return tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(randSlice(r, rows*cols)))
	}
	// Big enough for the parallel path, with edges in every dimension.
	x, w1, w2 := rnd(37, 131), rnd(131, 150), rnd(150, 9)

	G.Use(gonum.Implementation{})
	wantCost, want := mlpGrads(t, x, w1, w2)

	rec := recorder{mu: new(sync.Mutex), calls: map[string]int{}}
	G.Use(rec)
	if _, ok := G.WhichBLAS().(recorder); !ok {
		t.Fatal("gorgonia.Use did not install the implementation")
	}
	gotCost, got := mlpGrads(t, x, w1, w2)
	G.Use(gonum.Implementation{})

	if len(rec.calls) == 0 {
		t.Fatal("gorgonia never called Sgemm")
	}
	var pats []string
	for p, n := range rec.calls {
		pats = append(pats, fmt.Sprintf("%s ×%d", p, n))
	}
	sort.Strings(pats)
	t.Logf("gorgonia Sgemm calls:\n%s", strings.Join(pats, "\n"))

	if d := math.Abs(float64(gotCost - wantCost)); d > 1e-4*math.Abs(float64(wantCost)) {
		t.Errorf("cost = %v, gonum gives %v", gotCost, wantCost)
	}
	for i, name := range []string{"dx", "dW1", "dW2"} {
		var maxAbs float64
		for _, v := range want[i] {
			maxAbs = max(maxAbs, math.Abs(float64(v)))
		}
		for j := range want[i] {
			if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-4*maxAbs {
				t.Fatalf("%s[%d] = %v, gonum gives %v", name, j, got[i][j], want[i][j])
			}
		}
	}

	// And the plain value (not a recorder) is accepted by both packages.
	G.Use(Implementation{})
	tensor.Use(Implementation{})
	if _, ok := G.WhichBLAS().(Implementation); !ok {
		t.Error("gorgonia.Use(Implementation{}) not installed")
	}
	gotCost2, got2 := mlpGrads(t, x, w1, w2)
	if gotCost2 != gotCost {
		t.Errorf("cost with Implementation{} = %v, with recorder %v", gotCost2, gotCost)
	}
	for i := range got2 {
		for j := range got2[i] {
			if got2[i][j] != got[i][j] {
				t.Fatalf("grad %d differs between runs", i)
			}
		}
	}
}

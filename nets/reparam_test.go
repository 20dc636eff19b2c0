package nets

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dtNode is a (rows, cols) matrix (cols 0: a vector of rows) of dtype dt
// holding v.
func dtNode(g *G.ExprGraph, dt tensor.Dtype, name string, rows, cols int, v []float64) *G.Node {
	if cols == 0 {
		return G.NewVector(g, dt, G.WithShape(rows), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(rows), tensor.WithBacking(toDtype(v, dt)))))
	}
	return G.NewMatrix(g, dt, G.WithShape(rows, cols), G.WithName(name),
		G.WithValue(tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(toDtype(v, dt)))))
}

// runValues runs g's tape machine twice (the second run reuses every op's
// buffers) and returns the values of ns as float64s.
func runValues(t *testing.T, g *G.ExprGraph, ns ...*G.Node) [][]float64 {
	t.Helper()
	vals := make([]G.Value, len(ns))
	for i, n := range ns {
		G.Read(n, &vals[i])
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for range 2 {
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	out := make([][]float64, len(ns))
	for i, v := range vals {
		switch d := v.Data().(type) {
		case []float32:
			for _, x := range d {
				out[i] = append(out[i], float64(x))
			}
		case []float64:
			out[i] = append([]float64(nil), d...)
		}
	}
	return out
}

// sameBits fails t where got and want differ in any bit.
func sameBits(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s[%d] = %v, unfused %v", what, i, got[i], want[i])
		}
	}
}

// reparamValues is y = mu + exp(lv/2) ⊙ eps, fused or as gorgonia's nodes
// (the Gaussian families' scaledNoise), and the gradients of the loss
// Σ c ⊙ y + Σ d ⊙ lv (lv with two consumers, as in a sampler's log q)
// with respect to mu and lv.
func reparamValues(t *testing.T, dt tensor.Dtype, fused bool, B, L int, mu, lv, eps, c, d []float64) [][]float64 {
	g := G.NewGraph()
	mun, lvn, epsn := dtNode(g, dt, "mu", B, L, mu), dtNode(g, dt, "lv", B, L, lv), dtNode(g, dt, "eps", B, L, eps)
	var y *G.Node
	if fused {
		var err error
		if y, err = Reparam(mun, lvn, epsn); err != nil {
			t.Fatal(err)
		}
	} else {
		half := G.NewConstant(0.5)
		if dt == tensor.Float32 {
			half = G.NewConstant(float32(0.5))
		}
		y = G.Must(G.Add(mun, G.Must(G.HadamardProd(G.Must(G.Exp(G.Must(G.Mul(lvn, half)))), epsn))))
	}
	loss := G.Must(G.Add(G.Must(G.Sum(G.Must(G.HadamardProd(y, dtNode(g, dt, "c", B, L, c))))),
		G.Must(G.Sum(G.Must(G.HadamardProd(lvn, dtNode(g, dt, "d", B, L, d)))))))
	grads, err := G.Grad(loss, mun, lvn)
	if err != nil {
		t.Fatal(err)
	}
	return runValues(t, g, y, grads[0], grads[1])
}

// Reparam gives gorgonia's scale, exp, product and add bit for bit, values
// and gradients, in float32 and float64, and its gradient is the finite
// differences' of the same loss.
func TestReparamMatchesNodes(t *testing.T) {
	const B, L = 6, 5
	rng := rand.New(rand.NewPCG(11, 12))
	draw := func(scale float64) []float64 {
		v := randSlice(rng, B*L, scale)
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
		v[3] = 0
		return v
	}
	mu, lv, eps, c, d := draw(1), draw(2), draw(1), draw(1), draw(1)
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		fused := reparamValues(t, dt, true, B, L, mu, lv, eps, c, d)
		nodes := reparamValues(t, dt, false, B, L, mu, lv, eps, c, d)
		for i, name := range []string{"y", "dmu", "dlv"} {
			sameBits(t, dt.String()+" "+name, fused[i], nodes[i])
		}
	}
	loss := func() float64 {
		s := 0.0
		for i := range mu {
			s += c[i]*(mu[i]+math.Exp(lv[i]/2)*eps[i]) + d[i]*lv[i]
		}
		return s
	}
	got := reparamValues(t, tensor.Float64, true, B, L, mu, lv, eps, c, d)
	for k, v := range [][]float64{mu, lv} {
		for j, fd := range fdGradient(v, loss) {
			if g := got[k+1][j]; math.Abs(fd-g) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("gradient %d [%d] = %v, finite difference %v", k, j, g, fd)
			}
		}
	}
	g := G.NewGraph()
	if _, err := Reparam(dtNode(g, tensor.Float32, "a", 2, 3, make([]float64, 6)), dtNode(g, tensor.Float32, "b", 2, 3, make([]float64, 6)),
		dtNode(g, tensor.Float32, "e", 2, 2, make([]float64, 4))); err == nil {
		t.Error("eps of another shape: no error")
	}
}

// NoGradCols copies the columns a product with a 0/1 matrix picks.
func TestNoGradCols(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const B, W, lo, hi = 4, 7, 2, 5
	x := randSlice(rng, B*W, 1)
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		g := G.NewGraph()
		xn := dtNode(g, dt, "x", B, W, x)
		y, err := NoGradCols(xn, lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		got := runValues(t, g, y)[0]
		for r := range B {
			for j := lo; j < hi; j++ {
				want := float64(float32(x[r*W+j]))
				if dt == tensor.Float64 {
					want = x[r*W+j]
				}
				if v := got[r*(hi-lo)+j-lo]; v != want {
					t.Fatalf("%v (%d, %d) = %v, want %v", dt, r, j, v, want)
				}
			}
		}
		if _, err := NoGradCols(xn, 3, W+1); err == nil {
			t.Error("columns past the end: no error")
		}
	}
}

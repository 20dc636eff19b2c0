package nets

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// strictLowerValues computes N v per row for v (B, L) and the packed
// triangles n, fused (StrictLowerTimes) or as the full-covariance family
// wrote it, ((v E) ⊙ n) R with 0/1 matrices E and R, and returns y and the
// gradients of Σ w ⊙ y with respect to v and n.
func strictLowerValues(t *testing.T, dt tensor.Dtype, fused bool, B, L int, v, n, w []float64) [][]float64 {
	t.Helper()
	P := L * (L - 1) / 2
	g := G.NewGraph()
	mat := func(name string, vals []float64, r, c int) *G.Node {
		return G.NewMatrix(g, dt, G.WithShape(r, c), G.WithName(name), G.WithValue(tensor.New(tensor.WithShape(r, c), tensor.WithBacking(toDtype(vals, dt)))))
	}
	vn, nn, wn := mat("v", v, B, L), mat("n", n, B, P), mat("w", w, B, L)
	var y *G.Node
	var err error
	if fused {
		y, err = StrictLowerTimes(vn, nn)
	} else {
		e, r := make([]float64, L*P), make([]float64, P*L)
		for i := 1; i < L; i++ {
			for j := range i {
				p := i*(i-1)/2 + j
				e[j*P+p], r[p*L+i] = 1, 1
			}
		}
		en, rn := mat("E", e, L, P), mat("R", r, P, L)
		y, err = G.Mul(G.Must(G.HadamardProd(G.Must(G.Mul(vn, en)), nn)), rn)
	}
	if err != nil {
		t.Fatal(err)
	}
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(y, wn))))
	grads, err := G.Grad(loss, vn, nn)
	if err != nil {
		t.Fatal(err)
	}
	read := append(G.Nodes{y}, grads...)
	vals := make([]G.Value, len(read))
	for i, n := range read {
		G.Read(n, &vals[i])
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	var out [][]float64
	for _, v := range vals {
		switch d := v.Data().(type) {
		case []float32:
			f := make([]float64, len(d))
			for i, x := range d {
				f[i] = float64(x)
			}
			out = append(out, f)
		case []float64:
			out = append(out, append([]float64(nil), d...))
		}
	}
	return out
}

// StrictLowerTimes gives the 0/1-matrix construction's values and
// gradients bit for bit, in float32 and float64, with zeros among the
// inputs.
func TestStrictLowerTimesMatchesProducts(t *testing.T) {
	const B, L = 7, 6
	P := L * (L - 1) / 2
	rng := rand.New(rand.NewPCG(7, 8))
	draw := func(k int) []float64 {
		x := make([]float64, k)
		for i := range x {
			if rng.IntN(8) > 0 {
				x[i] = float64(float32(rng.NormFloat64()))
			}
		}
		return x
	}
	v, n, w := draw(B*L), draw(B*P), draw(B*L)
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		fused := strictLowerValues(t, dt, true, B, L, v, n, w)
		nodes := strictLowerValues(t, dt, false, B, L, v, n, w)
		for a, name := range []string{"y", "dv", "dn"} {
			if len(fused[a]) != len(nodes[a]) {
				t.Fatalf("%v %s: %d values, nodes %d", dt, name, len(fused[a]), len(nodes[a]))
			}
			nonzero := 0
			for i, want := range nodes[a] {
				if math.Float64bits(fused[a][i]) != math.Float64bits(want) {
					t.Errorf("%v %s[%d]: fused %v, products %v", dt, name, i, fused[a][i], want)
				}
				if want != 0 {
					nonzero++
				}
			}
			if nonzero < len(nodes[a])/3 {
				t.Errorf("%v %s: only %d non-zero values", dt, name, nonzero)
			}
		}
	}
	if _, err := StrictLowerTimes(G.NewMatrix(G.NewGraph(), tensor.Float32, G.WithShape(2, 3)), G.NewMatrix(G.NewGraph(), tensor.Float32, G.WithShape(2, 4))); err == nil {
		t.Error("n of the wrong width: no error")
	}
}

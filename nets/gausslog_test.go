package nets

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LogQEps, LogNormalAt and LogStdNormal are the Gaussian log-densities they name, and
// their gradients are the finite differences' (float64); amortized's
// TestGaussFusedMatchesBuilder holds them to the Builder's nodes bit for
// bit.
func TestGaussLogGradients(t *testing.T) {
	const B, L = 4, 3
	rng := rand.New(rand.NewPCG(41, 42))
	a, m, lv, k := randSlice(rng, B*L, 1), randSlice(rng, B*L, 1), randSlice(rng, B*L, 1), randSlice(rng, B, 1)
	logN := func(x, mean, lv []float64, r int) float64 {
		s := 0.0
		for j := range L {
			i := r*L + j
			d := (x[i] - mean[i]) * math.Exp(-lv[i]/2)
			s += -0.5*(d*d+math.Log(2*math.Pi)) - lv[i]/2
		}
		return s
	}
	zero := make([]float64, B*L)
	for _, mode := range []string{"eps", "offset", "std"} {
		offset, std := mode == "offset", mode == "std"
		loss := func() float64 {
			s := 0.0
			for r := range B {
				if std {
					s += k[r] * logN(a, zero, zero, r)
				} else if offset {
					s += k[r] * logN(a, m, lv, r)
				} else { // eps = a: the density of mu + e^{lv/2} a at itself
					s += k[r] * (logN(a, zero, zero, r) - 0.5*sumRow(lv, r, L))
				}
			}
			return s
		}
		g := G.NewGraph()
		an, mn, lvn := dtNode(g, tensor.Float64, "a", B, L, a), dtNode(g, tensor.Float64, "m", B, L, m), dtNode(g, tensor.Float64, "lv", B, L, lv)
		var y *G.Node
		var err error
		wrt := G.Nodes{lvn}
		if std {
			y, err = LogStdNormal(an)
			wrt = G.Nodes{an}
		} else if offset {
			y, err = LogNormalAt(an, mn, lvn)
			wrt = G.Nodes{an, mn, lvn}
		} else {
			y, err = LogQEps(an, lvn)
		}
		if err != nil {
			t.Fatal(err)
		}
		grads, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(y, dtNode(g, tensor.Float64, "k", B, 0, k))))), wrt...)
		if err != nil {
			t.Fatal(err)
		}
		got := runValues(t, g, append(G.Nodes{y}, grads...)...)
		for r := range B {
			want := logN(a, m, lv, r)
			if std {
				want = logN(a, zero, zero, r)
			} else if !offset {
				want = logN(a, zero, zero, r) - 0.5*sumRow(lv, r, L)
			}
			if math.Abs(got[0][r]-want) > 1e-12*(1+math.Abs(want)) {
				t.Fatalf("%s: row %d = %v, want %v", mode, r, got[0][r], want)
			}
		}
		ins := [][]float64{lv}
		if std {
			ins = [][]float64{a}
		} else if offset {
			ins = [][]float64{a, m, lv}
		}
		for i, v := range ins {
			for j, fd := range fdGradient(v, loss) {
				if g := got[1+i][j]; math.Abs(fd-g) > 1e-6*(1+math.Abs(fd)) {
					t.Fatalf("%s: gradient %d [%d] = %v, finite difference %v", mode, i, j, g, fd)
				}
			}
		}
	}
	g := G.NewGraph()
	if _, err := LogNormalAt(dtNode(g, tensor.Float64, "a", 2, 3, make([]float64, 6)), dtNode(g, tensor.Float64, "m", 2, 3, make([]float64, 6)),
		dtNode(g, tensor.Float64, "lv", 3, 2, make([]float64, 6))); err == nil {
		t.Error("lv of another shape: no error")
	}
}

func sumRow(v []float64, r, L int) float64 {
	s := 0.0
	for _, x := range v[r*L : (r+1)*L] {
		s += x
	}
	return s
}

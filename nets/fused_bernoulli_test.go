package nets

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/internal/kernels/cores"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestFuseBernoulliLogLik checks the fused op against Dense followed by
// BernoulliLogLik: the same sums and logits bit for bit, serially and with
// the rows split over the cores, for widths with and without a tail of
// fewer than 8, with W packed once for both runs (fixedW), and that Unfuse
// lets another node read the logits.
func TestFuseBernoulliLogLik(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	f32 := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	for _, sh := range [][3]int{{500, 784, 400}, {130, 789, 20}, {3, 5, 7}} {
		B, D, K := sh[0], sh[1], sh[2]
		x := make([]float32, B*D)
		for i := range x {
			x[i] = float32(rng.IntN(2))
		}
		h, w, b := f32(B*K, 1), f32(K*D, 3/math.Sqrt(float64(K))), f32(D, 1)
		// build makes the graph on fresh copies; mode 0: unfused, 1: fused,
		// 2: fused, then the logits read by a sigmoid; 3: fused with W
		// packed once (fixedW).
		build := func(mode int) (ll, logits, mean *G.Node, vm G.VM) {
			g := G.NewGraph()
			mk := func(name string, v []float32, shape ...int) *G.Node {
				v = append([]float32(nil), v...)
				val := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
				if len(shape) == 1 {
					return G.NewVector(g, tensor.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(val))
				}
				return G.NewMatrix(g, tensor.Float32, G.WithShape(shape...), G.WithName(name), G.WithValue(val))
			}
			xn := mk("x", x, B, D)
			logits = G.Must(Dense(mk("h", h, B, K), mk("w", w, K, D), mk("b", b, D), "", false))
			if mode == 0 {
				ll = G.Must(BernoulliLogLik(xn, logits))
			} else {
				var ok bool
				var err error
				if ll, ok, err = FuseBernoulliLogLik(xn, logits, mode == 3); err != nil || !ok {
					t.Fatalf("%v: not fused (%v)", sh, err)
				}
			}
			if mode == 2 {
				Unfuse(logits)
				mean = G.Must(Sigmoid(logits))
			}
			return ll, logits, mean, G.NewTapeMachine(g)
		}
		ll0, l0, _, vm0 := build(0)
		if err := vm0.RunAll(); err != nil {
			t.Fatal(err)
		}
		want, wantL := ll0.Value().Data().([]float32), l0.Value().Data().([]float32)
		for _, held := range []bool{false, true} {
			for mode := 1; mode <= 3; mode++ {
				release := func() {}
				if held {
					release = cores.Hold()
				}
				ll, l, mean, vm := build(mode)
				for run := range 2 {
					if err := vm.RunAll(); err != nil {
						t.Fatal(err)
					}
					got, gotL := ll.Value().Data().([]float32), l.Value().Data().([]float32)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%v held %v mode %d run %d: row %d = %v, unfused %v", sh, held, mode, run, i, got[i], want[i])
						}
					}
					for i := range wantL {
						if math.Float32bits(gotL[i]) != math.Float32bits(wantL[i]) {
							t.Fatalf("%v held %v mode %d run %d: logit %d = %v, unfused %v", sh, held, mode, run, i, gotL[i], wantL[i])
						}
					}
					if mean != nil {
						m := mean.Value().Data().([]float32)
						for i, l := range wantL {
							if want := 1 / (1 + math.Exp(-float64(l))); math.Abs(float64(m[i])-want) > 1e-6 {
								t.Fatalf("%v: mean %d = %v, want %v", sh, i, m[i], want)
							}
						}
					}
					vm.Reset()
				}
				vm.Close()
				release()
			}
		}
		vm0.Close()
	}
}

// TestFuseBernoulliNeedsLinearDense checks that logits from anything but a
// dense node without activation are left alone.
func TestFuseBernoulliNeedsLinearDense(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("x"), G.WithInit(G.Zeroes()))
	h := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 4), G.WithName("h"), G.WithInit(G.Zeroes()))
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 3), G.WithName("w"), G.WithInit(G.Zeroes()))
	b := G.NewVector(g, tensor.Float32, G.WithShape(3), G.WithName("b"), G.WithInit(G.Zeroes()))
	relu := G.Must(Dense(h, w, b, ReLU, false))
	for _, l := range []*G.Node{x, relu} {
		if _, ok, err := FuseBernoulliLogLik(x, l, false); ok || err != nil {
			t.Errorf("%v: fused (%v)", l, err)
		}
	}
}

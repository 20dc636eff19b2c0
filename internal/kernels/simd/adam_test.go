package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamVectorMatchesGo runs the assembly and portable kernels on the same
// data (lengths with and without a tail) and wants bit-identical results,
// including the flush of tiny moments.
func TestAdamVectorMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 8, 9, 64, 1000, 4099} {
		w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64())
			g[i] = float32(rng.NormFloat64() * math.Pow(10, -float64(rng.IntN(40))))
			m[i] = float32(rng.NormFloat64() * math.Pow(10, -float64(rng.IntN(40))))
			v[i] = float32(math.Abs(rng.NormFloat64()) * math.Pow(10, -float64(rng.IntN(40))))
		}
		g[0], m[0] = 0, 5e-31 // flushed
		w2, g2, m2, v2 := clone(w), clone(g), clone(m), clone(v)
		c := NewAdamConsts(0.9, 0.999, 1e-3/(1-0.9), 1/float32(math.Sqrt(1-0.999)), 1e-8, 1e-30)
		for range 3 {
			Adam(w, g, m, v, &c)
			adamGo(w2, g2, m2, v2, &c)
		}
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(w2[i]) || m[i] != m2[i] || v[i] != v2[i] {
				t.Fatalf("n=%d i=%d: vector (w %v, m %v, v %v), Go (w %v, m %v, v %v)", n, i, w[i], m[i], v[i], w2[i], m2[i], v2[i])
			}
		}
		if m[0] != 0 {
			t.Fatalf("n=%d: m = %v not flushed", n, m[0])
		}
	}
}

// TestAdamGoMatchesFormula checks the portable kernel against the update
// written out in float64 (it rounds to float32 at each step, so the
// comparison is to float32 precision).
func TestAdamGoMatchesFormula(t *testing.T) {
	w, g, m, v := []float32{0.5, -1}, []float32{0.25, 2}, []float32{0.1, -0.3}, []float32{0.04, 0.5}
	const b1, b2, lr, eps = 0.9, 0.999, 1e-3, 1e-8
	step, bc2 := lr/(1-math.Pow(b1, 5)), 1/math.Sqrt(1-math.Pow(b2, 5))
	c := NewAdamConsts(b1, b2, float32(step), float32(bc2), eps, 1e-30)
	want := make([]float64, 2)
	for i := range w {
		mi := b1*float64(m[i]) + (1-b1)*float64(g[i])
		vi := b2*float64(v[i]) + (1-b2)*float64(g[i])*float64(g[i])
		want[i] = float64(w[i]) - step*mi/(math.Sqrt(vi)*bc2+eps)
	}
	Adam(w, g, m, v, &c)
	for i := range w {
		if math.Abs(float64(w[i])-want[i]) > 1e-6*math.Abs(want[i]) {
			t.Fatalf("w[%d] = %v, want %v", i, w[i], want[i])
		}
	}
}

func clone(s []float32) []float32 { return append([]float32(nil), s...) }

func BenchmarkAdam(b *testing.B) {
	n := 1 << 20
	w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%100) * 1e-3
	}
	c := NewAdamConsts(0.9, 0.999, 1e-3, 1, 1e-8, 1e-30)
	for b.Loop() {
		Adam(w, g, m, v, &c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/param")
}

// TestAdam2MatchesAddThenAdam: the fused two-gradient step equals, bit for
// bit, adding the gradients and taking Adam's step, and copies the weights.
func TestAdam2MatchesAddThenAdam(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	c := NewAdamConsts(0.9, 0.999, 1e-3, 1.2, 1e-8, 1e-30)
	for _, n := range []int{0, 1, 7, 8, 9, 33, 100} {
		w, g0, g1, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range w {
			w[i], g0[i], g1[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())
			m[i], v[i] = float32(rng.NormFloat64())*0.1, float32(rng.Float64())*0.1
		}
		if n > 3 {
			m[2], v[3] = 1e-35, 1e-35 // flushed
		}
		w2, m2, v2 := clone(w), clone(m), clone(v)
		g := clone(g0)
		Add(g, g1)
		Adam(w2, g, m2, v2, &c)
		wc := make([]float32, n)
		Adam2(w, g0, g1, m, v, wc, &c)
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(w2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) ||
				math.Float32bits(v[i]) != math.Float32bits(v2[i]) || math.Float32bits(wc[i]) != math.Float32bits(w[i]) {
				t.Fatalf("n=%d, [%d]: Adam2 gives w %v m %v v %v copy %v; Add+Adam w %v m %v v %v", n, i, w[i], m[i], v[i], wc[i], w2[i], m2[i], v2[i])
			}
		}
	}
}

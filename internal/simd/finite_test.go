package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFinite plants one NaN, +Inf or -Inf at every position of slices of
// every length up to 40 (vector body and scalar tail) and checks both
// functions, and AddFinite's sums, against the scalar definition.
func TestFinite(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	for n := 0; n <= 40; n++ {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 1e30)
		}
		if !Finite(x) {
			t.Fatalf("n=%d: finite values reported non-finite", n)
		}
		for pos := 0; pos < n; pos++ {
			for _, b := range bad {
				y := clone(x)
				y[pos] = b
				if Finite(y) {
					t.Fatalf("n=%d: %v at %d not found", n, b, pos)
				}
				// As the source of a sum, and as a sum that overflows.
				dst := clone(x)
				if AddFinite(dst, y) {
					t.Fatalf("n=%d: AddFinite missed %v at %d", n, b, pos)
				}
				big := make([]float32, n)
				big[pos] = math.MaxFloat32
				over := make([]float32, n)
				over[pos] = math.MaxFloat32
				if AddFinite(over, big) {
					t.Fatalf("n=%d: AddFinite missed an overflow at %d", n, pos)
				}
			}
		}
		dst, src := clone(x), make([]float32, n)
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		if !AddFinite(dst, src) {
			t.Fatalf("n=%d: finite sums reported non-finite", n)
		}
		for i := range dst {
			if want := x[i] + src[i]; dst[i] != want {
				t.Fatalf("n=%d: dst[%d] = %v, want %v", n, i, dst[i], want)
			}
		}
	}
}

func BenchmarkAddFinite(b *testing.B) {
	dst, src := make([]float32, 1<<15), make([]float32, 1<<15)
	b.SetBytes(3 * 4 << 15)
	for b.Loop() {
		AddFinite(dst, src)
	}
}

package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAllBelow plants one NaN, ±Inf or out-of-bound value at every position
// of slices of every length up to 40 (vector body and scalar tail).
func TestAllBelow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inf := float32(math.Inf(1))
	for n := 0; n <= 40; n++ {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 1e30)
		}
		if !AllBelow(x, inf) || !AllBelow(x, 1e32) {
			t.Fatalf("n=%d: values in bounds reported out of bounds", n)
		}
		for pos := 0; pos < n; pos++ {
			for _, c := range []struct {
				v, limit float32
			}{{float32(math.NaN()), inf}, {inf, inf}, {-inf, inf}, {2e32, 1e32}, {-1e32, 1e32}, {float32(math.NaN()), 1e32}} {
				y := clone(x)
				y[pos] = c.v
				if AllBelow(y, c.limit) {
					t.Fatalf("n=%d: %v at %d passed the bound %v", n, c.v, pos, c.limit)
				}
			}
		}
	}
}

func TestAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n <= 80; n++ {
		x, y := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		want := clone(x)
		for i := range want {
			want[i] += y[i]
		}
		Add(x, y)
		for i := range x {
			if x[i] != want[i] {
				t.Fatalf("n=%d: [%d] = %v, want %v", n, i, x[i], want[i])
			}
		}
	}
}

func BenchmarkAllBelow(b *testing.B) {
	x := make([]float32, 1<<15)
	b.SetBytes(4 << 15)
	for b.Loop() {
		AllBelow(x, 1e30)
	}
}

func TestReluGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 40; n++ {
		y, g, d := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range y {
			y[i], g[i], d[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()), 99
		}
		if n > 3 {
			y[1], y[2], y[3] = 0, float32(math.NaN()), float32(math.Copysign(0, -1))
		}
		ReluGrad(d, y, g)
		for i := range d {
			want := float32(0)
			if y[i] > 0 {
				want = g[i]
			}
			if math.Float32bits(d[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: d[%d] = %v for y %v, g %v; want %v", n, i, d[i], y[i], g[i], want)
			}
		}
	}
}

func TestBiasRelu(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n <= 40; n++ {
		r, b := make([]float32, n), make([]float32, n)
		for i := range r {
			r[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		if n > 2 {
			r[1], b[2] = float32(math.NaN()), float32(math.Inf(-1))
		}
		want := clone(r)
		for i := range want {
			want[i] = max(want[i]+b[i], 0)
		}
		BiasRelu(r, b)
		for i := range r {
			if math.Float32bits(r[i]) != math.Float32bits(want[i]) && !(r[i] != r[i] && want[i] != want[i]) {
				t.Fatalf("n=%d: [%d] = %v, want %v", n, i, r[i], want[i])
			}
		}
	}
}

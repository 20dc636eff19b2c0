package gemm

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkPackedB compares, on log p(x)'s output product (500x400 times
// 400x784) with a no-op epilogue: SgemmEpilogue (B packed per call),
// PackedB (rows outermost) and packed B with compute's column-outer order.
func BenchmarkPackedB(b *testing.B) {
	const m, k, n = 500, 400, 784
	rng := rand.New(rand.NewPCG(1, 1))
	a, bb, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range bb {
		bb[i] = float32(rng.NormFloat64())
	}
	epi := func(int, int, int, int) {}
	pb := PackB(k, n, bb)
	b.Run("unpacked", func(b *testing.B) {
		for b.Loop() {
			SgemmEpilogue(m, n, k, a, bb, c, epi)
		}
	})
	b.Run("rows-outer", func(b *testing.B) {
		for b.Loop() {
			pb.SgemmEpilogue(m, a, c, epi)
		}
	})
	b.Run("cols-outer", func(b *testing.B) {
		for b.Loop() {
			var p problem
			p.init(active.Load(), false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
			p.epi = epi
			ws := wsPool.Get().(*workspace)
			p.compute(ws, 0, m, 0, n, nil, pb.data, nil)
			wsPool.Put(ws)
		}
	})
}

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestPackedBEpilogue checks PackedB.SgemmEpilogue as TestSgemmEpilogue
// checks SgemmEpilogue: C is Sgemm's bit for bit, and the epilogue sees
// every element once, final, in aligned blocks in increasing j along each
// row; for every kernel, several m with one packed B, shapes with several
// k, m and n blocks, and a B packed for another kernel.
func TestPackedBEpilogue(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, kern := range kernels {
		prev := setKernel(kern)
		for _, sh := range [][2]int{{1, 1}, {5, 3}, {784, 400}, {1100, 1300}, {33, 0}, {0, 7}} {
			n, k := sh[0], sh[1]
			b := make([]float32, k*n)
			for i := range b {
				b[i] = float32(rng.NormFloat64())
			}
			pb := PackB(k, n, b)
			for _, m := range []int{1, 7, 130, 500} {
				a := make([]float32, m*k)
				for i := range a {
					a[i] = float32(rng.NormFloat64())
				}
				want := make([]float32, m*n) // zero for k = 0
				if k > 0 {
					Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, max(k, 1), b, max(n, 1), 0, want, max(n, 1))
				}
				got := make([]float32, m*n)
				for i := range got {
					got[i] = float32(math.NaN()) // C is not read
				}
				epi, done := checkEpilogue(t, fmt.Sprintf("%s m=%d %v", kern.name, m, sh), m, n, got, want)
				pb.SgemmEpilogue(m, a, got, epi)
				done()
			}
			// Packed for this kernel, used with another: the same C.
			for _, other := range kernels {
				if other == kern || k == 0 || n == 0 {
					continue
				}
				setKernel(other)
				a := make([]float32, 13*k)
				for i := range a {
					a[i] = float32(rng.NormFloat64())
				}
				want, got := make([]float32, 13*n), make([]float32, 13*n)
				Sgemm(blas.NoTrans, blas.NoTrans, 13, n, k, 1, a, k, b, n, 0, want, n)
				pb.SgemmEpilogue(13, a, got, func(int, int, int, int) {})
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("packed for %s, run with %s %v: C[%d] = %v, Sgemm %v", kern.name, other.name, sh, i, got[i], want[i])
					}
				}
				setKernel(kern)
			}
		}
		setKernel(prev)
	}
}

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestSgemmEpilogue checks that SgemmEpilogue's C is Sgemm's bit for bit
// and that its epilogue sees every element once, final, in blocks that
// start at multiples of EpilogueAlign and come in increasing j along each
// row, for every kernel and shapes with several k, m and n blocks.
func TestSgemmEpilogue(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, kern := range kernels {
		prev := setKernel(kern)
		for _, sh := range [][3]int{{1, 1, 1}, {7, 5, 3}, {500, 784, 400}, {130, 1100, 1300}, {97, 33, 0}} {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := make([]float32, m*k), make([]float32, k*n)
			for i := range a {
				a[i] = float32(rng.NormFloat64())
			}
			for i := range b {
				b[i] = float32(rng.NormFloat64())
			}
			want := make([]float32, m*n) // zero for k = 0
			if k > 0 {
				Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, max(k, 1), b, n, 0, want, n)
			}
			got := make([]float32, m*n)
			for i := range got {
				got[i] = float32(math.NaN()) // C is not read
			}
			epi, done := checkEpilogue(t, fmt.Sprint(kern.name, sh), m, n, got, want)
			SgemmEpilogue(m, n, k, a, b, got, epi)
			done()
		}
		setKernel(prev)
	}
}

// checkEpilogue returns an epilogue for a product into got (m×n) that
// checks that each block it is handed starts at a multiple of
// EpilogueAlign, comes after the row's previous block and holds want's
// values bit for bit, and done, which checks that every element was seen
// once.
func checkEpilogue(t *testing.T, name string, m, n int, got, want []float32) (epi func(i0, i1, j0, j1 int), done func()) {
	t.Helper()
	seen := make([]int, m*n)
	next := make([]int, m) // the next column each row expects
	epi = func(i0, i1, j0, j1 int) {
		if j0%EpilogueAlign() != 0 {
			t.Errorf("%s: block at column %d", name, j0)
		}
		for i := i0; i < i1; i++ {
			if next[i] != j0 {
				t.Errorf("%s: row %d's block at %d after %d", name, i, j0, next[i])
			}
			next[i] = j1
			for j := j0; j < j1; j++ {
				seen[i*n+j]++
				if math.Float32bits(got[i*n+j]) != math.Float32bits(want[i*n+j]) {
					t.Fatalf("%s: C[%d,%d] = %v in the epilogue, Sgemm %v", name, i, j, got[i*n+j], want[i*n+j])
				}
			}
		}
	}
	done = func() {
		for e, c := range seen {
			if c != 1 {
				t.Fatalf("%s: element %d seen %d times", name, e, c)
			}
		}
	}
	return epi, done
}

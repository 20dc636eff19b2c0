package gemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestFlushSubnormals checks that flushing subnormals leaves products of
// normal numbers bit for bit as they were, and that with subnormal
// operands the product is that of the operands with those set to zero.
func TestFlushSubnormals(t *testing.T) {
	if KernelName() == "generic" {
		t.Skip("the Go kernel does not flush")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	m, n, k := 50, 70, 90
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	product := func(flush bool, a []float32) []float32 {
		defer SetFlushSubnormals(SetFlushSubnormals(flush))
		c := make([]float32, m*n)
		Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 0, c, n)
		return c
	}
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: C[%d] = %v, want %v", what, i, got[i], want[i])
			}
		}
	}
	same("normal operands", product(true, a), product(false, a))
	sub, zeroed := append([]float32(nil), a...), append([]float32(nil), a...)
	for i := 0; i < len(sub); i += 3 {
		sub[i] *= 1e-40 // subnormal
		zeroed[i] = 0
	}
	same("subnormal operands", product(true, sub), product(false, zeroed))
}

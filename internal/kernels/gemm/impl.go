package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's pure-Go BLAS with Sgemm replaced by this
// package's. It satisfies gorgonia's BLAS interface, so
//
//	gorgonia.Use(gemm.Implementation{})
//
// (which also calls tensor.Use) routes every float32 matrix product of the
// graph through Sgemm. Sgemv (tensor's matrix-vector product) stays gonum's:
// it is memory-bound, not used by batched dense layers, and gonum's is
// already vectorised.
type Implementation struct {
	gonum.Implementation
}

var _ blas.Float32 = Implementation{}

// Sgemm is Sgemm (the package-level function).
func (Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

//go:build amd64 && !purego

package gemm

import (
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestFlushLeavesMXCSR checks that a product leaves the thread's MXCSR as
// it found it: the flush bits are set around blocks of tiles, never left on
// for the caller's Go code.
func TestFlushLeavesMXCSR(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	read := func() uint32 { v := mxcsrFlushOn(); mxcsrSet(v); return v }
	before := read()
	if before&0x8040 != 0 {
		t.Fatalf("MXCSR %#x already flushes before the product", before)
	}
	m, n, k := 70, 90, 50
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range b {
		b[i] = float32(i%5) - 2
	}
	Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, k, b, n, 0, c, n)
	Sgemm(blas.NoTrans, blas.Trans, m, k, n, 1, c, n, b, n, 0, a, k)
	if after := read(); after != before {
		t.Fatalf("MXCSR %#x after the products, %#x before", after, before)
	}
}

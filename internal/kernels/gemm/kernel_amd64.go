//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// kernAVX512 is the 12×32 AVX-512F micro-kernel (kernel_amd64.s).
//
//go:noescape
func kernAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

// kernAVX512x4 is kernAVX512 for the first 4 rows of the panel.
//
//go:noescape
func kernAVX512x4(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

// kernAVX512n16 is kernAVX512 for the first 16 columns of the panel.
//
//go:noescape
func kernAVX512n16(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

// kernAVX2 is the 6×16 AVX2+FMA micro-kernel (kernel_amd64.s).
//
//go:noescape
func kernAVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

// flushSubnormals makes the assembly micro-kernels treat subnormal operands
// and results as zero (the MXCSR's DAZ and FTZ, see kernel_amd64.s); read
// by flushOn (flush_amd64.go) for each block of tiles, set by
// SetFlushSubnormals.
var flushSubnormals = true

var (
	avx512Kernel = &kernel{name: "avx512", mr: 12, nr: 32, fn: kernAVX512, fn4: kernAVX512x4, fnHalf: kernAVX512n16, asmPack: true,
		fnS: kernAVX512S, fn4S: kernAVX512x4S, fnHalfS: kernAVX512n16S}
	avx2Kernel = &kernel{name: "avx2", mr: 6, nr: 16, fn: kernAVX2, asmPack: true}
)

// availableKernels returns the kernels usable on this CPU, fastest first.
// The generic kernel is always last.
func availableKernels() []*kernel {
	var ks []*kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	return append(ks, genericKernel)
}

// transPack8 and transPack4 transpose 8 (4) rows × 8·nblk columns of src
// into dst (pack_amd64.s; AVX).
//
//go:noescape
func transPack8(dst, src *float32, ld, dstStride, nblk int)

//go:noescape
func transPack4(dst, src *float32, ld, dstStride, nblk int)

// copyPack copies kb rows of w ∈ {6, 12, 16, 32} floats (src row stride ld)
// into a contiguous panel (pack_amd64.s; AVX).
//
//go:noescape
func copyPack(dst, src *float32, ld, w, kb int)

// kernAVX512S, kernAVX512x4S and kernAVX512n16S are the AVX-512 kernels
// with B read in place from a row-major matrix of row stride ldb
// (kernel_strided_amd64.s).
//
//go:noescape
func kernAVX512S(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)

//go:noescape
func kernAVX512x4S(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)

//go:noescape
func kernAVX512n16S(kc int, a, b, c *float32, ldc, ldb int, alpha, beta float32, mode int)

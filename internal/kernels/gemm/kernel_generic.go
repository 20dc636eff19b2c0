package gemm

import "unsafe"

// genericKernel is the portable pure-Go micro-kernel. It is the only kernel on
// non-amd64 platforms and with the purego build tag, and the last resort on
// amd64 CPUs without AVX2+FMA.
var genericKernel = &kernel{name: "generic", mr: 4, nr: 4, fn: kernGeneric}

// kernGeneric is the 4×4 pure-Go micro-kernel with the same contract as the
// assembly kernels (see kernel_amd64.s): one sequential accumulation chain
// per element over p, then the mode-dependent update of the tile at c.
func kernGeneric(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int) {
	as := unsafe.Slice(a, 4*kc)
	bs := unsafe.Slice(b, 4*kc)
	var (
		c00, c01, c02, c03 float32
		c10, c11, c12, c13 float32
		c20, c21, c22, c23 float32
		c30, c31, c32, c33 float32
	)
	for p := 0; p < kc; p++ {
		ap := (*[4]float32)(as[4*p:])
		bp := (*[4]float32)(bs[4*p:])
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	updateRow4((*[4]float32)(cs[0:]), c00, c01, c02, c03, alpha, beta, mode)
	updateRow4((*[4]float32)(cs[ldc:]), c10, c11, c12, c13, alpha, beta, mode)
	updateRow4((*[4]float32)(cs[2*ldc:]), c20, c21, c22, c23, alpha, beta, mode)
	updateRow4((*[4]float32)(cs[3*ldc:]), c30, c31, c32, c33, alpha, beta, mode)
}

func updateRow4(r *[4]float32, t0, t1, t2, t3, alpha, beta float32, mode int) {
	updateElem(&r[0], t0, alpha, beta, mode)
	updateElem(&r[1], t1, alpha, beta, mode)
	updateElem(&r[2], t2, alpha, beta, mode)
	updateElem(&r[3], t3, alpha, beta, mode)
}

// updateElem applies the micro-kernel update to one element of C. The
// explicit float32 conversions forbid fusing into an FMA, so this matches the
// assembly kernels' separately rounded VMULPS/VADDPS exactly.
func updateElem(c *float32, t, alpha, beta float32, mode int) {
	switch mode {
	case modeOverwrite:
		*c = float32(alpha * t)
	case modeAdd:
		*c = *c + float32(alpha*t)
	default:
		*c = float32(beta**c) + float32(alpha*t)
	}
}

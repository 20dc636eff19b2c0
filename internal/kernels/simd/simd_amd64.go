//go:build amd64 && !purego

package simd

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useAVX512: the softplus and sigmoid kernels' AVX-512 forms (the same values).
var useAVX512 = useAVX2 && cpu.X86.HasAVX512F

// bernoulliRowVec is bernoulliRowAVX2 or its AVX-512 form.
func bernoulliRowVec(x, l *float32, n int) float32 {
	if useAVX512 {
		return bernoulliRowAVX512(x, l, n)
	}
	return bernoulliRowAVX2(x, l, n)
}

// bernoulliBiasAccVec is bernoulliBiasAccAVX2 or its AVX-512 form.
func bernoulliBiasAccVec(x, l, b, acc *float32, n int) {
	if useAVX512 {
		bernoulliBiasAccAVX512(x, l, b, acc, n)
		return
	}
	bernoulliBiasAccAVX2(x, l, b, acc, n)
}

// bernoulliGradVec is bernoulliGradAVX2 or its AVX-512 form.
func bernoulliGradVec(d, x, l *float32, n int, scale float32) {
	if useAVX512 {
		bernoulliGradAVX512(d, x, l, n, scale)
		return
	}
	bernoulliGradAVX2(d, x, l, n, scale)
}

// bernoulliGradAVX512 is bernoulliGradAVX2 with AVX-512.
//
//go:noescape
func bernoulliGradAVX512(d, x, l *float32, n int, scale float32)

// expLog1pVec is expLog1pAVX2 or its AVX-512 form.
func expLog1pVec(a, e, l *float32, n int) {
	if useAVX512 {
		expLog1pAVX512(a, e, l, n)
		return
	}
	expLog1pAVX2(a, e, l, n)
}

// expLog1pAVX512 is expLog1pAVX2 with AVX-512.
//
//go:noescape
func expLog1pAVX512(a, e, l *float32, n int)

// bernoulliRowAVX512 is bernoulliRowAVX2 with AVX-512.
//
//go:noescape
func bernoulliRowAVX512(x, l *float32, n int) float32

// bernoulliBiasAccAVX512 is bernoulliBiasAccAVX2 with AVX-512.
//
//go:noescape
func bernoulliBiasAccAVX512(x, l, b, acc *float32, n int)

// adamAVX2 is Adam on the first n elements, n a multiple of 8.
//
//go:noescape
func adamAVX2(w, grad, m, v *float32, n int, c *AdamConsts)

// bernoulliRowAVX2 is BernoulliRow on the first n elements, n a multiple of 8.
//
//go:noescape
func bernoulliRowAVX2(x, l *float32, n int) float32

// bernoulliBiasAccAVX2 is BernoulliBiasAcc's vector body on the first n
// elements, n a multiple of 8.
//
//go:noescape
func bernoulliBiasAccAVX2(x, l, b, acc *float32, n int)

// bernoulliGradAVX2 is BernoulliGrad on the first n elements, n a multiple of 8.
//
//go:noescape
func bernoulliGradAVX2(d, x, l *float32, n int, scale float32)

// sigmoidAVX2 is SigmoidRow on the first n elements, n a multiple of 8.
//
//go:noescape
func sigmoidAVX2(d, l *float32, n int)

// addAVX2 is Add on the first n elements, n a multiple of 8.
//
//go:noescape
func addAVX2(dst, src *float32, n int)

// allBelowAVX2 is AllBelow on the first n elements, n a multiple of 8.
//
//go:noescape
func allBelowAVX2(x *float32, n int, limit float32) bool

// reluGradAVX2 is ReluGrad on the first n elements, n a multiple of 8.
//
//go:noescape
func reluGradAVX2(d, y, grad *float32, n int)

// biasReluAVX2 is BiasRelu on the first n elements, n a multiple of 8.
//
//go:noescape
func biasReluAVX2(r, b *float32, n int)

// adam2AVX2 is Adam2 on the first n elements, n a multiple of 8.
//
//go:noescape
func adam2AVX2(w, g0, g1, m, v, wcopy *float32, n int, c *AdamConsts)

// expLog1pAVX2 is ExpLog1p on the first n elements, n a multiple of 8.
//
//go:noescape
func expLog1pAVX2(a, e, l *float32, n int)

package simd

import "math"

// Float32 elementary functions. Go's math package works in float64 and
// calls out of line; these follow the same steps as the vector kernels
// (simd_amd64.s) so that the vector body and the scalar tail of a row agree.

const (
	log2e   = 1.44269504088896341
	ln2hi   = 0.693359375 // ln 2 = ln2hi + ln2lo; n*ln2hi is exact for |n| < 2^15
	ln2lo   = -2.12194440e-4
	ln2     = 0.693147180559945309
	magic   = 12582912  // 1.5*2^23: adding and subtracting it rounds to an integer
	expMin  = -87.33654 // exp below this underflows float32's normal range
	sqrt2m1 = 0.41421356
)

// ExpNeg is exp(x) for x <= 0 (0 below expMin): x = n ln2 + r with
// |r| <= ln2/2 and a degree-6 polynomial for exp(r) (Cephes' expf).
func ExpNeg(x float32) float32 {
	if x < expMin {
		return 0
	}
	n := x*log2e + magic
	n -= magic
	r := fma32(-n, ln2hi, x)
	r = fma32(-n, ln2lo, r)
	p := fma32(r, 1.9875691500e-4, 1.3981999507e-3)
	p = fma32(p, r, 8.3334519073e-3)
	p = fma32(p, r, 4.1665795894e-2)
	p = fma32(p, r, 1.6666665459e-1)
	p = fma32(p, r, 5.0000001201e-1)
	p = fma32(p, r*r, r+1)
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// Log1p is log(1+t) for t in [0, 1]. With u = 1+t, halved when above
// sqrt(2) (adding ln 2 back), s = (u-1)/(u+1) lies in [-0.172, 0.172] and
// log u = 2 atanh(s) = 2(s + s^3/3 + ... + s^11/11) to float32 precision.
// Below sqrt(2), u-1 is t itself, so there is no cancellation for small t;
// above, u/2-1 = (t-1)/2 and u/2+1 = (t+3)/2, and the halves cancel in s.
func Log1p(t float32) float32 {
	var num, den, k float32 = t, 2 + t, 0
	if t > sqrt2m1 {
		num, den, k = t-1, t+3, ln2
	}
	s := num / den
	s2 := s * s
	p := fma32(s2, 1.0/11, 1.0/9)
	p = fma32(p, s2, 1.0/7)
	p = fma32(p, s2, 1.0/5)
	p = fma32(p, s2, 1.0/3)
	p = fma32(p, s2, 1)
	return fma32(2*s, p, k)
}

// Softplus is log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for all x.
func Softplus(x float32) float32 { return max(x, 0) + Log1p(ExpNeg(-abs32(x))) }

// Sigmoid is 1/(1 + e^-x), computed from e^-|x| so it never overflows.
func Sigmoid(x float32) float32 {
	e := ExpNeg(-abs32(x))
	if x >= 0 {
		return 1 / (1 + e)
	}
	return e / (1 + e)
}

// ExpLog1p sets e_j = ExpNeg(-|a_j|) and l_j = Log1p(e_j), the
// transcendental part of softplus and sigmoid (an IAF gate's), with the
// vector kernels where present: the same steps, so the same values.
func ExpLog1p(a, e, l []float32) {
	if len(e) != len(a) || len(l) != len(a) {
		panic("simd: ExpLog1p: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = len(a) &^ 7
		if done > 0 {
			expLog1pVec(&a[0], &e[0], &l[0], done)
		}
	}
	for j := done; j < len(a); j++ {
		e[j] = ExpNeg(-abs32(a[j]))
		l[j] = Log1p(e[j])
	}
}

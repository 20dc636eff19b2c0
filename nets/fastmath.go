package nets

import "math"

// Float32 elementary functions for the fused ops. Go's math package works in
// float64 and calls out of line for Exp and Log1p; the Bernoulli likelihood
// and softplus evaluate one of each per pixel per step, which cost more than
// a fifth of a training step. These stay within a few float32 ulps of the
// float64 functions (tested), which is below float32 training noise.

// expNeg32 is exp(x) for x <= 0, by x = n ln2 + r with |r| <= ln2/2 and a
// degree-6 polynomial for exp(r) (the coefficients of Cephes' expf).
func expNeg32(x float32) float32 {
	if x < -87.3 { // exp underflows float32's normal range
		return 0
	}
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*ln2hi - n*ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// log1p32 is log(1+t) for t in [0, 1]: with s = t/(2+t), which has no
// cancellation for small t, log(1+t) = 2 atanh(s) = 2(s + s^3/3 + s^5/5 + ...),
// and s <= 1/3 makes eight terms enough for float32.
func log1p32(t float32) float32 {
	s := t / (2 + t)
	s2 := s * s
	p := float32(1.0 / 15)
	p = p*s2 + 1.0/13
	p = p*s2 + 1.0/11
	p = p*s2 + 1.0/9
	p = p*s2 + 1.0/7
	p = p*s2 + 1.0/5
	p = p*s2 + 1.0/3
	p = p*s2 + 1
	return 2 * s * p
}

// softplus32 is log(1 + e^x) = max(x, 0) + log1p(e^-|x|), finite for all x.
func softplus32(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	return max(x, 0) + log1p32(expNeg32(-a))
}

// sigmoid32 is 1/(1 + e^-x), computed from e^-|x| so it never overflows.
func sigmoid32(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + expNeg32(-x))
	}
	e := expNeg32(x)
	return e / (1 + e)
}

// softplus64 and sigmoid64 are the float64 versions, exact to math's accuracy.
func softplus64(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

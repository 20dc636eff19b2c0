package vi

import "math"

// digamma is psi(x) = d/dx log Gamma(x) for x > 0: the recurrence
// psi(x) = psi(x+1) - 1/x up to x >= 10, then the asymptotic series.
func digamma(x float64) float64 {
	var r float64
	for x < 10 {
		r -= 1 / x
		x++
	}
	f := 1 / (x * x)
	return r + math.Log(x) - 0.5/x - f*(1.0/12-f*(1.0/120-f*(1.0/252-f*(1.0/240-f*(1.0/132)))))
}

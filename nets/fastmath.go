package nets

import "math"

// softplus64 and sigmoid64 are the float64 paths of the fused ops (float32
// uses internal/kernels/simd), exact to the math package's accuracy.
func softplus64(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

func sigmoid64(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

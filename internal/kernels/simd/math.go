package simd

import "math"

func fma32(x, y, z float32) float32 { return float32(math.FMA(float64(x), float64(y), float64(z))) }
func abs32(x float32) float32       { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }
func sqrt32(x float32) float32      { return float32(math.Sqrt(float64(x))) }

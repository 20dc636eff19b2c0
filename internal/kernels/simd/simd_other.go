//go:build !amd64 || purego

package simd

const useAVX2 = false

var useAVX512 = false

func adamAVX2(w, g, m, v *float32, n int, c *AdamConsts) { panic("unreachable") }

func bernoulliRowAVX2(x, l *float32, n int) float32        { panic("unreachable") }
func bernoulliBiasAccAVX2(x, l, b, acc *float32, n int)    { panic("unreachable") }
func bernoulliRowVec(x, l *float32, n int) float32         { panic("unreachable") }
func bernoulliBiasAccVec(x, l, b, acc *float32, n int)     { panic("unreachable") }
func bernoulliGradAVX2(d, x, l *float32, n int, g float32) { panic("unreachable") }
func sigmoidAVX2(d, l *float32, n int)                     { panic("unreachable") }
func bernoulliGradVec(d, x, l *float32, n int, g float32)  { panic("unreachable") }

func addAVX2(dst, src *float32, n int)                   { panic("unreachable") }
func allBelowAVX2(x *float32, n int, limit float32) bool { panic("unreachable") }

func reluGradAVX2(d, y, g *float32, n int) { panic("unreachable") }

func biasReluAVX2(r, b *float32, n int) { panic("unreachable") }

func adam2AVX2(w, g0, g1, m, v, wcopy *float32, n int, c *AdamConsts) { panic("unreachable") }

func expLog1pAVX2(a, e, l *float32, n int)   { panic("unreachable") }
func expLog1pVec(a, e, l *float32, n int)    { panic("unreachable") }
func expLog1pAVX512(a, e, l *float32, n int) { panic("unreachable") }

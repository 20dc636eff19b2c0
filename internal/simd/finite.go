package simd

// AddFinite sets dst[i] += src[i] and reports whether every sum is finite
// (no NaN or infinity). The slices have the same length.
func AddFinite(dst, src []float32) bool {
	n := len(dst)
	if len(src) != n {
		panic("simd: AddFinite: slices of different lengths")
	}
	done, ok := 0, true
	if useAVX2 {
		done = n &^ 7
		if done > 0 {
			ok = addFiniteAVX2(&dst[0], &src[0], done)
		}
	}
	for i := done; i < n; i++ {
		dst[i] += src[i]
	}
	return finiteGo(dst[done:]) && ok
}

// Finite reports whether x holds no NaN or infinity.
func Finite(x []float32) bool {
	done, ok := 0, true
	if useAVX2 {
		done = len(x) &^ 7
		if done > 0 {
			ok = finiteAVX2(&x[0], done)
		}
	}
	return finiteGo(x[done:]) && ok
}

func finiteGo(x []float32) bool {
	var acc float32
	for _, v := range x {
		acc += v - v // +0 for finite v, NaN otherwise; NaN sticks
	}
	return acc == 0
}

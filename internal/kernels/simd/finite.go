package simd

// Add sets dst[i] += src[i]. The slices have the same length.
func Add(dst, src []float32) {
	n := len(dst)
	if len(src) != n {
		panic("simd: Add: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = n &^ 7
		if done > 0 {
			addAVX2(&dst[0], &src[0], done)
		}
	}
	for i := done; i < n; i++ {
		dst[i] += src[i]
	}
}

// AllBelow reports whether |x[i]| < limit for every i: false at any NaN
// or infinity (for a finite limit, or +Inf).
func AllBelow(x []float32, limit float32) bool {
	done, ok := 0, true
	if useAVX2 {
		done = len(x) &^ 7
		if done > 0 {
			ok = allBelowAVX2(&x[0], done, limit)
		}
	}
	for _, v := range x[done:] {
		if !(abs32(v) < limit) {
			return false
		}
	}
	return ok
}

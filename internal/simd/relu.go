package simd

// ReluGrad sets d[i] = g[i] where y[i] > 0 and 0 elsewhere: the gradient
// through a ReLU whose output is y. Branch-free: the sign of y is as good as
// random, and a branch per element mispredicts half the time.
func ReluGrad(d, y, g []float32) {
	n := len(d)
	if len(y) != n || len(g) != n {
		panic("simd: ReluGrad: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = n &^ 7
		if done > 0 {
			reluGradAVX2(&d[0], &y[0], &g[0], done)
		}
	}
	for i := done; i < n; i++ {
		if y[i] > 0 {
			d[i] = g[i]
		} else {
			d[i] = 0
		}
	}
}

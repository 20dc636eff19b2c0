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

// BiasRelu sets r[i] = max(r[i] + b[i], 0): a ReLU layer's output from its
// product and bias. A NaN sum stays NaN, as with Go's max (a sum of -0
// stays -0, where max gives +0: the same number to everything downstream).
func BiasRelu(r, b []float32) {
	n := len(r)
	if len(b) != n {
		panic("simd: BiasRelu: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = n &^ 7
		if done > 0 {
			biasReluAVX2(&r[0], &b[0], done)
		}
	}
	for i := done; i < n; i++ {
		r[i] = max(r[i]+b[i], 0)
	}
}

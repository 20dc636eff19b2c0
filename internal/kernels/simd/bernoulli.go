package simd

// BernoulliRow returns sum_j x_j l_j - softplus(l_j): log p(x|l) of
// independent Bernoullis with logits l, finite for every l. softplus(l) is
// computed as max(l, 0) + log1p(e^-|l|) with float32 exp and log1p accurate
// to a few ulps (tested against float64).
func BernoulliRow(x, l []float32) float32 {
	if len(x) != len(l) {
		panic("simd: BernoulliRow: slices of different lengths")
	}
	var acc float32
	done := 0
	if useAVX2 {
		done = len(x) &^ 7
		if done > 0 {
			acc = bernoulliRowAVX2(&x[0], &l[0], done)
		}
	}
	for j := done; j < len(x); j++ {
		acc += x[j]*l[j] - Softplus(l[j])
	}
	return acc
}

// BernoulliGrad sets d_j = g (x_j - sigmoid(l_j)): the gradient of g times
// BernoulliRow with respect to l.
func BernoulliGrad(d, x, l []float32, g float32) {
	if len(x) != len(l) || len(d) != len(l) {
		panic("simd: BernoulliGrad: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = len(x) &^ 7
		if done > 0 {
			bernoulliGradAVX2(&d[0], &x[0], &l[0], done, g)
		}
	}
	for j := done; j < len(x); j++ {
		d[j] = g * (x[j] - Sigmoid(l[j]))
	}
}

// SigmoidRow sets d_j = sigmoid(l_j) (as Sigmoid, accurate to a few ulps):
// the mean of a Bernoulli with logits l.
func SigmoidRow(d, l []float32) {
	if len(d) != len(l) {
		panic("simd: SigmoidRow: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = len(l) &^ 7
		if done > 0 {
			sigmoidAVX2(&d[0], &l[0], done)
		}
	}
	for j := done; j < len(l); j++ {
		d[j] = Sigmoid(l[j])
	}
}

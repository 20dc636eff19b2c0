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
			acc = bernoulliRowVec(&x[0], &l[0], done)
		}
	}
	for j := done; j < len(x); j++ {
		acc += x[j]*l[j] - Softplus(l[j])
	}
	return acc
}

// VectorBernoulli reports whether BernoulliBiasAcc and BernoulliFinish can
// split BernoulliRow (AVX2 and FMA present); without, BernoulliRow sums in
// a single scalar and the split would change its value.
func VectorBernoulli() bool { return useAVX2 }

// BernoulliBiasAcc is part of BernoulliRow on logits l + b, for a row whose
// pass is split into segments (in cache-sized blocks of a matrix product,
// say): it sets l_j += b_j and adds x_j l_j - softplus(l_j) into acc, lane
// j mod 8, as BernoulliRow's vector body does. A segment must start at a
// multiple of 8 within the row and lie in the row's vector part (its first
// len &^ 7 elements), so len(l) is a multiple of 8; acc starts at zero and
// BernoulliFinish completes the row. It needs VectorBernoulli.
func BernoulliBiasAcc(acc *[8]float32, x, l, b []float32) {
	if len(x) != len(l) || len(b) != len(l) || len(l)%8 != 0 {
		panic("simd: BernoulliBiasAcc: slices of different lengths or not a multiple of 8")
	}
	if !useAVX2 {
		panic("simd: BernoulliBiasAcc without AVX2")
	}
	if len(l) > 0 {
		bernoulliBiasAccVec(&x[0], &l[0], &b[0], &acc[0], len(l))
	}
}

// BernoulliFinish returns BernoulliRow(x, l + b) of a row whose vector part
// went through BernoulliBiasAcc into acc: x, l and b are the row's tail
// (its last len % 8 elements, l += b stored as there), which BernoulliRow
// adds one by one after reducing the lanes.
func BernoulliFinish(acc *[8]float32, x, l, b []float32) float32 {
	if len(x) != len(l) || len(b) != len(l) {
		panic("simd: BernoulliFinish: slices of different lengths")
	}
	// The lanes' reduction of bernoulliRowAVX2: halves, then pairs.
	s0, s1 := acc[0]+acc[4], acc[1]+acc[5]
	s2, s3 := acc[2]+acc[6], acc[3]+acc[7]
	r := (s0 + s2) + (s1 + s3)
	for j := range l {
		l[j] += b[j]
		r += x[j]*l[j] - Softplus(l[j])
	}
	return r
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
			bernoulliGradVec(&d[0], &x[0], &l[0], done, g)
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

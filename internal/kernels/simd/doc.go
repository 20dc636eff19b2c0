// Package simd holds the element-wise float32 kernels that dominate a
// training step once the matrix products are fast: the Adam update, and
// the Bernoulli log-likelihood and its gradient. Each has an AVX2+FMA
// assembly version on amd64 (8 lanes) and a pure-Go version used elsewhere,
// on CPUs without AVX2 and FMA, for the tail of every slice, and (build tag
// purego) everywhere. Tests check the two against each other, bit for
// bit. The softplus and sigmoid kernels (Bernoulli row sums, their
// gradient, ExpLog1p) also have AVX-512 forms, used when the CPU has
// AVX-512F: the same operations lane by lane and the same 8-lane
// accumulation, so the same values, with 6 vectors' dependent chains
// interleaved per iteration so that the core is not left waiting on one
// chain's latency (fastmath_amd64.s says why and how).
//
// Adam (Kingma & Ba 2015), with PyTorch's placement of epsilon and moments
// below 1e-30 flushed to zero (float32 moments otherwise decay into
// subnormal numbers, which the CPU handles in microcode):
//
//	m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
//	w <- w - step * m / (sqrt(v) * invSqrtBC2 + eps)
//
// with step = lr/(1-b1^t) and invSqrtBC2 = 1/sqrt(1-b2^t).
package simd

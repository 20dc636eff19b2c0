package simd

// AdamConsts are one Adam step's constants (see the package comment).
type AdamConsts struct {
	Beta1, OneMinusBeta1, Beta2, OneMinusBeta2 float32
	Step, InvSqrtBC2, Eps, Flush               float32
}

// NewAdamConsts returns the constants of a step with these settings.
func NewAdamConsts(beta1, beta2, step, invSqrtBC2, eps, flush float32) AdamConsts {
	return AdamConsts{beta1, 1 - beta1, beta2, 1 - beta2, step, invSqrtBC2, eps, flush}
}

// Adam applies one Adam step to the weights w given gradients g, updating
// the moments m and v in place. All four slices have the same length.
func Adam(w, g, m, v []float32, c *AdamConsts) {
	n := len(w)
	if len(g) != n || len(m) != n || len(v) != n {
		panic("simd: Adam: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = n &^ 7
		if done > 0 {
			adamAVX2(&w[0], &g[0], &m[0], &v[0], done, c)
		}
	}
	adamGo(w[done:], g[done:], m[done:], v[done:], c)
}

// adamGo is the portable kernel, written to round like the vector one:
// each moment update is a fused multiply-add.
func adamGo(w, g, m, v []float32, c *AdamConsts) {
	for i := range w {
		gi := g[i]
		mi := fma32(c.OneMinusBeta1, gi, c.Beta1*m[i])
		vi := fma32(c.OneMinusBeta2, gi*gi, c.Beta2*v[i])
		if abs32(mi) < c.Flush {
			mi = 0
		}
		if vi < c.Flush {
			vi = 0
		}
		m[i], v[i] = mi, vi
		w[i] -= c.Step * mi / (sqrt32(vi)*c.InvSqrtBC2 + c.Eps)
	}
}

// Adam2 is Adam with the gradient g0 + g1 (two data-parallel shards' sum,
// added as Add does) that also stores the new weights into wcopy (the
// second shard's replica): one pass where a sum, an update and a copy would
// take three. All slices have the same length.
func Adam2(w, g0, g1, m, v, wcopy []float32, c *AdamConsts) {
	n := len(w)
	if len(g0) != n || len(g1) != n || len(m) != n || len(v) != n || len(wcopy) != n {
		panic("simd: Adam2: slices of different lengths")
	}
	done := 0
	if useAVX2 {
		done = n &^ 7
		if done > 0 {
			adam2AVX2(&w[0], &g0[0], &g1[0], &m[0], &v[0], &wcopy[0], done, c)
		}
	}
	for i := done; i < n; i++ {
		g := [1]float32{g0[i] + g1[i]}
		adamGo(w[i:i+1], g[:], m[i:i+1], v[i:i+1], c)
		wcopy[i] = w[i]
	}
}

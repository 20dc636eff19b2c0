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

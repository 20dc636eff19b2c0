package flows

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The backward pass from the forward pass's saved work (resume) equals the
// one that recomputes the forward pass (backward), for a stack of every
// step kind.
func TestStackResumeMatchesBackward(t *testing.T) {
	const L, M = 4, 2
	ss := []step{
		planarStep{L: L}, radialStep{L: L}, householderStep{L: L},
		sylvesterStep{L: L, M: M, q: qExplicit}, sylvesterStep{L: L, M: L, q: qReverse},
	}
	s := newStack(ss, L)
	rng := rand.New(rand.NewPCG(1, 2))
	ws := s.inWidths()
	in := make([][]float64, len(ws))
	for a, w := range ws {
		in[a] = make([]float64, w)
		for j := range in[a] {
			in[a][j] = rng.NormFloat64()
		}
	}
	// The explicit Q must be orthonormal: use the first M columns of I.
	q := in[s.off[3]]
	clear(q)
	for k := range M {
		q[k*M+k] = 1
	}
	gout := make([]float64, L+1)
	for j := range gout {
		gout[j] = rng.NormFloat64()
	}
	grads := func(f func(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error, work []float64) [][]float64 {
		gin := make([][]float64, len(ws))
		for a, w := range ws {
			gin[a] = make([]float64, w)
		}
		args := append([][]float64(nil), in...)
		if err := f(args, nil, gout, gin, work); err != nil {
			t.Fatal(err)
		}
		return gin
	}
	work := make([]float64, s.workSize())
	out := make([]float64, L+1)
	if err := s.forward(append([][]float64(nil), in...), out, work); err != nil {
		t.Fatal(err)
	}
	a := grads(s.resume, work)
	b := grads(s.backward, make([]float64, s.workSize()))
	nonzero := 0
	for i := range a {
		for j := range a[i] {
			if math.Abs(a[i][j]-b[i][j]) > 1e-14*(1+math.Abs(b[i][j])) {
				t.Errorf("input %d[%d]: resume %g, backward %g", i, j, a[i][j], b[i][j])
			}
			if b[i][j] != 0 {
				nonzero++
			}
		}
	}
	if nonzero < len(ws) {
		t.Fatalf("only %d non-zero gradients: the comparison proves little", nonzero)
	}
}

// softplusSigmoid32 shares one exponential between the gate's softplus
// and sigmoid and must give their values bit for bit (the IAF forward pass
// is pinned to them): every 256th float32 in (-100, 100), and every
// float32 near 0.
func TestSoftplusSigmoid32MatchesGorgonia(t *testing.T) {
	check := func(x float32) {
		sp, sg := softplusSigmoid32(x)
		if sp != softplus32(x) || sg != sigmoid32(x) {
			t.Fatalf("x = %v: got (%v, %v), want (%v, %v)", x, sp, sg, softplus32(x), sigmoid32(x))
		}
	}
	for b := uint32(0); b < math.Float32bits(100); b += 256 {
		check(math.Float32frombits(b))
		check(-math.Float32frombits(b))
	}
	for b := range uint32(1 << 20) {
		check(math.Float32frombits(b))
		check(-math.Float32frombits(b))
	}
}

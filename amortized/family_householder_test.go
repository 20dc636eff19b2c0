package amortized

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestHouseholderLogQAtInvertsTheFlow: log q at the sampled z through the
// inverse reflections (what the score estimator uses) equals the sample's
// own log q, for a chain long enough that every W_k matters, and the
// reflections move z away from the base sample.
func TestHouseholderLogQAtInvertsTheFlow(t *testing.T) {
	c := smallConfig("float64", Bernoulli)
	c.Posterior, c.Latent = "householder:4", 5
	m, err := New(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.params.All() {
		if strings.HasPrefix(p.Name, "encoder.householder.") {
			for i := range p.Float64s() {
				p.Float64s()[i] *= 3
			}
		}
	}
	const B, L = 6, 5
	r := newQRig(t, m, B)
	rng := rand.New(rand.NewPCG(2, 2))
	heads := r.setHeads(rng)
	eps := randn(rng, B*L)
	r.run(eps)
	z, logq, logQA := r.get(r.z), r.get(r.logq), r.get(r.logQA)
	moved := 0.0
	for b := range B {
		if math.Abs(logq[b]-logQA[b]) > 1e-9*(1+math.Abs(logq[b])) {
			t.Errorf("row %d: log q at z %v, sampled %v", b, logQA[b], logq[b])
		}
		// The reflections preserve |z|: |z| = |z0| with z0 = mu + sigma eps.
		var n0, n1 float64
		for j := range L {
			z0 := heads[0][b*L+j] + math.Exp(heads[1][b*L+j]/2)*eps[b*L+j]
			n0 += z0 * z0
			n1 += z[b*L+j] * z[b*L+j]
			moved = math.Max(moved, math.Abs(z[b*L+j]-z0))
		}
		if math.Abs(n0-n1) > 1e-9*n0 {
			t.Errorf("row %d: |z|² %v, |z0|² %v: not a product of reflections", b, n1, n0)
		}
	}
	if moved < 0.1 {
		t.Errorf("z moved at most %v from z0: the reflections do nothing", moved)
	}
}

package amortized

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// TestAdamPathsAgree: the trainer's store path and the slice path
// (LocalELBO, flows2d) are one optimizer: the same steps on the same
// gradients give the same weights, and both follow Kingma & Ba's update
// written out directly.
func TestAdamPathsAgree(t *testing.T) {
	ps, err := nets.NewParams(tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ps.New("w", 1, 3, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	ps.InitUniform(rng)
	w0 := append([]float64(nil), p.Float64s()...)
	o := TrainOptions{LR: 0.01, Beta1: 0.8, Beta2: 0.99, AdamEps: 1e-6}
	store := newAdam(ps, o)
	slices := NewAdam(o.LR, o.Beta1, o.Beta2, o.AdamEps)
	w := append([]float64(nil), w0...)
	ref := append([]float64(nil), w0...)
	m, v := make([]float64, len(w)), make([]float64, len(w))
	for step := int64(1); step <= 5; step++ {
		g := make([]float64, len(w))
		for i := range g {
			g[i] = rng.NormFloat64()
		}
		gt := tensor.New(tensor.WithShape(3, 4), tensor.WithBacking(append([]float64(nil), g...)))
		if err := store.update(ps.All(), [][]tensor.Tensor{{gt}}, nil, step); err != nil {
			t.Fatal(err)
		}
		slices.StepFloat64s([][]float64{w}, [][]float64{g}, o.LR)
		for i := range ref {
			m[i] = o.Beta1*m[i] + (1-o.Beta1)*g[i]
			v[i] = o.Beta2*v[i] + (1-o.Beta2)*g[i]*g[i]
			mh := m[i] / (1 - math.Pow(o.Beta1, float64(step)))
			vh := v[i] / (1 - math.Pow(o.Beta2, float64(step)))
			ref[i] -= o.LR * mh / (math.Sqrt(vh) + o.AdamEps)
		}
	}
	for i, got := range p.Float64s() {
		if got != w[i] {
			t.Errorf("w[%d]: store path %v, slice path %v", i, got, w[i])
		}
		if math.Abs(got-ref[i]) > 1e-12 {
			t.Errorf("w[%d] = %v, the textbook update gives %v", i, got, ref[i])
		}
		if got == w0[i] {
			t.Errorf("w[%d] did not move", i)
		}
	}
}

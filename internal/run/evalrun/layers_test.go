package evalrun

import (
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/amortized"
)

// TestActiveUnitsPerLayer: on a two-layer model whose q(z1|x) means swing
// with x and whose q(z2|z1) mean ignores z1, every z1 unit is active and
// no z2 unit is; the total is their sum, and a one-layer model has one layer.
func TestActiveUnitsPerLayer(t *testing.T) {
	c := amortized.TwoLayerConfig(amortized.Config{DataDim: 6, Hidden: []int{5}, Activation: "tanh"}, 3, 2, []int{4})
	m, err := amortized.New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params().All() {
		switch p.Name {
		case "encoder.mean.weight":
			for i := range p.Float32s() {
				p.Float32s()[i] *= 20
			}
		case "encoder.z2.mean.weight":
			clear(p.Float32s())
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([][]float32, 200)
	for i := range x {
		x[i] = make([]float32, 6)
		for j := range x[i] {
			x[i][j] = float32(rng.IntN(2))
		}
	}
	per, err := ActiveUnitsByLayer(m, x)
	if err != nil {
		t.Fatal(err)
	}
	total, err := ActiveUnits(m, x)
	if err != nil || len(per) != 2 || per[0] != 3 || per[1] != 0 || total != 3 {
		t.Fatalf("per layer %v, total %d (%v); want [3 0], 3", per, total, err)
	}
	one, err := amortized.New(amortized.Config{DataDim: 6, Hidden: []int{5}, Latent: 4}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if per, err := ActiveUnitsByLayer(one, x); err != nil || len(per) != 1 {
		t.Fatalf("one layer: %v, %v", per, err)
	}
}

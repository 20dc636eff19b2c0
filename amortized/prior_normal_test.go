package amortized

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestStandardNormalPrior: log p(z) against the density written out, and
// sampling maps the noise to itself.
func TestStandardNormalPrior(t *testing.T) {
	m, err := New(Config{DataDim: 4, Latent: 3, Dtype: "float64"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	z := []float64{0, 1, -2, 0.5, 0.25, 3}
	got := evalNodes(t, m, func(bd *Builder) []*G.Node {
		zn := constRows(bd, "z", z, 2, 3)
		p := bd.Prior()
		return []*G.Node{p.LogP(zn), p.Sample(PriorNoise{Normal: zn})}
	})
	for r := range 2 {
		want := 0.0
		for _, v := range z[r*3 : r*3+3] {
			want += -0.5*math.Log(2*math.Pi) - v*v/2
		}
		if math.Abs(got[0][r]-want) > 1e-12 {
			t.Errorf("log p(z) row %d = %v, want %v", r, got[0][r], want)
		}
	}
	for i, v := range z {
		if got[1][i] != v {
			t.Errorf("sample[%d] = %v, want the noise %v", i, got[1][i], v)
		}
	}
}

package amortized_test

import (
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/amortized"
)

// Every posterior family composes with the conv trunk (its heads are dense
// layers on the conv features, packed flow heads included).
func TestConvTrunkWithEveryFamily(t *testing.T) {
	for _, post := range []string{"planar:2", "radial:2", "iaf:2", "fullcov", "householder:2", "mixture:2", "aux:2"} {
		c := amortized.Config{DataDim: 64, ImageRows: 8, ImageCols: 8, Latent: 3, Posterior: post,
			Trunk: "conv:4/k4/s2/p1/relu/dense:16"}
		m, err := amortized.New(c, 1)
		if err != nil {
			t.Errorf("%s: %v", post, err)
			continue
		}
		x := make([][]float32, 3)
		for i := range x {
			x[i] = make([]float32, 64)
		}
		if _, err := m.ELBO(x, rand.New(rand.NewPCG(1, 2))); err != nil {
			t.Errorf("%s: ELBO: %v", post, err)
		}
	}
}

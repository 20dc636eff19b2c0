package amortized

import (
	"fmt"

	"github.com/govae/govae/flows"
)

// Radial is "radial:K": K radial flows on a diagonal Gaussian, each with
// per-example parameters z0 (L wide), alpha and beta from the encoder.
const Radial = "radial"

func init() {
	RegisterFamily(Radial, "radial:K", func(args []string, c Config) (Family, error) {
		k, err := parseSteps(Radial, args)
		return radialFamily{steps: k}, err
	})
}

type radialFamily struct{ steps int }

func (f radialFamily) String() string { return fmt.Sprintf("%s:%d", Radial, f.steps) }
func (f radialFamily) Heads(c Config) []Head {
	L := c.Latent
	hs := gaussHeads(L)
	for k := range f.steps {
		hs = append(hs, Head{Name: fmt.Sprintf("flow.%d.z0", k), Width: L}, Head{Name: fmt.Sprintf("flow.%d.alpha", k), Width: 1},
			Head{Name: fmt.Sprintf("flow.%d.beta", k), Width: 1})
	}
	return hs
}

func (f radialFamily) Bind(b *Builder, in QInput) Posterior {
	h := in.Heads
	return newFlowPosterior(b, in, f.steps, func(k int) (flows.Flow, error) {
		return flows.NewRadial(h[fmt.Sprintf("flow.%d.z0", k)], Vec(h[fmt.Sprintf("flow.%d.alpha", k)]), Vec(h[fmt.Sprintf("flow.%d.beta", k)]))
	})
}

package amortized

import (
	"fmt"

	"github.com/govae/govae/flows"
)

// Planar is "planar:K": K planar flows on a diagonal Gaussian, each with
// per-example parameters u, w (L wide) and b from the encoder.
const Planar = "planar"

func init() {
	RegisterFamily(Planar, "planar:K", func(args []string, c Config) (Family, error) {
		k, err := parseSteps(Planar, args)
		return planarFamily{steps: k}, err
	})
}

type planarFamily struct{ steps int }

func (f planarFamily) String() string { return fmt.Sprintf("%s:%d", Planar, f.steps) }
func (f planarFamily) Heads(c Config) []Head {
	L := c.Latent
	hs := gaussHeads(L)
	for k := range f.steps {
		hs = append(hs, Head{Name: fmt.Sprintf("flow.%d.u", k), Width: L}, Head{Name: fmt.Sprintf("flow.%d.w", k), Width: L},
			Head{Name: fmt.Sprintf("flow.%d.b", k), Width: 1})
	}
	return hs
}

func (f planarFamily) Bind(b *Builder, in QInput) Posterior {
	h := in.Heads
	return newFlowPosterior(b, in, f.steps, func(k int) (flows.Flow, error) {
		return flows.NewPlanar(h[fmt.Sprintf("flow.%d.u", k)], h[fmt.Sprintf("flow.%d.w", k)], Vec(h[fmt.Sprintf("flow.%d.b", k)]))
	})
}

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

// Heads: the steps' parameters are one head "flow", K(2L+1) wide, that
// keeps the parameters of separate heads flow.k.u, flow.k.w, flow.k.b (the
// checkpoint names since version 1) and is computed as one product; the
// packed stack reads step k's u, w, b at columns k(2L+1) + [0, L), [L, 2L),
// 2L, the parts' order.
func (f planarFamily) Heads(c Config) []Head {
	L := c.Latent
	flow := Head{Name: "flow", Width: f.steps * (2*L + 1)}
	for k := range f.steps {
		flow.Parts = append(flow.Parts, Head{Name: fmt.Sprintf("flow.%d.u", k), Width: L}, Head{Name: fmt.Sprintf("flow.%d.w", k), Width: L},
			Head{Name: fmt.Sprintf("flow.%d.b", k), Width: 1})
	}
	return append(gaussHeads(L), flow)
}

func (f planarFamily) Bind(b *Builder, in QInput) Posterior {
	return newStackPosterior(b, in, func() (flows.Flow, error) {
		return flows.NewPlanarStack(in.Heads["flow"], b.Config().Latent, f.steps)
	})
}

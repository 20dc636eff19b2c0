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

// Heads: as planar's, one head "flow", K(L+2) wide, with the parameters of
// the separate heads flow.k.z0, flow.k.alpha, flow.k.beta; the packed stack
// reads step k's z0, alpha, beta at columns k(L+2) + [0, L), L, L+1.
func (f radialFamily) Heads(c Config) []Head {
	L := c.Latent
	flow := Head{Name: "flow", Width: f.steps * (L + 2)}
	for k := range f.steps {
		flow.Parts = append(flow.Parts, Head{Name: fmt.Sprintf("flow.%d.z0", k), Width: L}, Head{Name: fmt.Sprintf("flow.%d.alpha", k), Width: 1},
			Head{Name: fmt.Sprintf("flow.%d.beta", k), Width: 1})
	}
	return append(gaussHeads(L), flow)
}

func (f radialFamily) Bind(b *Builder, in QInput) Posterior {
	return newStackPosterior(b, in, func() (flows.Flow, error) {
		return flows.NewRadialStack(in.Heads["flow"], b.Config().Latent, f.steps)
	})
}

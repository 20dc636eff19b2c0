package amortized

import (
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// StandardNormal is the prior p(z) = N(0, I), "normal" (the default).
const StandardNormal = "normal"

func init() {
	RegisterPrior(StandardNormal, StandardNormal, func(args []string, c Config) (Prior, error) {
		return standardNormal{}, noArgs(StandardNormal, args)
	})
}

type standardNormal struct{}

func (standardNormal) String() string             { return StandardNormal }
func (standardNormal) Bind(b *Builder) BoundPrior { return boundStandardNormal{b} }

type boundStandardNormal struct{ b *Builder }

// LogP is sum_j log N(z_j; 0, 1): Builder.LogStdNormal's values bit for
// bit, one node each way (nets.LogStdNormal) where it has nine.
func (p boundStandardNormal) LogP(z *G.Node) *G.Node { return must(nets.LogStdNormal(z)) }

// Sample is z = eps.
func (p boundStandardNormal) Sample(n PriorNoise) *G.Node { return n.Normal }

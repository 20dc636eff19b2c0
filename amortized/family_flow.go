package amortized

import (
	"fmt"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// MaxFlowSteps bounds K in "planar:K", "radial:K" and "iaf:K". The papers
// use up to 80 steps; the bound keeps a typo from building a graph of a
// million steps.
const MaxFlowSteps = 1000

// flowPosterior is q = a flow f_K o ... o f_1 on a diagonal Gaussian base
// q0 (Rezende & Mohamed 2015):
//
//	z = f_K(...f_1(z0)),  log q = log q0(z0) - sum_k log|det J_k|.
//
// A family of this kind gives the steps bound in a graph; there is no
// closed-form KL and, the flows having no closed-form inverse, no LogQAt.
type flowPosterior struct {
	base diagGauss
	flow flows.Flow
}

// newFlowPosterior binds q0 and the K steps made by step(k).
func newFlowPosterior(b *Builder, in QInput, K int, step func(k int) (flows.Flow, error)) flowPosterior {
	steps := make([]flows.Flow, K)
	for k := range steps {
		f, err := step(k)
		if err != nil {
			b.Fail(err)
		}
		steps[k] = f
	}
	return flowPosterior{base: newDiagGauss(b, in), flow: flows.Compose(steps...)}
}

// newStackPosterior binds q0 and a flow made in one piece (a packed stack).
func newStackPosterior(b *Builder, in QInput, mk func() (flows.Flow, error)) flowPosterior {
	f, err := mk()
	if err != nil {
		b.Fail(err)
	}
	return flowPosterior{base: newDiagGauss(b, in), flow: f}
}

// Sample draws z0 and log q0 with one node each way for the
// reparameterization and one for the log-density (nets.Reparam, LogQEps,
// the values of diagGauss.sample's nodes bit for bit) where gorgonia's
// element nodes took about twenty-five: per-node overhead on (B, L)
// tensors, a few percent of an iaf:4 step. diag keeps its nodes.
func (q flowPosterior) Sample(eps *G.Node) (z, logq *G.Node) {
	z0 := must(nets.Reparam(q.base.mu, q.base.logvar, eps))
	logq0 := must(nets.LogQEps(eps, q.base.logvar))
	zK, logDet, err := q.flow.Forward(z0)
	if err != nil {
		q.base.bd.Fail(err)
	}
	return zK, must(G.Sub(logq0, logDet))
}

// Point is the flow applied to the base mean, f_K(...f_1(mu)).
func (q flowPosterior) Point() *G.Node {
	z, _, err := q.flow.Forward(q.base.mu)
	if err != nil {
		q.base.bd.Fail(err)
	}
	return z
}

// parseSteps reads the K of "name:K".
func parseSteps(name string, args []string) (int, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("%s takes K", name)
	}
	return countArg("the number of flow steps K", args[0], MaxFlowSteps)
}

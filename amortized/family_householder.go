package amortized

import (
	"fmt"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// Householder is "householder:K": the Householder flow of Tomczak & Welling
// (2016), "Improving Variational Auto-Encoders using Householder Flow". A
// diagonal Gaussian z0 = mu + exp(lv/2) eps is reflected K times,
//
//	z = H_K ... H_1 z0,  H_k = I - 2 v_k v_kᵀ/|v_k|²,  log|det H_k| = 0,
//
// with v_1 from an encoder head ("hh.v1", L wide) and v_k = W_k v_{k-1} +
// c_k (k = 2..K, parameters encoder.householder.k.weight/.bias, L×L and L),
// as in the paper's code. q is N(U mu, U diag(e^lv) Uᵀ), U = H_K ... H_1: a
// full-covariance Gaussian, so
//   - log q at a given z is diag's at z0 = Uᵀ z = H_1 ... H_K z (each H_k is
//     its own inverse): the score estimator works;
//   - KL(q || N(0, I)) is diag's: |U mu| = |mu|, tr and det are invariant
//     under the rotation (closed form; not a sum over z's dimensions, so no
//     free bits).
const Householder = "householder"

func init() {
	RegisterFamily(Householder, "householder:K", func(args []string, c Config) (Family, error) {
		k, err := parseSteps(Householder, args)
		return &householderFamily{steps: k}, err
	})
	RegisterKL(Householder, StandardNormal, false, func(b *Builder, q Posterior, _ BoundPrior) (row, dims *G.Node) {
		h := q.(householderPosterior)
		return must(G.Sum(b.klDiag(h.mu, h.logvar), 1)), nil
	})
}

type householderFamily struct {
	steps int
	chain flows.HouseholderChain // defined by Define
}

func (f *householderFamily) String() string   { return fmt.Sprintf("%s:%d", Householder, f.steps) }
func (f *householderFamily) Invertible() bool { return true }

// Heads: v_1 must not start at zero (a reflection needs v ≠ 0).
func (f *householderFamily) Heads(c Config) []Head {
	return append(gaussHeads(c.Latent), Head{Name: "hh.v1", Width: c.Latent})
}

func (f *householderFamily) Define(ps *nets.Params, c Config) error {
	var err error
	f.chain, err = flows.NewHouseholderChain(ps, "encoder.householder", c.Latent, f.steps)
	return err
}

func (f *householderFamily) Bind(b *Builder, in QInput) Posterior {
	flow, vs, err := f.chain.Bind(b.Binding(), in.Heads["hh.v1"])
	if err != nil {
		b.Fail(err)
	}
	return householderPosterior{flowPosterior: flowPosterior{base: newDiagGauss(b, in), flow: flow}, diagGauss: newDiagGauss(b, in), vs: vs}
}

// householderPosterior is the flow posterior with its reflections' vectors
// (for the inverse).
type householderPosterior struct {
	flowPosterior
	diagGauss
	vs []*G.Node
}

func (q householderPosterior) Sample(eps *G.Node) (z, logq *G.Node) {
	return q.flowPosterior.Sample(eps)
}
func (q householderPosterior) Point() *G.Node { return q.flowPosterior.Point() }

// LogQAt is diag's log q at z0 = H_1 ... H_K z.
func (q householderPosterior) LogQAt(z *G.Node) *G.Node {
	inv := make([]flows.Flow, len(q.vs))
	for k, v := range q.vs {
		h, err := flows.NewHouseholder(v)
		if err != nil {
			q.diagGauss.bd.Fail(err)
		}
		inv[len(q.vs)-1-k] = h
	}
	z0, _, err := flows.Compose(inv...).Forward(z)
	if err != nil {
		q.diagGauss.bd.Fail(err)
	}
	return q.diagGauss.bd.logQOffset(must(G.Sub(z0, q.mu)), q.logvar)
}

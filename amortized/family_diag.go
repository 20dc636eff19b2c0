package amortized

import (
	G "gorgonia.org/gorgonia"
)

// Diagonal is the family N(mu, diag(exp(logvar))), "diag".
const Diagonal = "diag"

func init() {
	RegisterFamily(Diagonal, Diagonal, func(args []string, c Config) (Family, error) {
		return diagFamily{}, noArgs(Diagonal, args)
	})
	RegisterKL(Diagonal, StandardNormal, true, func(b *Builder, q Posterior, _ BoundPrior) (row, dims *G.Node) {
		d := q.(diagPosterior)
		dims = b.klDiag(d.mu, d.logvar)
		return must(G.Sum(dims, 1)), dims
	})
}

type diagFamily struct{}

func (diagFamily) String() string        { return Diagonal }
func (diagFamily) Heads(c Config) []Head { return gaussHeads(c.Latent) }
func (diagFamily) Invertible() bool      { return true }
func (diagFamily) Bind(b *Builder, in QInput) Posterior {
	return diagPosterior{newDiagGauss(b, in)}
}

// diagPosterior: z = mu + exp(lv/2) eps, log q = log N(eps; 0, I) - sum lv/2.
type diagPosterior struct{ diagGauss }

func (q diagPosterior) Sample(eps *G.Node) (z, logq *G.Node) { return q.sample(eps) }
func (q diagPosterior) Point() *G.Node                       { return q.mu }

// LogQAt is logQEps at the noise that produces z, eps = (z - mu) exp(-lv/2).
func (q diagPosterior) LogQAt(z *G.Node) *G.Node {
	return q.bd.logQOffset(must(G.Sub(z, q.mu)), q.logvar)
}

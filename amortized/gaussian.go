package amortized

import (
	G "gorgonia.org/gorgonia"
)

// Diagonal-Gaussian pieces shared by the families built on one (diag,
// fullcov, and the base q0 of the flows): heads "mean" and "logvar".

// gaussHeads are the heads of a diagonal Gaussian of dimension L.
func gaussHeads(L int) []Head { return []Head{{Name: "mean", Width: L}, {Name: "logvar", Width: L}} }

// diagGauss is N(mu, diag(exp(logvar))) per row.
type diagGauss struct {
	bd         *Builder
	mu, logvar *G.Node
}

func newDiagGauss(b *Builder, in QInput) diagGauss {
	return diagGauss{bd: b, mu: in.Heads["mean"], logvar: in.Heads["logvar"]}
}

// sample is z = mu + exp(lv/2) eps with log q per row.
func (q diagGauss) sample(eps *G.Node) (z, logq *G.Node) {
	return must(G.Add(q.mu, q.bd.scaledNoise(q.logvar, eps))), q.bd.logQEps(eps, q.logvar)
}

// scaledNoise is exp(lv/2) * eps.
func (bd *Builder) scaledNoise(logvar, eps *G.Node) *G.Node {
	std := must(G.Exp(must(G.Mul(logvar, bd.Scalar(0.5)))))
	return must(G.HadamardProd(std, eps))
}

// klDiag is KL(N(mu, e^lv) || N(0, I)) per row and per dimension:
// (mu^2 + e^lv - 1 - lv) / 2.
func (bd *Builder) klDiag(mu, logvar *G.Node) *G.Node {
	t := must(G.Add(must(G.Square(mu)), must(G.Exp(logvar))))
	t = must(G.Sub(t, must(G.Add(logvar, bd.Scalar(1)))))
	return must(G.Mul(t, bd.Scalar(0.5)))
}

// logQEps is log q(z|x) per row for z = mu + exp(lv/2) eps, by the change of
// variables: sum_j log N(eps_j; 0, 1) - lv_j/2.
func (bd *Builder) logQEps(eps, logvar *G.Node) *G.Node {
	halfLV := must(G.Mul(must(G.Sum(logvar, 1)), bd.Scalar(0.5)))
	return must(G.Sub(bd.LogStdNormal(eps), halfLV))
}

// logQOffset is logQEps at eps = u exp(-lv/2): log q of the point whose
// offset from the mean is u = exp(lv/2) eps.
func (bd *Builder) logQOffset(u, logvar *G.Node) *G.Node {
	invStd := must(G.Exp(must(G.Mul(logvar, bd.Scalar(-0.5)))))
	return bd.logQEps(must(G.HadamardProd(u, invStd)), logvar)
}

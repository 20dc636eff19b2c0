package amortized

import (
	"fmt"
	"math"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// FullCov is the family N(mu, C C^T), C = (I + N) diag(exp(logvar/2)) with N
// strictly lower-triangular, "fullcov".
const FullCov = "fullcov"

func init() {
	RegisterFamily(FullCov, FullCov, func(args []string, c Config) (Family, error) {
		if c.Latent > math.MaxInt32 {
			// L(L-1)/2 entries of N per example would overflow.
			return nil, fmt.Errorf("latent dimension %d: the network has more than 2^63 parameters", c.Latent)
		}
		return fullcovFamily{}, noArgs(FullCov, args)
	})
	// KL(q || N(0, I)) = 1/2 (tr(C C^T) + |mu|^2 - L - sum_j lv_j)
	//                  = diag's + 1/2 sum_j exp(lv_j) sum_{i>j} n_ij^2,
	// as tr(C C^T) = sum_ij C_ij^2 and C_ij = n_ij exp(lv_j/2) below the
	// diagonal, C_jj = exp(lv_j/2). The dimensions are coupled: no per-dimension KL.
	RegisterKL(FullCov, StandardNormal, false, func(b *Builder, q Posterior, _ BoundPrior) (row, dims *G.Node) {
		f := q.(fullcovPosterior)
		kl := must(G.Sum(b.klDiag(f.mu, f.logvar), 1))
		if f.lower == nil { // L = 1
			return kl, nil
		}
		// (n * n) Pick^T sums each column j of N's squares over the rows i > j.
		colSq := must(G.Mul(must(G.Square(f.lower)), f.lowerPick(true)))
		off := must(G.Sum(must(G.HadamardProd(must(G.Exp(f.logvar)), colSq)), 1))
		return must(G.Add(kl, must(G.Mul(off, b.Scalar(0.5))))), nil
	})
}

type fullcovFamily struct{}

func (fullcovFamily) String() string   { return FullCov }
func (fullcovFamily) Invertible() bool { return true }
func (fullcovFamily) Heads(c Config) []Head {
	L := c.Latent
	hs := gaussHeads(L)
	if L > 1 {
		// Zero at the start: training begins at the diagonal family.
		hs = append(hs, Head{Name: "lower", Width: L * (L - 1) / 2, ZeroInit: true})
	}
	return hs
}

func (fullcovFamily) Bind(b *Builder, in QInput) Posterior {
	return fullcovPosterior{diagGauss: newDiagGauss(b, in), lower: in.Heads["lower"], L: b.Config().Latent}
}

// fullcovPosterior: the head logvar is the log-variance of the scaled noise
// u = exp(lv/2) eps, and lower holds N's n_ij, the strict lower triangle of
// I + N, row by row (nil for L = 1).
type fullcovPosterior struct {
	diagGauss
	lower *G.Node
	L     int
}

// Sample is z = mu + u + N u (u = exp(lv/2) eps, so z = mu + C eps),
// log q = log N(eps; 0, I) - sum lv/2. With N = 0 it computes exactly what
// diag does.
func (q fullcovPosterior) Sample(eps *G.Node) (z, logq *G.Node) {
	z = must(G.Add(q.mu, q.unitLowerTimes(q.bd.scaledNoise(q.logvar, eps))))
	return z, q.bd.logQEps(eps, q.logvar)
}

func (q fullcovPosterior) Point() *G.Node { return q.mu }

// LogQAt is log q at the noise that produces z, eps = u exp(-lv/2) with u
// solving (I + N) u = z - mu, by forward substitution (unit diagonal: no
// division).
func (q fullcovPosterior) LogQAt(z *G.Node) *G.Node {
	d := must(G.Sub(z, q.mu))
	if q.lower == nil {
		return q.bd.logQOffset(d, q.logvar)
	}
	// u_i = d_i - sum_{j<i} n_ij u_j. Each pass below redoes every row of
	// that recurrence from the previous pass's u; as N is nilpotent, after
	// pass t the first t+1 components are final, so L-1 passes give forward
	// substitution exactly. With N = 0 every pass returns d unchanged.
	u := d
	for range q.L - 1 {
		u = must(G.Sub(d, q.strictLowerTimes(u)))
	}
	return q.bd.logQOffset(u, q.logvar)
}

// unitLowerTimes is (I + N) v per row, v + N v.
func (q fullcovPosterior) unitLowerTimes(v *G.Node) *G.Node {
	if q.lower == nil {
		return v
	}
	return must(G.Add(v, q.strictLowerTimes(v)))
}

// strictLowerTimes is N v per row. With the P = L(L-1)/2 entries p = (i, j),
// i > j, stored row by row (p = i(i-1)/2 + j), it is ((v E) * lower) R for
// constant 0/1 matrices E (L x P, E[j,p] = 1: picks v_j for entry p) and R
// (P x L, R[p,i] = 1: sums entries into their row): two matrix products, no
// slicing; the two products and the Hadamard product are one node each way
// (nets.StrictLowerTimes), with the same values.
func (q fullcovPosterior) strictLowerTimes(v *G.Node) *G.Node {
	if fuseStrictLower {
		return must(nets.StrictLowerTimes(v, q.lower))
	}
	return must(G.Mul(must(G.HadamardProd(must(G.Mul(v, q.lowerPick(false))), q.lower)), q.lowerRows()))
}

// fuseStrictLower selects nets.StrictLowerTimes (one node each way, the
// same values) for strictLowerTimes; tests turn it off to compare.
var fuseStrictLower = true

// lowerPick is E (L x P, E[j,p] = 1 where entry p = (i, j) of the strict
// lower triangle is in column j), or with transposed its transpose (P x L).
func (q fullcovPosterior) lowerPick(transposed bool) *G.Node {
	L := q.L
	P := L * (L - 1) / 2
	e := make([]float64, L*P)
	for i := 1; i < L; i++ {
		for j := range i {
			p := i*(i-1)/2 + j
			if transposed {
				e[p*L+j] = 1
			} else {
				e[j*P+p] = 1
			}
		}
	}
	if transposed {
		return q.bd.Const("fullcov.cols", e, P, L)
	}
	return q.bd.Const("fullcov.pick", e, L, P)
}

// lowerRows is R (P x L, R[p,i] = 1 where entry p = (i, j) is in row i).
func (q fullcovPosterior) lowerRows() *G.Node {
	L := q.L
	P := L * (L - 1) / 2
	r := make([]float64, P*L)
	for i := 1; i < L; i++ {
		for j := range i {
			r[(i*(i-1)/2+j)*L+i] = 1
		}
	}
	return q.bd.Const("fullcov.rows", r, P, L)
}

package amortized

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// Mixture is "mixture:C": a mixture of C diagonal Gaussians from the
// encoder (Saul & Jordan 1996's mixture mean field, amortized),
//
//	q(z|x) = sum_c pi_c(x) N(z; mu_c(x), diag exp(lv_c(x))),  pi = softmax(logits),
//
// heads "mix.logits" (C, zero at the start: equal weights), "mix.mean" and
// "mix.logvar" (C·L each, component c at columns [cL, (c+1)L)). Drawing a
// component is not reparameterizable, so expectations use the stratified
// estimator (Roeder et al. 2017; Morningstar et al. 2021): one z_c per
// component, z_c = mu_c + exp(lv_c/2) eps_c, and E_q[f] = sum_c pi_c
// E_{q_c}[f(z_c)], unbiased, with gradients w.r.t. pi through the weights
// and w.r.t. mu_c, lv_c by reparameterization ([Stratified]). log q is the
// whole mixture's density at each z_c (a max-shifted log-sum-exp over the
// components). The ELBO is sum_c pi_c (log p(x|z_c) + log p(z_c) - log
// q(z_c|x)); the IWAE bound over k draws is SIWAE, log (1/k) sum_j sum_c
// pi_c w(z_cj); log p(x) is estimated by importance sampling with the same
// stratified weights. The noise per row is C·L normals (the strata's) and
// 2 more, e1 and e2, which pick the component of the single z Sample
// returns (Reconstruct, Impute): u = exp(-(e1² + e2²)/2) is uniform on
// (0, 1], and the component is the first c with u < pi_1 + ... + pi_c.
// Encode's point summary is the mixture's mean, sum_c pi_c mu_c. The KL is
// the stratified Monte Carlo estimate; no log q at a given z is offered to
// the score estimator, and no free bits.
const Mixture = "mixture"

// MaxMixtureComponents bounds C in "mixture:C".
const MaxMixtureComponents = 1000

func init() {
	RegisterFamily(Mixture, "mixture:C", func(args []string, c Config) (Family, error) {
		if len(args) != 1 {
			return nil, fmt.Errorf("mixture takes C (the number of components, from 1 to %d)", MaxMixtureComponents)
		}
		n, err := countArg("the number of components C", args[0], MaxMixtureComponents)
		if err == nil && c.Latent > math.MaxInt32/MaxMixtureComponents {
			err = fmt.Errorf("mixture: latent dimension %d is too large", c.Latent)
		}
		return mixtureFamily{c: n}, err
	})
}

type mixtureFamily struct{ c int }

func (f mixtureFamily) String() string { return fmt.Sprintf("%s:%d", Mixture, f.c) }

func (f mixtureFamily) NoiseWidth(c Config) int { return f.c*c.Latent + 2 }

func (f mixtureFamily) Heads(c Config) []Head {
	return []Head{{Name: "mix.logits", Width: f.c, ZeroInit: true}, {Name: "mix.mean", Width: f.c * c.Latent}, {Name: "mix.logvar", Width: f.c * c.Latent}}
}

func (f mixtureFamily) Bind(b *Builder, in QInput) Posterior {
	logits := in.Heads["mix.logits"]
	// log pi = logits - log sum exp(logits), max-shifted.
	lse := must(G.Add(b.logMeanExp(logits, f.c), b.Scalar(math.Log(float64(f.c)))))
	logpi := must(G.BroadcastSub(logits, lse, nil, []byte{1}))
	return mixturePosterior{bd: b, c: f.c, L: b.Config().Latent, logpi: logpi, mu: in.Heads["mix.mean"], lv: in.Heads["mix.logvar"]}
}

type mixturePosterior struct {
	bd     *Builder
	c, L   int
	logpi  *G.Node // (n, C)
	mu, lv *G.Node // (n, C·L)
}

// konst is a cached constant matrix built by fill(v, cols).
func (q mixturePosterior) konst(name string, rows, cols int, fill func(v []float64)) *G.Node {
	v := make([]float64, rows*cols)
	fill(v)
	return q.bd.Const(fmt.Sprintf("mixture.%s.%d.%d.%d", name, q.c, q.L, rows), v, rows, cols)
}

// blockSum is the (C·L)×C matrix summing each component's L columns.
func (q mixturePosterior) blockSum() *G.Node {
	return q.konst("blocksum", q.c*q.L, q.c, func(v []float64) {
		for i := range q.c * q.L {
			v[i*q.c+i/q.L] = 1
		}
	})
}

// blockSpread is blockSum's transpose: a value per component to its L columns.
func (q mixturePosterior) blockSpread() *G.Node {
	return q.konst("spread", q.c, q.c*q.L, func(v []float64) {
		for i := range q.c * q.L {
			v[(i/q.L)*q.c*q.L+i] = 1
		}
	})
}

// stack is the (C·L)×L matrix adding the C blocks of L columns.
func (q mixturePosterior) stack() *G.Node {
	return q.konst("stack", q.c*q.L, q.L, func(v []float64) {
		for i := range q.c * q.L {
			v[i*q.L+i%q.L] = 1
		}
	})
}

// draws are every component's z_c = mu_c + exp(lv_c/2) eps_c, (n, C·L),
// from the first C·L columns of eps.
func (q mixturePosterior) draws(eps *G.Node) *G.Node {
	return must(G.Add(q.mu, q.bd.scaledNoise(q.lv, q.noise(eps))))
}

// noise is the strata's noise, the first C·L columns of eps.
func (q mixturePosterior) noise(eps *G.Node) *G.Node {
	w := q.c*q.L + 2
	return must(G.Mul(eps, q.konst("pick", w, q.c*q.L, func(v []float64) {
		for j := range q.c * q.L {
			v[j*q.c*q.L+j] = 1
		}
	})))
}

// logMix is log q(z|x) per row of z (m, L), given each row's components:
// mu, lv (m, C·L) and log pi (m, C):
// log sum_c pi_c N(z; mu_c, e^lv_c), max-shifted.
func (q mixturePosterior) logMix(z, mu, lv, logpi *G.Node) *G.Node {
	d := must(G.Sub(tileCols(z, q.c), mu))
	s := must(G.Add(must(G.HadamardProd(must(G.Square(d)), must(G.Exp(must(G.Neg(lv)))))), lv))
	s = must(G.Mul(s, q.blockSum())) // (m, C): sum_j (d²/σ² + lv)
	logN := must(G.Sub(must(G.Mul(s, q.bd.Scalar(-0.5))), q.bd.Scalar(0.5*float64(q.L)*math.Log(2*math.Pi))))
	return must(G.Add(q.bd.logMeanExp(must(G.Add(logN, logpi)), q.c), q.bd.Scalar(math.Log(float64(q.c)))))
}

// tileCols is [x x ... x], c copies side by side.
func tileCols(x *G.Node, c int) *G.Node {
	if c == 1 {
		return x
	}
	xs := make([]*G.Node, c)
	for j := range xs {
		xs[j] = x
	}
	return must(G.Concat(1, xs...))
}

// Strata: row r*C + c is z_c of row r. Reshape shares its input's buffer,
// so only nodes read by nothing else are reshaped (gorgonia's in-place ops
// would otherwise overwrite a shared value through the alias).
func (q mixturePosterior) Strata(eps *G.Node) (z, logq, logWeight *G.Node, c int) {
	n := q.mu.Shape()[0]
	z = must(G.Reshape(q.draws(eps), []int{n * q.c, q.L}))
	logq = q.logMix(z, tile(q.mu, q.c), tile(q.lv, q.c), tile(q.logpi, q.c))
	logpi := must(G.Mul(q.logpi, q.bd.Scalar(1))) // a copy of its own
	return z, logq, must(G.Reshape(logpi, []int{n * q.c})), q.c
}

// Sample is one z per row: the component chosen by u = exp(-(e1²+e2²)/2)
// (uniform) against the cumulative weights, its z_c, and log q there.
func (q mixturePosterior) Sample(eps *G.Node) (z, logq *G.Node) {
	n, C, w := q.mu.Shape()[0], q.c, q.c*q.L+2
	e := must(G.Mul(eps, q.konst("pick2", w, 2, func(v []float64) { v[(w-2)*2], v[(w-1)*2+1] = 1, 1 })))
	u := must(G.Exp(must(G.Mul(must(G.Sum(must(G.Square(e)), 1)), q.bd.Scalar(-0.5))))) // (n)
	uc := must(G.Mul(must(G.Reshape(u, []int{n, 1})), q.konst("ones", 1, C, func(v []float64) {
		for i := range v {
			v[i] = 1
		}
	})))
	cum := must(G.Mul(must(G.Exp(q.logpi)), q.konst("cum", C, C, func(v []float64) {
		for i := range C {
			for j := i; j < C; j++ {
				v[i*C+j] = 1
			}
		}
	})))
	// above_c = [u < cum_c], the last forced to 1 (cum_C may round below u).
	above := must(G.Gt(cum, uc, true))
	above = must(G.Add(must(G.Mul(above, q.konst("keep", C, C, func(v []float64) {
		for i := range C - 1 {
			v[i*C+i] = 1
		}
	}))), q.konst(fmt.Sprintf("last%d", n), n, C, func(v []float64) {
		for r := range n {
			v[r*C+C-1] = 1
		}
	})))
	// onehot_c = above_c - above_{c-1}.
	prev := must(G.Mul(above, q.konst("shift", C, C, func(v []float64) {
		for i := range C - 1 {
			v[i*C+i+1] = 1
		}
	})))
	onehot := must(G.Mul(must(G.Sub(above, prev)), q.blockSpread())) // (n, C·L)
	// z = (onehot ⊙ (mu + exp(lv/2) ⊙ eps_all)) summed over the blocks,
	// written with the fresh onehot as the first operand of each product:
	// the shared nodes (mu, the noise, the draws of Strata) are never
	// overwritten in place.
	sd := must(G.Exp(must(G.Mul(q.lv, q.bd.Scalar(0.5)))))
	sel := must(G.Add(must(G.HadamardProd(onehot, q.mu)), must(G.HadamardProd(must(G.HadamardProd(onehot, sd)), q.noise(eps)))))
	z = must(G.Mul(sel, q.stack()))
	return z, q.logMix(z, q.mu, q.lv, q.logpi)
}

// Point is the mixture's mean, sum_c pi_c mu_c.
func (q mixturePosterior) Point() *G.Node {
	pi := must(G.Mul(must(G.Exp(q.logpi)), q.blockSpread()))
	return must(G.Mul(must(G.HadamardProd(pi, q.mu)), q.stack()))
}

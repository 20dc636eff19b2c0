package amortized

import (
	"math"

	G "gorgonia.org/gorgonia"
)

// The one builder of the terms every graph is made of (training with any
// objective, estimator and k, evaluation, encoding, importance weights for
// log p(x), local optimization and imputation):
//
//	recon = log p(x|z)       per sample, from the likelihood
//	logq  = log q(z|x)       per sample, from the family
//	logp  = log p(z)         per sample, from the prior
//	KL(q || p)               per example in closed form when the pair
//	                         (family, prior) registered one, else per sample
//	                         logq - logp (Rezende & Mohamed 2015, eq. 15)
//	log w = recon + logp - logq
//
// A Stratified posterior (a mixture) draws C values of z per row, one per
// stratum c with probability pi_c: then recon, logq, logp and the Monte
// Carlo KL are the pi-weighted sums over the strata (the stratified
// estimate of each expectation, unbiased, with gradients w.r.t. pi through
// the weights and w.r.t. each stratum's parameters by reparameterization),
// and log w = log sum_c pi_c w_c (the stratified importance weight of
// Morningstar et al. 2021: E[sum_c pi_c w_c] = p(x), so the IWAE bound is
// their SIWAE bound and log p(x) by importance sampling stays consistent).
// z itself (a single draw per row, for the decoded mean) is then drawn by
// Sample only when a graph reads it.
//
// Terms are built on first use only: the tape machine runs every node of a
// graph, so a graph holds only what its kind reads.

// draw says how the terms' z is drawn. With k > 1 samples per example,
// rows of sample-level nodes are example-major (row i*k + j is sample j of
// example i): rep (Bk x B, 0/1) repeats q's parameters, xs is the data
// repeated.
type draw struct {
	heads HeadValues // q's heads, one row per example
	x     *G.Node    // data, one row per example
	rep   *G.Node    // nil: one sample per example
	xs    *G.Node    // data per sample (rep != nil)
	eps   *G.Node    // noise per sample; nil when z is given
	z     *G.Node    // given z (score estimator): no gradient flows through it
	// prepared: heads are a HeadPreparer's prepared heads (one sample per example)
	prepared bool
}

// terms are one draw's terms, built lazily.
type terms struct {
	bd      *Builder
	qB, q   Posterior // per example; per sample (the same when k = 1)
	xs      *G.Node   // data per sample
	z, logq *G.Node   // logq nil for a given z until LogQAt is asked for
	eps     *G.Node   // the draw's noise (for a stratified q's lazy z)
	st      *strata   // a Stratified q's draws, or nil
	dec     Decoded
	recon   *G.Node
	logp    *G.Node
	kl      *klTerms
}

// klTerms is KL(q || p): closed form per example (and per dimension when
// the pair has it), or the per-sample estimate logq - logp.
type klTerms struct {
	analytic bool
	row      *G.Node // per example (analytic) or per sample
	dims     *G.Node // per example and dimension, or nil
}

// orderedHeads are the family's heads, in parameter order.
func (bd *Builder) orderedHeads() []Head { return bd.m.family.Heads(bd.m.cfg) }

// bindQ binds q on heads (one row per example) and data x.
func (bd *Builder) bindQ(heads HeadValues, x *G.Node) Posterior {
	return bd.m.family.Bind(bd, QInput{Heads: heads, X: x})
}

// newTerms draws z as d says and returns its terms.
func (bd *Builder) newTerms(d draw) *terms {
	t := &terms{bd: bd, xs: d.x}
	if d.prepared {
		t.qB = bd.m.family.(HeadPreparer).BindPrepared(bd, QInput{Heads: d.heads, X: d.x})
	} else {
		t.qB = bd.bindQ(d.heads, d.x)
	}
	t.q = t.qB
	if d.rep != nil {
		rh := HeadValues{}
		for _, h := range bd.orderedHeads() {
			rh[h.Name] = must(G.Mul(d.rep, d.heads[h.Name]))
		}
		t.xs = d.xs
		t.q = bd.bindQ(rh, d.xs)
	}
	switch s, ok := t.q.(Stratified); {
	case d.z != nil:
		t.z = d.z
	case ok:
		t.eps = d.eps
		st := &strata{}
		st.z, st.logq, st.logw, st.c = s.Strata(d.eps)
		st.n = st.z.Shape()[0] / st.c
		t.st = st
	default:
		t.z, t.logq = t.q.Sample(d.eps)
	}
	return t
}

// strata are a Stratified q's draws: n rows of c strata, row-major.
type strata struct {
	c, n          int
	z, logq, logw *G.Node // per stratum: z, log q(z|x), log pi_c
	recon, logp   *G.Node // per stratum, built lazily
}

// mean is sum_c pi_c v_c per row, for v per stratum.
func (s *strata) mean(v *G.Node) *G.Node {
	wv := must(G.HadamardProd(v, must(G.Exp(s.logw))))
	return must(G.Sum(must(G.Reshape(wv, []int{s.n, s.c})), 1))
}

// tile repeats every row of x c times (row r*c + j is row r).
func tile(x *G.Node, c int) *G.Node {
	if c == 1 {
		return x
	}
	rows, w := x.Shape()[0], x.Shape()[1]
	xs := make([]*G.Node, c)
	for j := range xs {
		xs[j] = x
	}
	return must(G.Reshape(must(G.Concat(1, xs...)), []int{rows * c, w}))
}

// Z is the draw's z, one per row (a stratified q draws it on first use).
func (t *terms) Z() *G.Node {
	if t.z == nil {
		t.z, _ = t.q.Sample(t.eps)
	}
	return t.z
}

// stratumRecon and stratumLogP are log p(x|z) and log p(z) per stratum.
func (t *terms) stratumRecon() *G.Node {
	if t.st.recon == nil {
		t.st.recon = t.bd.decode(t.st.z).LogProb(tile(t.xs, t.st.c))
	}
	return t.st.recon
}

func (t *terms) stratumLogP() *G.Node {
	if t.st.logp == nil {
		t.st.logp = t.bd.Prior().LogP(t.st.z)
	}
	return t.st.logp
}

// decoded is p(x|z) at the draw's z.
func (t *terms) decoded() Decoded {
	if t.dec == nil {
		t.dec = t.bd.decode(t.Z())
	}
	return t.dec
}

// decode is p(x|z) for rows z: the prior's view of z (if any), the
// decoder's trunk and heads, the likelihood.
func (bd *Builder) decode(z *G.Node) Decoded {
	in := z
	if v, ok := bd.m.prior.(DecoderView); ok {
		in = v.DecoderInput(bd, z)
	}
	return bd.m.lik.Bind(bd, bd.m.decoder.Forward(bd, in, false))
}

// Recon is log p(x|z) per sample.
func (t *terms) Recon() *G.Node {
	if t.recon == nil && t.st != nil {
		t.recon = t.st.mean(t.stratumRecon())
	}
	if t.recon == nil {
		t.recon = t.decoded().LogProb(t.xs)
	}
	return t.recon
}

// LogP is log p(z) per sample.
func (t *terms) LogP() *G.Node {
	if t.logp == nil && t.st != nil {
		t.logp = t.st.mean(t.stratumLogP())
	}
	if t.logp == nil {
		t.logp = t.bd.Prior().LogP(t.z)
	}
	return t.logp
}

// LogQ is log q(z|x) per sample: from the draw, or at the given z (which
// needs an Invertible family).
func (t *terms) LogQ() *G.Node {
	if t.logq == nil && t.st != nil {
		t.logq = t.st.mean(t.st.logq)
	}
	if t.logq == nil {
		inv, ok := t.q.(Invertible)
		if !ok {
			t.bd.Fail(errNotInvertible(t.bd.m.family))
		}
		t.logq = inv.LogQAt(t.z)
	}
	return t.logq
}

// LogW is the log importance weight log p(x|z) + log p(z) - log q(z|x).
func (t *terms) LogW() *G.Node {
	if s := t.st; s != nil {
		// log sum_c pi_c w_c, max-shifted.
		lw := must(G.Sub(must(G.Add(t.stratumRecon(), t.stratumLogP())), s.logq))
		a := must(G.Reshape(must(G.Add(lw, s.logw)), []int{s.n, s.c}))
		return must(G.Add(t.bd.logMeanExp(a, s.c), t.bd.Scalar(math.Log(float64(s.c)))))
	}
	return must(G.Sub(must(G.Add(t.Recon(), t.LogP())), t.LogQ()))
}

// KL is KL(q || p): closed form from the registry, or estimated at the draw.
func (t *terms) KL() *klTerms {
	if t.kl != nil {
		return t.kl
	}
	if e, ok := lookupKL(t.bd.m.family, t.bd.m.prior); ok {
		row, dims := e.fn(t.bd, t.qB, t.bd.Prior())
		t.kl = &klTerms{analytic: true, row: row, dims: dims}
	} else {
		t.kl = &klTerms{row: must(G.Sub(t.LogQ(), t.LogP()))}
	}
	return t.kl
}

package amortized

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Posterior families of q(z|x), the part of Config.Posterior before any ':'.
const (
	Diagonal = "diag"    // N(mu, diag(exp(logvar)))
	FullCov  = "fullcov" // N(mu, C C^T), C = (I + N) diag(exp(logvar/2)), N strictly lower-triangular
	Planar   = "planar"  // "planar:K": K planar flows on a diagonal Gaussian
	Radial   = "radial"  // "radial:K": K radial flows on a diagonal Gaussian
	IAF      = "iaf"     // "iaf:K" or "iaf:K:H": K inverse autoregressive flows on a diagonal Gaussian
)

// MaxFlowSteps bounds K in "planar:K", "radial:K" and "iaf:K". The papers
// use up to 80 steps; the bound keeps a typo from building a graph of a
// million steps.
const MaxFlowSteps = 1000

// posteriorSpec is Config.Posterior parsed.
type posteriorSpec struct {
	family string
	steps  int // K: flow steps (planar, radial, iaf)
	hidden int // H: the MADE's hidden width and the context width (iaf)
}

// DefaultIAFHidden is the MADE hidden width of "iaf:K" for a latent
// dimension L (the H of "iaf:K:H"): 2L + 1 hidden units, so that every
// autoregressive degree 1..L-1 has at least two units. On the reference
// model (L = 20) "iaf:2" (H = 41) trains as fast per image as "diag", while
// the encoder's width, "iaf:2:400", is 0.6 times as fast and was no better
// after 2 MNIST epochs (test ELBO -165.9 against -162.7).
func DefaultIAFHidden(latent int) int { return 2*latent + 1 }

// parsePosterior reads the posterior forms "diag", "fullcov", "planar:K",
// "radial:K", "iaf:K" and "iaf:K:H" for a latent dimension L.
func parsePosterior(s string, latent int) (posteriorSpec, error) {
	const want = "want diag, fullcov, planar:K, radial:K, iaf:K or iaf:K:H (K flow steps >= 1, H MADE hidden units >= 1)"
	fields := strings.Split(s, ":")
	p := posteriorSpec{family: fields[0]}
	args := fields[1:]
	bad := func(format string, a ...any) (posteriorSpec, error) {
		return p, fmt.Errorf("posterior %q: %s; %s", s, fmt.Sprintf(format, a...), want)
	}
	count := func(what, v string, limit int) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > limit || strings.HasPrefix(v, "+") {
			return 0, fmt.Errorf("%s %q is not an integer from 1 to %d", what, v, limit)
		}
		return n, nil
	}
	switch p.family {
	case Diagonal, FullCov:
		if len(args) > 0 {
			return bad("%s takes no parameters", p.family)
		}
	case Planar, Radial, IAF:
		maxArgs := 1
		if p.family == IAF {
			maxArgs = 2
		}
		if len(args) == 0 || len(args) > maxArgs {
			return bad("%s takes %s", p.family, map[bool]string{true: "K or K:H", false: "K"}[p.family == IAF])
		}
		var err error
		if p.steps, err = count("the number of flow steps K", args[0], MaxFlowSteps); err != nil {
			return bad("%v", err)
		}
		if p.family == IAF {
			p.hidden = DefaultIAFHidden(latent)
			if len(args) == 2 {
				if p.hidden, err = count("the hidden width H", args[1], math.MaxInt32); err != nil {
					return bad("%v", err)
				}
			}
		}
	default:
		return bad("unknown family %q", p.family)
	}
	return p, nil
}

// String is the canonical form: "iaf:K" is written "iaf:K:H" with the
// default H, so a stored configuration does not depend on the default.
func (p posteriorSpec) String() string {
	switch p.family {
	case Planar, Radial:
		return fmt.Sprintf("%s:%d", p.family, p.steps)
	case IAF:
		return fmt.Sprintf("%s:%d:%d", p.family, p.steps, p.hidden)
	}
	return p.family
}

// isFlow reports whether q is a flow on a diagonal Gaussian base.
func (p posteriorSpec) isFlow() bool {
	return p.family == Planar || p.family == Radial || p.family == IAF
}

// headSpec is one linear head on the encoder's last hidden layer.
type headSpec struct {
	name  string // the parameters are encoder.<name>.weight and .bias
	width int
	// zeroInit: [New] starts the head's weights and bias at zero instead of
	// the uniform draws, so that its output is 0 for every x.
	zeroInit bool
}

// heads lists the encoder's heads for latent dimension L, in the order of
// their parameters (and of the checkpoint's tensors).
func (p posteriorSpec) heads(L int) []headSpec {
	switch p.family {
	case FullCov:
		hs := []headSpec{{name: "mean", width: L}, {name: "logvar", width: L}}
		if L > 1 {
			// Zero at the start: training begins at the diagonal family.
			hs = append(hs, headSpec{name: "lower", width: L * (L - 1) / 2, zeroInit: true})
		}
		return hs
	case Planar:
		hs := []headSpec{{name: "mean", width: L}, {name: "logvar", width: L}}
		for k := range p.steps {
			hs = append(hs, headSpec{name: fmt.Sprintf("flow.%d.u", k), width: L}, headSpec{name: fmt.Sprintf("flow.%d.w", k), width: L}, headSpec{name: fmt.Sprintf("flow.%d.b", k), width: 1})
		}
		return hs
	case Radial:
		hs := []headSpec{{name: "mean", width: L}, {name: "logvar", width: L}}
		for k := range p.steps {
			hs = append(hs, headSpec{name: fmt.Sprintf("flow.%d.z0", k), width: L}, headSpec{name: fmt.Sprintf("flow.%d.alpha", k), width: 1}, headSpec{name: fmt.Sprintf("flow.%d.beta", k), width: 1})
		}
		return hs
	case IAF:
		return []headSpec{{name: "mean", width: L}, {name: "logvar", width: L}, {name: "context", width: p.hidden}}
	}
	return []headSpec{{name: "mean", width: L}, {name: "logvar", width: L}}
}

// iafStepName is the parameter prefix of IAF step k.
func iafStepName(k int) string { return fmt.Sprintf("encoder.iaf.%d", k) }

// iafParams counts one IAF step's scalars: a MADE L -> H -> 2L and the
// context map H -> H, each layer with weights and biases.
func iafParams(L, H int, dense func(in, out int)) {
	dense(L, H)   // masked input layer
	dense(H, 2*L) // masked output layer: m and s
	dense(H, H)   // context map, added to the first layer's pre-activation
}

// newIAFSteps registers the K IAF steps of p; successive steps reverse the
// variable order, so that every variable can depend on every other.
func newIAFSteps(ps *nets.Params, p posteriorSpec, L int, act nets.Activation) ([]flows.IAF, error) {
	steps := make([]flows.IAF, p.steps)
	for k := range steps {
		var err error
		if steps[k], err = flows.NewIAF(ps, iafStepName(k), L, []int{p.hidden}, p.hidden, act, k%2 == 1); err != nil {
			return nil, err
		}
	}
	return steps, nil
}

// posterior is q(z|x) in one graph, built from the encoder's head values
// (one row per example), in the model's head order.
type posterior struct {
	bd    *builder
	spec  posteriorSpec
	heads []*G.Node
	mu    *G.Node // mean of the Gaussian (the base q0 of a flow)
	// logvar is the log-variance of the diagonal Gaussian, of a flow's base,
	// or for fullcov of the scaled noise u = exp(logvar/2) eps.
	logvar *G.Node
	// lower holds fullcov's n_ij, the strict lower triangle of the unit
	// lower-triangular I + N, row by row; nil otherwise and for L = 1.
	lower *G.Node
	flow  flows.Flow // built on first use
}

func (bd *builder) posterior(heads []*G.Node) *posterior {
	q := &posterior{bd: bd, spec: bd.m.post, heads: heads, mu: heads[0], logvar: heads[1]}
	if q.spec.family == FullCov && len(heads) > 2 {
		q.lower = heads[2]
	}
	return q
}

// encodeHeads is the encoder: its trunk, then every head.
func (bd *builder) encodeHeads(x *G.Node) []*G.Node {
	m := bd.m
	h := must(m.encTrunk.ForwardData(bd.b, x))
	out := make([]*G.Node, len(m.heads))
	for i, l := range m.heads {
		out[i] = must(l.Forward(bd.b, h))
	}
	return out
}

// vec turns a (B, 1) head into a length-B vector.
func vec(n *G.Node) *G.Node { return must(G.Reshape(n, tensor.Shape{n.Shape()[0]})) }

// flows returns the composed flow of q's family with its per-example
// parameters (planar, radial) or its context (IAF).
func (q *posterior) flows() flows.Flow {
	if q.flow != nil {
		return q.flow
	}
	steps := make([]flows.Flow, q.spec.steps)
	for k := range steps {
		var f flows.Flow
		var err error
		switch q.spec.family {
		case Planar:
			u, w, b := q.heads[2+3*k], q.heads[3+3*k], vec(q.heads[4+3*k])
			f, err = flows.NewPlanar(u, w, b)
		case Radial:
			z0, a, b := q.heads[2+3*k], vec(q.heads[3+3*k]), vec(q.heads[4+3*k])
			f, err = flows.NewRadial(z0, a, b)
		case IAF:
			f = q.bd.m.iaf[k].Bind(q.bd.b, q.heads[2])
		}
		if err != nil {
			panic(buildError{err})
		}
		steps[k] = f
	}
	q.flow = flows.Compose(steps...)
	return q.flow
}

// sample draws z ~ q(z|x) from standard-normal noise eps by the
// reparameterization trick and returns z with log q(z|x) per row.
//
//	diag:    z = mu + exp(lv/2) eps,        log q = log N(eps; 0, I) - sum lv/2
//	fullcov: z = mu + u + N u,              log q = log N(eps; 0, I) - sum lv/2
//	         (u = exp(lv/2) eps, so z = mu + C eps with C = (I + N) diag(exp(lv/2)))
//	flows:   z = f_K(...f_1(z0)),           log q = log q0(z0) - sum_k log|det J_k|
//
// With N = 0 fullcov computes exactly what diag does (u + N u = u + 0).
func (q *posterior) sample(eps *G.Node) (z, logq *G.Node) {
	bd := q.bd
	if q.spec.family == FullCov {
		z = must(G.Add(q.mu, q.unitLowerTimes(bd.scaledNoise(q.logvar, eps))))
		return z, bd.logQEps(eps, q.logvar)
	}
	z = bd.reparameterize(q.mu, q.logvar, eps)
	logq = bd.logQEps(eps, q.logvar)
	if q.spec.isFlow() {
		zK, logDet, err := q.flows().Forward(z)
		if err != nil {
			panic(buildError{err})
		}
		z, logq = zK, must(G.Sub(logq, logDet))
	}
	return z, logq
}

// point is Encode's summary of q(z|x): the mean for the Gaussian families,
// the flow applied to the base mean, f_K(...f_1(mu)), for flows.
func (q *posterior) point() *G.Node {
	if !q.spec.isFlow() {
		return q.mu
	}
	z, _, err := q.flows().Forward(q.mu)
	if err != nil {
		panic(buildError{err})
	}
	return z
}

// analyticKL reports whether KL(q || p) has a closed form.
func (q *posterior) analyticKL() bool { return !q.spec.isFlow() }

// klRow is the closed-form KL(q(z|x) || N(0, I)) per row (diag, fullcov):
//
//	diag:    1/2 sum_j (mu_j^2 + exp(lv_j) - 1 - lv_j)
//	fullcov: 1/2 (tr(C C^T) + |mu|^2 - L - sum_j lv_j)
//	         = diag's + 1/2 sum_j exp(lv_j) sum_{i>j} n_ij^2,
//
// as tr(C C^T) = sum_ij C_ij^2 and C_ij = n_ij exp(lv_j/2) below the
// diagonal, C_jj = exp(lv_j/2).
func (q *posterior) klRow() *G.Node {
	bd := q.bd
	kl := must(G.Sum(bd.klDiag(q.mu, q.logvar), 1))
	if q.lower == nil { // diag, and fullcov with L = 1
		return kl
	}
	// (n * n) Pick^T sums each column j of N's squares over the rows i > j.
	colSq := must(G.Mul(must(G.Square(q.lower)), bd.lowerPick(true)))
	off := must(G.Sum(must(G.HadamardProd(must(G.Exp(q.logvar)), colSq)), 1))
	return must(G.Add(kl, must(G.Mul(off, bd.scalar(0.5)))))
}

// logQAt is log q(z|x) per row at a given z (diag, fullcov), for the
// score-function estimator: log q at the noise that produces z. For fullcov
// that noise is eps = u exp(-lv/2) with u solving (I + N) u = z - mu, by
// forward substitution (unit diagonal: no division).
func (q *posterior) logQAt(z *G.Node) *G.Node {
	bd := q.bd
	if q.lower == nil { // diag, and fullcov with L = 1
		return bd.logQAt(z, q.mu, q.logvar)
	}
	d := must(G.Sub(z, q.mu))
	// u_i = d_i - sum_{j<i} n_ij u_j. Each pass below redoes every row of
	// that recurrence from the previous pass's u; as N is nilpotent, after
	// pass t the first t+1 components are final, so L-1 passes give forward
	// substitution exactly. With N = 0 every pass returns d unchanged.
	u := d
	for range bd.m.cfg.Latent - 1 {
		u = must(G.Sub(d, q.strictLowerTimes(u)))
	}
	return bd.logQOffset(u, q.logvar)
}

// unitLowerTimes is (I + N) v per row, v + N v (fullcov).
func (q *posterior) unitLowerTimes(v *G.Node) *G.Node {
	if q.lower == nil {
		return v
	}
	return must(G.Add(v, q.strictLowerTimes(v)))
}

// strictLowerTimes is N v per row for fullcov's strictly lower-triangular
// N (entries n_ij, i > j, in the head lower).
// With the P = L(L-1)/2 entries p = (i, j), i > j, stored row by row
// (p = i(i-1)/2 + j), it is ((v E) * lower) R for constant 0/1 matrices E
// (L x P, E[j,p] = 1: picks v_j for entry p) and R (P x L, R[p,i] = 1: sums
// entries into their row): two matrix products, no slicing.
func (q *posterior) strictLowerTimes(v *G.Node) *G.Node {
	return must(G.Mul(must(G.HadamardProd(must(G.Mul(v, q.bd.lowerPick(false))), q.lower)), q.bd.lowerRows()))
}

// lowerPick is E (L x P, E[j,p] = 1 where entry p = (i, j) of the strict
// lower triangle is in column j), or with transposed its transpose (P x L).
func (bd *builder) lowerPick(transposed bool) *G.Node {
	L := bd.m.cfg.Latent
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
		return bd.constMatrix("fullcov.cols", e, P, L)
	}
	return bd.constMatrix("fullcov.pick", e, L, P)
}

// lowerRows is R (P x L, R[p,i] = 1 where entry p = (i, j) is in row i).
func (bd *builder) lowerRows() *G.Node {
	L := bd.m.cfg.Latent
	P := L * (L - 1) / 2
	r := make([]float64, P*L)
	for i := 1; i < L; i++ {
		for j := range i {
			r[(i*(i-1)/2+j)*L+i] = 1
		}
	}
	return bd.constMatrix("fullcov.rows", r, P, L)
}

// constMatrix is a named constant (rows x cols) of the graph's dtype. The
// name keeps gorgonia from merging it with another constant of that shape.
func (bd *builder) constMatrix(name string, v []float64, rows, cols int) *G.Node {
	if n, ok := bd.consts[name]; ok {
		return n
	}
	if bd.consts == nil {
		bd.consts = map[string]*G.Node{}
	}
	var t tensor.Tensor
	if bd.dt == tensor.Float32 {
		t = tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(toFloat32(v)))
	} else {
		t = tensor.New(tensor.WithShape(rows, cols), tensor.WithBacking(append([]float64(nil), v...)))
	}
	bd.consts[name] = G.NewConstant(t, G.WithName(name))
	return bd.consts[name]
}

// NormalizeFor is [TrainOptions.Normalize] that also refuses options the
// posterior family of c cannot serve:
//
//   - free bits act on each latent dimension's analytic KL, which only the
//     diagonal family has (a full covariance couples the dimensions; a flow's
//     KL is a Monte Carlo estimate of the whole);
//   - the score-function estimator needs log q(z|x) at a z drawn outside the
//     graph, which needs the map from noise to z inverted: closed form for
//     the Gaussian families, none for planar, radial and IAF flows.
func (o TrainOptions) NormalizeFor(c Config) (TrainOptions, error) {
	o, err := o.Normalize()
	if err != nil {
		return o, err
	}
	c, err = c.Normalize()
	if err != nil {
		return o, err
	}
	p := c.posterior()
	switch {
	case o.FreeBits > 0 && p.family != Diagonal:
		return o, fmt.Errorf("amortized: free bits floor each latent dimension's analytic KL, which the %s posterior does not have (diag only)", c.Posterior)
	case o.Estimator == EstimatorScore && p.isFlow():
		return o, fmt.Errorf("amortized: the score-function estimator needs log q(z|x) at a given z, and the %s posterior's flows have no closed-form inverse (diag and fullcov only)", c.Posterior)
	}
	return o, nil
}

// CanonicalPosterior returns the canonical form of the posterior s for
// latent dimension latent, as Config.Normalize writes it ("iaf:4" becomes
// "iaf:4:H" with the default H), or an error naming s and the forms.
func CanonicalPosterior(s string, latent int) (string, error) {
	if s == "" {
		s = Diagonal
	}
	p, err := parsePosterior(s, latent)
	if err != nil {
		return "", fmt.Errorf("amortized: %w", err)
	}
	return p.String(), nil
}

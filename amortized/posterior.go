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
	FullCov  = "fullcov" // N(mu, C C^T), C lower-triangular with a positive diagonal
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
}

// heads lists the encoder's heads for latent dimension L, in the order of
// their parameters (and of the checkpoint's tensors).
func (p posteriorSpec) heads(L int) []headSpec {
	switch p.family {
	case FullCov:
		hs := []headSpec{{"mean", L}, {"logdiag", L}}
		if L > 1 {
			hs = append(hs, headSpec{"lower", L * (L - 1) / 2})
		}
		return hs
	case Planar:
		hs := []headSpec{{"mean", L}, {"logvar", L}}
		for k := range p.steps {
			hs = append(hs, headSpec{fmt.Sprintf("flow.%d.u", k), L}, headSpec{fmt.Sprintf("flow.%d.w", k), L}, headSpec{fmt.Sprintf("flow.%d.b", k), 1})
		}
		return hs
	case Radial:
		hs := []headSpec{{"mean", L}, {"logvar", L}}
		for k := range p.steps {
			hs = append(hs, headSpec{fmt.Sprintf("flow.%d.z0", k), L}, headSpec{fmt.Sprintf("flow.%d.alpha", k), 1}, headSpec{fmt.Sprintf("flow.%d.beta", k), 1})
		}
		return hs
	case IAF:
		return []headSpec{{"mean", L}, {"logvar", L}, {"context", p.hidden}}
	}
	return []headSpec{{"mean", L}, {"logvar", L}}
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
	// logvar is the diagonal log-variance (diag and flow bases); logdiag
	// log L_jj and lower the strict lower triangle of L, row by row (fullcov).
	logvar, logdiag, lower *G.Node
	flow                   flows.Flow // built on first use
}

func (bd *builder) posterior(heads []*G.Node) *posterior {
	q := &posterior{bd: bd, spec: bd.m.post, heads: heads, mu: heads[0]}
	switch q.spec.family {
	case FullCov:
		q.logdiag = heads[1]
		if len(heads) > 2 {
			q.lower = heads[2]
		}
	default:
		q.logvar = heads[1]
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
//	diag:    z = mu + exp(lv/2) eps,   log q = log N(eps; 0, I) - sum lv/2
//	fullcov: z = mu + L eps,           log q = log N(eps; 0, I) - sum log L_jj
//	flows:   z = f_K(...f_1(z0)),      log q = log q0(z0) - sum_k log|det J_k|
func (q *posterior) sample(eps *G.Node) (z, logq *G.Node) {
	bd := q.bd
	if q.spec.family == FullCov {
		z = must(G.Add(q.mu, q.lowerTimes(eps)))
		return z, must(G.Sub(bd.logStdNormal(eps), must(G.Sum(q.logdiag, 1))))
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
//	fullcov: 1/2 (tr(L L^T) + |mu|^2 - L - 2 sum_j log L_jj),
//	         tr(L L^T) = sum_j exp(2 log L_jj) + sum_{i>j} L_ij^2
func (q *posterior) klRow() *G.Node {
	bd := q.bd
	if q.spec.family == Diagonal {
		return must(G.Sum(bd.klDiag(q.mu, q.logvar), 1))
	}
	t := must(G.Add(must(G.Exp(must(G.Mul(q.logdiag, bd.scalar(2))))), must(G.Square(q.mu))))
	t = must(G.Sub(t, must(G.Add(must(G.Mul(q.logdiag, bd.scalar(2))), bd.scalar(1)))))
	s := must(G.Sum(t, 1))
	if q.lower != nil {
		s = must(G.Add(s, must(G.Sum(must(G.Square(q.lower)), 1))))
	}
	return must(G.Mul(s, bd.scalar(0.5)))
}

// logQAt is log q(z|x) per row at a given z (diag, fullcov), for the
// score-function estimator: log q at the noise that produces z. For fullcov
// that noise solves L eps = z - mu, by forward substitution.
func (q *posterior) logQAt(z *G.Node) *G.Node {
	bd := q.bd
	if q.spec.family == Diagonal {
		return bd.logQAt(z, q.mu, q.logvar)
	}
	d := must(G.Sub(z, q.mu))
	invDiag := must(G.Exp(must(G.Neg(q.logdiag))))
	eps := must(G.HadamardProd(d, invDiag))
	// eps_i = (d_i - sum_{j<i} L_ij eps_j) / L_ii. Each pass below redoes
	// every row of that recurrence from the previous pass's eps; as the
	// strictly lower part is nilpotent, after pass t the first t+1
	// components are final, so L-1 passes give forward substitution exactly.
	if q.lower != nil {
		for range bd.m.cfg.Latent - 1 {
			eps = must(G.HadamardProd(must(G.Sub(d, q.strictLowerTimes(eps))), invDiag))
		}
	}
	return must(G.Sub(bd.logStdNormal(eps), must(G.Sum(q.logdiag, 1))))
}

// lowerTimes is L v per row: exp(logdiag) * v + (strict lower part) v.
func (q *posterior) lowerTimes(v *G.Node) *G.Node {
	out := must(G.HadamardProd(must(G.Exp(q.logdiag)), v))
	if q.lower != nil {
		out = must(G.Add(out, q.strictLowerTimes(v)))
	}
	return out
}

// strictLowerTimes is N v per row for N the strict lower triangle of L.
// With the P = L(L-1)/2 entries p = (i, j), i > j, stored row by row
// (p = i(i-1)/2 + j), it is ((v E) * lower) R for constant 0/1 matrices E
// (L x P, E[j,p] = 1: picks v_j for entry p) and R (P x L, R[p,i] = 1: sums
// entries into their row): two matrix products, no slicing.
func (q *posterior) strictLowerTimes(v *G.Node) *G.Node {
	bd := q.bd
	L := bd.m.cfg.Latent
	P := L * (L - 1) / 2
	e, r := make([]float64, L*P), make([]float64, P*L)
	for i := 1; i < L; i++ {
		for j := range i {
			p := i*(i-1)/2 + j
			e[j*P+p] = 1
			r[p*L+i] = 1
		}
	}
	E, R := bd.constMatrix("fullcov.pick", e, L, P), bd.constMatrix("fullcov.rows", r, P, L)
	return must(G.Mul(must(G.HadamardProd(must(G.Mul(v, E)), q.lower)), R))
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

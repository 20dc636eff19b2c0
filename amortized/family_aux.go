package amortized

import (
	"fmt"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
)

// Aux is "aux:A" or "aux:A:H": an auxiliary-variable posterior (Agakov &
// Barber 2004; Maaløe et al. 2016, auxiliary deep generative models;
// Ranganath et al. 2016, hierarchical variational models). An auxiliary a
// (A wide) makes the marginal q(z|x) = ∫ q(z|a,x) q(a|x) da a continuous
// mixture of Gaussians:
//
//	q(a|x)   = N(a; m_a(x), diag e^{s_a(x)})                  heads aux.mean, aux.logvar (A)
//	q(z|a,x) = N(z; mean(x) + W_m t + c_m, diag e^{logvar(x) + W_s t + c_s}),
//	           t = act(a W_t + ctx_q(x))                      heads mean, logvar (L), aux.qctx (H)
//	r(a|z,x) = N(a; W_rm u + c_rm, diag e^{W_rs u + c_rs}),
//	           u = act(z W_u + ctx_r(x))                      head aux.rctx (H)
//
// with W_t (A×H, encoder.aux.q.hidden.weight; its bias is ctx_q's),
// W_m, W_s (H×L, encoder.aux.q.mean / .logvar with biases c_m, c_s),
// W_u (L×H, encoder.aux.r.hidden), W_rm, W_rs (H×A, encoder.aux.r.mean /
// .logvar). The bound is
//
//	E_{q(a|x) q(z|a,x)}[log p(x,z) + log r(a|z,x) - log q(a|x) - log q(z|a,x)]
//	  = ELBO(q(z|x)) - E_q(z|x)[KL(q(a|z,x) || r(a|z,x))] ≤ ELBO(q(z|x)) ≤ log p(x),
//
// tight when r(a|z,x) is the true q(a|z,x). Sample draws a and z from one
// noise row of L + A values (z's noise first) and returns log q(a,z|x) -
// log r(a|z,x) as log q, so every graph (ELBO, IWAE, log p(x)) is the
// ordinary one over the pair (a, z): importance sampling of log p(x) with
// weights p(x,z) r(a|z,x) / q(a,z|x) is consistent, since
// E_q(a,z|x)[p(x,z) r(a|z,x) / q(a,z|x)] = p(x) ∫ r(a|z,x) da = p(x). The
// IWAE bound over (a, z) is the auxiliary IWAE bound, below log p(x).
// The KL is a Monte Carlo estimate (log q - log p(z) at the sample, with
// log q as above); there is no log q(z|x) at a given z (no score estimator,
// no free bits). Point is the mean of q(z|a,x) at a = m_a(x).
const Aux = "aux"

// MaxAuxDim bounds A and H in "aux:A:H".
const MaxAuxDim = 1 << 20

// DefaultAuxHidden is the H of "aux:A": the hidden width of the small
// networks of q(z|a,x) and r(a|z,x).
func DefaultAuxHidden(latent, aux int) int { return 2 * (latent + aux) }

func init() {
	RegisterFamily(Aux, "aux:A or aux:A:H", func(args []string, c Config) (Family, error) {
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("aux takes A or A:H (A auxiliary dimensions >= 1, H hidden units >= 1)")
		}
		a, err := countArg("the auxiliary dimension A", args[0], MaxAuxDim)
		if err != nil {
			return nil, err
		}
		if c.Latent > MaxAuxDim {
			return nil, fmt.Errorf("aux: latent dimension %d is above %d", c.Latent, MaxAuxDim)
		}
		f := &auxFamily{a: a, hidden: DefaultAuxHidden(c.Latent, a)}
		if len(args) == 2 {
			if f.hidden, err = countArg("the hidden width H", args[1], MaxAuxDim); err != nil {
				return nil, err
			}
		}
		return f, nil
	})
}

type auxFamily struct {
	a, hidden int
	act       nets.Activation
	// defined by Define
	qHidden, qMean, qLogvar, rHidden, rMean, rLogvar nets.Linear
}

// String writes H even when it is the default.
func (f *auxFamily) String() string { return fmt.Sprintf("%s:%d:%d", Aux, f.a, f.hidden) }

func (f *auxFamily) NoiseWidth(c Config) int { return c.Latent + f.a }

func (f *auxFamily) Heads(c Config) []Head {
	return append(gaussHeads(c.Latent),
		Head{Name: "aux.mean", Width: f.a}, Head{Name: "aux.logvar", Width: f.a},
		Head{Name: "aux.qctx", Width: f.hidden}, Head{Name: "aux.rctx", Width: f.hidden})
}

func (f *auxFamily) Define(ps *nets.Params, c Config) error {
	L, A, H := c.Latent, f.a, f.hidden
	f.act = nets.Activation(c.Activation)
	for _, l := range []struct {
		dst     *nets.Linear
		name    string
		in, out int
	}{
		{&f.qHidden, "encoder.aux.q.hidden", A, H}, {&f.qMean, "encoder.aux.q.mean", H, L}, {&f.qLogvar, "encoder.aux.q.logvar", H, L},
		{&f.rHidden, "encoder.aux.r.hidden", L, H}, {&f.rMean, "encoder.aux.r.mean", H, A}, {&f.rLogvar, "encoder.aux.r.logvar", H, A},
	} {
		var err error
		if *l.dst, err = nets.NewLinear(ps, l.name, l.in, l.out); err != nil {
			return err
		}
	}
	return nil
}

func (f *auxFamily) Bind(b *Builder, in QInput) Posterior {
	return auxPosterior{f: f, bd: b, h: in.Heads, L: b.Config().Latent}
}

type auxPosterior struct {
	f  *auxFamily
	bd *Builder
	h  HeadValues
	L  int
}

// lin is l(x), with ctx (if any) added to the output.
func (q auxPosterior) lin(l nets.Linear, x, ctx *G.Node) *G.Node {
	y := must(l.Forward(q.bd.Binding(), x))
	if ctx != nil {
		y = must(G.Add(y, ctx))
	}
	return y
}

// hidden is act(l(x) + ctx): with ReLU one node each way (nets.AddReLU,
// the same values), where gorgonia's add and rectify are two.
func (q auxPosterior) hidden(l nets.Linear, x, ctx *G.Node) *G.Node {
	if q.f.act == nets.ReLU {
		return must(nets.AddReLU(must(l.Forward(q.bd.Binding(), x)), ctx))
	}
	return must(q.f.act.Apply(q.lin(l, x, ctx)))
}

// pair is l1(x) + c1 and l2(x) + c2 (c nil: none), with x's gradient one
// node in training graphs (a nets.HeadGroup: x feeds only these two).
func (q auxPosterior) pair(l1, l2 nets.Linear, x, c1, c2 *G.Node) (y1, y2 *G.Node) {
	hg := q.bd.headGroup(2)
	if hg == nil {
		return q.lin(l1, x, c1), q.lin(l2, x, c2)
	}
	ys := [2]*G.Node{}
	for i, l := range []nets.Linear{l1, l2} {
		ys[i] = must(l.HeadForward(q.bd.Binding(), x, *hg))
		if c := []*G.Node{c1, c2}[i]; c != nil {
			ys[i] = must(G.Add(ys[i], c))
		}
	}
	return ys[0], ys[1]
}

// zGivenA is q(z|a,x)'s mean and log-variance.
func (q auxPosterior) zGivenA(a *G.Node) (mu, lv *G.Node) {
	t := q.hidden(q.f.qHidden, a, q.h["aux.qctx"])
	return q.pair(q.f.qMean, q.f.qLogvar, t, q.h["mean"], q.h["logvar"])
}

// Sample: eps = [eps_z | eps_a]; a = m_a + e^{s_a/2} eps_a, z = mu(a) +
// e^{lv(a)/2} eps_z; log q = log q(a|x) + log q(z|a,x) - log r(a|z,x).
// The noise's columns are copies, each reparameterization and each
// log-density one node each way (nets.NoGradCols, Reparam, LogQEps,
// LogNormalAt): the values of a 0/1 product and of the Builder's
// scaledNoise, logQEps and logQOffset nodes, bit for bit.
func (q auxPosterior) Sample(eps *G.Node) (z, logq *G.Node) {
	L, A := q.L, q.f.a
	epsZ, epsA := must(nets.NoGradCols(eps, 0, L)), must(nets.NoGradCols(eps, L, L+A))
	a := must(nets.Reparam(q.h["aux.mean"], q.h["aux.logvar"], epsA))
	logQA := must(nets.LogQEps(epsA, q.h["aux.logvar"]))
	mu, lv := q.zGivenA(a)
	z = must(nets.Reparam(mu, lv, epsZ))
	logQZ := must(nets.LogQEps(epsZ, lv))
	u := q.hidden(q.f.rHidden, z, q.h["aux.rctx"])
	rm, rlv := q.pair(q.f.rMean, q.f.rLogvar, u, nil, nil)
	logR := must(nets.LogNormalAt(a, rm, rlv))
	return z, must(G.Sub(must(G.Add(logQA, logQZ)), logR))
}

// Point is q(z|a,x)'s mean at a = m_a(x).
func (q auxPosterior) Point() *G.Node {
	mu, _ := q.zGivenA(q.h["aux.mean"])
	return mu
}

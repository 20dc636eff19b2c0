package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"github.com/govae/govae/nets"
)

// MixturePrior is "mog:K": p(z) = sum_k pi_k N(z; m_k, diag(s_k^2)), a
// mixture of K diagonal Gaussians whose weights pi = softmax(logits),
// means m_k and log-scales log s_k are learned with the rest of the model
// (the learned mixture prior of TFP's VAE example). No (family, mog) pair
// has a closed-form KL: training and the ELBO use log q(z|x) - log p(z) at
// the sampled z.
//
// Parameters: prior.logits (K), prior.means (K x L), prior.logscales (K x L).
// Initialization: logits 0 (equal weights), means N(0, I) draws (spread over
// the standard normal's mass, as TFP's example), log-scales 0 (unit scales).
const MixturePrior = "mog"

// MaxPriorComponents bounds K of mog:K and vamp:K.
const MaxPriorComponents = 1 << 16

func init() {
	RegisterPrior(MixturePrior, "mog:K", func(args []string, c Config) (Prior, error) {
		if len(args) != 1 {
			return nil, fmt.Errorf("mog takes the number of components K, as mog:10")
		}
		k, err := countArg("the number of components K", args[0], MaxPriorComponents)
		if err != nil {
			return nil, err
		}
		return &mogPrior{k: k}, nil
	})
}

type mogPrior struct{ k int }

func (p *mogPrior) String() string { return fmt.Sprintf("%s:%d", MixturePrior, p.k) }

// SampleNoise: Latent normals and one uniform per row (the component).
func (p *mogPrior) SampleNoise(c Config) (normal, uniform int) { return c.Latent, 1 }

func (p *mogPrior) Define(ps *nets.Params, c Config) error {
	for _, d := range []struct {
		name  string
		shape []int
	}{{"prior.logits", []int{p.k}}, {"prior.means", []int{p.k, c.Latent}}, {"prior.logscales", []int{p.k, c.Latent}}} {
		if _, err := ps.New(d.name, 1, d.shape...); err != nil {
			return err
		}
	}
	return nil
}

// Init sets the stated initialization (New calls it after the uniform draws).
func (p *mogPrior) Init(ps *nets.Params, rng *rand.Rand) {
	ps.Get("prior.logits").Value.Zero()
	ps.Get("prior.logscales").Value.Zero()
	fill(ps.Get("prior.means"), func() float64 { return rng.NormFloat64() })
}

// fill sets every value of p from draw.
func fill(p *nets.Param, draw func() float64) {
	switch v := p.Value.Data().(type) {
	case []float32:
		for i := range v {
			v[i] = float32(draw())
		}
	case []float64:
		for i := range v {
			v[i] = draw()
		}
	}
}

func (p *mogPrior) Bind(b *Builder) BoundPrior {
	bn := b.Binding()
	lg := bn.Node("prior.logits")
	return &boundMog{b: b, k: p.k, means: bn.Node("prior.means"),
		logvar:  must(G.Mul(bn.Node("prior.logscales"), b.Scalar(2))),
		logw:    b.logSoftmax(lg),
		weights: must(G.SoftMax(must(G.Reshape(lg, []int{1, p.k})))),
	}
}

type boundMog struct {
	b             *Builder
	k             int
	means, logvar *G.Node // K x L
	logw          *G.Node // K: log pi
	weights       *G.Node // 1 x K: pi (sampling)
}

// LogP is log sum_k pi_k N(z; m_k, e^lv_k), max-shifted (logGaussMix).
func (p *boundMog) LogP(z *G.Node) *G.Node {
	return p.b.logGaussMix(z, p.means, p.logvar, p.logw, p.k)
}

// Sample picks component k by inverse CDF on the cumulative weights at the
// uniform noise, then z = m_k + s_k eps. Not differentiable in the weights
// (sampling never is here).
func (p *boundMog) Sample(n PriorNoise) *G.Node {
	cum := p.b.cumWeights(p.weights, n.Uniform.Shape()[0], p.k)
	onehot := p.b.pickComponent(n.Uniform, cum, p.k)
	mean := must(G.Mul(onehot, p.means))
	std := must(G.Exp(must(G.Mul(must(G.Mul(onehot, p.logvar)), p.b.Scalar(0.5)))))
	return must(G.Add(mean, must(G.HadamardProd(std, n.Normal))))
}

// logSoftmax is v - log sum exp v for a vector v, max-shifted.
func (bd *Builder) logSoftmax(v *G.Node) *G.Node {
	mx := must(G.Max(v))
	sh := must(G.Sub(v, mx))
	lse := must(G.Log(must(G.Sum(must(G.Exp(sh))))))
	return must(G.Sub(sh, lse))
}

// logGaussMix is log sum_k exp(logw_k) N(z_n; mu_k, diag(exp(lv_k))) per row
// of z (N x L), for component means mu and log-variances lv (K x L) and log
// weights logw (K; nil: equal weights 1/K). The quadratic form is expanded into matrix products,
//
//	sum_j (z_j - mu_kj)^2 / v_kj = z^2 . (1/v_k) - 2 z . (mu_k/v_k) + sum_j mu_kj^2/v_kj,
//
// so no N x K x L tensor is formed; the sum over k is shifted by each row's
// maximum before exponentiating (gorgonia's LogSumExp is not stable).
func (bd *Builder) logGaussMix(z, mu, lv, logw *G.Node, k int) *G.Node {
	L := z.Shape()[1]
	prec := must(G.Exp(must(G.Neg(lv)))) // 1/v, K x L
	mp := must(G.HadamardProd(mu, prec)) // mu/v
	quad := must(G.Mul(must(G.Square(z)), must(G.Transpose(prec))))
	cross := must(G.Mul(z, must(G.Transpose(mp))))
	// per component: sum_j mu^2/v + lv - 2 log w, the constant part of -2 log term
	ck := must(G.Sum(must(G.Add(must(G.HadamardProd(mp, mu)), lv)), 1))
	if logw != nil {
		ck = must(G.Sub(ck, must(G.Mul(logw, bd.Scalar(2)))))
	}
	t := must(G.Sub(quad, must(G.Mul(cross, bd.Scalar(2)))))
	t = must(G.BroadcastAdd(t, ck, nil, []byte{0}))
	// a_nk = log w_k + log N(z_n; mu_k, v_k)
	a := must(G.Mul(must(G.Add(t, bd.Scalar(float64(L)*math.Log(2*math.Pi)))), bd.Scalar(-0.5)))
	if logw == nil {
		return bd.logMeanExp(a, k)
	}
	return must(G.Add(bd.logMeanExp(a, k), bd.Scalar(math.Log(float64(k)))))
}

// cumWeights are the cumulative sums c_k of weights w (1 x K), repeated on
// n rows, with the last replaced by 2, so that rounding in the sum cannot
// leave a uniform draw with no component.
func (bd *Builder) cumWeights(w *G.Node, n, k int) *G.Node {
	tri := make([]float64, k*k) // tri[i][j] = 1 for i <= j, last column 0
	for i := range k {
		for j := i; j < k-1; j++ {
			tri[i*k+j] = 1
		}
	}
	last := make([]float64, k)
	last[k-1] = 2
	cum := must(G.Add(must(G.Mul(w, bd.Const(fmt.Sprintf("prior.tri.%d", k), tri, k, k))), bd.Const(fmt.Sprintf("prior.last.%d", k), last, 1, k)))
	return must(G.Mul(bd.Const(fmt.Sprintf("prior.ones.%dx1", n), constVec(n, 1), n, 1), cum))
}

// pickComponent is a one-hot (N x K) choice of component per row of the
// uniform noise u (N x 1) by inverse CDF on the cumulative weights cum
// (N x K, each row c_1..c_K): component k when c_{k-1} <= u < c_k.
func (bd *Builder) pickComponent(u, cum *G.Node, k int) *G.Node {
	uu := must(G.Mul(u, bd.Const(fmt.Sprintf("prior.ones.1x%d", k), constVec(k, 1), 1, k))) // N x K: u_n
	lt := must(G.Lt(uu, cum, true))                                                         // [u_n < c_k], 1 or 0
	diff := make([]float64, k*k)                                                            // onehot_k = lt_k - lt_{k-1}
	for i := range k {
		diff[i*k+i] = 1
		if i+1 < k {
			diff[i*k+i+1] = -1
		}
	}
	return must(G.Mul(lt, bd.Const(fmt.Sprintf("prior.diff.%d", k), diff, k, k)))
}

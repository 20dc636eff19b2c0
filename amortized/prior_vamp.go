package amortized

import (
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"github.com/govae/govae/nets"
)

// VampPrior is "vamp:K" (or "vamp:K:data"): the variational mixture of
// posteriors of Tomczak & Welling (2018),
//
//	p(z) = (1/K) sum_k q(z | u_k),
//
// q the model's own encoder and posterior family, u_1..u_K learned
// pseudo-inputs (K x DataDim). log p(z) runs the encoder on the K
// pseudo-inputs inside every graph that needs it, so the prior's gradient
// reaches both the pseudo-inputs and the encoder. No pair has a closed-form
// KL: training and the ELBO use log q(z|x) - log p(z) at the sampled z.
// Sampling picks k uniformly (inverse CDF at a uniform draw) and draws
// z ~ q(z|u_k) with the family's own sampler.
//
// The paper's choices, followed here: K = 500 for MNIST; the pseudo-inputs
// are u = hardtanh(W), clamped to [0, 1] like the pixels (their code: a
// bias-free linear layer on the identity, then Hardtanh(0, 1)); W drawn
// from N(mean, 0.01^2). Their code's default mean is -0.05, where every
// u is exactly 0 and hardtanh passes no gradient, so the pseudo-inputs
// would never move; we draw W from N(0.05, 0.01^2), inside the linear range
// (images of a faint uniform grey). "vamp:K:data" starts them instead at K
// training images drawn at random (their --use_training_data_init; see
// [Model.InitFromData]). The paper also uses a KL warm-up of 100 epochs and
// lr 5e-4 (flags -warmup, -lr here).
//
// Parameters: prior.pseudo (K x DataDim), the pre-clamp W.
//
// log q(z|u_k) for every (row, k): for the diag family in closed form by
// matrix products (logGaussMix, O(N K L) without an N x K x L tensor); for
// another family with log q at a given z (Invertible: fullcov), by binding
// q on the pseudo-inputs' heads tiled N times at z repeated K times, which
// costs N*K rows of that family's LogQAt. Families without it (flows) are
// refused when the configuration is parsed.
const VampPrior = "vamp"

// vampInit are the mean and standard deviation of the pseudo-inputs' draws.
const vampInitMean, vampInitStd = 0.05, 0.01

func init() {
	RegisterPrior(VampPrior, "vamp:K or vamp:K:data", func(args []string, c Config) (Prior, error) {
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("vamp takes the number of pseudo-inputs K, as vamp:500, or vamp:K:data to start them at training images")
		}
		k, err := countArg("the number of pseudo-inputs K", args[0], MaxPriorComponents)
		if err != nil {
			return nil, err
		}
		p := &vampPrior{k: k}
		if len(args) == 2 {
			if args[1] != "data" {
				return nil, fmt.Errorf("vamp:K:%s: the third part may only be \"data\" (start the pseudo-inputs at training images)", args[1])
			}
			p.data = true
		}
		f, err := parseFamily(c.Posterior, c)
		if err != nil {
			return nil, err
		}
		if !isInvertible(f) {
			return nil, fmt.Errorf("the VampPrior needs log q(z|u_k) at any z, which the %s posterior does not have (diag and fullcov do)", f)
		}
		p.noise = c.Latent
		if nw, ok := f.(NoiseWidth); ok {
			p.noise = nw.NoiseWidth(c)
		}
		return p, nil
	})
}

type vampPrior struct {
	k     int
	data  bool // start at training images (Model.InitFromData)
	noise int  // the family's noise per sample
}

func (p *vampPrior) String() string {
	if p.data {
		return fmt.Sprintf("%s:%d:data", VampPrior, p.k)
	}
	return fmt.Sprintf("%s:%d", VampPrior, p.k)
}

// SampleNoise: the family's normal noise and one uniform (the pseudo-input).
func (p *vampPrior) SampleNoise(c Config) (normal, uniform int) { return p.noise, 1 }

func (p *vampPrior) Define(ps *nets.Params, c Config) error {
	_, err := ps.New("prior.pseudo", 1, p.k, c.DataDim)
	return err
}

// Init draws W from N(0.05, 0.01^2) (see the type's doc).
func (p *vampPrior) Init(ps *nets.Params, rng *rand.Rand) { initPseudo(ps, rng) }

// initPseudo draws the pre-clamp pseudo-inputs prior.pseudo from
// N(vampInitMean, vampInitStd^2).
func initPseudo(ps *nets.Params, rng *rand.Rand) {
	fill(ps.Get("prior.pseudo"), func() float64 { return vampInitMean + vampInitStd*rng.NormFloat64() })
}

// WantsData says the pseudo-inputs start at training images.
func (p *vampPrior) WantsData() bool { return p.data }

// InitFromData sets the pseudo-inputs to K rows of x drawn without
// replacement (with replacement when x has fewer than K rows).
func (p *vampPrior) InitFromData(ps *nets.Params, x [][]float32, rng *rand.Rand) error {
	w := ps.Get("prior.pseudo")
	D := w.Shape[1]
	if len(x) == 0 {
		return fmt.Errorf("no images to start the %d pseudo-inputs at", p.k)
	}
	var pick []int
	if len(x) >= p.k {
		pick = rng.Perm(len(x))[:p.k]
	} else {
		for range p.k {
			pick = append(pick, rng.IntN(len(x)))
		}
	}
	for i, r := range pick {
		if len(x[r]) != D {
			return fmt.Errorf("image %d has %d values, want %d", r, len(x[r]), D)
		}
		switch v := w.Value.Data().(type) {
		case []float32:
			copy(v[i*D:(i+1)*D], x[r])
		case []float64:
			for j, f := range x[r] {
				v[i*D+j] = float64(f)
			}
		}
	}
	return nil
}

func (p *vampPrior) Bind(b *Builder) BoundPrior {
	return &boundVamp{b: b, k: p.k, heads: b.Encode(pseudoInputs(b))}
}

// pseudoInputs are the pseudo-inputs u = hardtanh(W) of the graph's
// prior.pseudo, clamped to [0, 1] as relu(W) - relu(W - 1).
func pseudoInputs(b *Builder) *G.Node {
	w := b.Binding().Node("prior.pseudo")
	return must(G.Sub(must(G.Rectify(w)), must(G.Rectify(must(G.Sub(w, b.Scalar(1)))))))
}

type boundVamp struct {
	b     *Builder
	k     int
	heads HeadValues // the encoder at the pseudo-inputs, K rows
}

// LogP is log (1/K) sum_k q(z|u_k) per row of z, max-shifted.
func (p *boundVamp) LogP(z *G.Node) *G.Node {
	b := p.b
	q := b.Family().Bind(b, QInput{Heads: p.heads})
	if d, ok := q.(diagPosterior); ok {
		return b.logGaussMix(z, d.mu, d.logvar, nil, p.k)
	}
	return p.logPTiled(z)
}

// logPTiled is LogP for any Invertible family: N*K rows, row n*K + k
// pairs z_n with u_k.
func (p *boundVamp) logPTiled(z *G.Node) *G.Node {
	b := p.b
	n, k := z.Shape()[0], p.k
	zs := make([]*G.Node, k)
	for i := range zs {
		zs[i] = z
	}
	zrep := must(G.Reshape(must(G.Concat(1, zs...)), []int{n * k, z.Shape()[1]}))
	tiled := HeadValues{}
	for _, h := range b.Family().Heads(b.Config()) {
		hs := make([]*G.Node, n)
		for i := range hs {
			hs[i] = p.heads[h.Name]
		}
		tiled[h.Name] = must(G.Concat(0, hs...))
	}
	inv, ok := b.Family().Bind(b, QInput{Heads: tiled}).(Invertible)
	if !ok {
		b.Fail(errNotInvertible(b.Family()))
	}
	lq := must(G.Reshape(inv.LogQAt(zrep), []int{n, k}))
	return b.logMeanExp(lq, k)
}

// Sample picks u_k at the uniform noise (equal weights) and draws
// z ~ q(z|u_k) from the normal noise.
func (p *boundVamp) Sample(n PriorNoise) *G.Node {
	b := p.b
	onehot := b.pickUniform(n.Uniform, p.k)
	picked := HeadValues{}
	for name, h := range p.heads {
		picked[name] = must(G.Mul(onehot, h))
	}
	z, _ := b.Family().Bind(b, QInput{Heads: picked}).Sample(n.Normal)
	return z
}

// pickUniform is a one-hot (N x K) choice of one of K equally likely
// components per row of the uniform noise u (N x 1).
func (bd *Builder) pickUniform(u *G.Node, k int) *G.Node {
	rows := u.Shape()[0]
	cum := make([]float64, rows*k) // c_k = (k+1)/K, the last 2 (see cumWeights)
	for i := range rows {
		for j := range k {
			cum[i*k+j] = float64(j+1) / float64(k)
		}
		cum[i*k+k-1] = 2
	}
	return bd.pickComponent(u, bd.Const(fmt.Sprintf("prior.vamp.cum.%dx%d", rows, k), cum, rows, k), k)
}

func constVec(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// DataInitializer is implemented by a prior whose parameters can start at
// training data ("vamp:K:data").
type DataInitializer interface {
	WantsData() bool
	InitFromData(ps *nets.Params, x [][]float32, rng *rand.Rand) error
}

// WantsData reports whether the model's prior asks to start from training
// data ([Model.InitFromData]); a trainer calls that on a new model.
func (m *Model) WantsData() bool {
	d, ok := m.prior.(DataInitializer)
	return ok && d.WantsData()
}

// InitFromData starts the prior's parameters at training images x (rows of
// DataDim values in the model's input range), with draws from seed; it does
// nothing for a prior that does not ask for it (WantsData false).
func (m *Model) InitFromData(x [][]float32, seed uint64) error {
	if !m.WantsData() {
		return nil
	}
	if _, err := m.checkData(x); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.prior.(DataInitializer).InitFromData(m.params, x, rand.New(rand.NewPCG(seed, streamPartInit+1)))
}

package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TwoLayer is the two-stochastic-layer model of Burda et al. (2015, sec. 5),
// a posterior family and a prior that come as a pair:
//
//	q(z1, z2 | x) = q(z1|x) q(z2|z1)       posterior "twolayer:L2:W,W..."
//	p(x, z1, z2)  = p(x|z1) p(z1|z2) p(z2)  prior "twolayer:W,W..."
//
// with z = [z1, z2] (Config.Latent = L1 + L2 columns, z1 first), every
// conditional a diagonal Gaussian N(mu, diag(exp(logvar))) whose parameters
// an MLP computes, and p(z2) = N(0, I). q(z1|x) is the trunk's encoder
// (heads "mean", "logvar" of width L1); q(z2|z1) is the family's own MLP
// (params "encoder.z2.*", hidden widths W of the posterior string, z1 side
// first); p(z1|z2) is the prior's MLP (params "prior.z1.*", hidden widths of
// the prior string, z2 side first); p(x|z1) is the trunk's decoder, which
// reads z1 only (the prior's DecoderView).
//
// Why a family and a prior rather than a new model kind: z stays one
// vector, so every tool works unchanged: Encode returns [E q(z1|x),
// E q(z2|E q(z1|x))], Sample draws z2 ~ N(0, I), z1 ~ p(z1|z2) and decodes
// z1, Decode reads z1 of a given z, log p(x) weights by
// p(x|z1) p(z1|z2) p(z2) / (q(z1|x) q(z2|z1)), and IWAE, the score
// estimator (log q at a given z is closed form), imputation and local
// optimization go through the shared terms. The KL has no closed form:
// ELBO and training use log q(z|x) - log p(z) at the sample.
//
// The paper's architecture, 784-100-100-[100]-50-50-[50] with tanh in both
// directions, is Config{Hidden: [100, 100], Latent: 150, Activation: tanh,
// Posterior: "twolayer:50:50,50", Prior: "twolayer:50,50"};
// [TwoLayerConfig] builds it from the layer sizes. cmd/train spells it
// -latent 100,50 (a comma separates layers: each layer's size is needed, which
// a -layers N flag would not give), with -latent-hidden for q(z2|z1)'s widths.
//
// The top prior p(z2) is N(0, I), or with prior "twolayer:W,W...:vamp:K"
// a VampPrior (Tomczak & Welling 2018, sec. 3.2) on z2 with K learned
// pseudo-inputs u_k (initialized as vamp:K's):
//
//	p(z2) = (1/K) sum_k q(z2 | z1 = E q(z1|u_k)),
//
// the top posterior at the mean of the bottom one. Their HVAE infers z2
// from x directly, so its components are exactly q(z2|u_k); here
// q(z2|x) = ∫ q(z2|z1) q(z1|x) dz1 has no closed form, and the mean of
// q(z1|u_k) stands in for the integral. p(z2) stays a normalized mixture of
// diagonal Gaussians, so every bound and log p(x) estimate is exact for
// this model; only the prior differs from theirs.
//
// Not built: top-down inference (the Ladder VAE of Sønderby et al. 2016,
// q(z1|x, z2) sharing p(z1|z2)'s network), other learned p(z2), and more
// than two layers.
const TwoLayer = "twolayer"

func init() {
	RegisterFamily(TwoLayer, "twolayer:L2:W,W... (with prior twolayer)", parseTwoLayerFamily)
	RegisterPrior(TwoLayer, "twolayer or twolayer:W,W... (with posterior twolayer)", parseTwoLayerPrior)
}

// TwoLayerConfig returns c made into a two-stochastic-layer model with
// latent sizes l1 (z1, next to x) and l2 (z2, the top), the hidden widths
// up of q(z2|z1) (z1 side first) and their mirror image for p(z1|z2).
func TwoLayerConfig(c Config, l1, l2 int, up []int) Config {
	c.Latent = l1 + l2
	c.Posterior = TwoLayer + ":" + strconv.Itoa(l2) + ":" + joinInts(up)
	down := make([]int, len(up))
	for i, w := range up {
		down[len(up)-1-i] = w
	}
	c.Prior = TwoLayer + ":" + joinInts(down)
	return c
}

// LatentLayers are the widths of the model's stochastic layers as they sit
// in z, x side first: [L1, L2] for a two-layer model, [Latent] otherwise.
func (m *Model) LatentLayers() []int { return m.cfg.LatentLayers() }

// LatentLayers is [L1, L2] when c's posterior is "twolayer:L2:..." with
// 1 <= L2 < Latent, else [Latent] (c need not be normalized).
func (c Config) LatentLayers() []int {
	if name, args := SplitPart(c.Posterior); name == TwoLayer && len(args) > 0 {
		if l2, err := strconv.Atoi(args[0]); err == nil && l2 >= 1 && l2 < c.Latent {
			return []int{c.Latent - l2, l2}
		}
	}
	return []int{c.Latent}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, w := range v {
		s[i] = strconv.Itoa(w)
	}
	return strings.Join(s, ",")
}

// parseWidths parses "W,W,..." (hidden widths, each >= 1; "" is none).
func parseWidths(what, v string) ([]int, error) {
	if v == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		w, err := countArg(what, f, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func parseTwoLayerFamily(args []string, c Config) (Family, error) {
	if len(args) < 1 || len(args) > 2 {
		return nil, fmt.Errorf("twolayer takes L2 or L2:W,W... (L2 the top layer's size, W the hidden widths of q(z2|z1))")
	}
	if c.Latent < 2 {
		return nil, fmt.Errorf("twolayer needs latent >= 2 (L1 + L2), have %d", c.Latent)
	}
	l2, err := countArg("the top layer's size L2", args[0], c.Latent-1)
	if err != nil {
		return nil, fmt.Errorf("%w (latent %d = L1 + L2, L1 >= 1)", err, c.Latent)
	}
	f := &twoLayerFamily{l2: l2}
	if len(args) == 2 {
		if f.hidden, err = parseWidths("the hidden width W of q(z2|z1)", args[1]); err != nil {
			return nil, err
		}
	}
	if name, _ := SplitPart(c.Prior); name != TwoLayer {
		return nil, fmt.Errorf("posterior twolayer needs prior twolayer (p(z2) p(z1|z2)), have prior %q", orNormal(c.Prior))
	}
	return f, nil
}

func orNormal(prior string) string {
	if prior == "" {
		return StandardNormal
	}
	return prior
}

// parseTwoLayerPrior reads the layer sizes from the posterior (parsed
// before the prior); without widths, p(z1|z2) mirrors q(z2|z1).
func parseTwoLayerPrior(args []string, c Config) (Prior, error) {
	name, fargs := SplitPart(c.Posterior)
	if name != TwoLayer {
		return nil, fmt.Errorf("prior twolayer needs posterior twolayer:L2:W,... (q(z1|x) q(z2|z1)), have posterior %q", c.Posterior)
	}
	f, err := parseTwoLayerFamily(fargs, Config{Latent: c.Latent, Prior: TwoLayer})
	if err != nil {
		return nil, err
	}
	fam := f.(*twoLayerFamily)
	p := &twoLayerPrior{l2: fam.l2}
	switch len(args) {
	case 0:
		for i := len(fam.hidden) - 1; i >= 0; i-- {
			p.hidden = append(p.hidden, fam.hidden[i])
		}
	case 1, 3:
		if p.hidden, err = parseWidths("the hidden width W of p(z1|z2)", args[0]); err != nil {
			return nil, err
		}
		if len(args) == 3 {
			if args[1] != VampPrior {
				return nil, fmt.Errorf("twolayer:W,W...:%s:%s: the top prior may only be vamp:K", args[1], args[2])
			}
			if p.vamp, err = countArg("the number of pseudo-inputs K of p(z2)", args[2], MaxPriorComponents); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("twolayer prior takes nothing or W,W... (the hidden widths of p(z1|z2), z2 side first), " +
			"optionally followed by :vamp:K (a VampPrior p(z2) of K pseudo-inputs)")
	}
	return p, nil
}

// twoLayerFamily is q(z1|x) q(z2|z1).
type twoLayerFamily struct {
	l2     int
	hidden []int
	net    *mlpNet // q(z2|z1), defined by Define
}

// String always writes the widths, so that a stored configuration does not
// depend on a default.
func (f *twoLayerFamily) String() string {
	return TwoLayer + ":" + strconv.Itoa(f.l2) + ":" + joinInts(f.hidden)
}

// Heads are q(z1|x)'s.
func (f *twoLayerFamily) Heads(c Config) []Head { return gaussHeads(c.Latent - f.l2) }
func (f *twoLayerFamily) Invertible() bool      { return true }

func (f *twoLayerFamily) Define(ps *nets.Params, c Config) error {
	var err error
	f.net, err = newMLPNet(ps, "encoder.z2", c.Latent-f.l2, f.hidden, nets.Activation(c.Activation), gaussHeads(f.l2))
	return err
}

func (f *twoLayerFamily) Bind(b *Builder, in QInput) Posterior {
	if f.net == nil {
		b.Fail(fmt.Errorf("twolayer: family bound before Define"))
	}
	return &twoLayerPosterior{f: f, b: b, q1: newDiagGauss(b, in), l1: b.Config().Latent - f.l2}
}

type twoLayerPosterior struct {
	f  *twoLayerFamily
	b  *Builder
	q1 diagGauss
	l1 int
}

// q2 is q(z2|z1) at rows z1.
func (q *twoLayerPosterior) q2(z1 *G.Node) diagGauss {
	h := q.f.net.Forward(q.b, z1, false)
	return diagGauss{bd: q.b, mu: h["mean"], logvar: h["logvar"]}
}

// Sample is z1 = mu1(x) + s1(x) eps1, z2 = mu2(z1) + s2(z1) eps2 with
// log q = log q(z1|x) + log q(z2|z1).
func (q *twoLayerPosterior) Sample(eps *G.Node) (z, logq *G.Node) {
	B, L := eps.Shape()[0], eps.Shape()[1]
	z1, lq1 := q.q1.sample(cols(eps, 0, q.l1, B))
	z2, lq2 := q.q2(z1).sample(cols(eps, q.l1, L, B))
	return must(G.Concat(1, z1, z2)), must(G.Add(lq1, lq2))
}

// Point is [mu1(x), mu2(mu1(x))]: the means of the layers, each at the
// point summary of the layer below.
func (q *twoLayerPosterior) Point() *G.Node {
	return must(G.Concat(1, q.q1.mu, q.q2(q.q1.mu).mu))
}

// LogQAt is log q(z1|x) + log q(z2|z1) at a given z.
func (q *twoLayerPosterior) LogQAt(z *G.Node) *G.Node {
	B, L := z.Shape()[0], z.Shape()[1]
	z1, z2 := cols(z, 0, q.l1, B), cols(z, q.l1, L, B)
	q2 := q.q2(z1)
	lq1 := q.b.logQOffset(must(G.Sub(z1, q.q1.mu)), q.q1.logvar)
	lq2 := q.b.logQOffset(must(G.Sub(z2, q2.mu)), q2.logvar)
	return must(G.Add(lq1, lq2))
}

// twoLayerPrior is p(z2) p(z1|z2), p(z2) = N(0, I) or, with vamp > 0, the
// VampPrior on z2 (see the package's TwoLayer doc).
type twoLayerPrior struct {
	l2     int
	hidden []int
	vamp   int     // pseudo-inputs of p(z2); 0: p(z2) = N(0, I)
	net    *mlpNet // p(z1|z2), defined by Define
}

func (p *twoLayerPrior) String() string {
	s := TwoLayer + ":" + joinInts(p.hidden)
	if p.vamp > 0 {
		s += fmt.Sprintf(":%s:%d", VampPrior, p.vamp)
	}
	return s
}

func (p *twoLayerPrior) Define(ps *nets.Params, c Config) error {
	var err error
	if p.net, err = newMLPNet(ps, "prior.z1", p.l2, p.hidden, nets.Activation(c.Activation), gaussHeads(c.Latent-p.l2)); err != nil {
		return err
	}
	if p.vamp > 0 {
		_, err = ps.New("prior.pseudo", 1, p.vamp, c.DataDim)
	}
	return err
}

// Init starts the pseudo-inputs of a VampPrior p(z2) as vampPrior.Init
// does; without one it draws nothing.
func (p *twoLayerPrior) Init(ps *nets.Params, rng *rand.Rand) {
	if p.vamp > 0 {
		initPseudo(ps, rng)
	}
}

// SampleNoise: Latent normals, and a uniform (the pseudo-input) with a VampPrior p(z2).
func (p *twoLayerPrior) SampleNoise(c Config) (normal, uniform int) {
	if p.vamp > 0 {
		return c.Latent, 1
	}
	return c.Latent, 0
}

// DecoderWidth and DecoderInput: p(x|z1) reads z1, the first L1 columns.
func (p *twoLayerPrior) DecoderWidth(c Config) int { return c.Latent - p.l2 }
func (p *twoLayerPrior) DecoderInput(b *Builder, z *G.Node) *G.Node {
	return cols(z, 0, b.Config().Latent-p.l2, z.Shape()[0])
}

func (p *twoLayerPrior) Bind(b *Builder) BoundPrior {
	if p.net == nil {
		b.Fail(fmt.Errorf("twolayer: prior bound before Define"))
	}
	bp := &boundTwoLayerPrior{p: p, b: b, l1: b.Config().Latent - p.l2}
	if p.vamp > 0 {
		f, ok := b.Family().(*twoLayerFamily)
		if !ok || f.net == nil {
			b.Fail(fmt.Errorf("twolayer: a VampPrior p(z2) needs the twolayer posterior, defined"))
		}
		// component k: q(z2 | z1 = E q(z1|u_k))
		h := f.net.Forward(b, b.Encode(pseudoInputs(b))["mean"], false)
		bp.top = &diagGauss{bd: b, mu: h["mean"], logvar: h["logvar"]}
	}
	return bp
}

type boundTwoLayerPrior struct {
	p   *twoLayerPrior
	b   *Builder
	l1  int
	top *diagGauss // the VampPrior's components of p(z2), K rows; nil: N(0, I)
}

// logTop is log p(z2) per row.
func (bp *boundTwoLayerPrior) logTop(z2 *G.Node) *G.Node {
	if bp.top == nil {
		return bp.b.LogStdNormal(z2)
	}
	return bp.b.logGaussMix(z2, bp.top.mu, bp.top.logvar, nil, bp.p.vamp)
}

// cond is p(z1|z2) at rows z2.
func (bp *boundTwoLayerPrior) cond(z2 *G.Node) diagGauss {
	h := bp.p.net.Forward(bp.b, z2, false)
	return diagGauss{bd: bp.b, mu: h["mean"], logvar: h["logvar"]}
}

// LogP is log N(z2; 0, I) + log N(z1; mu(z2), exp(logvar(z2))).
func (bp *boundTwoLayerPrior) LogP(z *G.Node) *G.Node {
	B, L := z.Shape()[0], z.Shape()[1]
	z1, z2 := cols(z, 0, bp.l1, B), cols(z, bp.l1, L, B)
	c := bp.cond(z2)
	return must(G.Add(bp.logTop(z2), bp.b.logQOffset(must(G.Sub(z1, c.mu)), c.logvar)))
}

// Sample is z2 = n2 (with a VampPrior p(z2): z2 ~ its component picked by
// the uniform noise, from n2), z1 = mu(z2) + exp(logvar(z2)/2) n1 for
// standard normal noise n = [n1, n2].
func (bp *boundTwoLayerPrior) Sample(n PriorNoise) *G.Node {
	B, L := n.Normal.Shape()[0], n.Normal.Shape()[1]
	z2 := cols(n.Normal, bp.l1, L, B)
	if bp.top != nil {
		onehot := bp.b.pickUniform(n.Uniform, bp.p.vamp)
		picked := diagGauss{bd: bp.b, mu: must(G.Mul(onehot, bp.top.mu)), logvar: must(G.Mul(onehot, bp.top.logvar))}
		z2, _ = picked.sample(z2)
	}
	z1, _ := bp.cond(z2).sample(cols(n.Normal, 0, bp.l1, B))
	return must(G.Concat(1, z1, z2))
}

// cols is columns [from, to) of the (B, ·) matrix x as a (B, to-from)
// matrix (gorgonia's slice drops a dimension of width 1; put it back).
func cols(x *G.Node, from, to, B int) *G.Node {
	y := must(G.Slice(x, nil, G.S(from, to)))
	if to-from == 1 || B == 1 {
		y = must(G.Reshape(y, tensor.Shape{B, to - from}))
	}
	return y
}

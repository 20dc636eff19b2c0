package flows

import (
	"fmt"
	"slices"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// IAFForgetBias is the constant added to the gate pre-activation s of an
// [IAF] step, so that σ = sigmoid(s + 2) ≈ 0.88 while s ≈ 0 at
// initialization: every step starts close to the identity (out ≈ 0.88 z +
// 0.12 m). Kingma et al. (2016) recommend starting s sufficiently positive
// (around +1 or +2) so that each step initially changes z only slightly; a
// constant offset does that for any initialization of the weights. 2 is
// also Pyro's default sigmoid_bias for its stable affine autoregressive
// transform. A stack of K steps still starts by shrinking z by about
// 0.88^K (0.02 for K = 32); for deep stacks, also initialize the MADE's s
// biases above 0 (experiments/flows2d.go adds 2).
const IAFForgetBias = 2.0

// IAF is one inverse-autoregressive-flow step (Kingma et al. 2016) on a MADE with optional context.
//
// With z of width D taken in the step's variable order (0, 1, ..., D-1, or
// its reverse), a MADE (Germain et al. 2015) with 2 outputs per input gives
// [m, s] = MADE(z, h), where m_j and s_j depend only on the inputs before j
// in the order and on the context h (the encoder's output in a VAE). The
// step computes (the numerically stable form of Kingma et al. 2016,
// Algorithm 1)
//
//	σ = sigmoid(s + IAFForgetBias)
//	f(z) = σ ⊙ z + (1 - σ) ⊙ m
//	log|det df/dz| = Σ_j log σ_j
//
// The Jacobian is triangular in the order with diagonal σ, so f is
// invertible because σ ∈ (0, 1) for any weights: z_j can be recovered one
// variable at a time as (f_j - (1-σ_j) m_j)/σ_j. That inverse costs D
// sequential MADE passes and this package does not offer it: sampling and
// density evaluation of samples (what a VAE encoder needs) use Forward only.
//
// With a = s + IAFForgetBias, log σ is computed as -softplus(-a), never
// log(sigmoid(a)), so it stays finite and accurate when the gate saturates;
// σ is exp of that (so out and logDet agree to rounding) and 1 - σ is
// sigmoid(-a), which has no cancellation when σ is near 1. Gorgonia's
// softplus returns x above 16 (float64; 14 in float32), so where σ < e^-16
// the log σ is off by less than e^-16 absolute.
//
// The context enters through an unmasked linear map from h added to the
// first MADE layer's pre-activation (before its activation); it depends on
// no z, so the autoregressive structure is untouched. With no hidden layers
// the first layer is the output layer and the context map is added to
// [m, s] directly.
type IAF struct {
	made    nets.MADE
	ctx     nets.Linear // unused when context == 0
	dim     int
	context int
}

// NewIAF registers the step's parameters in ps under name (name+".made.N.weight" etc.): a MADE over dim
// inputs with the given hidden widths, plus, when context > 0, an unmasked linear map from the context h
// (width context) added to the first hidden layer's pre-activation. reverse reverses the variable order.
//
// The context map's parameters are name+".context.weight", shape
// (context, width of the first MADE layer's output), and name+".context.bias";
// the MADE's are name+".made.0.weight", ..., as [nets.NewMADE] names them.
// Every parameter starts at zero: initialize them (e.g. [nets.Params.InitUniform])
// before training.
func NewIAF(ps *nets.Params, name string, dim int, hidden []int, context int, act nets.Activation, reverse bool) (IAF, error) {
	switch {
	case ps == nil:
		return IAF{}, fmt.Errorf("flows: IAF %q: nil parameter store", name)
	case dim <= 0:
		return IAF{}, fmt.Errorf("flows: IAF %q: dimension %d, want > 0", name, dim)
	case context < 0:
		return IAF{}, fmt.Errorf("flows: IAF %q: context width %d, want ≥ 0 (0 for none)", name, context)
	}
	for k, h := range hidden {
		if h <= 0 {
			return IAF{}, fmt.Errorf("flows: IAF %q: hidden layer %d has width %d, want > 0", name, k, h)
		}
	}
	if _, err := nets.ParseActivation(string(act)); err != nil {
		return IAF{}, fmt.Errorf("flows: IAF %q: %w", name, err)
	}
	made, err := nets.NewMADE(ps, name+".made", dim, hidden, 2, act, reverse)
	if err != nil {
		return IAF{}, fmt.Errorf("flows: IAF %q: %w", name, err)
	}
	f := IAF{made: made, dim: dim, context: context}
	if context > 0 {
		if f.ctx, err = nets.NewLinear(ps, name+".context", context, made.Layers[0].Out); err != nil {
			return IAF{}, fmt.Errorf("flows: IAF %q: %w", name, err)
		}
	}
	return f, nil
}

// Dim is the width D of the variables the step transforms.
func (f IAF) Dim() int { return f.dim }

// Context is the width of the context h, 0 for none.
func (f IAF) Context() int { return f.context }

// Order lists the variable indices from first to last in the step's
// autoregressive order: output j depends on z_i only for i at or before j.
func (f IAF) Order() []int { return slices.Clone(f.made.Order) }

// MADE is the step's masked network (its layers and masks), for callers
// that need the weights' layout, such as reference implementations in tests.
func (f IAF) MADE() nets.MADE { return f.made }

// Bind returns the step as a Flow in b's graph with context h of shape (B, context), or nil when context == 0.
// Forward: [m, s] = MADE(z, h); sigma = sigmoid(s + forgetBias); out = sigma*z + (1-sigma)*m; logDet = sum_j log sigma_j.
//
// Shape and dtype mistakes (h of the wrong width or batch, h given to a
// step without context, z of the wrong width) are reported by Forward.
func (f IAF) Bind(b *nets.Binding, h *G.Node) Flow { return boundIAF{f: f, b: b, h: h} }

type boundIAF struct {
	f IAF
	b *nets.Binding
	h *G.Node
}

// Forward implements [Flow].
func (bf boundIAF) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	f := bf.f
	name := f.made.Layers[0].Name // name.made.0, for errors
	if bf.b == nil {
		return nil, nil, fmt.Errorf("flows: IAF %s: nil binding", name)
	}
	if z == nil || z.Shape().Dims() != 2 || z.Shape()[1] != f.dim {
		return nil, nil, fmt.Errorf("flows: IAF z has shape %v, want (B, %d)", shapeOf(z), f.dim)
	}
	if z.Dtype() != bf.b.Dtype() {
		return nil, nil, fmt.Errorf("flows: IAF z has dtype %v, the parameters %v", z.Dtype(), bf.b.Dtype())
	}
	if z.Graph() != bf.b.Graph() {
		return nil, nil, fmt.Errorf("flows: IAF z is not in the binding's graph")
	}
	B := z.Shape()[0]
	switch {
	case f.context == 0 && bf.h != nil:
		return nil, nil, fmt.Errorf("flows: IAF context h given (shape %v) to a step built without context", bf.h.Shape())
	case f.context > 0:
		if err := checkParam("IAF context h", bf.h, B, f.context); err != nil {
			return nil, nil, err
		}
		if bf.h.Dtype() != z.Dtype() {
			return nil, nil, fmt.Errorf("flows: IAF context h has dtype %v, z %v", bf.h.Dtype(), z.Dtype())
		}
	}
	defer catch(&err, "IAF")
	dt := z.Dtype()

	// The MADE, layer by layer, with the context added to the first
	// layer's pre-activation.
	x := z
	last := len(f.made.Layers) - 1
	for k, l := range f.made.Layers {
		x = must(l.Forward(bf.b, x))
		if k == 0 && f.context > 0 {
			x = must(G.Add(x, must(f.ctx.Forward(bf.b, bf.h))))
		}
		if k < last {
			x = must(f.made.Act.Apply(x))
		}
	}
	// Output j corresponds to input j mod D: m is columns [0, D), s [D, 2D).
	D := f.dim
	m := cols(x, 0, D, B)
	s := cols(x, D, 2*D, B)

	a := must(G.Add(s, scalar(dt, IAFForgetBias)))
	negA := must(G.Neg(a))
	logSigma := must(G.Neg(must(G.Softplus(negA))))
	// σ = exp(log σ), not sigmoid(a): gorgonia's sigmoid returns exactly 1
	// above 19 (15 in float32), which would make out disagree with logDet
	// by up to e^-19 per variable.
	sigma := must(G.Exp(logSigma))
	oneMinus := must(G.Sigmoid(negA)) // 1 - σ without cancellation
	out = must(G.Add(must(G.HadamardProd(sigma, z)), must(G.HadamardProd(oneMinus, m))))
	logDet = must(G.Sum(logSigma, 1))
	return out, logDet, nil
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

package flows

import (
	"fmt"
	"math"

	"github.com/govae/govae/internal/kernels/simd"
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
	if err := bf.check(z); err != nil {
		return nil, nil, err
	}
	f := bf.f
	defer catch(&err, "IAF")

	if bf.fusable() {
		return forwardIAFChain([]boundIAF{bf}, z)
	}
	// The MADE, layer by layer, with the context added to the first
	// layer's pre-activation.
	x := z
	last := len(f.made.Layers) - 1
	for k, l := range f.made.Layers {
		x = must(l.Forward(bf.b, x))
		switch {
		case k == 0 && f.context > 0 && k < last && f.made.Act == nets.ReLU:
			x = must(nets.AddReLU(x, must(f.ctx.Forward(bf.b, bf.h)))) // one node each way
			continue
		case k == 0 && f.context > 0:
			x = must(G.Add(x, must(f.ctx.Forward(bf.b, bf.h))))
		}
		if k < last {
			x = must(f.made.Act.Apply(x))
		}
	}
	// Output j corresponds to input j mod D: m is columns [0, D), s [D, 2D);
	// the gate is one fused node forward and one backward (iafGate).
	packed, err := applyRowMap(iafGate{D: f.dim, f32: z.Dtype() == tensor.Float32}, x, z)
	if err != nil {
		return nil, nil, fmt.Errorf("flows: IAF: %w", err)
	}
	return splitGate(packed, f.dim)
}

// splitGate splits the gate's packed (B, D+1) output into f(z) and log|det|.
func splitGate(packed *G.Node, D int) (out, logDet *G.Node, err error) {
	if out, err = split(packed, 0, D, D+1, false); err != nil {
		return nil, nil, err
	}
	if logDet, err = split(packed, D, D+1, D+1, true); err != nil {
		return nil, nil, err
	}
	return out, logDet, nil
}

// check reports what is wrong with z (and the step's binding and context)
// as Forward's input.
func (bf boundIAF) check(z *G.Node) error {
	f := bf.f
	name := f.made.Layers[0].Name // name.made.0, for errors
	if bf.b == nil {
		return fmt.Errorf("flows: IAF %s: nil binding", name)
	}
	if z == nil || z.Shape().Dims() != 2 || z.Shape()[1] != f.dim {
		return fmt.Errorf("flows: IAF z has shape %v, want (B, %d)", shapeOf(z), f.dim)
	}
	if z.Dtype() != bf.b.Dtype() {
		return fmt.Errorf("flows: IAF z has dtype %v, the parameters %v", z.Dtype(), bf.b.Dtype())
	}
	if z.Graph() != bf.b.Graph() {
		return fmt.Errorf("flows: IAF z is not in the binding's graph")
	}
	B := z.Shape()[0]
	switch {
	case f.context == 0 && bf.h != nil:
		return fmt.Errorf("flows: IAF context h given (shape %v) to a step built without context", bf.h.Shape())
	case f.context > 0:
		if err := checkParam("IAF context h", bf.h, B, f.context); err != nil {
			return err
		}
		if bf.h.Dtype() != z.Dtype() {
			return fmt.Errorf("flows: IAF context h has dtype %v, z %v", bf.h.Dtype(), z.Dtype())
		}
	}
	return nil
}

// fusable reports whether the step is one the fused chain op computes
// (iafChainOp): one ReLU hidden layer and a context.
func (bf boundIAF) fusable() bool {
	f := bf.f
	return fuseIAFStep && len(f.made.Layers) == 2 && f.context > 0 && f.made.Act == nets.ReLU && bf.b != nil
}

// params are the step's parameter nodes in iafChainOp's order: w0, b0, wc,
// bc, w1, b1.
func (bf boundIAF) params() []*G.Node {
	f, b := bf.f, bf.b
	l0, l1 := f.made.Layers[0], f.made.Layers[1]
	return []*G.Node{b.Node(l0.WeightName()), b.Node(l0.BiasName()), b.Node(f.ctx.WeightName()),
		b.Node(f.ctx.BiasName()), b.Node(l1.WeightName()), b.Node(l1.BiasName())}
}

// iafGate is an IAF step's update for one row, from the MADE's output
// x = [m, s] (width 2D) and z (width D), to [f(z), log|det|]:
//
//	a = s + IAFForgetBias,  log σ = -softplus(-a),  σ = exp(log σ),
//	1 - σ = sigmoid(-a),  f(z) = σ z + (1 - σ) m,  log|det| = Σ_j log σ_j.
//
// In float64 the forward pass rounds as gorgonia's node-by-node gate did.
// In float32 it takes one float32 exponential and log1p per element
// (simd's, within a few ulps of float64's rounded) where a float64
// exponential and log1p and a math32 exponential pinned it to gorgonia's
// rounding: the gate's CPU time fell by about 40%. It leaves σ, 1 - σ and
// d log σ/da in its work for the backward pass (a resumer), which then needs
// no transcendental function: recomputing them in float64 was half of an
// IAF step's cost beyond diag's. The backward pass is in float64, of the
// function forward computes; in float32 it uses forward's σ and 1 - σ.
type iafGate struct {
	D   int
	f32 bool
}

func (g iafGate) String() string  { return fmt.Sprintf("iafGate(%d,f32=%t)", g.D, g.f32) }
func (g iafGate) inWidths() []int { return []int{2 * g.D, g.D} }
func (g iafGate) outWidth() int   { return g.D + 1 }
func (g iafGate) workSize() int   { return 3 * g.D } // σ, 1 - σ, d log σ/da

func (g iafGate) forward(in [][]float64, out, work []float64) error {
	x, z := in[0], in[1]
	D := g.D
	if g.f32 {
		var logDet float32
		for j, zj := range z {
			// One float32 exponential: with e = exp(-|na|), softplus(na) =
			// max(na, 0) + log1p(e), and σ and 1 - σ are e/(1+e) and 1/(1+e)
			// in the order na's sign gives.
			na := -(float32(x[D+j]) + IAFForgetBias)
			e := simd.ExpNeg(-math.Float32frombits(math.Float32bits(na) &^ (1 << 31)))
			q := 1 / (1 + e)
			sigma, om := e*q, q
			if na < 0 {
				sigma, om = q, e*q
			}
			ls := -(max(na, 0) + simd.Log1p(e))
			out[j] = float64(float32(sigma*float32(zj)) + float32(om*float32(x[j])))
			logDet = float32(logDet + ls)
			work[j], work[D+j], work[2*D+j] = float64(sigma), float64(om), float64(om) // d log σ/da = 1 - σ
		}
		out[D] = float64(logDet)
		return nil
	}
	var logDet float64
	for j, zj := range z {
		na := -(x[D+j] + IAFForgetBias)
		ls := -softplus(na)
		sigma, om := math.Exp(ls), sigmoid64(na)
		out[j] = float64(sigma*zj) + float64(om*x[j])
		logDet += ls
		if na > 19 { // sigmoid64 rounds to 1 there; the gradient keeps 1 - σ's own value
			om = 1 / (1 + math.Exp(-na))
		}
		work[j], work[D+j], work[2*D+j] = sigma, om, softplusDeriv(na)
	}
	out[D] = logDet
	return nil
}

// forwardRows32 is forward (f32) on B rows at once: x (B, 2D), z (B, D)
// into out (B, D+1) and work (B rows of workSize), with na, e and l
// scratch of B*D. The exponentials and log1ps of all rows go through one
// vector call (simd.ExpLog1p, ExpNeg's and Log1p's values bit for bit),
// the rest is forward's per-element code: the same values, where the
// scalar calls, latency-bound, took about half of the fused chain's
// forward time.
func (g iafGate) forwardRows32(x, z, out []float32, work []float64, na, e, l []float32) {
	D := g.D
	B := len(z) / D
	for i := range B {
		s := x[i*2*D+D : (i+1)*2*D]
		for j, v := range s {
			na[i*D+j] = -(v + IAFForgetBias)
		}
	}
	simd.ExpLog1p(na, e, l)
	nw := g.workSize()
	for i := range B {
		var logDet float32
		m, zr, o, w := x[i*2*D:i*2*D+D], z[i*D:(i+1)*D], out[i*(D+1):(i+1)*(D+1)], work[i*nw:(i+1)*nw]
		for j, zj := range zr {
			k := i*D + j
			q := 1 / (1 + e[k])
			sigma, om := swapIfNeg(na[k], e[k]*q, q)
			ls := -(max(na[k], 0) + l[k])
			o[j] = float32(sigma*zj) + float32(om*m[j])
			logDet = float32(logDet + ls)
			w[j], w[D+j], w[2*D+j] = float64(sigma), float64(om), float64(om)
		}
		o[D] = logDet
	}
}

// swapIfNeg is (a, b), or (b, a) when x's sign bit is set, without a
// branch (the signs of the gate's pre-activations are a coin toss for the
// branch predictor). For x = -0 and NaN it swaps where forward's x < 0
// does not; the gate calls it with a = e/(1+e), b = 1/(1+e), e = exp(-|x|),
// which are equal at x = ±0 and both NaN at NaN.
func swapIfNeg(x, a, b float32) (float32, float32) {
	m := uint32(int32(math.Float32bits(x)) >> 31)
	ab, bb := math.Float32bits(a), math.Float32bits(b)
	return math.Float32frombits(ab&^m | bb&m), math.Float32frombits(bb&^m | ab&m)
}

// sigmoid64 is gorgonia's sigmoid (1 above 19).
func sigmoid64(x float64) float64 {
	switch {
	case x < -709:
		return 0
	case x > 19:
		return 1
	}
	return 1.0 / (1.0 + math.Exp(-x))
}

func (g iafGate) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	o := make([]float64, len(out))
	if err := g.forward(in, o, work); err != nil {
		return err
	}
	return g.resume(in, out, gout, gin, work)
}

// resume is backward with forward's σ, 1 - σ and d log σ/da in work.
func (g iafGate) resume(in [][]float64, _, gout []float64, gin [][]float64, work []float64) error {
	x, z := in[0], in[1]
	gx, gz := gin[0], gin[1]
	D := g.D
	gl := gout[D]
	for j, zj := range z {
		sigma, om, dls := work[j], work[D+j], work[2*D+j]
		gj := gout[j]
		gz[j] += gj * sigma
		gx[j] += gj * om
		gls := gl + gj*zj*sigma // σ = exp(log σ)
		gom := gj * x[j]
		// d(1-σ)/da = -(1-σ)σ' with the sigmoid's own σ' = 1 - (1-σ).
		gx[D+j] += gls*dls - gom*om*(1-om)
	}
	return nil
}

package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MaskedLinear is a Linear layer y = x (W ⊙ M) + b whose weight is
// multiplied elementwise by a fixed 0/1 mask M of shape (In, Out), the
// building block of MADE (Germain et al. 2015). Masked weights get zero
// gradient. The mask is not a parameter: it is a function of the degrees
// it was built from, so a model rebuilds it from its configuration.
type MaskedLinear struct {
	Linear
	// Mask is M in row-major (In, Out) order: Mask[i*Out+j] is 1 when
	// output j may see input i, else 0.
	Mask []float64
}

// NewMaskedLinear registers a Linear layer's parameters in ps and builds
// its mask from the degrees of its inputs and outputs: output j may see
// input i when outDeg[j] ≥ inDeg[i], or outDeg[j] > inDeg[i] if strict
// (MADE's output layer, so that no output sees its own input).
func NewMaskedLinear(ps *Params, name string, inDeg, outDeg []int, strict bool) (MaskedLinear, error) {
	l, err := NewLinear(ps, name, len(inDeg), len(outDeg))
	if err != nil {
		return MaskedLinear{}, err
	}
	mask := make([]float64, len(inDeg)*len(outDeg))
	for i, di := range inDeg {
		for j, dj := range outDeg {
			if dj > di || (!strict && dj == di) {
				mask[i*len(outDeg)+j] = 1
			}
		}
	}
	return MaskedLinear{Linear: l, Mask: mask}, nil
}

// Forward computes x (W ⊙ M) + b for x of shape (B, In).
func (l MaskedLinear) Forward(b *Binding, x *G.Node) (*G.Node, error) {
	w, err := G.ApplyOp(maskOp{opBase: newBase(), name: l.Name, mask: l.Mask}, b.Node(l.WeightName()))
	if err != nil {
		return nil, fmt.Errorf("nets: %s mask: %w", l.Name, err)
	}
	return affine(l.Name, x, w, b.Node(l.BiasName()))
}

// maskOp is W ⊙ M for a fixed mask M, one pass in the graph's dtype (the
// products gorgonia's HadamardProd computes, without its float64 element
// loop); its gradient is G ⊙ M, the same op.
type maskOp struct {
	opBase
	name string // the layer's: distinct masks must not merge
	mask []float64
}

func (op maskOp) Arity() int                        { return 1 }
func (op maskOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT()) }
func (op maskOp) String() string                    { return "mask[" + op.name + "]" }
func (op maskOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op maskOp) Hashcode() uint32                  { return hashOf(op) }
func (op maskOp) DiffWRT(int) []bool                { return []bool{true} }
func (op maskOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op maskOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op maskOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	w, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	if w.Shape().TotalSize() != len(op.mask) {
		return nil, fmt.Errorf("nets: %s: %d values, the mask %d", op, w.Shape().TotalSize(), len(op.mask))
	}
	y := op.out(prealloc, w.Dtype(), w.Shape()...)
	switch y.Dtype() {
	case tensor.Float32:
		ys, ws := y.Float32s(), w.Float32s()
		for i, m := range op.mask {
			ys[i] = ws[i] * float32(m)
		}
	default:
		ys, ws := y.Float64s(), w.Float64s()
		for i, m := range op.mask {
			ys[i] = ws[i] * m
		}
	}
	return y, nil
}

func (op maskOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(maskOp{opBase: newBase(), name: op.name + ".grad", mask: op.mask}, grad)
	return G.Nodes{g}, err
}

// MADE is an autoregressive MLP (Germain et al. 2015): with inputs x of
// width D taken in Order, output j depends only on the inputs before
// input j mod D in that order, so its Jacobian is strictly lower
// triangular in the order. The hidden layers apply Act; the output layer
// is linear.
type MADE struct {
	Layers []MaskedLinear
	Act    Activation
	// Order lists the input indices from first to last; output j
	// corresponds to input j mod len(Order).
	Order []int
}

// NewMADE registers layers name.0, name.1, ... mapping in -> hidden[0] ->
// ... -> outPerIn*in. The order is 0, 1, ..., in-1, or the reverse when
// reverse is set (stacked autoregressive flows alternate it).
//
// Degrees follow Germain et al.: input i has degree 1 + its position in
// the order, hidden units cycle deterministically through 1..in-1, and
// output j has the degree of input j mod in. A hidden unit of degree k sees
// inputs of degree ≤ k; an output sees hidden units of strictly smaller
// degree. Hidden layers narrower than in-1 drop some of the allowed
// dependencies but never add forbidden ones.
func NewMADE(ps *Params, name string, in int, hidden []int, outPerIn int, act Activation, reverse bool) (MADE, error) {
	if in <= 0 || outPerIn <= 0 {
		return MADE{}, fmt.Errorf("nets: %s: MADE with %d inputs and %d outputs per input, want both > 0", name, in, outPerIn)
	}
	if _, err := ParseActivation(string(act)); err != nil {
		return MADE{}, err
	}
	if ps.Counting() {
		// The degrees and masks take Go memory of the size of the weights:
		// a counting store gets the layers' parameters only.
		m := MADE{Act: act}
		prev := in
		for k, h := range append(append([]int(nil), hidden...), outPerIn*in) {
			if h <= 0 {
				return MADE{}, fmt.Errorf("nets: %s: layer %d has size %d, want > 0", name, k, h)
			}
			l, err := NewLinear(ps, fmt.Sprintf("%s.%d", name, k), prev, h)
			if err != nil {
				return MADE{}, err
			}
			m.Layers = append(m.Layers, MaskedLinear{Linear: l})
			prev = h
		}
		return m, nil
	}
	m := MADE{Act: act, Order: make([]int, in)}
	inDeg := make([]int, in)
	for pos := range in {
		i := pos
		if reverse {
			i = in - 1 - pos
		}
		m.Order[pos] = i
		inDeg[i] = pos + 1
	}
	prev := inDeg
	for k, h := range hidden {
		if h <= 0 {
			return MADE{}, fmt.Errorf("nets: %s: hidden layer %d has size %d, want > 0", name, k, h)
		}
		deg := make([]int, h)
		for u := range deg {
			// With in = 1 there is nothing to see; degree 1 units then
			// reach no output.
			deg[u] = 1 + u%max(in-1, 1)
		}
		l, err := NewMaskedLinear(ps, fmt.Sprintf("%s.%d", name, k), prev, deg, false)
		if err != nil {
			return MADE{}, err
		}
		m.Layers = append(m.Layers, l)
		prev = deg
	}
	outDeg := make([]int, outPerIn*in)
	for j := range outDeg {
		outDeg[j] = inDeg[j%in]
	}
	l, err := NewMaskedLinear(ps, fmt.Sprintf("%s.%d", name, len(hidden)), prev, outDeg, true)
	if err != nil {
		return MADE{}, err
	}
	m.Layers = append(m.Layers, l)
	return m, nil
}

// Forward applies the layers, Act after every one but the last.
func (m MADE) Forward(b *Binding, x *G.Node) (*G.Node, error) {
	h := x
	for k, l := range m.Layers {
		var err error
		if h, err = l.Forward(b, h); err != nil {
			return nil, err
		}
		if k == len(m.Layers)-1 {
			break
		}
		if h, err = m.Act.Apply(h); err != nil {
			return nil, fmt.Errorf("nets: %s %s: %w", l.Name, m.Act, err)
		}
	}
	return h, nil
}

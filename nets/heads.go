package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/govae/govae/internal/kernels/simd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// HeadGroup makes the input gradient of n linear heads of one input x (the
// last hidden layer of an encoder, whose only consumers they are) one node:
// gorgonia gives each head its own product dY_i W_iᵀ and sums them with
// n-1 adds of x's size (for aux:20's six heads on a 64 x 400 layer, five
// adds and five nodes per shard). Here the head differentiated last
// computes all n products in one node and sums them in the order gorgonia
// would have (the order its pullbacks ran), each product rounded before
// it is added: the same values bit for bit. Every head must be
// differentiated (be on the path from the loss to the weights, and not
// merged with another by gorgonia as equal nodes): check Complete after
// G.Grad; when it is false the graph's gradient of x lacks the heads that
// were. A group holds the state of one differentiation: one G.Grad per
// graph. GroupHeads also computes the heads' products as one.
type HeadGroup struct{ g *headGroup }

type headGroup struct {
	n, calls int
	dys, ws  G.Nodes // the heads' incoming gradients and weights, in pullback order
}

// headMember is a grouped head's dense op's state: skipX once its pullback
// left x's gradient to the group (gorgonia asks DiffWRT after SymDiff).
type headMember struct {
	g     *headGroup
	skipX bool
}

// NewHeadGroup starts a group of n heads.
func NewHeadGroup(n int) HeadGroup { return HeadGroup{&headGroup{n: n}} }

// Complete reports whether all n heads were differentiated.
func (hg HeadGroup) Complete() bool { return hg.g.calls == hg.g.n }

// DenseHead adds x w + b (a linear head, Dense without activation) as a
// member of hg; x must not be data (it gets a gradient).
func DenseHead(x, w, b *G.Node, hg HeadGroup) (*G.Node, error) {
	if err := checkDense(x, w, b); err != nil {
		return nil, err
	}
	return G.ApplyOp(denseOp{opBase: newBase(), head: &headMember{g: hg.g}}, x, w, b)
}

// GroupHeads adds the heads x w_i + b_i as hg's members (DenseHead), their
// products computed as one, x [w_1 ... w_n] + [b_1 ... b_n], by a node each
// head copies its columns from: one pass over x for all heads, and for
// narrow heads (20 columns against the kernel's 32) far less waste. Each
// element is the same sum of products in the same order as its own
// head's product, and gets the same bias add: the same values.
func GroupHeads(x *G.Node, ws, bs []*G.Node, hg HeadGroup) ([]*G.Node, error) {
	if len(ws) != len(bs) || len(ws) == 0 {
		return nil, fmt.Errorf("nets: group heads: %d weights and %d biases", len(ws), len(bs))
	}
	in := append(G.Nodes{x}, ws...)
	in = append(in, bs...)
	for i := range ws {
		if err := checkDense(x, ws[i], bs[i]); err != nil {
			return nil, err
		}
	}
	all, err := G.ApplyOp(headsFwdOp{opBase: newBase(), n: len(ws), w: &outCache{}, b: &outCache{}}, in...)
	if err != nil {
		return nil, err
	}
	ys := make([]*G.Node, len(ws))
	off := 0
	for i := range ws {
		op := denseOp{opBase: newBase(), head: &headMember{g: hg.g}, view: off + 1}
		if ys[i], err = G.ApplyOp(op, x, ws[i], bs[i], all); err != nil {
			return nil, err
		}
		off += ws[i].Shape()[1]
	}
	return ys, nil
}

// headsFwdOp is x [w_1 ... w_n] + [b_1 ... b_n] over its inputs (x, w_1..w_n,
// b_1..b_n), the weights and biases copied side by side into w and b.
type headsFwdOp struct {
	opBase
	noDiff
	n    int
	w, b *outCache
}

func (op headsFwdOp) Arity() int { return 1 + 2*op.n }
func (op headsFwdOp) Type() hm.Type {
	ts := []hm.Type{matT()}
	for range op.n {
		ts = append(ts, matT())
	}
	for range op.n {
		ts = append(ts, vecT())
	}
	return hm.NewFnType(append(ts, matT())...)
}
func (op headsFwdOp) String() string                    { return fmt.Sprintf("headsFwd[%d]", op.n) }
func (op headsFwdOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op headsFwdOp) Hashcode() uint32                  { return hashOf(op) }
func (op headsFwdOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op headsFwdOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	N := 0
	for _, w := range in[1 : 1+op.n] {
		N += w.(tensor.Shape)[1]
	}
	return tensor.Shape{in[0].(tensor.Shape)[0], N}, nil
}

func (op headsFwdOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x := ds[0]
	B, K, N := x.Shape()[0], x.Shape()[1], 0
	for _, w := range ds[1 : 1+op.n] {
		N += w.Shape()[1]
	}
	wc := opBase{cache: op.w}.out(nil, x.Dtype(), K, N)
	bc := opBase{cache: op.b}.out(nil, x.Dtype(), 1, N)
	y := op.out(prealloc, x.Dtype(), B, N)
	switch x.Dtype() {
	case tensor.Float32:
		headsFwd(y.Float32s(), wc.Float32s(), bc.Float32s(), x, ds[1:], op.n, K, N)
	default:
		headsFwd(y.Float64s(), wc.Float64s(), bc.Float64s(), x, ds[1:], op.n, K, N)
	}
	return y, nil
}

// headsFwd packs the n weights wb[:n] and biases wb[n:] side by side and
// computes y = x wc + bc, adding the bias as denseOp does.
func headsFwd[T float32 | float64](y, wc, bc []T, x *tensor.Dense, wb []*tensor.Dense, n, K, N int) {
	off := 0
	for i := range n {
		w, b := wb[i].Data().([]T), wb[n+i].Data().([]T)
		c := len(b)
		for r := range K {
			copy(wc[r*N+off:r*N+off+c], w[r*c:(r+1)*c])
		}
		copy(bc[off:off+c], b)
		off += c
	}
	B := x.Shape()[0]
	Gemm(false, false, B, N, K, x.Data().([]T), wc, y)
	parallelRows(B, B*N, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			addRow(y[i*N:(i+1)*N], bc)
		}
	})
}

// addRow is dst += src, with simd.Add in float32 (denseOp's bias add).
func addRow[T float32 | float64](dst, src []T) {
	if d, ok := any(dst).([]float32); ok {
		simd.Add(d, any(src).([]float32))
		return
	}
	for j, v := range src {
		dst[j] += v
	}
}

// viewCols copies columns [off, off+cols of y) of all into y.
func viewCols(y, all *tensor.Dense, off int) error {
	B, c, N := y.Shape()[0], y.Shape()[1], all.Shape()[1]
	if all.Shape()[0] != B || off+c > N || all.Dtype() != y.Dtype() {
		return fmt.Errorf("nets: head view: columns [%d, %d) of %v into %v", off, off+c, all.Shape(), y.Shape())
	}
	switch y.Dtype() {
	case tensor.Float32:
		copyColsOf(y.Float32s(), all.Float32s(), B, off, c, N)
	default:
		copyColsOf(y.Float64s(), all.Float64s(), B, off, c, N)
	}
	return nil
}

// HeadForward is l(x) as a member of hg (see Linear.Forward).
func (l Linear) HeadForward(b *Binding, x *G.Node, hg HeadGroup) (*G.Node, error) {
	y, err := DenseHead(x, b.Node(l.WeightName()), b.Node(l.BiasName()), hg)
	if err != nil {
		return nil, fmt.Errorf("nets: %s: %w", l.Name, err)
	}
	return y, nil
}

// pullX is a grouped head's part of x's gradient: nil (and skipX) until the
// last head, whose node computes the whole sum.
func (m *headMember) pullX(dY, w *G.Node) (*G.Node, error) {
	g := m.g
	g.calls++
	g.dys, g.ws = append(g.dys, dY), append(g.ws, w)
	if g.calls < g.n {
		m.skipX = true
		return nil, nil
	}
	in := make(G.Nodes, 0, 2*len(g.dys))
	for i := range g.dys {
		in = append(in, g.dys[i], g.ws[i])
	}
	return G.ApplyOp(headsGradOp{opBase: newBase(), n: len(g.dys), tmp: &outCache{}}, in...)
}

// headsGradOp is Σ_i dY_i W_iᵀ over its n pairs of inputs (dY_i, W_i), the
// products rounded one by one and added left to right, as gorgonia's
// pullbacks and ReduceAdd do.
type headsGradOp struct {
	opBase
	noDiff
	n   int
	tmp *outCache // a product before it is added
}

func (op headsGradOp) Arity() int { return 2 * op.n }
func (op headsGradOp) Type() hm.Type {
	ts := make([]hm.Type, 2*op.n+1)
	for i := range ts {
		ts[i] = matT()
	}
	return hm.NewFnType(ts...)
}
func (op headsGradOp) String() string                    { return fmt.Sprintf("headsGrad[%d]", op.n) }
func (op headsGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op headsGradOp) Hashcode() uint32                  { return hashOf(op) }
func (op headsGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op headsGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0], in[1].(tensor.Shape)[0]}, nil
}

func (op headsGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	m, k := ds[0].Shape()[0], ds[1].Shape()[0]
	c := op.out(prealloc, ds[0].Dtype(), m, k)
	for i := 0; i < len(ds); i += 2 {
		dy, w := ds[i], ds[i+1]
		if dy.Shape()[0] != m || w.Shape()[0] != k || dy.Shape()[1] != w.Shape()[1] {
			return nil, fmt.Errorf("nets: %s: dY %v and W %v do not make a (%d, %d) gradient", op, dy.Shape(), w.Shape(), m, k)
		}
		if i == 0 {
			matmul(false, true, m, k, dy.Shape()[1], dy, w, c)
			continue
		}
		t := opBase{cache: op.tmp}.out(nil, c.Dtype(), m, k)
		matmul(false, true, m, k, dy.Shape()[1], dy, w, t)
		switch c.Dtype() {
		case tensor.Float32:
			simd.Add(c.Float32s(), t.Float32s())
		default:
			cs := c.Float64s()
			for j, v := range t.Float64s() {
				cs[j] += v
			}
		}
	}
	return c, nil
}

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
// differentiated (be on the path from the loss to the weights): check
// Complete after G.Grad; when it is false the graph's gradient of x lacks
// the heads that were.
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

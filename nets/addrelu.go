package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AddReLU adds max(a + c, 0) for matrices a and c of one shape: one node
// forward and one backward where gorgonia's add and rectify are two each
// way with element loops (an IAF step adds its context to the MADE's first
// pre-activation this way). The values are gorgonia's bit for bit: one
// rounded add, then max with 0.
func AddReLU(a, c *G.Node) (*G.Node, error) {
	if a.Shape().Dims() != 2 || !a.Shape().Eq(c.Shape()) || a.Dtype() != c.Dtype() {
		return nil, fmt.Errorf("nets: add+relu: a %v (%v) and c %v (%v) must be matrices of one shape and dtype", a.Shape(), a.Dtype(), c.Shape(), c.Dtype())
	}
	return G.ApplyOp(addReLUOp{newBase()}, a, c)
}

type addReLUOp struct{ opBase }

func (op addReLUOp) Arity() int                        { return 2 }
func (op addReLUOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), matT()) }
func (op addReLUOp) String() string                    { return "addReLU" }
func (op addReLUOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op addReLUOp) Hashcode() uint32                  { return hashOf(op) }
func (op addReLUOp) DiffWRT(int) []bool                { return []bool{true, true} }
func (op addReLUOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op addReLUOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op addReLUOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	a, c := ds[0], ds[1]
	y := op.out(prealloc, a.Dtype(), a.Shape()...)
	switch y.Dtype() {
	case tensor.Float32:
		addRelu(y.Float32s(), a.Float32s(), c.Float32s())
	default:
		addRelu(y.Float64s(), a.Float64s(), c.Float64s())
	}
	return y, nil
}

func addRelu[T float32 | float64](y, a, c []T) {
	for i, v := range a {
		y[i] = max(v+c[i], 0)
	}
}

// SymDiff: both inputs get dY ⊙ [Y > 0].
func (op addReLUOp) SymDiff(_ G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(actGradOp{opBase: newBase(), act: ReLU}, output, grad)
	return G.Nodes{d, d}, err
}

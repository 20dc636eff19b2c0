package nets

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// checkAct accepts the activations the fused ops implement ("" is none).
func checkAct(a Activation) error {
	switch a {
	case "", ReLU, Tanh, Softplus, ELU:
		return nil
	}
	return fmt.Errorf("unknown activation %q (want relu, elu, tanh or softplus)", string(a))
}

// elu is x for x > 0, e^x - 1 otherwise (math.Expm1 for both dtypes, see
// expNonPos).
func elu[T float32 | float64](x T) T {
	if x > 0 {
		return x
	}
	return T(math.Expm1(float64(x)))
}

// actInPlace applies a in place.
func actInPlace[T float32 | float64](d []T, a Activation) {
	switch a {
	case ReLU:
		for i, v := range d {
			d[i] = max(v, 0)
		}
	case ELU:
		for i, v := range d {
			d[i] = elu(v)
		}
	case Tanh:
		for i, v := range d {
			d[i] = T(math.Tanh(float64(v)))
		}
	case Softplus:
		for i, v := range d {
			d[i] = T(softplus64(float64(v)))
		}
	}
}

// Act adds the activation a of x (any shape) to x's graph as one fused op
// whose gradient is written in terms of its output (see [Dense]).
func Act(x *G.Node, a Activation) (*G.Node, error) {
	if err := checkAct(a); err != nil {
		return nil, fmt.Errorf("nets: %w", err)
	}
	if a == "" {
		return x, nil
	}
	if x.Shape().Dims() != 2 {
		return nil, fmt.Errorf("nets: activation %s: x %v, want a matrix", a, x.Shape())
	}
	return G.ApplyOp(actOp{opBase: newBase(), act: a}, x)
}

type actOp struct {
	opBase
	act Activation
}

func (op actOp) Arity() int    { return 1 }
func (op actOp) Type() hm.Type { return hm.NewFnType(matT(), matT()) }
func (op actOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op actOp) String() string                    { return fmt.Sprintf("act[%s]", op.act) }
func (op actOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op actOp) Hashcode() uint32                  { return hashOf(op) }
func (op actOp) DiffWRT(int) []bool                { return []bool{true} }
func (op actOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op actOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	y := op.out(prealloc, x.Dtype(), x.Shape()...)
	rows, cols := x.Shape()[0], x.Shape()[1]
	if y.Dtype() == tensor.Float32 {
		ys, xs := y.Float32s(), x.Float32s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			copy(ys[lo*cols:hi*cols], xs[lo*cols:hi*cols])
			actInPlace(ys[lo*cols:hi*cols], op.act)
		})
	} else {
		ys, xs := y.Float64s(), x.Float64s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			copy(ys[lo*cols:hi*cols], xs[lo*cols:hi*cols])
			actInPlace(ys[lo*cols:hi*cols], op.act)
		})
	}
	return y, nil
}

func (op actOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(actGradOp{opBase: newBase(), act: op.act}, output, grad)
	return G.Nodes{d}, err
}

package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"github.com/govae/govae/internal/kernels/simd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Gate adds h = a ⊙ σ(g) to x's graph, where each row of x (B, 2·C·HW)
// holds the C channels of a followed by the C channels of g (a layer with
// 2C output channels): the gated activation of van den Berg et al. 2018.
// Backward: da = dh σ(g), dg = dh a σ(g)(1 - σ(g)).
func Gate(x *G.Node, C, HW int) (*G.Node, error) {
	if x.Shape().Dims() != 2 || C <= 0 || HW <= 0 || x.Shape()[1] != 2*C*HW {
		return nil, fmt.Errorf("nets: gate: x %v, want (B, 2·%d·%d)", x.Shape(), C, HW)
	}
	return G.ApplyOp(gateOp{opBase: newBase(), n: C * HW}, x)
}

type gateOp struct {
	opBase
	n    int // width of a (and of g)
	grad bool
}

func (op gateOp) Arity() int {
	if op.grad {
		return 2
	}
	return 1
}
func (op gateOp) Type() hm.Type {
	if op.grad {
		return hm.NewFnType(matT(), matT(), matT())
	}
	return hm.NewFnType(matT(), matT())
}
func (op gateOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := in[0].(tensor.Shape)
	if op.grad {
		return s.Clone(), nil
	}
	return tensor.Shape{s[0], op.n}, nil
}
func (op gateOp) String() string                    { return fmt.Sprintf("gate[%d,grad=%t]", op.n, op.grad) }
func (op gateOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op gateOp) Hashcode() uint32                  { return hashOf(op) }
func (op gateOp) DiffWRT(int) []bool                { return []bool{true} }
func (op gateOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op gateOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x := ds[0]
	rows, n := x.Shape()[0], op.n
	if x.Shape().TotalSize() != rows*2*n || (op.grad && ds[1].Shape().TotalSize() != rows*n) {
		return nil, fmt.Errorf("nets: %v: inputs of the wrong size", op)
	}
	sh, _ := op.InferShape(x.Shape())
	y := op.out(prealloc, x.Dtype(), sh...)
	if y.Dtype() == tensor.Float32 {
		var dy []float32
		if op.grad {
			dy = ds[1].Float32s()
		}
		gate(rows, n, x.Float32s(), dy, y.Float32s(), func(v float32) float32 { return float32(sigmoid64(float64(v))) })
	} else {
		var dy []float64
		if op.grad {
			dy = ds[1].Float64s()
		}
		gate(rows, n, x.Float64s(), dy, y.Float64s(), sigmoid64)
	}
	return y, nil
}

// gate computes the forward pass (dy nil) or the gradient into y.
func gate[T float32 | float64](rows, n int, x, dy, y []T, sig func(T) T) {
	parallelRows(rows, rows*n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			a, g := x[2*i*n:(2*i+1)*n], x[(2*i+1)*n:(2*i+2)*n]
			if dy == nil {
				yr := y[i*n : (i+1)*n]
				for j, gj := range g {
					yr[j] = a[j] * sig(gj)
				}
				continue
			}
			d := dy[i*n : (i+1)*n]
			da, dg := y[2*i*n:(2*i+1)*n], y[(2*i+1)*n:(2*i+2)*n]
			for j, gj := range g {
				s := sig(gj)
				da[j] = d[j] * s
				dg[j] = d[j] * a[j] * s * (1 - s)
			}
		}
	})
}

func (op gateOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(gateOp{opBase: newBase(), n: op.n, grad: true}, in[0], grad)
	return G.Nodes{d}, err
}

// AddSame adds a + b for two matrices of the same shape (a residual
// connection); both get the incoming gradient unchanged.
func AddSame(a, b *G.Node) (*G.Node, error) {
	if a.Shape().Dims() != 2 || !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("nets: add: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	return G.ApplyOp(addOp{newBase()}, a, b)
}

type addOp struct{ opBase }

func (op addOp) Arity() int    { return 2 }
func (op addOp) Type() hm.Type { return hm.NewFnType(matT(), matT(), matT()) }
func (op addOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op addOp) String() string                    { return "add" }
func (op addOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op addOp) Hashcode() uint32                  { return hashOf(op) }
func (op addOp) DiffWRT(int) []bool                { return []bool{true, true} }
func (op addOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op addOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	if !ds[0].Shape().Eq(ds[1].Shape()) {
		return nil, fmt.Errorf("nets: add: shapes %v and %v", ds[0].Shape(), ds[1].Shape())
	}
	y := op.out(prealloc, ds[0].Dtype(), ds[0].Shape()...)
	if y.Dtype() == tensor.Float32 {
		copy(y.Float32s(), ds[0].Float32s())
		simd.Add(y.Float32s(), ds[1].Float32s())
	} else {
		ys, bs := y.Float64s(), ds[1].Float64s()
		copy(ys, ds[0].Float64s())
		for i, v := range bs {
			ys[i] += v
		}
	}
	return y, nil
}

func (op addOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}

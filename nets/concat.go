package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ConcatCols adds the matrices xs (R, w_i) side by side, (R, Σ w_i), or the
// vectors xs (w_i) end to end, to their graph: one copy forward and, per
// input, one copy of its block of the gradient backward. It lets several
// linear heads that keep their own parameters run as one dense layer
// ([DenseHeads]).
func ConcatCols(xs ...*G.Node) (*G.Node, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("nets: concat: no inputs")
	}
	dims := xs[0].Shape().Dims()
	op := concatOp{opBase: newBase(), dims: dims}
	for i, x := range xs {
		s := x.Shape()
		switch {
		case s.Dims() != dims || (dims != 1 && dims != 2):
			return nil, fmt.Errorf("nets: concat: input %d has shape %v, input 0 %v; want all matrices or all vectors", i, s, xs[0].Shape())
		case dims == 2 && s[0] != xs[0].Shape()[0]:
			return nil, fmt.Errorf("nets: concat: input %d has %d rows, input 0 %d", i, s[0], xs[0].Shape()[0])
		case x.Dtype() != xs[0].Dtype():
			return nil, fmt.Errorf("nets: concat: input %d has dtype %v, input 0 %v", i, x.Dtype(), xs[0].Dtype())
		}
		op.widths = append(op.widths, s[dims-1])
	}
	return G.ApplyOp(op, xs...)
}

// DenseHeads is x [W_1 ... W_n] + [b_1 ... b_n]: n linear maps of x as one
// matrix product, their outputs side by side. The weights are copied into
// one matrix per run (a few hundred kilobytes for a VAE's flow heads),
// which is far cheaper than n products, n backward products into x's
// gradient and the sum of their n results.
func DenseHeads(x *G.Node, ws, bs []*G.Node) (*G.Node, error) {
	if len(ws) != len(bs) || len(ws) == 0 {
		return nil, fmt.Errorf("nets: dense heads: %d weights and %d biases, want as many and at least one", len(ws), len(bs))
	}
	if len(ws) == 1 {
		return Dense(x, ws[0], bs[0], "", false)
	}
	w, err := ConcatCols(ws...)
	if err != nil {
		return nil, fmt.Errorf("nets: dense heads: weights: %w", err)
	}
	b, err := ConcatCols(bs...)
	if err != nil {
		return nil, fmt.Errorf("nets: dense heads: biases: %w", err)
	}
	return Dense(x, w, b, "", false)
}

// concatOp puts its inputs' last dimensions side by side.
type concatOp struct {
	opBase
	dims   int
	widths []int
}

func (op concatOp) Arity() int { return len(op.widths) }
func (op concatOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
func (op concatOp) Type() hm.Type {
	t := vecT()
	if op.dims == 2 {
		t = matT()
	}
	ts := make([]hm.Type, len(op.widths)+1)
	for i := range ts {
		ts[i] = t
	}
	return hm.NewFnType(ts...)
}
func (op concatOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	n := 0
	for _, w := range op.widths {
		n += w
	}
	if op.dims == 1 {
		return tensor.Shape{n}, nil
	}
	return tensor.Shape{in[0].(tensor.Shape)[0], n}, nil
}
func (op concatOp) String() string                    { return fmt.Sprintf("concat%d%v", op.dims, op.widths) }
func (op concatOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op concatOp) Hashcode() uint32                  { return hashOf(op) }
func (op concatOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op concatOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op.String())
	if err != nil {
		return nil, err
	}
	rows := 1
	if op.dims == 2 {
		rows = ds[0].Shape()[0]
	}
	n := 0
	for _, w := range op.widths {
		n += w
	}
	var y *tensor.Dense
	if op.dims == 2 {
		y = op.out(prealloc, ds[0].Dtype(), rows, n)
	} else {
		y = op.out(prealloc, ds[0].Dtype(), n)
	}
	off := 0
	for i, d := range ds {
		w := op.widths[i]
		switch y.Dtype() {
		case tensor.Float32:
			copyBlock(y.Float32s(), d.Float32s(), rows, n, w, off, true)
		default:
			copyBlock(y.Float64s(), d.Float64s(), rows, n, w, off, true)
		}
		off += w
	}
	return y, nil
}

// copyBlock copies between the (rows, w) matrix b and columns [off, off+w)
// of the (rows, n) matrix a: into a when in, else out of it.
func copyBlock[T float32 | float64](a, b []T, rows, n, w, off int, in bool) {
	if w == 1 { // a flow step's b, alpha, beta: copy's call costs more than the element
		for r := range rows {
			if in {
				a[r*n+off] = b[r]
			} else {
				b[r] = a[r*n+off]
			}
		}
		return
	}
	for r := range rows {
		ar, br := a[r*n+off:r*n+off+w], b[r*w:(r+1)*w]
		if in {
			copy(ar, br)
		} else {
			copy(br, ar)
		}
	}
}

func (op concatOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	gs := make(G.Nodes, len(in))
	off := 0
	for i, w := range op.widths {
		var err error
		if gs[i], err = G.ApplyOp(blockOp{opBase: newBase(), dims: op.dims, off: off, w: w}, grad); err != nil {
			return nil, err
		}
		off += w
	}
	return gs, nil
}

// blockOp is columns [off, off+w) of a matrix (or elements of a vector).
type blockOp struct {
	opBase
	dims, off, w int
}

func (op blockOp) Arity() int         { return 1 }
func (op blockOp) DiffWRT(int) []bool { return []bool{true} }
func (op blockOp) Type() hm.Type {
	if op.dims == 2 {
		return hm.NewFnType(matT(), matT())
	}
	return hm.NewFnType(vecT(), vecT())
}
func (op blockOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if op.dims == 1 {
		return tensor.Shape{op.w}, nil
	}
	return tensor.Shape{in[0].(tensor.Shape)[0], op.w}, nil
}
func (op blockOp) String() string                    { return fmt.Sprintf("block%d[%d:%d]", op.dims, op.off, op.off+op.w) }
func (op blockOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op blockOp) Hashcode() uint32                  { return hashOf(op) }
func (op blockOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op blockOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	a, err := dense(in[0], op.String())
	if err != nil {
		return nil, err
	}
	rows, n := 1, a.Shape()[0]
	var y *tensor.Dense
	if op.dims == 2 {
		rows, n = a.Shape()[0], a.Shape()[1]
		y = op.out(prealloc, a.Dtype(), rows, op.w)
	} else {
		y = op.out(prealloc, a.Dtype(), op.w)
	}
	switch y.Dtype() {
	case tensor.Float32:
		copyBlock(a.Float32s(), y.Float32s(), rows, n, op.w, op.off, false)
	default:
		copyBlock(a.Float64s(), y.Float64s(), rows, n, op.w, op.off, false)
	}
	return y, nil
}

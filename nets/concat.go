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
	ds, err := denseAll(in, op)
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
	switch y.Dtype() {
	case tensor.Float32:
		parts := make([][]float32, len(ds))
		for i, d := range ds {
			parts[i] = d.Float32s()
		}
		copyBlocks(y.Float32s(), parts, op.widths, rows, n, true)
	default:
		parts := make([][]float64, len(ds))
		for i, d := range ds {
			parts[i] = d.Float64s()
		}
		copyBlocks(y.Float64s(), parts, op.widths, rows, n, true)
	}
	return y, nil
}

// copyBlocks copies between the (rows, widths[i]) matrices bs[i] and the
// (rows, n) matrix a that holds them side by side: into a when in, else out
// of it. It goes row by row of a, so that a (the flow heads' weights: a
// megabyte) is swept once, in order; block by block it was swept once per
// block, 49 times for planar:16, each time missing the cache.
func copyBlocks[T float32 | float64](a []T, bs [][]T, widths []int, rows, n int, in bool) {
	for r := range rows {
		ar := a[r*n : (r+1)*n]
		off := 0
		for i, b := range bs {
			w := widths[i]
			switch {
			case w == 1 && in: // a flow step's b, alpha, beta: copy's call costs more than the element
				ar[off] = b[r]
			case w == 1:
				b[r] = ar[off]
			case in:
				copy(ar[off:off+w], b[r*w:(r+1)*w])
			default:
				copy(b[r*w:(r+1)*w], ar[off:off+w])
			}
			off += w
		}
	}
}

// SymDiff: one node (splitOp) copies every input's block of the gradient
// in one sweep; one node per input (partOp) hands it its block.
func (op concatOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	sp := splitOp{opBase: newBase(), dims: op.dims, widths: op.widths, parts: &splitParts{}}
	all, err := G.ApplyOp(sp, grad)
	if err != nil {
		return nil, err
	}
	gs := make(G.Nodes, len(in))
	for i, w := range op.widths {
		shape := tensor.Shape{w}
		if op.dims == 2 {
			shape = tensor.Shape{grad.Shape()[0], w}
		}
		if gs[i], err = G.ApplyOp(partOp{opBase: newBase(), i: i, shape: shape, parts: sp.parts}, all); err != nil {
			return nil, err
		}
	}
	return gs, nil
}

// splitParts are a splitOp's blocks, kept from run to run.
type splitParts struct{ ts []*tensor.Dense }

// splitOp cuts a matrix into column blocks (or a vector into pieces) of the
// given widths, stored in parts; its own output is one zero, which orders
// the partOps that return the blocks after it.
type splitOp struct {
	opBase
	dims   int
	widths []int
	parts  *splitParts
}

func (op splitOp) Arity() int { return 1 }
func (op splitOp) Type() hm.Type {
	if op.dims == 2 {
		return hm.NewFnType(matT(), vecT())
	}
	return hm.NewFnType(vecT(), vecT())
}
func (op splitOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.Shape{1}, nil }
func (op splitOp) String() string                                 { return fmt.Sprintf("split%d%v", op.dims, op.widths) }
func (op splitOp) WriteHash(h hash.Hash)                          { fmt.Fprint(h, op.String()) }
func (op splitOp) Hashcode() uint32                               { return hashOf(op) }
func (op splitOp) Do(in ...G.Value) (G.Value, error)              { return op.UsePreallocDo(nil, in...) }

func (op splitOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	a, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	rows, n := 1, a.Shape()[0]
	if op.dims == 2 {
		rows, n = a.Shape()[0], a.Shape()[1]
	}
	ps := op.parts
	if len(ps.ts) != len(op.widths) {
		ps.ts = make([]*tensor.Dense, len(op.widths))
	}
	for i, w := range op.widths {
		shape := tensor.Shape{w}
		if op.dims == 2 {
			shape = tensor.Shape{rows, w}
		}
		if t := ps.ts[i]; t == nil || t.Dtype() != a.Dtype() || !t.Shape().Eq(shape) {
			ps.ts[i] = tensor.New(tensor.Of(a.Dtype()), tensor.WithShape(shape...))
		}
	}
	switch a.Dtype() {
	case tensor.Float32:
		parts := make([][]float32, len(ps.ts))
		for i, t := range ps.ts {
			parts[i] = t.Float32s()
		}
		copyBlocks(a.Float32s(), parts, op.widths, rows, n, false)
	default:
		parts := make([][]float64, len(ps.ts))
		for i, t := range ps.ts {
			parts[i] = t.Float64s()
		}
		copyBlocks(a.Float64s(), parts, op.widths, rows, n, false)
	}
	return op.out(prealloc, a.Dtype(), 1), nil
}

// partOp returns block i of the splitOp it follows.
type partOp struct {
	opBase
	i     int
	shape tensor.Shape
	parts *splitParts
}

func (op partOp) Arity() int { return 1 }
func (op partOp) Type() hm.Type {
	if op.shape.Dims() == 2 {
		return hm.NewFnType(vecT(), matT())
	}
	return hm.NewFnType(vecT(), vecT())
}
func (op partOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return op.shape.Clone(), nil }
func (op partOp) String() string                                 { return fmt.Sprintf("part[%d]%v", op.i, op.shape) }
func (op partOp) WriteHash(h hash.Hash)                          { fmt.Fprint(h, op.String()) }
func (op partOp) Hashcode() uint32                               { return hashOf(op) }
func (op partOp) Do(in ...G.Value) (G.Value, error)              { return op.UsePreallocDo(nil, in...) }

func (op partOp) UsePreallocDo(G.Value, ...G.Value) (G.Value, error) {
	if op.i >= len(op.parts.ts) || !op.parts.ts[op.i].Shape().Eq(op.shape) {
		return nil, fmt.Errorf("nets: %s: the split has not run on a gradient of this shape", op)
	}
	return op.parts.ts[op.i], nil
}

package nets

import (
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"github.com/chewxy/math32"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Reparam adds mu + exp(lv/2) ⊙ eps for (B, L) matrices of one shape and
// dtype (the reparameterization of N(mu, diag e^lv)): one node forward and
// one backward where gorgonia's scale, exp, product and add are four
// forward and six backward (three of them gradients nothing reads). The
// values are G.Add(mu, G.HadamardProd(G.Exp(G.Mul(lv, ½)), eps))'s bit for
// bit, forward and backward: every step is rounded as gorgonia rounds it.
// eps gets no gradient (it is noise).
func Reparam(mu, lv, eps *G.Node) (*G.Node, error) {
	s := mu.Shape()
	if s.Dims() != 2 || !s.Eq(lv.Shape()) || !s.Eq(eps.Shape()) || mu.Dtype() != lv.Dtype() || mu.Dtype() != eps.Dtype() {
		return nil, fmt.Errorf("nets: reparam: mu %v, lv %v and eps %v must be matrices of one shape and dtype", s, lv.Shape(), eps.Shape())
	}
	return G.ApplyOp(reparamOp{opBase: newBase(), std: &outCache{}}, mu, lv, eps)
}

// reparamOp keeps exp(lv/2) in std for its gradient, which runs after it
// in the same run.
type reparamOp struct {
	opBase
	std *outCache
}

func (op reparamOp) Arity() int                        { return 3 }
func (op reparamOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), matT(), matT()) }
func (op reparamOp) String() string                    { return "reparam" }
func (op reparamOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op reparamOp) Hashcode() uint32                  { return hashOf(op) }
func (op reparamOp) DiffWRT(int) []bool                { return []bool{true, true, false} }
func (op reparamOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op reparamOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op reparamOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	mu, lv, eps := ds[0], ds[1], ds[2]
	y := op.out(prealloc, mu.Dtype(), mu.Shape()...)
	std := opBase{cache: op.std}.out(nil, mu.Dtype(), mu.Shape()...)
	switch y.Dtype() {
	case tensor.Float32:
		reparam(y.Float32s(), std.Float32s(), mu.Float32s(), lv.Float32s(), eps.Float32s(), math32.Exp)
	case tensor.Float64:
		reparam(y.Float64s(), std.Float64s(), mu.Float64s(), lv.Float64s(), eps.Float64s(), math.Exp)
	default:
		return nil, fmt.Errorf("nets: reparam: dtype %v", y.Dtype())
	}
	return y, nil
}

// reparam rounds after every operation (the conversions keep the compiler
// from fusing a multiply and an add), as gorgonia's nodes do.
func reparam[T float32 | float64](y, std, mu, lv, eps []T, exp func(T) T) {
	for i, v := range lv {
		s := exp(T(v * 0.5))
		std[i] = s
		y[i] = mu[i] + T(s*eps[i])
	}
}

// SymDiff: mu gets dY; lv gets ½ (std ⊙ (eps ⊙ dY)), in the order of
// gorgonia's Hadamard, exp and scale gradients.
func (op reparamOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	d, err := G.ApplyOp(reparamGradOp{opBase: newBase(), std: op.std}, in[2], grad)
	return G.Nodes{grad, d, nil}, err
}

// reparamGradOp is ½ (std ⊙ (eps ⊙ dY)), std from reparamOp's run.
type reparamGradOp struct {
	opBase
	noDiff
	std *outCache
}

func (op reparamGradOp) Arity() int                        { return 2 }
func (op reparamGradOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), matT()) }
func (op reparamGradOp) String() string                    { return "reparamGrad" }
func (op reparamGradOp) WriteHash(h hash.Hash)             { fmt.Fprintf(h, "%s%p", op.String(), op.std) }
func (op reparamGradOp) Hashcode() uint32                  { return hashWrite(op) }
func (op reparamGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op reparamGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op reparamGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	eps, g := ds[0], ds[1]
	std := op.std.t
	if std == nil || !std.Shape().Eq(eps.Shape()) || std.Dtype() != eps.Dtype() {
		return nil, fmt.Errorf("nets: reparam gradient: run before its forward node")
	}
	y := op.out(prealloc, eps.Dtype(), eps.Shape()...)
	switch y.Dtype() {
	case tensor.Float32:
		reparamGrad(y.Float32s(), std.Float32s(), eps.Float32s(), g.Float32s())
	default:
		reparamGrad(y.Float64s(), std.Float64s(), eps.Float64s(), g.Float64s())
	}
	return y, nil
}

func reparamGrad[T float32 | float64](y, std, eps, g []T) {
	for i, e := range eps {
		y[i] = 0.5 * T(std[i]*T(e*g[i]))
	}
}

// NoGradCols adds a copy of columns [lo, hi) of the matrix x, which gets
// no gradient (noise, data): one copy where a product with a 0/1 matrix
// was a matrix product (the same values for finite x).
func NoGradCols(x *G.Node, lo, hi int) (*G.Node, error) {
	s := x.Shape()
	if s.Dims() != 2 || lo < 0 || hi <= lo || hi > s[1] {
		return nil, fmt.Errorf("nets: columns [%d, %d) of %v", lo, hi, s)
	}
	return G.ApplyOp(noGradColsOp{opBase: newBase(), lo: lo, hi: hi}, x)
}

type noGradColsOp struct {
	opBase
	noDiff
	lo, hi int
}

func (op noGradColsOp) Arity() int                        { return 1 }
func (op noGradColsOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT()) }
func (op noGradColsOp) String() string                    { return fmt.Sprintf("cols[%d:%d]", op.lo, op.hi) }
func (op noGradColsOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op noGradColsOp) Hashcode() uint32                  { return hashOf(op) }
func (op noGradColsOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op noGradColsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0], op.hi - op.lo}, nil
}

func (op noGradColsOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	if x.Shape().Dims() != 2 || x.Shape()[1] < op.hi {
		return nil, fmt.Errorf("nets: %s: got %v", op, x.Shape())
	}
	B, w, n := x.Shape()[0], x.Shape()[1], op.hi-op.lo
	y := op.out(prealloc, x.Dtype(), B, n)
	switch y.Dtype() {
	case tensor.Float32:
		copyColsOf(y.Float32s(), x.Float32s(), B, op.lo, n, w)
	case tensor.Float64:
		copyColsOf(y.Float64s(), x.Float64s(), B, op.lo, n, w)
	default:
		return nil, fmt.Errorf("nets: %s: dtype %v", op, y.Dtype())
	}
	return y, nil
}

func copyColsOf[T float32 | float64](dst, src []T, B, lo, n, w int) {
	for i := range B {
		copy(dst[i*n:(i+1)*n], src[i*w+lo:i*w+lo+n])
	}
}

// noDiff is embedded by ops whose inputs get no gradient (gradient ops,
// copies of noise).
type noDiff struct{}

func (noDiff) DiffWRT(n int) []bool { return make([]bool, n) }

// SymDiff is never called: no input gets a gradient.
func (noDiff) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errors.New("nets: differentiating an op that has no gradient")
}

// hashWrite is the FNV hash of what op writes (an op whose WriteHash tells
// apart nodes that String does not).
func hashWrite(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

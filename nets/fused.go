package nets

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"runtime"

	"github.com/chewxy/hm"
	"github.com/govae/govae/internal/kernels/cores"
	"github.com/govae/govae/internal/kernels/gemm"
	"github.com/govae/govae/internal/kernels/simd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Fused operations. Built from gorgonia's primitives, one dense layer
// act(x W + b) is about ten tape instructions forward and ten backward
// (reshape, repeat, add, compare, multiply, ...), each a full pass over the
// activations with its own buffer, and gorgonia differentiates every
// matrix product with respect to both operands, data included. These ops
// do each layer in one pass forward and the fewest passes backward, call
// the installed BLAS directly. Each op node keeps its output tensor from one
// run to the next (see opBase.out): the tape machine's Reset drops every
// register, so a preallocated output is never offered after the first run.

// Every graph's float32 matrix products go through internal/kernels/gemm, several
// times faster than gonum's pure-Go Sgemm on the shapes of a VAE. Installed
// when the package is imported (so amortized, checkpoints and every tool
// get it without a call); see UseFastBLAS.
func init() { UseFastBLAS() }

// UseFastBLAS installs internal/kernels/gemm's matrix product as gorgonia's and
// tensor's BLAS, process-wide (gorgonia.Use). Importing this package
// already did; call it again to restore it after installing another BLAS
// with gorgonia.Use. Calling it more than once is harmless.
func UseFastBLAS() { G.Use(gemm.Implementation{}) }

// UsingFastBLAS reports whether gorgonia's BLAS is the one UseFastBLAS installs.
func UsingFastBLAS() bool {
	_, ok := G.WhichBLAS().(gemm.Implementation)
	return ok
}

// Dense adds act(x W + b) to x's graph for x (B, In), w (In, Out), b (Out).
// With dataInput set, x gets no gradient: use it where x is data (the
// encoder's first layer), to skip the product dY W^T nobody reads.
// Gradient nodes: dA = dY ⊙ act'(.) written in terms of the output Y
// (relu: Y > 0; tanh: 1 - Y^2; softplus: 1 - e^-Y), dW = X^T dA,
// db = column sums of dA, dX = dA W^T.
func Dense(x, w, b *G.Node, act Activation, dataInput bool) (*G.Node, error) {
	switch act {
	case "", ReLU, Tanh, Softplus, ELU:
	default:
		return nil, fmt.Errorf("nets: dense: unknown activation %q", string(act))
	}
	if err := checkDense(x, w, b); err != nil {
		return nil, err
	}
	return G.ApplyOp(denseOp{opBase: newBase(), act: act, dataInput: dataInput}, x, w, b)
}

func checkDense(x, w, b *G.Node) error {
	if x.Shape().Dims() != 2 || w.Shape().Dims() != 2 || b.Shape().Dims() != 1 ||
		x.Shape()[1] != w.Shape()[0] || w.Shape()[1] != b.Shape()[0] {
		return fmt.Errorf("nets: dense: shapes x %v, w %v, b %v do not fit x w + b", x.Shape(), w.Shape(), b.Shape())
	}
	return nil
}

// BernoulliLogLik adds sum_j x_ij l_ij - softplus(l_ij) per row i: log p(x|z)
// of a Bernoulli with logits l, finite for every l. x gets no gradient;
// d/dl = (x - sigmoid(l)) times the row's incoming gradient.
func BernoulliLogLik(x, logits *G.Node) (*G.Node, error) {
	if x.Shape().Dims() != 2 || !x.Shape().Eq(logits.Shape()) {
		return nil, fmt.Errorf("nets: Bernoulli log-likelihood: x %v and logits %v must be equal (B, D) shapes", x.Shape(), logits.Shape())
	}
	return G.ApplyOp(bernoulliOp{newBase()}, x, logits)
}

// Sigmoid is 1/(1 + e^-x) element-wise, with float32 exp (simd.SigmoidRow,
// a few ulps) rather than gorgonia's, which goes through float64 exp one
// element at a time and is most of a decoder's time when a mean is read.
// It has no gradient: it is for outputs only (a Bernoulli's mean).
func Sigmoid(x *G.Node) (*G.Node, error) {
	if x.Shape().Dims() != 2 {
		return nil, fmt.Errorf("nets: sigmoid: x has shape %v, want a (B, D) matrix", x.Shape())
	}
	return G.ApplyOp(sigmoidOp{newBase()}, x)
}

// opBase holds the methods every fused op shares and the node's output
// buffer. Ops are values; the buffer is behind a pointer, so each ApplyOp
// (one node) gets its own with newBase.
type opBase struct{ cache *outCache }

type outCache struct {
	t *tensor.Dense
	// bound: matTNOp's bound on its last output's magnitudes (see
	// ProductBound); 0 before a run
	bound float64
	// deferred: a dense node whose product another op computes (see
	// FuseBernoulliLogLik); its run only hands out the output tensor.
	deferred bool
}

func newBase() opBase { return opBase{cache: &outCache{}} }

func (opBase) ReturnsPtr() bool     { return true }
func (opBase) CallsExtern() bool    { return false }
func (opBase) OverwritesInput() int { return -1 }

func hashOf(s fmt.Stringer) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, s.String())
	return h.Sum32()
}

func matT() G.TensorType { return G.TensorType{Dims: 2, Of: hm.TypeVariable('a')} }
func vecT() G.TensorType { return G.TensorType{Dims: 1, Of: hm.TypeVariable('a')} }

// out returns the node's output tensor of dtype dt and the given shape: the
// one it returned on the previous run when it fits, else a new one, kept for
// the next run. A node runs once per run and its value is dead before the
// tape machine could hand its register to another instruction, so reusing
// the tensor across runs is safe; it spares allocating and zeroing every
// output of every step (the weight gradients are megabytes). Without a
// cache (an op built without newBase) it returns prealloc when that fits,
// else a new tensor.
func (b opBase) out(prealloc G.Value, dt tensor.Dtype, shape ...int) *tensor.Dense {
	fits := func(d *tensor.Dense) bool {
		return d != nil && d.Dtype() == dt && d.Shape().Eq(tensor.Shape(shape)) && !d.IsView()
	}
	if b.cache != nil {
		if !fits(b.cache.t) {
			b.cache.t = tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		}
		return b.cache.t
	}
	if d, ok := prealloc.(*tensor.Dense); ok && fits(d) {
		return d
	}
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
}

// dense returns v as a contiguous dense tensor. what (the op) is formatted
// only on error: ops run every step, and Sprintf was a visible cost.
func dense(v G.Value, what fmt.Stringer) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("nets: %s: got %T, want a dense tensor", what, v)
	}
	if d.IsView() {
		// Our graphs never pass views; refuse rather than read strided data as flat.
		return nil, fmt.Errorf("nets: %s: got a strided view, want a contiguous tensor", what)
	}
	return d, nil
}

func denseAll(vs []G.Value, what fmt.Stringer) ([]*tensor.Dense, error) {
	ds := make([]*tensor.Dense, len(vs))
	for i, v := range vs {
		d, err := dense(v, what)
		if err != nil {
			return nil, err
		}
		if i > 0 && d.Dtype() != ds[0].Dtype() {
			return nil, fmt.Errorf("nets: %s: mixed dtypes %v and %v", what, ds[0].Dtype(), d.Dtype())
		}
		ds[i] = d
	}
	return ds, nil
}

// matmul is C = A' B' in row-major order with the installed BLAS (gorgonia's
// and tensor's hook), where A' is A or its transpose.
func matmul(tA, tB bool, m, n, k int, a, b, c *tensor.Dense) {
	switch c.Dtype() {
	case tensor.Float32:
		Gemm(tA, tB, m, n, k, a.Float32s(), b.Float32s(), c.Float32s())
	default:
		Gemm(tA, tB, m, n, k, a.Float64s(), b.Float64s(), c.Float64s())
	}
}

// parallelRows runs f over [0, rows) in up to GOMAXPROCS contiguous chunks
// when work (elements touched) is large enough to pay for goroutines.
// Each row is handled by exactly one call, so results do not depend on the
// split.
func parallelRows(rows, work int, f func(lo, hi int)) {
	const minWork = 1 << 15
	p := min(runtime.GOMAXPROCS(0), rows, max(work/minWork, 1))
	if p <= 1 || !cores.Spare() {
		f(0, rows)
		return
	}
	cores.Run(p, func(i int) { f(rows*i/p, rows*(i+1)/p) })
}

// denseOp is act(x W + b).
type denseOp struct {
	opBase
	act       Activation
	dataInput bool
	head      *headMember // a linear head of a HeadGroup, else nil
	// view: columns [view-1, view-1+Out) of a 4th input, GroupHeads'
	// product of all the heads (0: none, the op computes its product)
	view int
}

func (op denseOp) Arity() int {
	if op.view > 0 {
		return 4
	}
	return 3
}
func (op denseOp) Type() hm.Type {
	if op.view > 0 {
		return hm.NewFnType(matT(), matT(), vecT(), matT(), matT())
	}
	return hm.NewFnType(matT(), matT(), vecT(), matT())
}
func (op denseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, w := in[0].(tensor.Shape), in[1].(tensor.Shape)
	return tensor.Shape{x[0], w[1]}, nil
}
func (op denseOp) String() string {
	if op.view > 0 {
		return fmt.Sprintf("dense[%s,data=%t,view=%d]", op.act, op.dataInput, op.view-1)
	}
	return fmt.Sprintf("dense[%s,data=%t]", op.act, op.dataInput)
}
func (op denseOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op denseOp) Hashcode() uint32      { return hashOf(op) }
func (op denseOp) DiffWRT(int) []bool {
	d := []bool{!op.dataInput && (op.head == nil || !op.head.skipX), true, true}
	if op.view > 0 {
		d = append(d, false)
	}
	return d
}
func (op denseOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op denseOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, w, b := ds[0], ds[1], ds[2]
	B, K, N := x.Shape()[0], x.Shape()[1], w.Shape()[1]
	y := op.out(prealloc, x.Dtype(), B, N)
	if op.view > 0 {
		return y, viewCols(y, ds[3], op.view-1)
	}
	if op.cache != nil && op.cache.deferred {
		return y, nil
	}
	matmul(false, false, B, N, K, x, w, y)
	switch {
	case y.Dtype() == tensor.Float32 && op.act == ReLU:
		ys, bs := y.Float32s(), b.Float32s()
		parallelRows(B, B*N, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				simd.BiasRelu(ys[i*N:(i+1)*N], bs)
			}
		})
	case y.Dtype() == tensor.Float32 && op.act == "":
		// A linear layer (a decoder's logits): the bias in AVX2, the same
		// sums as the scalar loop's.
		ys, bs := y.Float32s(), b.Float32s()
		parallelRows(B, B*N, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				simd.Add(ys[i*N:(i+1)*N], bs)
			}
		})
	case y.Dtype() == tensor.Float32:
		biasAct(y.Float32s(), b.Float32s(), B, N, op.act, simd.Softplus)
	default:
		biasAct(y.Float64s(), b.Float64s(), B, N, op.act, softplus64)
	}
	return y, nil
}

func biasAct[T float32 | float64](y, b []T, rows, cols int, act Activation, softplus func(T) T) {
	parallelRows(rows, rows*cols, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := y[i*cols : (i+1)*cols]
			r = r[:len(b)]
			// One loop per activation: a switch inside the loop costs more
			// than the arithmetic.
			switch act {
			case ReLU:
				for j, bj := range b {
					r[j] = max(r[j]+bj, 0)
				}
			case Tanh:
				for j, bj := range b {
					r[j] = T(math.Tanh(float64(r[j] + bj)))
				}
			case Softplus:
				for j, bj := range b {
					r[j] = softplus(r[j] + bj)
				}
			case ELU:
				for j, bj := range b {
					r[j] = elu(r[j] + bj)
				}
			default:
				for j, bj := range b {
					r[j] += bj
				}
			}
		}
	})
}

func (op denseOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := in[0], in[1]
	dA := grad
	if op.act != "" {
		var err error
		if dA, err = G.ApplyOp(actGradOp{opBase: newBase(), act: op.act}, output, grad); err != nil {
			return nil, err
		}
	}
	dW, err := G.ApplyOp(matTNOp{newBase()}, x, dA)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(colSumOp{newBase()}, dA)
	if err != nil {
		return nil, err
	}
	var dX *G.Node
	switch {
	case op.head != nil:
		if dX, err = op.head.pullX(dA, w); err != nil {
			return nil, err
		}
	case !op.dataInput:
		if dX, err = G.ApplyOp(matNTOp{newBase()}, dA, w); err != nil {
			return nil, err
		}
	}
	if op.view > 0 {
		return G.Nodes{dX, dW, db, nil}, nil
	}
	return G.Nodes{dX, dW, db}, nil
}

// actGradOp is dY ⊙ act'(.) from the activation's output Y and dY.
type actGradOp struct {
	opBase
	act Activation
}

func (op actGradOp) Arity() int    { return 2 }
func (op actGradOp) Type() hm.Type { return hm.NewFnType(matT(), matT(), matT()) }
func (op actGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (op actGradOp) String() string                    { return fmt.Sprintf("dact[%s]", op.act) }
func (op actGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op actGradOp) Hashcode() uint32                  { return hashOf(op) }
func (op actGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }

func (op actGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	y, g := ds[0], ds[1]
	rows, cols := y.Shape()[0], y.Shape()[1]
	d := op.out(prealloc, y.Dtype(), rows, cols)
	switch {
	case d.Dtype() == tensor.Float32 && op.act == ReLU:
		ds, ys, gs := d.Float32s(), y.Float32s(), g.Float32s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			simd.ReluGrad(ds[lo*cols:hi*cols], ys[lo*cols:hi*cols], gs[lo*cols:hi*cols])
		})
	case d.Dtype() == tensor.Float32:
		actGrad(d.Float32s(), y.Float32s(), g.Float32s(), rows, cols, op.act)
	default:
		actGrad(d.Float64s(), y.Float64s(), g.Float64s(), rows, cols, op.act)
	}
	return d, nil
}

func actGrad[T float32 | float64](d, y, g []T, rows, cols int, act Activation) {
	parallelRows(rows, rows*cols, func(lo, hi int) {
		d, y, g := d[lo*cols:hi*cols], y[lo*cols:hi*cols], g[lo*cols:hi*cols]
		switch act {
		case ReLU:
			for i, yi := range y {
				if yi > 0 {
					d[i] = g[i]
				} else {
					d[i] = 0
				}
			}
		case Tanh:
			for i, yi := range y {
				d[i] = g[i] * (1 - yi*yi)
			}
		case Softplus:
			// sigmoid(a) = 1 - exp(-softplus(a)); expm1 keeps it accurate
			// where softplus(a) is tiny.
			for i, yi := range y {
				d[i] = g[i] * T(-math.Expm1(-float64(yi)))
			}
		case ELU:
			// elu'(a) = 1 for a > 0, e^a = y + 1 otherwise.
			for i, yi := range y {
				if yi > 0 {
					d[i] = g[i]
				} else {
					d[i] = g[i] * (yi + 1)
				}
			}
		}
	})
}

// matTNOp is A^T B: the weight gradient X^T dA.
type matTNOp struct{ opBase }

func (op matTNOp) Arity() int                        { return 2 }
func (op matTNOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), matT()) }
func (op matTNOp) String() string                    { return "AᵀB" }
func (op matTNOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op matTNOp) Hashcode() uint32                  { return hashOf(op) }
func (op matTNOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op matTNOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, b := in[0].(tensor.Shape), in[1].(tensor.Shape)
	return tensor.Shape{a[1], b[1]}, nil
}

func (op matTNOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	a, b := ds[0], ds[1]
	k, m, n := a.Shape()[0], a.Shape()[1], b.Shape()[1]
	c := op.out(prealloc, a.Dtype(), m, n)
	matmul(true, false, m, n, k, a, b, c)
	op.cache.bound = productBound(a, b, k)
	return c, nil
}

// operandBound is the magnitude below which productBound finds a
// product's operands (2^50, exact in float32).
const operandBound = 1 << 50

// productBound bounds the magnitudes of the entries of the k-term product
// of a and b (float32): with every operand entry below 2^50 in magnitude,
// each exact sum is below k·2^100, and the float32 one (every rounding a
// factor of at most 1+2^-24) below twice that for k < 2^22. Else, or for
// float64, it is +Inf: no bound. The operands are a batch's rows, far
// fewer numbers than the weight-sized product.
func productBound(a, b *tensor.Dense, k int) float64 {
	if a.Dtype() != tensor.Float32 || k >= 1<<22 ||
		!simd.AllBelow(a.Float32s(), operandBound) || !simd.AllBelow(b.Float32s(), operandBound) {
		return math.Inf(1)
	}
	return 2 * float64(k) * operandBound * operandBound
}

// ProductBound reports, for a node made by a dense layer's derivative as
// its weight gradient XᵀdY (see Dense), a bound on the magnitudes of the
// entries of the value of its last run, computed from the operands: a
// bound below a limit shows every entry is, without reading the product
// (+Inf: none known, as with NaN or huge operands). ok is false for other
// nodes and before the first run.
func ProductBound(n *G.Node) (bound float64, ok bool) {
	op, isTN := n.Op().(matTNOp)
	if !isTN || op.cache.bound == 0 {
		return 0, false
	}
	return op.cache.bound, true
}

// matNTOp is A B^T: the input gradient dA W^T.
type matNTOp struct{ opBase }

func (op matNTOp) Arity() int                        { return 2 }
func (op matNTOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), matT()) }
func (op matNTOp) String() string                    { return "ABᵀ" }
func (op matNTOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op matNTOp) Hashcode() uint32                  { return hashOf(op) }
func (op matNTOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op matNTOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, b := in[0].(tensor.Shape), in[1].(tensor.Shape)
	return tensor.Shape{a[0], b[0]}, nil
}

func (op matNTOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	a, b := ds[0], ds[1]
	m, k, n := a.Shape()[0], a.Shape()[1], b.Shape()[0]
	c := op.out(prealloc, a.Dtype(), m, n)
	matmul(false, true, m, n, k, a, b, c)
	return c, nil
}

// colSumOp sums a matrix's rows: the bias gradient.
type colSumOp struct{ opBase }

func (op colSumOp) Arity() int                        { return 1 }
func (op colSumOp) Type() hm.Type                     { return hm.NewFnType(matT(), vecT()) }
func (op colSumOp) String() string                    { return "Σrows" }
func (op colSumOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op colSumOp) Hashcode() uint32                  { return hashOf(op) }
func (op colSumOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op colSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[1]}, nil
}

func (op colSumOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	a, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	rows, cols := a.Shape()[0], a.Shape()[1]
	s := op.out(prealloc, a.Dtype(), cols)
	switch s.Dtype() {
	case tensor.Float32:
		ss, as := s.Float32s(), a.Float32s()
		clear(ss)
		for i := range rows {
			simd.Add(ss, as[i*cols:(i+1)*cols])
		}
	default:
		colSum(s.Float64s(), a.Float64s(), rows, cols)
	}
	return s, nil
}

func colSum[T float32 | float64](s, a []T, rows, cols int) {
	clear(s)
	for i := range rows {
		for j, v := range a[i*cols : (i+1)*cols] {
			s[j] += v
		}
	}
}

// bernoulliOp is sum_j x_ij l_ij - softplus(l_ij) per row.
type bernoulliOp struct{ opBase }

func (op bernoulliOp) Arity() int                        { return 2 }
func (op bernoulliOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), vecT()) }
func (op bernoulliOp) String() string                    { return "bernoulliLogLik" }
func (op bernoulliOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op bernoulliOp) Hashcode() uint32                  { return hashOf(op) }
func (op bernoulliOp) DiffWRT(int) []bool                { return []bool{false, true} }
func (op bernoulliOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op bernoulliOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0]}, nil
}

func (op bernoulliOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, l := ds[0], ds[1]
	rows, cols := x.Shape()[0], x.Shape()[1]
	s := op.out(prealloc, x.Dtype(), rows)
	switch s.Dtype() {
	case tensor.Float32:
		xs, ls, ss := x.Float32s(), l.Float32s(), s.Float32s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				ss[i] = simd.BernoulliRow(xs[i*cols:(i+1)*cols], ls[i*cols:(i+1)*cols])
			}
		})
	default:
		bernoulliRows(s.Float64s(), x.Float64s(), l.Float64s(), rows, cols)
	}
	return s, nil
}

// sigmoidOp is sigmoid(x), forward only.
type sigmoidOp struct{ opBase }

func (op sigmoidOp) Arity() int                        { return 1 }
func (op sigmoidOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT()) }
func (op sigmoidOp) String() string                    { return "sigmoidFast" }
func (op sigmoidOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op sigmoidOp) Hashcode() uint32                  { return hashOf(op) }
func (op sigmoidOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op sigmoidOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op sigmoidOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	x, err := dense(in[0], op)
	if err != nil {
		return nil, err
	}
	rows, cols := x.Shape()[0], x.Shape()[1]
	y := op.out(prealloc, x.Dtype(), rows, cols)
	switch y.Dtype() {
	case tensor.Float32:
		xs, ys := x.Float32s(), y.Float32s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			simd.SigmoidRow(ys[lo*cols:hi*cols], xs[lo*cols:hi*cols])
		})
	default:
		xs, ys := x.Float64s(), y.Float64s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			for i := lo * cols; i < hi*cols; i++ {
				ys[i] = sigmoid64(xs[i])
			}
		})
	}
	return y, nil
}

func bernoulliRows(s, x, l []float64, rows, cols int) {
	parallelRows(rows, rows*cols, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xi, li := x[i*cols:(i+1)*cols], l[i*cols:(i+1)*cols]
			var acc float64
			for j, lj := range li {
				acc += xi[j]*lj - softplus64(lj)
			}
			s[i] = acc
		}
	})
}

func (op bernoulliOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dl, err := G.ApplyOp(bernoulliGradOp{newBase()}, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{nil, dl}, nil
}

// bernoulliGradOp is g_i (x_ij - sigmoid(l_ij)).
type bernoulliGradOp struct{ opBase }

func (op bernoulliGradOp) Arity() int                        { return 3 }
func (op bernoulliGradOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), vecT(), matT()) }
func (op bernoulliGradOp) String() string                    { return "dbernoulliLogLik" }
func (op bernoulliGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op bernoulliGradOp) Hashcode() uint32                  { return hashOf(op) }
func (op bernoulliGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op bernoulliGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op bernoulliGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, l, g := ds[0], ds[1], ds[2]
	rows, cols := x.Shape()[0], x.Shape()[1]
	d := op.out(prealloc, x.Dtype(), rows, cols)
	switch d.Dtype() {
	case tensor.Float32:
		ds, xs, ls, gs := d.Float32s(), x.Float32s(), l.Float32s(), g.Float32s()
		parallelRows(rows, rows*cols, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				simd.BernoulliGrad(ds[i*cols:(i+1)*cols], xs[i*cols:(i+1)*cols], ls[i*cols:(i+1)*cols], gs[i])
			}
		})
	default:
		bernoulliGrad(d.Float64s(), x.Float64s(), l.Float64s(), g.Float64s(), rows, cols)
	}
	return d, nil
}

func bernoulliGrad(d, x, l, g []float64, rows, cols int) {
	parallelRows(rows, rows*cols, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := g[i]
			for j := i * cols; j < (i+1)*cols; j++ {
				d[j] = gi * (x[j] - sigmoid64(l[j]))
			}
		}
	})
}

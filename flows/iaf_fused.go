package flows

import (
	"fmt"
	"hash"
	"slices"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fuseIAFStep selects the fused IAF step (iafStepOp) where it applies;
// tests turn it off to compare with the node-by-node step.
var fuseIAFStep = true

// iafStepOp is a whole IAF step with one ReLU hidden layer and a context
// (the VAE families' step) as one node: inputs z (B, D), h (B, C), w0 (D, H),
// b0 (H), wc (C, H), bc (H), w1 (H, 2D), b1 (2D); output (B, D+1), f(z)
// beside log|det|, as the gate gives it:
//
//	r = relu((z (w0 ⊙ M0) + b0) + (h wc + bc)),  [m, s] = r (w1 ⊙ M1) + b1,
//	then iafGate.
//
// Node by node the step is 9 nodes forward and about 20 backward, for
// products of 128 x 20 x 41: their overhead, not the arithmetic, was what
// an IAF step cost beyond diag's. The op calls the installed BLAS on the
// same operands in the same order, and rounds every intermediate as those
// nodes did, so its forward values are theirs bit for bit; so are its
// gradients, but for the sum of z's two gradient terms. The backward op
// (iafStepGradOp) resumes from the forward pass's activations and gate
// values when its output is the one the forward op saved.
type iafStepOp struct {
	opCommon
	gate   iafGate
	name   string // the step's, so that distinct steps never merge
	m0, m1 []float64
	st     *iafStepState
}

// iafStepState holds the buffers of one node, typed *iafBufs[float32] or
// *iafBufs[float64], and whether they hold the last forward pass.
type iafStepState struct {
	bufs    any
	savedOK bool
}

// iafBufs are an IAF step node's buffers, kept from run to run.
type iafBufs[T float32 | float64] struct {
	w0m, w1m, a, c, r, x, out []T
	work                      []float64 // the gate's, B rows of 3D
	row                       []float64 // one row of x, z, out, gout as float64
	grow                      []float64 // one row of the gate's gradients, gx then gz
	// Backward: the packed gradients (see iafStepGradOp) and scratch.
	grad, gx, gzGate, da []T
	outT, gradT          *tensor.Dense
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// newIAFStep adds the fused step's node for the IAF f (one hidden layer,
// context, ReLU) on z and context h, whose parameters b binds.
func newIAFStep(f IAF, ws []*G.Node, z, h *G.Node) (*G.Node, error) {
	op := &iafStepOp{gate: iafGate{D: f.dim, f32: z.Dtype() == tensor.Float32}, name: f.made.Layers[0].Name,
		m0: f.made.Layers[0].Mask, m1: f.made.Layers[1].Mask, st: &iafStepState{}}
	H := f.made.Layers[0].Out
	want := [][]int{{f.dim, H}, {H}, {f.context, H}, {H}, {H, 2 * f.dim}, {2 * f.dim}}
	for a, n := range ws {
		if !n.Shape().Eq(tensor.Shape(want[a])) || n.Dtype() != z.Dtype() {
			return nil, fmt.Errorf("flows: IAF %s: parameter %d has shape %v (%v), want %v (%v)", op.name, a, n.Shape(), n.Dtype(), want[a], z.Dtype())
		}
	}
	return G.ApplyOp(op, append(G.Nodes{z, h}, ws...)...)
}

func (op *iafStepOp) Arity() int { return 8 }
func (op *iafStepOp) Type() hm.Type {
	return fnType([]bool{false, false, false, true, false, true, false, true}, false)
}
func (op *iafStepOp) String() string                    { return "iafStep[" + op.name + "]" }
func (op *iafStepOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *iafStepOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *iafStepOp) DiffWRT(n int) []bool              { return trues(n) }
func (op *iafStepOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *iafStepOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: input 0 has no shape", op)
	}
	return tensor.Shape{s[0], op.gate.D + 1}, nil
}

func (op *iafStepOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseInputs(in, op)
	if err != nil {
		return nil, err
	}
	op.st.savedOK = false
	switch ds[0].Dtype() {
	case tensor.Float32:
		return iafStepForward[float32](op, ds)
	case tensor.Float64:
		return iafStepForward[float64](op, ds)
	}
	return nil, fmt.Errorf("flows: %s: dtype %v, want float32 or float64", op, ds[0].Dtype())
}

// denseInputs checks that every input is a contiguous dense tensor of one dtype.
func denseInputs(in []G.Value, what fmt.Stringer) ([]*tensor.Dense, error) {
	ds := make([]*tensor.Dense, len(in))
	for a, v := range in {
		d, ok := v.(*tensor.Dense)
		if !ok || d.IsView() {
			return nil, fmt.Errorf("flows: %s: input %d is %T, want a contiguous dense tensor", what, a, v)
		}
		if a > 0 && d.Dtype() != ds[0].Dtype() {
			return nil, fmt.Errorf("flows: %s: input %d has dtype %v, input 0 %v", what, a, d.Dtype(), ds[0].Dtype())
		}
		ds[a] = d
	}
	return ds, nil
}

// bufsOf returns op's buffers of element type T.
func bufsOf[T float32 | float64](st *iafStepState) *iafBufs[T] {
	b, ok := st.bufs.(*iafBufs[T])
	if !ok {
		b = &iafBufs[T]{}
		st.bufs = b
	}
	return b
}

func iafStepForward[T float32 | float64](op *iafStepOp, ds []*tensor.Dense) (G.Value, error) {
	z, h := ds[0].Data().([]T), ds[1].Data().([]T)
	w0, b0, wc, bc, w1, b1 := ds[2].Data().([]T), ds[3].Data().([]T), ds[4].Data().([]T), ds[5].Data().([]T), ds[6].Data().([]T), ds[7].Data().([]T)
	D, H, C := op.gate.D, len(b0), ds[4].Shape()[0]
	B := len(z) / D
	if len(h) != B*C {
		return nil, fmt.Errorf("flows: %s: context has %d values, want %d x %d", op, len(h), B, C)
	}
	bf := bufsOf[T](op.st)
	// The node-by-node step: mask nodes, then dense nodes (product, then
	// + bias), add+relu, dense, gate.
	bf.w0m, bf.w1m = mask(bf.w0m, w0, op.m0), mask(bf.w1m, w1, op.m1)
	bf.a, bf.c, bf.r = grow(bf.a, B*H), grow(bf.c, B*H), grow(bf.r, B*H)
	bf.x, bf.out = grow(bf.x, B*2*D), grow(bf.out, B*(D+1))
	gemm(false, false, B, H, D, z, bf.w0m, bf.a)
	addBias(bf.a, b0)
	gemm(false, false, B, H, C, h, wc, bf.c)
	addBias(bf.c, bc)
	for i, v := range bf.a {
		bf.r[i] = max(v+bf.c[i], 0)
	}
	gemm(false, false, B, 2*D, H, bf.r, bf.w1m, bf.x)
	addBias(bf.x, b1)
	nw := op.gate.workSize()
	bf.work, bf.row = grow(bf.work, B*nw), grow(bf.row, 4*D+1)
	xr, zr, or := bf.row[:2*D], bf.row[2*D:3*D], bf.row[3*D:]
	rows := [][]float64{xr, zr}
	for i := range B {
		toF64(xr, bf.x[i*2*D:(i+1)*2*D])
		toF64(zr, z[i*D:(i+1)*D])
		if err := op.gate.forward(rows, or, bf.work[i*nw:(i+1)*nw]); err != nil {
			return nil, fmt.Errorf("flows: %s: row %d: %w", op, i, err)
		}
		for j, v := range or {
			bf.out[i*(D+1)+j] = T(v)
		}
	}
	if bf.outT == nil || bf.outT.Shape()[0] != B {
		bf.outT = tensor.New(tensor.WithShape(B, D+1), tensor.WithBacking(bf.out))
	}
	op.st.savedOK = true
	return bf.outT, nil
}

func mask[T float32 | float64](dst, w []T, m []float64) []T {
	dst = grow(dst, len(w))
	for i, mi := range m {
		dst[i] = w[i] * T(mi)
	}
	return dst
}

func addBias[T float32 | float64](y, b []T) {
	for i := 0; i < len(y); i += len(b) {
		r := y[i : i+len(b)]
		for j, bj := range b {
			r[j] += bj
		}
	}
}

func toF64[T float32 | float64](dst []float64, src []T) {
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// gemm is C = A' B' in row-major order with the installed BLAS (the one
// nets' dense ops call), where A' is A or its transpose.
func gemm[T float32 | float64](tA, tB bool, m, n, k int, a, b, c []T) {
	ta, tb := blas.NoTrans, blas.NoTrans
	lda, ldb := k, n
	if tA {
		ta, lda = blas.Trans, m
	}
	if tB {
		tb, ldb = blas.Trans, k
	}
	impl := tensor.WhichBLAS()
	switch c := any(c).(type) {
	case []float32:
		impl.Sgemm(ta, tb, m, n, k, 1, any(a).([]float32), lda, any(b).([]float32), ldb, 0, c, n)
	case []float64:
		impl.Dgemm(ta, tb, m, n, k, 1, any(a).([]float64), lda, any(b).([]float64), ldb, 0, c, n)
	}
}

// SymDiff is one iafStepGradOp giving every input's gradient packed in one
// vector, cut into one node per input.
func (op *iafStepOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	packed, err := G.ApplyOp(&iafStepGradOp{fwd: op}, append(append(G.Nodes{}, in...), output, grad)...)
	if err != nil {
		return nil, err
	}
	out := make(G.Nodes, len(in))
	off := 0
	for a, n := range in {
		shape := n.Shape().Clone()
		if out[a], err = G.ApplyOp(&pieceOp{off: off, shape: shape, name: op.name, cache: &outCache{}}, packed); err != nil {
			return nil, err
		}
		off += shape.TotalSize()
	}
	return out, nil
}

// iafStepGradOp is an IAF step's backward pass: inputs the forward op's
// (z, h, w0, b0, wc, bc, w1, b1), its output and the output's gradient;
// output the gradients of the 8 inputs, flattened one after the other.
type iafStepGradOp struct {
	opCommon
	fwd *iafStepOp
}

func (op *iafStepGradOp) Arity() int { return 10 }
func (op *iafStepGradOp) Type() hm.Type {
	return fnType([]bool{false, false, false, true, false, true, false, true, false, false}, true)
}
func (op *iafStepGradOp) String() string                    { return "∂" + op.fwd.String() }
func (op *iafStepGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *iafStepGradOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *iafStepGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *iafStepGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	n := 0
	for _, s := range in[:8] {
		sh, ok := s.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%s: an input has no shape", op)
		}
		n += sh.TotalSize()
	}
	return tensor.Shape{n}, nil
}

func (op *iafStepGradOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseInputs(in, op)
	if err != nil {
		return nil, err
	}
	switch ds[0].Dtype() {
	case tensor.Float32:
		return iafStepBackward[float32](op.fwd, ds)
	case tensor.Float64:
		return iafStepBackward[float64](op.fwd, ds)
	}
	return nil, fmt.Errorf("flows: %s: dtype %v, want float32 or float64", op, ds[0].Dtype())
}

func iafStepBackward[T float32 | float64](op *iafStepOp, ds []*tensor.Dense) (G.Value, error) {
	bf := bufsOf[T](op.st)
	out, gout := ds[8].Data().([]T), ds[9].Data().([]T)
	if !op.st.savedOK || !slices.Equal(out, bf.out) {
		// Not the saved pass (another run of the node came between):
		// recompute it, which gives the same out.
		if _, err := iafStepForward[T](op, ds[:8]); err != nil {
			return nil, err
		}
	}
	z, h, wc := ds[0].Data().([]T), ds[1].Data().([]T), ds[4].Data().([]T)
	D, H, C := op.gate.D, len(op.m0)/op.gate.D, ds[4].Shape()[0]
	B := len(z) / D
	n := 0
	for _, d := range ds[:8] {
		n += d.Shape().TotalSize()
	}
	bf.grad = grow(bf.grad, n)
	g := bf.grad
	cut := func(k int) []T { s := g[:k]; g = g[k:]; return s }
	gz, gh, gw0, gb0, gwc, gbc, gw1, gb1 := cut(B*D), cut(B*C), cut(D*H), cut(H), cut(C*H), cut(H), cut(H*2*D), cut(2*D)

	// The gate, row by row in float64 from forward's saved values, rounded
	// to T as the gate's gradient node did.
	nw := op.gate.workSize()
	bf.gx, bf.gzGate = grow(bf.gx, B*2*D), grow(bf.gzGate, B*D)
	bf.row, bf.grow = grow(bf.row, 4*D+1), grow(bf.grow, 3*D)
	xr, zr, gr := bf.row[:2*D], bf.row[2*D:3*D], bf.row[3*D:]
	gxr, gzr := bf.grow[:2*D], bf.grow[2*D:]
	rows, gin := [][]float64{xr, zr}, [][]float64{gxr, gzr}
	for i := range B {
		toF64(xr, bf.x[i*2*D:(i+1)*2*D])
		toF64(zr, z[i*D:(i+1)*D])
		toF64(gr, gout[i*(D+1):(i+1)*(D+1)])
		clear(bf.grow)
		if err := op.gate.resume(rows, nil, gr, gin, bf.work[i*nw:(i+1)*nw]); err != nil {
			return nil, fmt.Errorf("flows: %s: row %d: %w", op, i, err)
		}
		for j, v := range gxr {
			bf.gx[i*2*D+j] = T(v)
		}
		for j, v := range gzr {
			bf.gzGate[i*D+j] = T(v)
		}
	}
	// [m, s] = r w1m + b1.
	gemm(true, false, H, 2*D, B, bf.r, bf.gx, gw1)
	mask(gw1, gw1, op.m1)
	colSums(gb1, bf.gx)
	bf.da = grow(bf.da, B*H)
	gemm(false, true, B, H, 2*D, bf.gx, bf.w1m, bf.da)
	for i, r := range bf.r { // relu' from its output, as nets' ReLU gradient
		if !(r > 0) {
			bf.da[i] = 0
		}
	}
	// r = relu(z w0m + b0 + h wc + bc).
	gemm(true, false, D, H, B, z, bf.da, gw0)
	mask(gw0, gw0, op.m0)
	colSums(gb0, bf.da)
	copy(gbc, gb0)
	gemm(true, false, C, H, B, h, bf.da, gwc)
	gemm(false, true, B, D, H, bf.da, bf.w0m, gz)
	for i, v := range bf.gzGate {
		gz[i] += v
	}
	gemm(false, true, B, C, H, bf.da, wc, gh)
	if bf.gradT == nil || bf.gradT.Shape()[0] != len(bf.grad) {
		bf.gradT = tensor.New(tensor.WithShape(len(bf.grad)), tensor.WithBacking(bf.grad))
	}
	return bf.gradT, nil
}

// colSums sets s to the sum of a's rows (width len(s)), row after row as
// nets' bias gradient sums them.
func colSums[T float32 | float64](s, a []T) {
	clear(s)
	for i := 0; i < len(a); i += len(s) {
		for j, v := range a[i : i+len(s)] {
			s[j] += v
		}
	}
}

// pieceOp is values [off, off + size of shape) of a vector, in shape: one
// input's gradient out of iafStepGradOp's.
type pieceOp struct {
	opCommon
	off   int
	shape tensor.Shape
	name  string
	cache *outCache
}

func (op *pieceOp) Arity() int { return 1 }
func (op *pieceOp) Type() hm.Type {
	return hm.NewFnType(tensorType(true), G.TensorType{Dims: op.shape.Dims(), Of: hm.TypeVariable('a')})
}
func (op *pieceOp) String() string {
	return fmt.Sprintf("piece[%s,%d,%v]", op.name, op.off, op.shape)
}
func (op *pieceOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *pieceOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *pieceOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *pieceOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}

func (op *pieceOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	d, ok := in[0].(*tensor.Dense)
	n := op.shape.TotalSize()
	if !ok || d.IsView() || d.Shape().TotalSize() < op.off+n {
		return nil, fmt.Errorf("flows: %s: got %v", op, in[0].Shape())
	}
	t := op.cache.out(d.Dtype(), op.shape...)
	switch d.Dtype() {
	case tensor.Float32:
		copy(t.Float32s(), d.Float32s()[op.off:op.off+n])
	case tensor.Float64:
		copy(t.Float64s(), d.Float64s()[op.off:op.off+n])
	default:
		return nil, fmt.Errorf("flows: %s: dtype %v", op, d.Dtype())
	}
	return t, nil
}

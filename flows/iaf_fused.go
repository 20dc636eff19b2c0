package flows

import (
	"fmt"
	"hash"
	"slices"

	"github.com/chewxy/hm"
	"github.com/govae/govae/internal/kernels/simd"
	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fuseIAFStep selects the fused IAF chain (iafChainOp) where it applies;
// tests turn it off to compare with the node-by-node steps.
var fuseIAFStep = true

// iafChainOp is K consecutive IAF steps with one ReLU hidden layer and a
// context each (the VAE families' steps), on one context h, as one node:
// inputs z (B, D), h (B, C), then per step w0 (D, H), b0 (H), wc (C, H),
// bc (H), w1 (H, 2D), b1 (2D); output (B, D+1), f_K(...f_1(z)) beside the
// sum of the steps' log|det|. Step k computes
//
//	r = relu((z (w0 ⊙ M0) + b0) + (h wc + bc)),  [m, s] = r (w1 ⊙ M1) + b1,
//	then iafGate,
//
// and the log-determinants are summed in step order, ((ld_1 + ld_2) + ...),
// as Compose sums them. Node by node a step is 9 nodes forward, about 20
// backward and Compose's glue (splits, pads, adds), for products of
// 128 x 20 x 41: their overhead, not the arithmetic, was what an IAF step
// cost beyond diag's. The op calls the installed BLAS on the same operands
// in the same order, and rounds every intermediate as those nodes did, so
// its forward values are theirs bit for bit (when the chain starts the
// composition); its gradients are theirs but for the order in which z's two
// terms and the steps' h terms are summed. The backward op (iafChainGradOp)
// resumes from the forward pass's activations and gate values when its
// output is the one the forward op saved.
type iafChainOp struct {
	opCommon
	steps []iafStepSpec
	st    *iafStepState
}

// iafStepSpec is one step of a chain.
type iafStepSpec struct {
	gate   iafGate
	name   string // the step's, so that distinct chains never merge
	m0, m1 []float64
}

// iafStepState holds the buffers of one node, typed *iafBufs[float32] or
// *iafBufs[float64], and whether they hold the last forward pass.
type iafStepState struct {
	bufs    any
	savedOK bool
}

// iafBufs are an IAF chain node's buffers, kept from run to run.
type iafBufs[T float32 | float64] struct {
	steps      []iafStepBufs[T]
	out        []T // (B, D+1): f_K beside Σ log|det|
	row        []float64
	grad, gcur []T
	gzNext, gh []T // a step's z and h gradients
	outT       *tensor.Dense
	gradT      *tensor.Dense
	// The steps' context maps side by side, wcAll (C, K H), and h wcAll
	// (B, K H): one product for the K steps' context products, whose
	// elements are theirs (each is its own sum over h's columns).
	wcAll, cAll []T
	// Backward scratch: [w0m; wc] ((D+C), H), [z | h] (B, D+C) and the
	// products with them, (B, D+C) and ((D+C), H): one product for each
	// pair of a step's products that share an operand.
	wzc, zh, gzh, gwzc []T
}

// iafStepBufs are one step's: its input z, the masked weights, the
// pre-activations a (z part) and c (h part), r, [m, s], the step's packed
// output, the gate's work, and backward scratch.
type iafStepBufs[T float32 | float64] struct {
	z, w0m, w1m, a, c, r, x, out []T
	work                         []float64 // the gate's, B rows of 3D
	na, e, l                     []float32 // the float32 gate's scratch
	gx, gzGate, da               []T
}

// dataOf is d's backing slice: tensor's Data builds it through reflect
// and allocates, about 1% of an IAF step for the chain's 50 calls.
func dataOf[T float32 | float64](d *tensor.Dense) []T {
	if _, ok := any(T(0)).(float32); ok {
		return any(d.Float32s()).([]T)
	}
	return any(d.Float64s()).([]T)
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// forwardIAFChain adds the fused node for the steps bs (fusable, one
// binding and context) applied to z in order, and splits its output.
func forwardIAFChain(bs []boundIAF, z *G.Node) (out, logDet *G.Node, err error) {
	op := &iafChainOp{st: &iafStepState{}}
	ins := G.Nodes{z, bs[0].h}
	for _, bf := range bs {
		f := bf.f
		op.steps = append(op.steps, iafStepSpec{gate: iafGate{D: f.dim, f32: z.Dtype() == tensor.Float32},
			name: f.made.Layers[0].Name, m0: f.made.Layers[0].Mask, m1: f.made.Layers[1].Mask})
		H := f.made.Layers[0].Out
		want := [][]int{{f.dim, H}, {H}, {f.context, H}, {H}, {H, 2 * f.dim}, {2 * f.dim}}
		for a, n := range bf.params() {
			if !n.Shape().Eq(tensor.Shape(want[a])) || n.Dtype() != z.Dtype() {
				return nil, nil, fmt.Errorf("flows: IAF %s: parameter %d has shape %v (%v), want %v (%v)", f.made.Layers[0].Name, a, n.Shape(), n.Dtype(), want[a], z.Dtype())
			}
			ins = append(ins, n)
		}
	}
	packed, err := G.ApplyOp(op, ins...)
	if err != nil {
		return nil, nil, fmt.Errorf("flows: IAF: %w", err)
	}
	return splitGate(packed, bs[0].f.dim)
}

func (op *iafChainOp) Arity() int { return 2 + 6*len(op.steps) }
func (op *iafChainOp) vecs() []bool {
	v := []bool{false, false}
	for range op.steps {
		v = append(v, false, true, false, true, false, true)
	}
	return v
}
func (op *iafChainOp) Type() hm.Type { return fnType(op.vecs(), false) }
func (op *iafChainOp) String() string {
	return fmt.Sprintf("iafChain[%s,%d]", op.steps[0].name, len(op.steps))
}
func (op *iafChainOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *iafChainOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *iafChainOp) DiffWRT(n int) []bool              { return trues(n) }
func (op *iafChainOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *iafChainOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: input 0 has no shape", op)
	}
	return tensor.Shape{s[0], op.steps[0].gate.D + 1}, nil
}

func (op *iafChainOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseInputs(in, op)
	if err != nil {
		return nil, err
	}
	op.st.savedOK = false
	switch ds[0].Dtype() {
	case tensor.Float32:
		return iafChainForward[float32](op, ds)
	case tensor.Float64:
		return iafChainForward[float64](op, ds)
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
func bufsOf[T float32 | float64](st *iafStepState, K int) *iafBufs[T] {
	b, ok := st.bufs.(*iafBufs[T])
	if !ok || len(b.steps) != K {
		b = &iafBufs[T]{steps: make([]iafStepBufs[T], K)}
		st.bufs = b
	}
	return b
}

func iafChainForward[T float32 | float64](op *iafChainOp, ds []*tensor.Dense) (G.Value, error) {
	z, h := dataOf[T](ds[0]), dataOf[T](ds[1])
	D := op.steps[0].gate.D
	B := len(z) / D
	bf := bufsOf[T](op.st, len(op.steps))
	bf.out = grow(bf.out, B*(D+1))
	C := ds[1].Shape()[1]
	if len(h) != B*C {
		return nil, fmt.Errorf("flows: %s: context has %d values, want %d x %d", op, len(h), B, C)
	}
	HK := 0 // the steps' hidden widths summed: cAll's width
	for k := range op.steps {
		HK += ds[3+6*k].Shape()[0]
	}
	bf.wcAll, bf.cAll = grow(bf.wcAll, C*HK), grow(bf.cAll, B*HK)
	off := 0
	for k := range op.steps {
		wc := dataOf[T](ds[4+6*k])
		H := len(wc) / C
		for p := range C {
			copy(bf.wcAll[p*HK+off:p*HK+off+H], wc[p*H:(p+1)*H])
		}
		off += H
	}
	nets.Gemm(false, false, B, HK, C, h, bf.wcAll, bf.cAll)
	off = 0
	for k := range op.steps {
		sb := &bf.steps[k]
		sb.z = grow(sb.z, B*D)
		if k == 0 {
			copy(sb.z, z)
		} else { // the previous step's f(z), as the split node copied it
			prev := bf.steps[k-1].out
			for i := range B {
				copy(sb.z[i*D:(i+1)*D], prev[i*(D+1):i*(D+1)+D])
			}
		}
		p := ds[2+6*k : 8+6*k]
		if err := iafStepForward(&op.steps[k], sb, bf.cAll, off, HK, p, &bf.row); err != nil {
			return nil, fmt.Errorf("flows: %s: step %d: %w", op, k+1, err)
		}
		off += p[1].Shape()[0]
		for i := range B { // Compose's sum of the log-determinants
			ld := sb.out[i*(D+1)+D]
			if k > 0 {
				ld = bf.out[i*(D+1)+D] + ld
			}
			bf.out[i*(D+1)+D] = ld
		}
	}
	last := bf.steps[len(op.steps)-1].out
	for i := range B {
		copy(bf.out[i*(D+1):i*(D+1)+D], last[i*(D+1):i*(D+1)+D])
	}
	if bf.outT == nil || bf.outT.Shape()[0] != B {
		bf.outT = tensor.New(tensor.WithShape(B, D+1), tensor.WithBacking(bf.out))
	}
	op.st.savedOK = true
	return bf.outT, nil
}

// iafStepForward is one step on sb.z with parameters p (w0, b0, wc, bc,
// w1, b1), into sb.out (B, D+1); cAll (B, HK) holds the steps' context
// products h wc side by side, this step's from column off.
func iafStepForward[T float32 | float64](s *iafStepSpec, sb *iafStepBufs[T], cAll []T, off, HK int, p []*tensor.Dense, row *[]float64) error {
	w0, b0, bc, w1, b1 := dataOf[T](p[0]), dataOf[T](p[1]), dataOf[T](p[3]), dataOf[T](p[4]), dataOf[T](p[5])
	z := sb.z
	D, H := s.gate.D, len(b0)
	B := len(z) / D
	// The node-by-node step: mask nodes, then dense nodes (product, then
	// + bias), add+relu, dense, gate.
	sb.w0m, sb.w1m = mask(sb.w0m, w0, s.m0), mask(sb.w1m, w1, s.m1)
	sb.a, sb.c, sb.r = grow(sb.a, B*H), grow(sb.c, B*H), grow(sb.r, B*H)
	sb.x, sb.out = grow(sb.x, B*2*D), grow(sb.out, B*(D+1))
	nets.Gemm(false, false, B, H, D, z, sb.w0m, sb.a)
	addBias(sb.a, b0)
	for i := range B {
		copy(sb.c[i*H:(i+1)*H], cAll[i*HK+off:i*HK+off+H])
	}
	addBias(sb.c, bc)
	for i, v := range sb.a {
		sb.r[i] = max(v+sb.c[i], 0)
	}
	nets.Gemm(false, false, B, 2*D, H, sb.r, sb.w1m, sb.x)
	addBias(sb.x, b1)
	nw := s.gate.workSize()
	sb.work = grow(sb.work, B*nw)
	if x32, ok := any(sb.x).([]float32); ok && s.gate.f32 {
		z32, out32 := any(z).([]float32), any(sb.out).([]float32)
		sb.na, sb.e, sb.l = grow(sb.na, B*D), grow(sb.e, B*D), grow(sb.l, B*D)
		s.gate.forwardRows32(x32, z32, out32, sb.work, sb.na, sb.e, sb.l)
		return nil
	}
	*row = grow(*row, 4*D+1)
	xr, zr, or := (*row)[:2*D], (*row)[2*D:3*D], (*row)[3*D:]
	rows := [][]float64{xr, zr}
	for i := range B {
		toF64(xr, sb.x[i*2*D:(i+1)*2*D])
		toF64(zr, z[i*D:(i+1)*D])
		if err := s.gate.forward(rows, or, sb.work[i*nw:(i+1)*nw]); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		for j, v := range or {
			sb.out[i*(D+1)+j] = T(v)
		}
	}
	return nil
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
		addTo(y[i:i+len(b)], b)
	}
}

func toF64[T float32 | float64](dst []float64, src []T) {
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// SymDiff is one iafChainGradOp giving every input's gradient packed in
// one vector, cut into one node per input.
func (op *iafChainOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	packed, err := G.ApplyOp(&iafChainGradOp{fwd: op}, append(append(G.Nodes{}, in...), output, grad)...)
	if err != nil {
		return nil, err
	}
	out := make(G.Nodes, len(in))
	off := 0
	for a, n := range in {
		shape := n.Shape().Clone()
		if out[a], err = G.ApplyOp(&pieceOp{off: off, shape: shape, name: op.String(), cache: &outCache{}}, packed); err != nil {
			return nil, err
		}
		off += shape.TotalSize()
	}
	return out, nil
}

// iafChainGradOp is an IAF chain's backward pass: inputs the forward op's,
// its output and the output's gradient; output the gradients of the
// forward op's inputs, flattened one after the other.
type iafChainGradOp struct {
	opCommon
	fwd *iafChainOp
}

func (op *iafChainGradOp) Arity() int { return op.fwd.Arity() + 2 }
func (op *iafChainGradOp) Type() hm.Type {
	return fnType(append(op.fwd.vecs(), false, false), true)
}
func (op *iafChainGradOp) String() string                    { return "∂" + op.fwd.String() }
func (op *iafChainGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *iafChainGradOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *iafChainGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *iafChainGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	n := 0
	for _, s := range in[:op.fwd.Arity()] {
		sh, ok := s.(tensor.Shape)
		if !ok {
			return nil, fmt.Errorf("%s: an input has no shape", op)
		}
		n += sh.TotalSize()
	}
	return tensor.Shape{n}, nil
}

func (op *iafChainGradOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseInputs(in, op)
	if err != nil {
		return nil, err
	}
	switch ds[0].Dtype() {
	case tensor.Float32:
		return iafChainBackward[float32](op.fwd, ds)
	case tensor.Float64:
		return iafChainBackward[float64](op.fwd, ds)
	}
	return nil, fmt.Errorf("flows: %s: dtype %v, want float32 or float64", op, ds[0].Dtype())
}

func iafChainBackward[T float32 | float64](op *iafChainOp, ds []*tensor.Dense) (G.Value, error) {
	K := len(op.steps)
	nin := op.Arity()
	bf := bufsOf[T](op.st, K)
	out, gout := dataOf[T](ds[nin]), dataOf[T](ds[nin+1])
	if !op.st.savedOK || !slices.Equal(out, bf.out) {
		// Not the saved pass (another run of the node came between):
		// recompute it, which gives the same out.
		if _, err := iafChainForward[T](op, ds[:nin]); err != nil {
			return nil, err
		}
	}
	n := 0
	for _, d := range ds[:nin] {
		n += d.Shape().TotalSize()
	}
	bf.grad = grow(bf.grad, n)
	g := bf.grad
	cut := func(k int) []T { s := g[:k]; g = g[k:]; return s }
	h := dataOf[T](ds[1])
	D := op.steps[0].gate.D
	B := len(dataOf[T](ds[0])) / D
	C := ds[1].Shape()[1]
	gz, gh := cut(B*D), cut(B*C)
	pgrads := make([][]T, 6*K)
	for a := range pgrads {
		pgrads[a] = cut(ds[2+a].Shape().TotalSize())
	}
	// The gradient of step k's packed output: the next step's z gradient
	// beside the log-determinant's, which the sum passes on unchanged.
	bf.gcur = grow(bf.gcur, B*(D+1))
	copy(bf.gcur, gout)
	clear(gh)
	bf.gzNext = grow(bf.gzNext, B*D)
	for k := K - 1; k >= 0; k-- {
		gzk := gz // step 0's z gradient is the chain's
		if k > 0 {
			gzk = bf.gzNext
		}
		iafStepBackward(&op.steps[k], &bf.steps[k], bf, h, C, ds[2+6*k:8+6*k], bf.gcur, gzk, gh, pgrads[6*k:6*k+6])
		if k > 0 {
			for i := range B {
				copy(bf.gcur[i*(D+1):i*(D+1)+D], gzk[i*D:(i+1)*D])
			}
		}
	}
	if bf.gradT == nil || bf.gradT.Shape()[0] != len(bf.grad) {
		bf.gradT = tensor.New(tensor.WithShape(len(bf.grad)), tensor.WithBacking(bf.grad))
	}
	return bf.gradT, nil
}

// iafStepBackward is one step's backward pass from the gradient gcur of
// its packed output: it sets gz (its z's gradient) and the parameters'
// gradients pg, and adds h's to gh; bf holds the chain's scratch.
func iafStepBackward[T float32 | float64](s *iafStepSpec, sb *iafStepBufs[T], bf *iafBufs[T], h []T, C int, p []*tensor.Dense, gcur, gz, gh []T, pg [][]T) {
	wc := dataOf[T](p[2])
	z := sb.z
	D, H := s.gate.D, len(s.m0)/s.gate.D
	B := len(z) / D
	gw0, gb0, gwc, gbc, gw1, gb1 := pg[0], pg[1], pg[2], pg[3], pg[4], pg[5]

	// The gate, row by row in float64 from forward's saved values, rounded
	// to T as the gate's gradient node did.
	sb.gx, sb.gzGate = grow(sb.gx, B*2*D), grow(sb.gzGate, B*D)
	gateResume(D, sb.x, z, gcur, sb.gx, sb.gzGate, sb.work)
	// [m, s] = r w1m + b1.
	nets.Gemm(true, false, H, 2*D, B, sb.r, sb.gx, gw1)
	mask(gw1, gw1, s.m1)
	colSums(gb1, sb.gx)
	sb.da = grow(sb.da, B*H)
	nets.Gemm(false, true, B, H, 2*D, sb.gx, sb.w1m, sb.da)
	reluGradInPlace(sb.da, sb.r) // relu' from its output, as nets' ReLU gradient
	// r = relu(z w0m + b0 + h wc + bc). The weight gradients of w0m and wc
	// as one product, [z | h]ᵀ da, and the input gradients as one, da
	// [w0m; wc]ᵀ: every element is the same sum as in the separate
	// products (over B, and over H), so the same values.
	W := D + C
	bf.zh, bf.gwzc = grow(bf.zh, B*W), grow(bf.gwzc, W*H)
	for i := range B {
		copy(bf.zh[i*W:i*W+D], z[i*D:(i+1)*D])
		copy(bf.zh[i*W+D:(i+1)*W], h[i*C:(i+1)*C])
	}
	nets.Gemm(true, false, W, H, B, bf.zh, sb.da, bf.gwzc)
	mask(gw0, bf.gwzc[:D*H], s.m0)
	copy(gwc, bf.gwzc[D*H:])
	colSums(gb0, sb.da)
	copy(gbc, gb0)
	bf.wzc, bf.gzh = grow(bf.wzc, W*H), grow(bf.gzh, B*W)
	copy(bf.wzc, sb.w0m)
	copy(bf.wzc[D*H:], wc)
	nets.Gemm(false, true, B, W, H, sb.da, bf.wzc, bf.gzh)
	for i := range B {
		copy(gz[i*D:(i+1)*D], bf.gzh[i*W:i*W+D])
		addTo(gz[i*D:(i+1)*D], sb.gzGate[i*D:(i+1)*D])
		addTo(gh[i*C:(i+1)*C], bf.gzh[i*W+D:(i+1)*W])
	}
}

// addTo sets dst[i] += src[i]: simd's vector adds in float32, the same
// sums as the scalar loop (which, with reluGradInPlace's branches, was a
// third of the chain's backward time beside its products).
func addTo[T float32 | float64](dst, src []T) {
	if d, ok := any(dst).([]float32); ok {
		simd.Add(d, any(src).([]float32))
		return
	}
	for i, v := range src {
		dst[i] += v
	}
}

// reluGradInPlace zeroes d[i] where r[i] > 0 is false (r a ReLU's output,
// NaN included), without a branch per element in float32.
func reluGradInPlace[T float32 | float64](d, r []T) {
	if d32, ok := any(d).([]float32); ok {
		simd.ReluGrad(d32, any(r).([]float32), d32)
		return
	}
	for i, v := range r {
		if !(v > 0) {
			d[i] = 0
		}
	}
}

// gateResume is iafGate.resume on B rows, x (B, 2D), z (B, D), the output
// gradient g (B, D+1) and forward's work, into gx and gz (rounded to T):
// the same float64 arithmetic element by element, read from and written
// to T directly where resume's row copies took as long as its sums.
func gateResume[T float32 | float64](D int, x, z, g, gx, gz []T, work []float64) {
	nw := 3 * D
	for i := range len(z) / D {
		xr, zr, gr := x[i*2*D:(i+1)*2*D], z[i*D:(i+1)*D], g[i*(D+1):(i+1)*(D+1)]
		gxr, gzr, w := gx[i*2*D:(i+1)*2*D], gz[i*D:(i+1)*D], work[i*nw:(i+1)*nw]
		gl := float64(gr[D])
		for j, zt := range zr {
			sigma, om, dls := w[j], w[D+j], w[2*D+j]
			gj, zj := float64(gr[j]), float64(zt)
			// resume adds into cleared rows: 0 + v, which makes -0 +0.
			var zero float64
			gzr[j] = T(zero + gj*sigma)
			gxr[j] = T(zero + gj*om)
			gls := gl + gj*zj*sigma // σ = exp(log σ)
			gom := gj * float64(xr[j])
			gxr[D+j] = T(zero + (gls*dls - gom*om*(1-om)))
		}
	}
}

// colSums sets s to the sum of a's rows (width len(s)), row after row as
// nets' bias gradient sums them.
func colSums[T float32 | float64](s, a []T) {
	clear(s)
	for i := 0; i < len(a); i += len(s) {
		addTo(s, a[i:i+len(s)])
	}
}

// pieceOp is values [off, off + size of shape) of a vector, in shape: one
// input's gradient out of iafChainGradOp's.
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

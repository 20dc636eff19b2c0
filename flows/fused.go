package flows

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"runtime"
	"strings"

	"github.com/chewxy/hm"
	"github.com/govae/govae/internal/kernels/cores"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Fused ops. Built from gorgonia's primitives a planar step is about 25
// tape instructions forward and 50 backward, each a pass over a (B, L) or
// (B) tensor, one element at a time. Every flow here is row-wise, so it is
// written once as a rowMap (the maths for one row, forward and hand-written
// backward, in float64) and run by one op node for all rows: a rowOp for the
// forward pass, a rowGradOp for the backward, and colsOp/padOp to split a
// packed output (f(z) beside the log-determinant) or packed gradient into
// the nodes callers see. A composition of fusable steps is one rowMap (a
// stack), so K steps cost one forward and one backward node, plus the splits.

// rowMap is a differentiable map applied row by row: in[a] is row i of
// input a (width inWidths()[a]; a length-B vector input has width 1), out
// row i of the output.
type rowMap interface {
	// String names the map and every setting that changes its result (it
	// is the op's hash: gorgonia merges nodes with equal hashes and inputs).
	String() string
	inWidths() []int
	outWidth() int
	// workSize is the length of the scratch slice forward and backward get.
	workSize() int
	forward(in [][]float64, out, work []float64) error
	// backward adds to gin[a] (zeroed by the caller) the gradient of
	// <gout, out> with respect to in[a]; out is forward's result for in.
	backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error
}

// applyRowMap adds the node m(ins...) of shape (B, m.outWidth()).
func applyRowMap(m rowMap, ins ...*G.Node) (*G.Node, error) {
	vec, err := checkRowInputs(m, ins)
	if err != nil {
		return nil, err
	}
	return G.ApplyOp(&rowOp{m: m, vec: vec, cache: &outCache{}}, ins...)
}

func checkRowInputs(m rowMap, ins []*G.Node) ([]bool, error) {
	ws := m.inWidths()
	if len(ins) != len(ws) {
		return nil, fmt.Errorf("%s: %d inputs, want %d", m, len(ins), len(ws))
	}
	vec := make([]bool, len(ins))
	B := -1
	for a, n := range ins {
		s := n.Shape()
		switch {
		case s.Dims() == 1 && ws[a] == 1:
			vec[a] = true
		case s.Dims() == 2 && s[1] == ws[a]:
		default:
			return nil, fmt.Errorf("%s: input %d has shape %v, want (B, %d)", m, a, s, ws[a])
		}
		if B >= 0 && s[0] != B {
			return nil, fmt.Errorf("%s: input %d has %d rows, input 0 has %d", m, a, s[0], B)
		}
		B = s[0]
		if n.Dtype() != ins[0].Dtype() {
			return nil, fmt.Errorf("%s: input %d has dtype %v, input 0 %v", m, a, n.Dtype(), ins[0].Dtype())
		}
	}
	return vec, nil
}

// outCache keeps a node's output tensor from one run to the next (as
// nets' fused ops do): the tape machine's Reset drops every register.
type outCache struct {
	t *tensor.Dense
	// f64 holds float64 copies of float32 inputs and outputs.
	f64 [][]float64
	// For a resumer: every row's work after the last forward run, and
	// that run's output, by which the backward op recognizes it.
	saved, savedOut []float64
	savedOK         bool
}

func (c *outCache) out(dt tensor.Dtype, shape ...int) *tensor.Dense {
	if c.t == nil || c.t.Dtype() != dt || !c.t.Shape().Eq(tensor.Shape(shape)) {
		c.t = tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	}
	return c.t
}

// buf returns float64 scratch slot k of length n.
func (c *outCache) buf(k, n int) []float64 {
	for len(c.f64) <= k {
		c.f64 = append(c.f64, nil)
	}
	if cap(c.f64[k]) < n {
		c.f64[k] = make([]float64, n)
	}
	return c.f64[k][:n]
}

// float64s returns v's elements as float64: its own backing for float64,
// else a copy in cache slot k.
func float64s(v G.Value, c *outCache, k int, what fmt.Stringer) ([]float64, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("flows: %s: got %T, want a dense tensor", what, v)
	}
	if d.IsView() {
		d = d.Materialize().(*tensor.Dense)
	}
	switch d.Dtype() {
	case tensor.Float64:
		return d.Float64s(), nil
	case tensor.Float32:
		src := d.Float32s()
		dst := c.buf(k, len(src))
		for i, x := range src {
			dst[i] = float64(x)
		}
		return dst, nil
	}
	return nil, fmt.Errorf("flows: %s: dtype %v, want float32 or float64", what, d.Dtype())
}

// result returns the (rows, cols) output tensor of dtype dt and a float64
// slice to write it through; finish copies that slice into a float32 tensor.
func result(c *outCache, dt tensor.Dtype, slot int, shape ...int) (*tensor.Dense, []float64) {
	t := c.out(dt, shape...)
	if dt == tensor.Float64 {
		return t, t.Float64s()
	}
	return t, c.buf(slot, t.Shape().TotalSize())
}

func finish(t *tensor.Dense, f []float64) {
	if t.Dtype() == tensor.Float32 {
		dst := t.Float32s()
		for i, x := range f {
			dst[i] = float32(x)
		}
	}
}

// forRows runs f over [0, rows) in up to GOMAXPROCS contiguous chunks when
// work (about 4 flops per input and output element) pays for goroutines;
// each row is handled by one call, so results do not depend on the split.
// f returns the first error. Below about 2^20 (16 planar steps on a
// (128, 20) batch are 2^19) the hand-off, measured on a loaded machine,
// cost more than it saved.
func forRows(rows, work int, f func(lo, hi int) error) error {
	const minWork = 1 << 20
	p := min(runtime.GOMAXPROCS(0), rows, max(work/minWork, 1))
	if p <= 1 || !cores.Spare() {
		return f(0, rows)
	}
	errs := make([]error, p)
	cores.Run(p, func(i int) { errs[i] = f(rows*i/p, rows*(i+1)/p) })
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// rowSlices returns row i of each flattened input.
func rowSlices(dst [][]float64, flat [][]float64, ws []int, i int) [][]float64 {
	for a, w := range ws {
		dst[a] = flat[a][i*w : (i+1)*w]
	}
	return dst
}

func sum(ws []int) int {
	s := 0
	for _, w := range ws {
		s += w
	}
	return s
}

func tensorType(vec bool) G.TensorType {
	if vec {
		return G.TensorType{Dims: 1, Of: hm.TypeVariable('a')}
	}
	return G.TensorType{Dims: 2, Of: hm.TypeVariable('a')}
}

func fnType(vec []bool, outVec bool) hm.Type {
	ts := make([]hm.Type, 0, len(vec)+1)
	for _, v := range vec {
		ts = append(ts, tensorType(v))
	}
	return hm.NewFnType(append(ts, tensorType(outVec))...)
}

func hashString(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// opCommon holds the methods every op here shares.
type opCommon struct{}

func (opCommon) ReturnsPtr() bool     { return true }
func (opCommon) CallsExtern() bool    { return false }
func (opCommon) OverwritesInput() int { return -1 }

// resumer is a rowMap whose forward leaves in work what backward needs:
// resume is backward given that work, without recomputing the forward pass.
type resumer interface {
	rowMap
	resume(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error
}

// rowOp is m applied to every row.
type rowOp struct {
	opCommon
	m     rowMap
	vec   []bool
	cache *outCache
}

func (op *rowOp) Arity() int                        { return len(op.vec) }
func (op *rowOp) Type() hm.Type                     { return fnType(op.vec, false) }
func (op *rowOp) String() string                    { return op.m.String() }
func (op *rowOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *rowOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *rowOp) DiffWRT(n int) []bool              { return trues(n) }
func (op *rowOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *rowOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: input 0 has no shape", op.m)
	}
	return tensor.Shape{s[0], op.m.outWidth()}, nil
}

func trues(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}

func (op *rowOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	ws := op.m.inWidths()
	flat := make([][]float64, len(in))
	for a, v := range in {
		var err error
		if flat[a], err = float64s(v, op.cache, a, op); err != nil {
			return nil, err
		}
	}
	B := len(flat[0]) / ws[0]
	W := op.m.outWidth()
	t, out := result(op.cache, in[0].Dtype(), len(in), B, W)
	c := op.cache
	_, keep := op.m.(resumer)
	c.savedOK = false
	nw := op.m.workSize()
	if keep {
		if cap(c.saved) < B*nw {
			c.saved = make([]float64, B*nw)
		}
		c.saved = c.saved[:B*nw]
	}
	err := forRows(B, B*(sum(ws)+W)*4, func(lo, hi int) error {
		rows := make([][]float64, len(ws))
		var work []float64
		if !keep {
			work = make([]float64, nw)
		}
		for i := lo; i < hi; i++ {
			if keep {
				work = c.saved[i*nw : (i+1)*nw]
			}
			if err := op.m.forward(rowSlices(rows, flat, ws, i), out[i*W:(i+1)*W], work); err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if keep {
		c.savedOut = append(c.savedOut[:0], out...)
		c.savedOK = true
	}
	finish(t, out)
	return t, nil
}

// resumable reports whether the forward op's saved work belongs to out
// (float64 values of the forward output this backward pass was given):
// then backward need not recompute the forward pass.
func (c *outCache) resumable(out []float64, dt tensor.Dtype) bool {
	if c == nil || !c.savedOK || len(c.savedOut) != len(out) {
		return false
	}
	for i, v := range c.savedOut {
		if dt == tensor.Float32 {
			v = float64(float32(v))
		}
		if v != out[i] && !(math.IsNaN(v) && math.IsNaN(out[i])) {
			return false
		}
	}
	return true
}

// SymDiff is one rowGradOp giving every input's gradient packed side by
// side, split into one node per input.
func (op *rowOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	all := append(append(G.Nodes{}, in...), output, grad)
	packed, err := G.ApplyOp(&rowGradOp{m: op.m, vec: op.vec, cache: &outCache{}, fwd: op.cache}, all...)
	if err != nil {
		return nil, err
	}
	ws := op.m.inWidths()
	out := make(G.Nodes, len(in))
	lo := 0
	for a, w := range ws {
		if out[a], err = split(packed, lo, lo+w, sum(ws), op.vec[a]); err != nil {
			return nil, err
		}
		lo += w
	}
	return out, nil
}

// rowGradOp is the backward pass of m: inputs (in..., out, gout), output
// the gradients of every input side by side, shape (B, sum of widths).
type rowGradOp struct {
	opCommon
	m     rowMap
	vec   []bool
	cache *outCache
	fwd   *outCache // the forward op's, for resumers
}

func (op *rowGradOp) Arity() int { return len(op.vec) + 2 }
func (op *rowGradOp) Type() hm.Type {
	return fnType(append(append([]bool{}, op.vec...), false, false), false)
}
func (op *rowGradOp) String() string                    { return "∂" + op.m.String() }
func (op *rowGradOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *rowGradOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *rowGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *rowGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("%s: input 0 has no shape", op)
	}
	return tensor.Shape{s[0], sum(op.m.inWidths())}, nil
}

func (op *rowGradOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	ws := op.m.inWidths()
	n := len(ws)
	flat := make([][]float64, n+2)
	for a, v := range in {
		var err error
		if flat[a], err = float64s(v, op.cache, a, op); err != nil {
			return nil, err
		}
	}
	B := len(flat[0]) / ws[0]
	W, S := op.m.outWidth(), sum(ws)
	t, g := result(op.cache, in[0].Dtype(), n+2, B, S)
	clear(g)
	r, isResumer := op.m.(resumer)
	resume := isResumer && op.fwd.resumable(flat[n], in[0].Dtype())
	nw := op.m.workSize()
	err := forRows(B, B*(S+W)*8, func(lo, hi int) error {
		rows := make([][]float64, n)
		gin := make([][]float64, n)
		var work []float64
		if !resume {
			work = make([]float64, nw)
		}
		for i := lo; i < hi; i++ {
			off := i * S
			for a, w := range ws {
				gin[a] = g[off : off+w]
				off += w
			}
			var err error
			rs, o, gout := rowSlices(rows, flat, ws, i), flat[n][i*W:(i+1)*W], flat[n+1][i*W:(i+1)*W]
			if resume {
				err = r.resume(rs, o, gout, gin, op.fwd.saved[i*nw:(i+1)*nw])
			} else {
				err = op.m.backward(rs, o, gout, gin, work)
			}
			if err != nil {
				return fmt.Errorf("row %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	finish(t, g)
	return t, nil
}

// split returns columns [lo, hi) of the (B, W) node x, as a length-B vector
// when vec (hi = lo + 1).
func split(x *G.Node, lo, hi, W int, vec bool) (*G.Node, error) {
	return G.ApplyOp(&colsOp{lo: lo, hi: hi, w: W, vec: vec, cache: &outCache{}}, x)
}

// colsOp copies columns [lo, hi) of a (B, w) matrix.
type colsOp struct {
	opCommon
	lo, hi, w int
	vec       bool
	cache     *outCache
}

func (op *colsOp) Arity() int { return 1 }
func (op *colsOp) Type() hm.Type {
	return hm.NewFnType(tensorType(false), tensorType(op.vec))
}
func (op *colsOp) String() string {
	return fmt.Sprintf("cols[%d:%d of %d,vec=%t]", op.lo, op.hi, op.w, op.vec)
}
func (op *colsOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *colsOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *colsOp) DiffWRT(int) []bool                { return []bool{true} }
func (op *colsOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *colsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := in[0].(tensor.Shape)
	if op.vec {
		return tensor.Shape{s[0]}, nil
	}
	return tensor.Shape{s[0], op.hi - op.lo}, nil
}

func (op *colsOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	d, ok := in[0].(*tensor.Dense)
	if !ok || d.Shape().Dims() != 2 || d.Shape()[1] != op.w {
		return nil, fmt.Errorf("flows: %s: got %v", op, in[0].Shape())
	}
	if d.IsView() {
		d = d.Materialize().(*tensor.Dense)
	}
	B, n := d.Shape()[0], op.hi-op.lo
	shape := []int{B, n}
	if op.vec {
		shape = shape[:1]
	}
	t := op.cache.out(d.Dtype(), shape...)
	switch d.Dtype() {
	case tensor.Float32:
		copyCols(t.Float32s(), d.Float32s(), B, op.lo, op.hi, op.w)
	case tensor.Float64:
		copyCols(t.Float64s(), d.Float64s(), B, op.lo, op.hi, op.w)
	default:
		return nil, fmt.Errorf("flows: %s: dtype %v", op, d.Dtype())
	}
	return t, nil
}

func copyCols[T float32 | float64](dst, src []T, B, lo, hi, w int) {
	n := hi - lo
	for i := range B {
		copy(dst[i*n:(i+1)*n], src[i*w+lo:i*w+hi])
	}
}

func (op *colsOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&padOp{lo: op.lo, hi: op.hi, w: op.w, vec: op.vec, cache: &outCache{}}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// padOp places a (B, hi-lo) matrix (or length-B vector) at columns [lo, hi)
// of a zero (B, w) matrix: colsOp's gradient.
type padOp struct {
	opCommon
	lo, hi, w int
	vec       bool
	cache     *outCache
}

func (op *padOp) Arity() int { return 1 }
func (op *padOp) Type() hm.Type {
	return hm.NewFnType(tensorType(op.vec), tensorType(false))
}
func (op *padOp) String() string {
	return fmt.Sprintf("pad[%d:%d of %d,vec=%t]", op.lo, op.hi, op.w, op.vec)
}
func (op *padOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *padOp) Hashcode() uint32                  { return hashString(op.String()) }
func (op *padOp) DiffWRT(int) []bool                { return []bool{true} }
func (op *padOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *padOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0], op.w}, nil
}

func (op *padOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	d, ok := in[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("flows: %s: got %T", op, in[0])
	}
	if d.IsView() {
		d = d.Materialize().(*tensor.Dense)
	}
	B := d.Shape()[0]
	t := op.cache.out(d.Dtype(), B, op.w)
	switch d.Dtype() {
	case tensor.Float32:
		padCols(t.Float32s(), d.Float32s(), B, op.lo, op.hi, op.w)
	case tensor.Float64:
		padCols(t.Float64s(), d.Float64s(), B, op.lo, op.hi, op.w)
	default:
		return nil, fmt.Errorf("flows: %s: dtype %v", op, d.Dtype())
	}
	return t, nil
}

func padCols[T float32 | float64](dst, src []T, B, lo, hi, w int) {
	clear(dst)
	n := hi - lo
	for i := range B {
		copy(dst[i*w+lo:i*w+hi], src[i*n:(i+1)*n])
	}
}

func (op *padOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := split(grad, op.lo, op.hi, op.w, op.vec)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// step is one flow step as a rowMap on inputs (z, params...) with output
// (f(z), log|det|), width L+1. Steps are what stacks chain.
type step interface {
	rowMap
	dim() int
}

// fusable is a Flow made of steps: Compose chains consecutive ones into a
// single stack op.
type fusable interface {
	Flow
	steps() (ss []step, params [][]*G.Node)
	// check reports a z that does not fit the flow's parameters.
	check(z *G.Node) error
}

// stack is steps applied in order, output (z_K, sum of log-dets).
type stack struct {
	ss   []step
	L    int
	off  []int // off[k]: index of step k's first parameter among the inputs
	np   []int // np[k]: step k's number of parameters
	woff []int // woff[k]: offset of step k's scratch in the steps' scratch; woff[K] its size
}

func newStack(ss []step, L int) stack {
	off, np := make([]int, len(ss)), make([]int, len(ss))
	woff := make([]int, len(ss)+1)
	a := 1
	for k, st := range ss {
		off[k], np[k] = a, len(st.inWidths())-1
		a += np[k]
		woff[k+1] = woff[k] + st.workSize()
	}
	return stack{ss: ss, L: L, off: off, np: np, woff: woff}
}

// stepWork is step k's own scratch: steps that are resumers find there
// what their forward pass left.
func (s stack) stepWork(sw []float64, k int) []float64 { return sw[s.woff[k]:s.woff[k+1]] }

func (s stack) String() string {
	names := make([]string, len(s.ss))
	for k, st := range s.ss {
		names[k] = st.String()
	}
	return "flow[" + strings.Join(names, ",") + "]"
}

func (s stack) inWidths() []int {
	ws := []int{s.L}
	for _, st := range s.ss {
		ws = append(ws, st.inWidths()[1:]...)
	}
	return ws
}

func (s stack) outWidth() int { return s.L + 1 }

// workSize: every step's input z and output row, every step's scratch,
// and room for one step's output gradient.
func (s stack) workSize() int {
	return len(s.ss)*(2*s.L+1) + s.woff[len(s.ss)] + 3*(s.L+1)
}

// zk and outk are step k's input z and output row in the stack's scratch.
func (s stack) zk(work []float64, k int) []float64 {
	o := k * (2*s.L + 1)
	return work[o : o+s.L]
}

func (s stack) outk(work []float64, k int) []float64 {
	o := k*(2*s.L+1) + s.L
	return work[o : o+s.L+1]
}

// tail hands out the rest of the scratch.
func (s stack) tail(work []float64) (stepWork, g, gz, tmp []float64) {
	L := s.L
	work = work[len(s.ss)*(2*L+1):]
	g, work = work[:L+1], work[L+1:]
	gz, work = work[:L+1], work[L+1:]
	tmp, work = work[:L+1], work[L+1:]
	return work[:s.woff[len(s.ss)]], g, gz, tmp
}

// stepArgs returns step k's inputs (z first) as a window of in whose first
// element is temporarily z; restoreArgs puts the overwritten element back.
// Borrowing in this way allocates nothing.
func (s stack) stepArgs(in [][]float64, k int, z []float64) (args [][]float64, saved []float64) {
	a := s.off[k]
	saved = in[a-1]
	in[a-1] = z
	return in[a-1 : a+s.np[k]], saved
}

func restoreArgs(args [][]float64, saved []float64) { args[0] = saved }

func (s stack) forward(in [][]float64, out, work []float64) error {
	return s.run(in, out, work)
}

// run computes the stack, leaving every step's input and output in work.
func (s stack) run(in [][]float64, out, work []float64) error {
	L := s.L
	sw, _, _, _ := s.tail(work)
	z := in[0]
	ld := 0.0
	for k, st := range s.ss {
		zk, ok := s.zk(work, k), s.outk(work, k)
		copy(zk, z)
		args, saved := s.stepArgs(in, k, zk)
		err := st.forward(args, ok, s.stepWork(sw, k))
		restoreArgs(args, saved)
		if err != nil {
			return fmt.Errorf("step %d: %w", k+1, err)
		}
		z = ok[:L]
		ld += ok[L]
	}
	copy(out, z)
	out[L] = ld
	return nil
}

func (s stack) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	_, _, _, tmp := s.tail(work)
	if err := s.run(in, tmp, work); err != nil {
		return err
	}
	return s.resume(in, out, gout, gin, work)
}

// resume is backward from the steps' inputs and outputs that run left in work.
func (s stack) resume(in [][]float64, _, gout []float64, gin [][]float64, work []float64) error {
	L := s.L
	sw, g, gz, _ := s.tail(work)
	copy(g, gout)
	for k := len(s.ss) - 1; k >= 0; k-- {
		st := s.ss[k]
		clear(gz[:L])
		args, saved := s.stepArgs(in, k, s.zk(work, k))
		gargs, gsaved := s.stepArgs(gin, k, gz[:L])
		g[L] = gout[L] // every step's log-det enters the sum with weight 1
		var err error
		if r, isR := st.(resumer); isR {
			err = r.resume(args, s.outk(work, k), g, gargs, s.stepWork(sw, k))
		} else {
			err = st.backward(args, s.outk(work, k), g, gargs, s.stepWork(sw, k))
		}
		restoreArgs(args, saved)
		restoreArgs(gargs, gsaved)
		if err != nil {
			return fmt.Errorf("step %d: %w", k+1, err)
		}
		copy(g[:L], gz[:L])
	}
	for j := range L {
		gin[0][j] += g[j]
	}
	return nil
}

// forwardSteps runs ss on z as one stack node and splits the result.
func forwardSteps(z *G.Node, ss []step, params [][]*G.Node) (out, logDet *G.Node, err error) {
	B, L, err := batchShape(z)
	if err != nil {
		return nil, nil, err
	}
	ins := []*G.Node{z}
	for k, st := range ss {
		if st.dim() != L {
			return nil, nil, fmt.Errorf("flows: %s step has dimension %d, z has shape %v", st, st.dim(), z.Shape())
		}
		for _, p := range params[k] {
			if p.Graph() != z.Graph() {
				return nil, nil, fmt.Errorf("flows: %s: parameters and z are in different graphs", st)
			}
		}
		ins = append(ins, params[k]...)
	}
	for a, p := range ins {
		if p.Dtype() != z.Dtype() {
			return nil, nil, fmt.Errorf("flows: input %d has dtype %v, z %v", a, p.Dtype(), z.Dtype())
		}
		if p.Shape()[0] != B {
			return nil, nil, fmt.Errorf("flows: input %d has %d rows, z %d", a, p.Shape()[0], B)
		}
	}
	packed, err := applyRowMap(newStack(ss, L), ins...)
	if err != nil {
		return nil, nil, fmt.Errorf("flows: %w", err)
	}
	if out, err = split(packed, 0, L, L+1, false); err != nil {
		return nil, nil, err
	}
	if logDet, err = split(packed, L, L+1, L+1, true); err != nil {
		return nil, nil, err
	}
	return out, logDet, nil
}

package nets

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	"github.com/chewxy/math32"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LogQEps adds, per row of the (B, L) matrices eps and lv,
//
//	log q = -½ (Σ_j eps_j² + L log 2π) - ½ Σ_j lv_j,
//
// the log-density of z = mu + e^{lv/2} ⊙ eps under N(mu, diag e^lv) by
// the change of variables. eps gets no gradient (it is noise); lv gets
// -½ dY on every column. One node each way for gorgonia's eleven (the
// Gaussian samplers' logQEps: a square, two sums, two scales, an add and
// a subtraction forward; a scale, a reshape and a repeat backward, and
// gradients of the constants nothing reads). The values are those nodes'
// bit for bit: the same operations, rounded in the same order, the sums
// left to right.
func LogQEps(eps, lv *G.Node) (*G.Node, error) {
	if err := checkGaussLog(eps, lv, lv); err != nil {
		return nil, err
	}
	return G.ApplyOp(&gaussLogOp{opBase: newBase(), work: &gaussWork{}}, eps, lv)
}

// LogNormalAt adds log N(a; m, diag e^lv) per row of the (B, L) matrices
// a, m and lv: LogQEps at eps = (a - m) ⊙ e^{-lv/2}, with the gradients of
// a, m and lv (three nodes backward, where gorgonia's subtraction, scale,
// exp, product and LogQEps take eleven nodes forward and about twenty
// backward). The values are amortized's logQOffset(G.Sub(a, m), lv)'s bit
// for bit.
func LogNormalAt(a, m, lv *G.Node) (*G.Node, error) {
	if err := checkGaussLog(a, m, lv); err != nil {
		return nil, err
	}
	return G.ApplyOp(&gaussLogOp{opBase: newBase(), offset: true, work: &gaussWork{}}, a, m, lv)
}

// LogStdNormal adds Σ_j log N(v_j; 0, 1) = -½ (Σ_j v_j² + L log 2π) per
// row of the (B, L) matrix v (the standard normal prior's log p(z)), with
// v's gradient: one node each way where gorgonia's square, sum, add and
// scale are four forward and five backward (a scale, a reshape, a repeat
// and two products). The values are those nodes' bit for bit, forward and
// backward.
func LogStdNormal(v *G.Node) (*G.Node, error) {
	if err := checkGaussLog(v, v, v); err != nil {
		return nil, err
	}
	return G.ApplyOp(&gaussLogOp{opBase: newBase(), std: true, work: &gaussWork{}}, v)
}

func checkGaussLog(a, m, lv *G.Node) error {
	s := a.Shape()
	if s.Dims() != 2 || !s.Eq(m.Shape()) || !s.Eq(lv.Shape()) || a.Dtype() != m.Dtype() || a.Dtype() != lv.Dtype() {
		return fmt.Errorf("nets: Gaussian log-density: %v, %v and %v must be matrices of one shape and dtype", s, m.Shape(), lv.Shape())
	}
	return nil
}

// gaussWork keeps a forward run's u = a - m, s = e^{-lv/2} and e = u ⊙ s
// (offset form) for the gradient nodes, which run after it.
type gaussWork struct{ u, s, e outCache }

// gaussLogOp: inputs (eps, lv), or (a, m, lv) when offset, or v when std.
type gaussLogOp struct {
	opBase
	offset bool
	std    bool
	work   *gaussWork
}

func (op *gaussLogOp) Arity() int {
	if op.std {
		return 1
	}
	if op.offset {
		return 3
	}
	return 2
}
func (op *gaussLogOp) Type() hm.Type {
	if op.std {
		return hm.NewFnType(matT(), vecT())
	}
	if op.offset {
		return hm.NewFnType(matT(), matT(), matT(), vecT())
	}
	return hm.NewFnType(matT(), matT(), vecT())
}
func (op *gaussLogOp) String() string {
	return fmt.Sprintf("gaussLog[offset=%t,std=%t]", op.offset, op.std)
}
func (op *gaussLogOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op *gaussLogOp) Hashcode() uint32                  { return hashOf(op) }
func (op *gaussLogOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op *gaussLogOp) DiffWRT(n int) []bool {
	if op.std {
		return []bool{true}
	}
	if op.offset {
		return []bool{true, true, true}
	}
	return []bool{false, true}
}
func (op *gaussLogOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{in[0].(tensor.Shape)[0]}, nil
}

func (op *gaussLogOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, lv := ds[0], ds[len(ds)-1]
	y := op.out(prealloc, x.Dtype(), x.Shape()[0])
	m := ds[max(len(ds)-2, 0)] // lv (or v) itself without an offset: not read
	switch x.Dtype() {
	case tensor.Float32:
		gaussLogDo(op.work, op.offset, op.std, y, x, m, lv, math32.Exp)
	case tensor.Float64:
		gaussLogDo(op.work, op.offset, op.std, y, x, m, lv, math.Exp)
	default:
		return nil, fmt.Errorf("nets: %s: dtype %v", op, x.Dtype())
	}
	return y, nil
}

// gaussLogDo is the forward pass in T: on e = x (eps) or, with offset,
// e = (x - m) ⊙ e^{-lv/2}, kept in w with its factors; with std, on e = x
// with no lv term.
func gaussLogDo[T float32 | float64](w *gaussWork, offset, std bool, y, x, m, lv *tensor.Dense, exp func(T) T) {
	B, L := x.Shape()[0], x.Shape()[1]
	e := x.Data().([]T)
	if std {
		gaussLogStd(y.Data().([]T), e, L)
		return
	}
	if offset {
		e = workOf[T](&w.e, B, L)
		offsetEps(e, workOf[T](&w.u, B, L), workOf[T](&w.s, B, L), x.Data().([]T), m.Data().([]T), lv.Data().([]T), exp)
	}
	gaussLog(y.Data().([]T), e, lv.Data().([]T), L)
}

func workOf[T float32 | float64](c *outCache, B, L int) []T {
	var z T
	dt := tensor.Float64
	if _, ok := any(z).(float32); ok {
		dt = tensor.Float32
	}
	return opBase{cache: c}.out(nil, dt, B, L).Data().([]T)
}

// offsetEps is e = (a - m) ⊙ e^{-lv/2}, keeping u = a - m and s = e^{-lv/2}.
func offsetEps[T float32 | float64](e, u, s, a, m, lv []T, exp func(T) T) {
	for i := range e {
		u[i] = a[i] - m[i]
		s[i] = exp(T(lv[i] * -0.5))
		e[i] = T(u[i] * s[i])
	}
}

// gaussLog is -½ (Σ e² + L log 2π) - ½ Σ lv per row, each step rounded
// in T (the constant too, as a graph's scalar is).
func gaussLog[T float32 | float64](y, e, lv []T, L int) {
	c := T(float64(L) * math.Log(2*math.Pi))
	for r := range y {
		var sq, sl T
		for j, v := range e[r*L : (r+1)*L] {
			sq += T(v * v)
			sl += lv[r*L+j]
		}
		y[r] = T(T(sq+c)*-0.5) - T(sl*0.5)
	}
}

// gaussLogStd is -½ (Σ v² + L log 2π) per row, rounded as gaussLog.
func gaussLogStd[T float32 | float64](y, v []T, L int) {
	c := T(float64(L) * math.Log(2*math.Pi))
	for r := range y {
		var sq T
		for _, x := range v[r*L : (r+1)*L] {
			sq += T(x * x)
		}
		y[r] = T(T(sq+c) * -0.5)
	}
}

// SymDiff: for v (std), v gets (2v) ⊙ (-½ dY). For (eps, lv), lv gets -½ dY per column. For (a, m, lv), with
// d = (2e) ⊙ (-½ dY): a gets s ⊙ d, m its negation, and lv
// -½ dY + -½ (s ⊙ (u ⊙ d)): gorgonia's products in its order.
func (op *gaussLogOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.std {
		d, err := G.ApplyOp(gaussLogGradOp{opBase: newBase(), work: op.work, which: gradStd}, in[0], grad)
		return G.Nodes{d}, err
	}
	if !op.offset {
		d, err := G.ApplyOp(gaussLogGradOp{opBase: newBase(), work: op.work, which: gradLV}, in[1], grad)
		return G.Nodes{nil, d}, err
	}
	out := make(G.Nodes, 3)
	for i, which := range []int{gradA, gradM, gradOffsetLV} {
		var err error
		if out[i], err = G.ApplyOp(gaussLogGradOp{opBase: newBase(), work: op.work, which: which}, in[i], grad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// The gradients gaussLogGradOp computes.
const (
	gradLV       = iota // LogQEps's lv
	gradA               // LogNormalAt's a
	gradM               // m
	gradOffsetLV        // lv
	gradStd             // LogStdNormal's v
)

// gaussLogGradOp is one input's gradient of a gaussLogOp, from the
// incoming gradient (B) and the forward run's work; its first input, of
// the gradient's shape, orders it after the forward node.
type gaussLogGradOp struct {
	opBase
	noDiff
	work  *gaussWork
	which int
}

func (op gaussLogGradOp) Arity() int    { return 2 }
func (op gaussLogGradOp) Type() hm.Type { return hm.NewFnType(matT(), vecT(), matT()) }
func (op gaussLogGradOp) String() string {
	return fmt.Sprintf("gaussLogGrad[%d]", op.which)
}
func (op gaussLogGradOp) WriteHash(h hash.Hash)             { fmt.Fprintf(h, "%s%p", op.String(), op.work) }
func (op gaussLogGradOp) Hashcode() uint32                  { return hashWrite(op) }
func (op gaussLogGradOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op gaussLogGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}

func (op gaussLogGradOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	x, g := ds[0], ds[1]
	B, L := x.Shape()[0], x.Shape()[1]
	if g.Shape().TotalSize() != B {
		return nil, fmt.Errorf("nets: %s: gradient %v for %v", op, g.Shape(), x.Shape())
	}
	w := op.work
	if op.which != gradLV && op.which != gradStd && (w.e.t == nil || !w.e.t.Shape().Eq(x.Shape()) || w.e.t.Dtype() != x.Dtype()) {
		return nil, fmt.Errorf("nets: %s: run before its forward node", op)
	}
	y := op.out(prealloc, x.Dtype(), B, L)
	switch x.Dtype() {
	case tensor.Float32:
		var u, s, e []float32
		if op.which == gradStd {
			e = x.Float32s()
		} else if op.which != gradLV {
			u, s, e = w.u.t.Float32s(), w.s.t.Float32s(), w.e.t.Float32s()
		}
		gaussLogGrad(y.Float32s(), g.Float32s(), u, s, e, L, op.which)
	default:
		var u, s, e []float64
		if op.which == gradStd {
			e = x.Float64s()
		} else if op.which != gradLV {
			u, s, e = w.u.t.Float64s(), w.s.t.Float64s(), w.e.t.Float64s()
		}
		gaussLogGrad(y.Float64s(), g.Float64s(), u, s, e, L, op.which)
	}
	return y, nil
}

// gaussLogGrad writes one input's gradient (see SymDiff) for the incoming
// per-row gradient g, rounding as gorgonia's nodes do.
func gaussLogGrad[T float32 | float64](y, g, u, s, e []T, L, which int) {
	for r, gr := range g {
		half := T(0.5 * -gr) // ½ of the gradient of the subtracted ½ Σ lv
		dsq := T(-0.5 * gr)  // the gradient of each e²
		lo, hi := r*L, (r+1)*L
		row := y[lo:hi]
		if which == gradLV {
			for j := range row {
				row[j] = half
			}
			continue
		}
		// d = (2e) dsq is the gradient of e; one loop per input
		es := e[lo:hi]
		if which == gradStd {
			for j, ej := range es {
				row[j] = T(T(ej*2) * dsq)
			}
			continue
		}
		us, ss := u[lo:hi], s[lo:hi]
		switch which {
		case gradA:
			for j, ej := range es {
				row[j] = T(ss[j] * T(T(ej*2)*dsq))
			}
		case gradM:
			for j, ej := range es {
				row[j] = -T(ss[j] * T(T(ej*2)*dsq))
			}
		default:
			for j, ej := range es {
				ds := T(us[j] * T(T(ej*2)*dsq)) // the gradient of s = e^{-lv/2}
				row[j] = half + T(-0.5*T(ss[j]*ds))
			}
		}
	}
}

package flows

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Packed stacks: K steps of one kind whose raw parameters for every row sit
// side by side in one matrix node, typically a single encoder head of width
// K × (the step's parameter width). Against K separate steps fed by 3K
// heads, this spares the heads' products and the reshapes of (B, 1) heads
// to vectors, and the whole stack is still one node forward and one
// backward. The maths of every step is that of its single-step type.

// NewPlanarStack is K [Planar] steps on dimension L with raw parameters
// p of shape (B, K(2L+1)): step k's u, w and b are columns
// [k(2L+1), k(2L+1)+L), [k(2L+1)+L, k(2L+1)+2L) and k(2L+1)+2L.
func NewPlanarStack(p *G.Node, L, K int) (Flow, error) {
	return newPackedStack("planar", p, L, K, 2*L+1, func() step { return planarStep{L: L} }, []int{L, L, 1})
}

// NewRadialStack is K [Radial] steps on dimension L with raw parameters p of
// shape (B, K(L+2)): step k's z0, raw α and raw β are columns
// [k(L+2), k(L+2)+L), k(L+2)+L and k(L+2)+L+1.
func NewRadialStack(p *G.Node, L, K int) (Flow, error) {
	return newPackedStack("radial", p, L, K, L+2, func() step { return radialStep{L: L} }, []int{L, 1, 1})
}

// NewTriangularSylvesterStack is K triangular [Sylvester] steps on dimension
// L, Q alternating between the identity (even k, from 0) and the reversal,
// with raw parameters p of shape (B, K(L²+3L)): step k's D, ρ, ρ̃ and b
// side by side in that order.
func NewTriangularSylvesterStack(p *G.Node, L, K int) (Flow, error) {
	k := 0
	return newPackedStack("triangular Sylvester", p, L, K, L*L+3*L, func() step {
		q := qIdentity
		if k%2 == 1 {
			q = qReverse
		}
		k++
		return sylvesterStep{L: L, M: L, q: q}
	}, []int{L * L, L, L, L})
}

func newPackedStack(kind string, p *G.Node, L, K, width int, mk func() step, parts []int) (Flow, error) {
	switch {
	case L <= 0 || K <= 0:
		return nil, fmt.Errorf("flows: %s stack: dimension %d and %d steps, want both > 0", kind, L, K)
	case p == nil || p.Shape().Dims() != 2 || p.Shape()[1] != K*width:
		return nil, fmt.Errorf("flows: %s stack parameters have shape %v, want (B, %d) (%d steps of %d)", kind, shapeOf(p), K*width, K, width)
	}
	ps := packedSteps{L: L, widths: []int{K * width}}
	var ss []step
	off := 0
	for range K {
		ss = append(ss, mk())
		for _, w := range parts {
			ps.slots = append(ps.slots, slot{in: 0, off: off, w: w})
			off += w
		}
	}
	ps.inner = newStack(ss, L)
	return &packedFlow{kind: kind, st: ps, params: []*G.Node{p}}, nil
}

// packedFlow is a packed stack as a Flow.
type packedFlow struct {
	kind   string
	st     packedSteps
	params []*G.Node
}

func (f *packedFlow) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := f.check(z); err != nil {
		return nil, nil, err
	}
	ss, ps := f.steps()
	return forwardSteps(z, ss, ps)
}

func (f *packedFlow) check(z *G.Node) error {
	p := f.params[0]
	if err := checkParam(f.kind+" stack z", z, p.Shape()[0], f.st.L); err != nil {
		return err
	}
	for _, q := range f.params {
		if z.Graph() != q.Graph() || z.Dtype() != q.Dtype() {
			return fmt.Errorf("flows: %s stack z (%v) is not in the parameters' graph or dtype (%v)", f.kind, z.Dtype(), q.Dtype())
		}
		if q.Shape()[0] != z.Shape()[0] {
			return fmt.Errorf("flows: %s stack parameters have %d rows, z %d", f.kind, q.Shape()[0], z.Shape()[0])
		}
	}
	return nil
}

func (f *packedFlow) steps() ([]step, [][]*G.Node) { return []step{f.st}, [][]*G.Node{f.params} }

// slot is one inner parameter: columns [off, off+w) of packed input in.
type slot struct{ in, off, w int }

// packedSteps is a stack whose parameters are slices of a few packed
// inputs: a step with inputs (z, packed...) for an outer stack.
type packedSteps struct {
	inner  stack
	L      int
	widths []int  // the packed inputs' widths
	slots  []slot // the inner stack's parameters in order
}

func (p packedSteps) String() string  { return fmt.Sprintf("packed%v%v", p.widths, p.inner) }
func (p packedSteps) dim() int        { return p.L }
func (p packedSteps) outWidth() int   { return p.L + 1 }
func (p packedSteps) workSize() int   { return p.inner.workSize() }
func (p packedSteps) inWidths() []int { return append([]int{p.L}, p.widths...) }

// unpack returns the inner stack's inputs: z, then every parameter's slice.
func (p packedSteps) unpack(in [][]float64) [][]float64 {
	args := make([][]float64, 1+len(p.slots))
	args[0] = in[0]
	for i, s := range p.slots {
		args[i+1] = in[1+s.in][s.off : s.off+s.w]
	}
	return args
}

func (p packedSteps) forward(in [][]float64, out, work []float64) error {
	return p.inner.forward(p.unpack(in), out, work)
}

func (p packedSteps) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	return p.inner.backward(p.unpack(in), out, gout, p.unpack(gin), work)
}

func (p packedSteps) resume(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	return p.inner.resume(p.unpack(in), out, gout, p.unpack(gin), work)
}

// NewOrthogonalSylvesterStack is K orthogonal [Sylvester] steps on dimension
// L with M orthonormal columns: qRaw of shape (B, K·L·M) holds step k's raw
// L×M matrix (row-major) at columns [kLM, (k+1)LM), orthogonalized as
// [NewOrthogonalSylvester] does; p of shape (B, K(M²+3M)) holds step k's D,
// ρ, ρ̃ and b side by side.
func NewOrthogonalSylvesterStack(qRaw, p *G.Node, L, M, K int) (Flow, error) {
	if M <= 0 || M > L {
		return nil, fmt.Errorf("flows: orthogonal Sylvester stack: M = %d, want 1 ≤ M ≤ L = %d", M, L)
	}
	return newSylvesterStack("orthogonal Sylvester", qRaw, p, L, M, K, L*M, orthoMap{L: L, M: M, N: K})
}

// NewHouseholderSylvesterStack is K Householder [Sylvester] steps on
// dimension L, each Q a product of H reflections: v of shape (B, K·H·L)
// holds step k's v_1..v_H at columns [kHL, (k+1)HL); p of shape
// (B, K(L²+3L)) holds step k's D, ρ, ρ̃ and b side by side.
func NewHouseholderSylvesterStack(v, p *G.Node, L, H, K int) (Flow, error) {
	if H <= 0 {
		return nil, fmt.Errorf("flows: Householder Sylvester stack: %d reflections per step, want > 0", H)
	}
	return newSylvesterStack("Householder Sylvester", v, p, L, L, K, H*L, householderQMap{L: L, H: H, N: K})
}

// OrthogonalStackQ is the Q of [NewOrthogonalSylvesterStack] for qRaw: the K
// raw L×M matrices of every row orthogonalized, in qRaw's layout. With
// [NewSylvesterStackWithQ] it lets a caller that runs the stack on many z
// per row (importance sampling) orthogonalize once per row.
func OrthogonalStackQ(qRaw *G.Node, L, M, K int) (*G.Node, error) {
	if M <= 0 || M > L || K <= 0 {
		return nil, fmt.Errorf("flows: orthogonal Sylvester Q: L = %d, M = %d, K = %d, want 1 ≤ M ≤ L and K ≥ 1", L, M, K)
	}
	return stackQ("orthogonal Sylvester", qRaw, K, L*M, orthoMap{L: L, M: M, N: K})
}

// HouseholderStackQ is the Q of [NewHouseholderSylvesterStack] for v: per
// row, K L×L matrices (row-major, side by side), each the product of its
// step's H reflections.
func HouseholderStackQ(v *G.Node, L, H, K int) (*G.Node, error) {
	if L <= 0 || H <= 0 || K <= 0 {
		return nil, fmt.Errorf("flows: Householder Sylvester Q: L = %d, H = %d, K = %d, want all ≥ 1", L, H, K)
	}
	return stackQ("Householder Sylvester", v, K, H*L, householderQMap{L: L, H: H, N: K})
}

func stackQ(kind string, qIn *G.Node, K, qWidth int, qMap rowMap) (*G.Node, error) {
	if qIn == nil || qIn.Shape().Dims() != 2 || qIn.Shape()[1] != K*qWidth {
		return nil, fmt.Errorf("flows: %s stack Q input has shape %v, want (B, %d) (%d steps of %d)", kind, shapeOf(qIn), K*qWidth, K, qWidth)
	}
	q, err := applyRowMap(qMap, qIn)
	if err != nil {
		return nil, fmt.Errorf("flows: %s stack: %w", kind, err)
	}
	return q, nil
}

// NewSylvesterStackWithQ is K [Sylvester] steps on dimension L whose Q, of
// shape (B, K·L·M) with step k's L×M matrix at columns [kLM, (k+1)LM), is
// used as given: it must have orthonormal columns, as [OrthogonalStackQ]
// and [HouseholderStackQ] (M = L) return. p is as for
// [NewOrthogonalSylvesterStack]. The stacks are the same maths as
// NewOrthogonalSylvesterStack and NewHouseholderSylvesterStack with Q
// computed outside.
func NewSylvesterStackWithQ(q, p *G.Node, L, M, K int) (Flow, error) {
	if M <= 0 || M > L {
		return nil, fmt.Errorf("flows: Sylvester stack with Q: M = %d, want 1 ≤ M ≤ L = %d", M, L)
	}
	return newSylvesterStack("Sylvester (Q given)", q, p, L, M, K, L*M, nil)
}

// newSylvesterStack builds the stack on Q = qMap(qIn), or on Q = qIn when
// qMap is nil.
func newSylvesterStack(kind string, qIn, p *G.Node, L, M, K, qWidth int, qMap rowMap) (Flow, error) {
	width := M*M + 3*M
	switch {
	case L <= 0 || K <= 0:
		return nil, fmt.Errorf("flows: %s stack: dimension %d and %d steps, want both > 0", kind, L, K)
	case p == nil || p.Shape().Dims() != 2 || p.Shape()[1] != K*width:
		return nil, fmt.Errorf("flows: %s stack parameters have shape %v, want (B, %d) (%d steps of %d)", kind, shapeOf(p), K*width, K, width)
	case qIn == nil || qIn.Shape().Dims() != 2 || qIn.Shape()[1] != K*qWidth || qIn.Shape()[0] != p.Shape()[0]:
		return nil, fmt.Errorf("flows: %s stack Q input has shape %v, want (%d, %d) (%d steps of %d)", kind, shapeOf(qIn), p.Shape()[0], K*qWidth, K, qWidth)
	case qIn.Graph() != p.Graph() || qIn.Dtype() != p.Dtype():
		return nil, fmt.Errorf("flows: %s stack: Q input and parameters are not in one graph and dtype", kind)
	}
	q := qIn
	if qMap != nil {
		var err error
		if q, err = applyRowMap(qMap, qIn); err != nil {
			return nil, fmt.Errorf("flows: %s stack: %w", kind, err)
		}
	}
	ps := packedSteps{L: L, widths: []int{K * L * M, K * width}}
	var ss []step
	for k := range K {
		ss = append(ss, sylvesterStep{L: L, M: M, q: qExplicit})
		ps.slots = append(ps.slots, slot{in: 0, off: k * L * M, w: L * M})
		off := k * width
		for _, w := range []int{M * M, M, M, M} {
			ps.slots = append(ps.slots, slot{in: 1, off: off, w: w})
			off += w
		}
	}
	ps.inner = newStack(ss, L)
	return &packedFlow{kind: kind, st: ps, params: []*G.Node{q, p}}, nil
}

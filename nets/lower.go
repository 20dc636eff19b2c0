package nets

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// StrictLowerTimes adds y_b = N_b v_b per row b, for v (B, L) and the
// strict lower triangles N_b packed row by row in n (B, P), P = L(L-1)/2,
// entry (i, j), i > j, at p = i(i-1)/2 + j: y_bi = Σ_{j<i} n_bp v_bj.
// It is one node each way for what a full-covariance Gaussian wrote as
// ((v E) ⊙ n) R with constant 0/1 matrices E and R: two products of
// B x L x P, a Hadamard product and, backward, gorgonia's transposes and
// two more products. The values are those nodes', summed in the same
// order (each product's sum runs over p, or j, ascending from +0, and
// the 0/1 factors only add zeros), but for subnormal intermediates, which
// the matrix kernels may flush to zero.
func StrictLowerTimes(v, n *G.Node) (*G.Node, error) {
	vs, ns := v.Shape(), n.Shape()
	if vs.Dims() != 2 || ns.Dims() != 2 || vs[0] != ns[0] || ns[1] != vs[1]*(vs[1]-1)/2 || v.Dtype() != n.Dtype() {
		return nil, fmt.Errorf("nets: strict lower times: v %v (%v) and n %v (%v), want (B, L) and (B, L(L-1)/2) of one dtype", vs, v.Dtype(), ns, n.Dtype())
	}
	return G.ApplyOp(lowerOp{opBase: newBase(), part: lowerFwd}, v, n)
}

// The lowerOp parts: forward y = N v; backward dv = Nᵀ dy (inputs n, dy)
// and dn_p = dy_i v_j (inputs v, dy).
const (
	lowerFwd = iota
	lowerGradV
	lowerGradN
)

type lowerOp struct {
	opBase
	part int
}

func (op lowerOp) Arity() int                        { return 2 }
func (op lowerOp) Type() hm.Type                     { return hm.NewFnType(matT(), matT(), matT()) }
func (op lowerOp) String() string                    { return fmt.Sprintf("strictLower%d", op.part) }
func (op lowerOp) WriteHash(h hash.Hash)             { fmt.Fprint(h, op.String()) }
func (op lowerOp) Hashcode() uint32                  { return hashOf(op) }
func (op lowerOp) DiffWRT(int) []bool                { return []bool{op.part == lowerFwd, op.part == lowerFwd} }
func (op lowerOp) Do(in ...G.Value) (G.Value, error) { return op.UsePreallocDo(nil, in...) }
func (op lowerOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s0, ok0 := in[0].(tensor.Shape)
	s1, ok1 := in[1].(tensor.Shape)
	if !ok0 || !ok1 {
		return nil, fmt.Errorf("nets: %s: inputs without shapes", op)
	}
	switch op.part {
	case lowerFwd: // (v, n) -> like v
		return s0.Clone(), nil
	case lowerGradV: // (n, dy) -> like dy
		return s1.Clone(), nil
	}
	return tensor.Shape{s0[0], s0[1] * (s0[1] - 1) / 2}, nil // (v, dy) -> like n
}

func (op lowerOp) UsePreallocDo(prealloc G.Value, in ...G.Value) (G.Value, error) {
	ds, err := denseAll(in, op)
	if err != nil {
		return nil, err
	}
	a, b := ds[0], ds[1]
	if a.Dtype() != b.Dtype() {
		return nil, fmt.Errorf("nets: %s: dtypes %v and %v", op, a.Dtype(), b.Dtype())
	}
	shape, err := op.InferShape(a.Shape(), b.Shape())
	if err != nil {
		return nil, err
	}
	L := shape[1]
	if op.part == lowerGradN {
		L = a.Shape()[1]
	}
	y := op.out(prealloc, a.Dtype(), shape...)
	switch y.Dtype() {
	case tensor.Float32:
		err = lowerRun(op.part, L, a.Float32s(), b.Float32s(), y.Float32s())
	case tensor.Float64:
		err = lowerRun(op.part, L, a.Float64s(), b.Float64s(), y.Float64s())
	default:
		err = fmt.Errorf("nets: %s: dtype %v", op, y.Dtype())
	}
	return y, err
}

// lowerRun computes one part for rows of width L (v, dy) and P (n, dn).
// The "0 +" terms are the products' sums starting from +0 (a -0 becomes
// +0, as there).
func lowerRun[T float32 | float64](part, L int, a, b, y []T) error {
	P := L * (L - 1) / 2
	var zero T
	switch part {
	case lowerFwd: // a = v, b = n
		if len(a)%max(L, 1) != 0 || len(b) != len(a)/max(L, 1)*P {
			return fmt.Errorf("nets: strict lower times: %d and %d values for width %d", len(a), len(b), L)
		}
		for r := range len(a) / max(L, 1) {
			v, n, yr := a[r*L:(r+1)*L], b[r*P:(r+1)*P], y[r*L:(r+1)*L]
			for i := range L {
				s := zero
				for j, nj := range n[i*(i-1)/2 : i*(i-1)/2+i] {
					s += T(nj * (zero + v[j])) // T(): rounded, never fused
				}
				yr[i] = s
			}
		}
	case lowerGradV: // a = n, b = dy; y = dv
		for r := range len(b) / max(L, 1) {
			n, g, dv := a[r*P:(r+1)*P], b[r*L:(r+1)*L], y[r*L:(r+1)*L]
			for j := range L {
				s := zero
				for i := j + 1; i < L; i++ {
					s += T((zero + g[i]) * n[i*(i-1)/2+j])
				}
				dv[j] = s
			}
		}
	default: // a = v, b = dy; y = dn
		for r := range len(a) / max(L, 1) {
			v, g, dn := a[r*L:(r+1)*L], b[r*L:(r+1)*L], y[r*P:(r+1)*P]
			for i := 1; i < L; i++ {
				gi := zero + g[i]
				for j := range i {
					dn[i*(i-1)/2+j] = gi * (zero + v[j])
				}
			}
		}
	}
	return nil
}

// SymDiff: dv = Nᵀ dy, dn = dy_i v_j.
func (op lowerOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.part != lowerFwd {
		return nil, fmt.Errorf("nets: %s has no gradient", op)
	}
	dv, err := G.ApplyOp(lowerOp{opBase: newBase(), part: lowerGradV}, in[1], grad)
	if err != nil {
		return nil, err
	}
	dn, err := G.ApplyOp(lowerOp{opBase: newBase(), part: lowerGradN}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dv, dn}, nil
}

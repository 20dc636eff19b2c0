package flows

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// Sylvester is one step of a Sylvester normalizing flow (van den Berg,
// Hasenclever, Tomczak & Welling 2018, "Sylvester Normalizing Flows for
// Variational Inference"), with its own parameters for every row:
//
//	f(z) = z + Q R h(R̃ Qᵀ z + b),  h = tanh
//	log|det df/dz| = Σ_i log|1 + R̃_ii R_ii h'((R̃ Qᵀ z + b)_i)|
//
// Q is L×M with orthonormal columns (M ≤ L), R and R̃ are M×M upper
// triangular. By Sylvester's determinant identity det(I_L + Q R H' R̃ Qᵀ)
// = det(I_M + H' R̃ R) with H' = diag h'(·), and R̃ R is upper triangular,
// hence the sum of M logs. f is invertible when R_ii R̃_ii > -1/sup h' =
// -1 for every i (their Theorem 2); the diagonals are reparameterized as
//
//	R_ii = tanh(ρ_i),  R̃_ii = tanh(ρ̃_i)
//
// as in the paper's code, so |R_ii R̃_ii| < 1 for any raw ρ, ρ̃. The
// off-diagonal entries come from one raw M×M matrix D per row: R_ij = D_ij
// and R̃_ij = D_ji for i < j (the strict upper triangle of D fills R, the
// strict lower one R̃ᵀ, as in the reference code; D's diagonal is unused).
// 1e-8 is added inside each log as for [Planar] (the determinant is > 0 but
// reaches 0 in float64 when both tanh saturate to ±1 with opposite signs).
//
// The three variants of the paper differ in Q:
//   - orthogonal ([NewOrthogonalSylvester]): Q is amortized: a raw L×M
//     matrix A per row, divided by its Frobenius norm (so its singular
//     values are in (0, 1]) and orthogonalized by Björck's iteration
//     Q ← Q (I + (I - QᵀQ)/2) until |QᵀQ - I|_F < 1e-12, as in the
//     reference code (which stops at 1e-6 in float32). The limit is the
//     orthogonal polar factor A (AᵀA)^(-1/2); its gradient is that of the
//     polar factor (solved with an M×M eigendecomposition), not the unrolled
//     iteration's. A rank-deficient A (no convergence in 200 steps) is an
//     error naming the row; a zero or non-finite A gives NaN, as inputs
//     outside the domain do for the other flows.
//   - Householder ([NewHouseholderSylvester]): Q = H_1 ... H_H, a product of
//     H Householder reflections I - 2 v vᵀ/|v|² with amortized v (M = L);
//     v = 0 gives NaN.
//   - triangular ([NewTriangularSylvester]): Q = I, or the reversal
//     permutation on alternate steps (M = L).
//
// Forward is one fused graph node with a hand-written backward pass (see
// [Planar]); the orthogonalization and the Householder product are one
// node each.
type Sylvester struct {
	variant            string
	q                  *G.Node // (B, L*M), row-major L×M per row; nil for triangular
	d, diag1, diag2, b *G.Node
	L, M               int
	reverse            bool // triangular: Q is the reversal permutation
}

// NewOrthogonalSylvester builds a step from the raw Q, shape (B, L*M)
// (row i holds an L×M matrix row-major), D (B, M*M), ρ and ρ̃ (B, M) and b
// (B, M). M is b's width; M ≤ L.
func NewOrthogonalSylvester(qRaw, d, diag1, diag2, b *G.Node) (*Sylvester, error) {
	B, M, err := sylvesterCommon("orthogonal", d, diag1, diag2, b)
	if err != nil {
		return nil, err
	}
	if qRaw == nil || qRaw.Shape().Dims() != 2 || qRaw.Shape()[0] != B || qRaw.Shape()[1]%M != 0 || qRaw.Shape()[1] < M*M {
		return nil, fmt.Errorf("flows: orthogonal Sylvester raw Q has shape %v, want (%d, L*%d) with L ≥ %d", shapeOf(qRaw), B, M, M)
	}
	if qRaw.Graph() != b.Graph() || qRaw.Dtype() != b.Dtype() {
		return nil, fmt.Errorf("flows: orthogonal Sylvester raw Q is not in b's graph or dtype")
	}
	L := qRaw.Shape()[1] / M
	q, err := applyRowMap(orthoMap{L: L, M: M, N: 1}, qRaw)
	if err != nil {
		return nil, fmt.Errorf("flows: orthogonal Sylvester: %w", err)
	}
	return &Sylvester{variant: "orthogonal", q: q, d: d, diag1: diag1, diag2: diag2, b: b, L: L, M: M}, nil
}

// NewHouseholderSylvester builds a step whose Q is the product of H
// reflections, from v of shape (B, H*L) (row i holds v_1, ..., v_H), D
// (B, L*L), ρ and ρ̃ (B, L) and b (B, L).
func NewHouseholderSylvester(v, d, diag1, diag2, b *G.Node) (*Sylvester, error) {
	B, L, err := sylvesterCommon("Householder", d, diag1, diag2, b)
	if err != nil {
		return nil, err
	}
	if v == nil || v.Shape().Dims() != 2 || v.Shape()[0] != B || v.Shape()[1]%L != 0 || v.Shape()[1] == 0 {
		return nil, fmt.Errorf("flows: Householder Sylvester v has shape %v, want (%d, H*%d) with H ≥ 1", shapeOf(v), B, L)
	}
	if v.Graph() != b.Graph() || v.Dtype() != b.Dtype() {
		return nil, fmt.Errorf("flows: Householder Sylvester v is not in b's graph or dtype")
	}
	q, err := applyRowMap(householderQMap{L: L, H: v.Shape()[1] / L, N: 1}, v)
	if err != nil {
		return nil, fmt.Errorf("flows: Householder Sylvester: %w", err)
	}
	return &Sylvester{variant: "Householder", q: q, d: d, diag1: diag1, diag2: diag2, b: b, L: L, M: L}, nil
}

// NewTriangularSylvester builds a step with Q = I, or with Q the reversal
// permutation (z_j ↔ z_{L-1-j}) when reverse, from D (B, L*L), ρ and ρ̃
// (B, L) and b (B, L). Stacks alternate reverse, as in the paper.
func NewTriangularSylvester(d, diag1, diag2, b *G.Node, reverse bool) (*Sylvester, error) {
	_, L, err := sylvesterCommon("triangular", d, diag1, diag2, b)
	if err != nil {
		return nil, err
	}
	return &Sylvester{variant: "triangular", d: d, diag1: diag1, diag2: diag2, b: b, L: L, M: L, reverse: reverse}, nil
}

func sylvesterCommon(variant string, d, diag1, diag2, b *G.Node) (B, M int, err error) {
	if b == nil || b.Shape().Dims() != 2 {
		return 0, 0, fmt.Errorf("flows: %s Sylvester b must be a (B, M) matrix node, got %v", variant, shapeOf(b))
	}
	B, M = b.Shape()[0], b.Shape()[1]
	for _, p := range []struct {
		name string
		n    *G.Node
		w    int
	}{{"D", d, M * M}, {"diag1", diag1, M}, {"diag2", diag2, M}} {
		if err := checkParam(variant+" Sylvester "+p.name, p.n, B, p.w); err != nil {
			return 0, 0, err
		}
		if p.n.Graph() != b.Graph() || p.n.Dtype() != b.Dtype() {
			return 0, 0, fmt.Errorf("flows: %s Sylvester %s is not in b's graph or dtype", variant, p.name)
		}
	}
	return B, M, nil
}

// Q is the orthonormal Q, shape (B, L*M) with row i an L×M matrix
// row-major; nil for the triangular variant.
func (s *Sylvester) Q() *G.Node { return s.q }

// Dims returns L and M.
func (s *Sylvester) Dims() (L, M int) { return s.L, s.M }

// Forward implements [Flow].
func (s *Sylvester) Forward(z *G.Node) (out, logDet *G.Node, err error) {
	if err := s.check(z); err != nil {
		return nil, nil, err
	}
	ss, ps := s.steps()
	return forwardSteps(z, ss, ps)
}

func (s *Sylvester) check(z *G.Node) error {
	if err := checkParam(s.variant+" Sylvester z", z, s.b.Shape()[0], s.L); err != nil {
		return err
	}
	if z.Graph() != s.b.Graph() || z.Dtype() != s.b.Dtype() {
		return fmt.Errorf("flows: %s Sylvester z (%v) is not in the parameters' graph or dtype (%v)", s.variant, z.Dtype(), s.b.Dtype())
	}
	return nil
}

func (s *Sylvester) steps() ([]step, [][]*G.Node) {
	st := sylvesterStep{L: s.L, M: s.M, q: qExplicit}
	ps := []*G.Node{s.d, s.diag1, s.diag2, s.b}
	switch {
	case s.q != nil:
		ps = append([]*G.Node{s.q}, ps...)
	case s.reverse:
		st.q = qReverse
	default:
		st.q = qIdentity
	}
	return []step{st}, [][]*G.Node{ps}
}

type qKind int

const (
	qExplicit qKind = iota // Q is an input
	qIdentity
	qReverse
)

// sylvesterStep is one Sylvester step on a row: inputs z (L), Q (L*M, only
// for qExplicit), D (M*M), ρ, ρ̃, b (M).
type sylvesterStep struct {
	L, M int
	q    qKind
}

func (s sylvesterStep) String() string {
	return fmt.Sprintf("sylvester(%d,%d,q=%d)", s.L, s.M, s.q)
}
func (s sylvesterStep) dim() int      { return s.L }
func (s sylvesterStep) outWidth() int { return s.L + 1 }
func (s sylvesterStep) inWidths() []int {
	if s.q == qExplicit {
		return []int{s.L, s.L * s.M, s.M * s.M, s.M, s.M, s.M}
	}
	return []int{s.L, s.M * s.M, s.M, s.M, s.M}
}

// workSize: y, a, h, c, t1, t2 and gc, gh, ga, gy (M each).
func (s sylvesterStep) workSize() int { return 10 * s.M }

// sylvesterRow holds one row's inputs and forward intermediates.
type sylvesterRow struct {
	z, q, d, r1, r2, b []float64
	y, h, c, t1, t2    []float64 // h = tanh(a); t1, t2 = R_ii, R̃_ii
}

func (s sylvesterStep) row(in [][]float64, work []float64) sylvesterRow {
	var r sylvesterRow
	r.z = in[0]
	a := 1
	if s.q == qExplicit {
		r.q, a = in[1], 2
	}
	r.d, r.r1, r.r2, r.b = in[a], in[a+1], in[a+2], in[a+3]
	M := s.M
	r.y, r.h, r.c, r.t1, r.t2 = work[:M], work[M:2*M], work[2*M:3*M], work[3*M:4*M], work[4*M:5*M]
	return r
}

// qtMul is y = Qᵀ x (x of width L, y of width M).
func (s sylvesterStep) qtMul(q, x, y []float64) {
	L, M := s.L, s.M
	switch s.q {
	case qIdentity:
		copy(y, x)
	case qReverse:
		for k := range M {
			y[k] = x[L-1-k]
		}
	default:
		clear(y)
		for l := range L {
			xl, ql := x[l], q[l*M:(l+1)*M]
			for k, v := range ql {
				y[k] += v * xl
			}
		}
	}
}

// qMulAdd is x += Q y.
func (s sylvesterStep) qMulAdd(q, y, x []float64) {
	L, M := s.L, s.M
	switch s.q {
	case qIdentity:
		for j := range x {
			x[j] += y[j]
		}
	case qReverse:
		for j := range x {
			x[j] += y[L-1-j]
		}
	default:
		for l := range L {
			ql := q[l*M : (l+1)*M]
			var acc float64
			for k, v := range ql {
				acc += v * y[k]
			}
			x[l] += acc
		}
	}
}

// fwd fills r's intermediates and returns log|det|.
func (s sylvesterStep) fwd(r sylvesterRow) float64 {
	M := s.M
	s.qtMul(r.q, r.z, r.y)
	ld := 0.0
	for i := range M {
		r.t1[i], r.t2[i] = math.Tanh(r.r1[i]), math.Tanh(r.r2[i])
	}
	// a = R̃ y + b, with R̃_ij = D_ji above the diagonal.
	for i := range M {
		a := r.t2[i]*r.y[i] + r.b[i]
		for j := i + 1; j < M; j++ {
			a += r.d[j*M+i] * r.y[j]
		}
		r.h[i] = math.Tanh(a)
	}
	// c = R h, with R_ij = D_ij above the diagonal.
	for i := range M {
		c := r.t1[i] * r.h[i]
		for j := i + 1; j < M; j++ {
			c += r.d[i*M+j] * r.h[j]
		}
		r.c[i] = c
		hp := 1 - r.h[i]*r.h[i]
		ld += math.Log(math.Abs(1+r.t1[i]*r.t2[i]*hp) + logEps)
	}
	return ld
}

func (s sylvesterStep) forward(in [][]float64, out, work []float64) error {
	r := s.row(in, work)
	out[s.L] = s.fwd(r)
	copy(out[:s.L], r.z)
	s.qMulAdd(r.q, r.c, out[:s.L])
	return nil
}

func (s sylvesterStep) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	s.fwd(s.row(in, work))
	return s.resume(in, out, gout, gin, work)
}

// resume is backward with the intermediates forward left in work.
func (s sylvesterStep) resume(in [][]float64, _, gout []float64, gin [][]float64, work []float64) error {
	L, M := s.L, s.M
	r := s.row(in, work)
	w := work[5*M:]
	gc, gh, ga, gy := w[:M], w[M:2*M], w[2*M:3*M], w[3*M:4*M]
	g, gl := gout[:L], gout[L]
	a := 1
	var gq []float64
	if s.q == qExplicit {
		gq, a = gin[1], 2
	}
	gd, gr1, gr2, gb := gin[a], gin[a+1], gin[a+2], gin[a+3]

	s.qtMul(r.q, g, gc)
	// c = R h: dR_ij = gc_i h_j, dh_j = Σ_i R_ij gc_i.
	clear(gh)
	for i := range M {
		gh[i] += r.t1[i] * gc[i]
		for j := i + 1; j < M; j++ {
			gd[i*M+j] += gc[i] * r.h[j]
			gh[j] += r.d[i*M+j] * gc[i]
		}
	}
	// log-det terms log|1 + t1 t2 (1 - h²)| + ε.
	for i := range M {
		hp := 1 - r.h[i]*r.h[i]
		det := 1 + r.t1[i]*r.t2[i]*hp
		sd := gl * math.Copysign(1, det) / (math.Abs(det) + logEps)
		gt1 := gc[i]*r.h[i] + sd*hp*r.t2[i]
		gt2 := sd * hp * r.t1[i]
		gh[i] += sd * r.t1[i] * r.t2[i] * (-2 * r.h[i])
		ga[i] = gh[i] * hp
		gt2 += ga[i] * r.y[i]
		gr1[i] += gt1 * (1 - r.t1[i]*r.t1[i])
		gr2[i] += gt2 * (1 - r.t2[i]*r.t2[i])
		gb[i] += ga[i]
	}
	// a = R̃ y + b: dR̃_ij = ga_i y_j (stored at D_ji), dy_j = Σ_i R̃_ij ga_i.
	clear(gy)
	for i := range M {
		gy[i] += r.t2[i] * ga[i]
		for j := i + 1; j < M; j++ {
			gd[j*M+i] += ga[i] * r.y[j]
			gy[j] += r.d[j*M+i] * ga[i]
		}
	}
	// out = z + Q c, y = Qᵀ z.
	for j := range L {
		gin[0][j] += g[j]
	}
	s.qMulAdd(r.q, gy, gin[0])
	if gq != nil {
		for l := range L {
			zl, gl := r.z[l], g[l]
			row := gq[l*M : (l+1)*M]
			for k := range row {
				row[k] += zl*gy[k] + gl*r.c[k]
			}
		}
	}
	return nil
}

// Björck's iteration: the tolerance on |QᵀQ - I|_F and the step cap. From
// singular values in (0, 1] the iteration multiplies the smallest by about
// 1.5 per step until it nears 1, then converges quadratically: 200 steps
// reach 1e-12 from a condition number of about 1e30.
const (
	bjorckTol   = 1e-12
	bjorckSteps = 200
)

// orthoMap is the orthogonal polar factor of each of N L×M matrices
// (row-major, side by side), computed by Björck's iteration.
type orthoMap struct{ L, M, N int }

func (m orthoMap) String() string  { return fmt.Sprintf("orthogonalize(%d,%d)x%d", m.L, m.M, m.N) }
func (m orthoMap) inWidths() []int { return []int{m.N * m.L * m.M} }
func (m orthoMap) outWidth() int   { return m.N * m.L * m.M }
func (m orthoMap) workSize() int   { return max(m.L*m.M+m.M*m.M, 5*m.M*m.M+3*m.M) }

func (m orthoMap) forward(in [][]float64, out, work []float64) error {
	n := m.L * m.M
	for b := range m.N {
		if err := m.one(in[0][b*n:(b+1)*n], out[b*n:(b+1)*n], work); err != nil {
			if m.N > 1 {
				return fmt.Errorf("matrix %d: %w", b+1, err)
			}
			return err
		}
	}
	return nil
}

func (m orthoMap) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	n := m.L * m.M
	for b := range m.N {
		m.oneGrad(in[0][b*n:(b+1)*n], out[b*n:(b+1)*n], gout[b*n:(b+1)*n], gin[0][b*n:(b+1)*n], work)
	}
	return nil
}

func (m orthoMap) one(a, out, work []float64) error {
	L, M := m.L, m.M
	var fro float64
	for _, v := range a {
		fro += v * v
	}
	fro = math.Sqrt(fro)
	if !(fro > 0) || math.IsInf(fro, 0) {
		// Non-finite or zero input: NaN out, as the other flows give for
		// inputs outside their domain, so trainers see a non-finite loss.
		fill(out, math.NaN())
		return nil
	}
	for i, v := range a {
		out[i] = v / fro
	}
	// Plain loops: the matrices are small, and gonum's per-call overhead
	// dominated at these sizes.
	q, tmp := out, work[:L*M]
	corr := work[L*M : L*M+M*M]
	res := math.Inf(1)
	for range bjorckSteps {
		// corr = I + (I - QᵀQ)/2 (symmetric); res = |QᵀQ - I|_F.
		clear(corr)
		for l := range L {
			row := q[l*M : (l+1)*M]
			for i, qi := range row {
				c := corr[i*M:]
				for j := i; j < M; j++ {
					c[j] += qi * row[j]
				}
			}
		}
		res = 0
		for i := range M {
			for j := i; j < M; j++ {
				e := corr[i*M+j]
				if i == j {
					e--
					res += e * e
				} else {
					res += 2 * e * e
				}
				corr[i*M+j], corr[j*M+i] = -e/2, -e/2
			}
			corr[i*M+i]++
		}
		if res = math.Sqrt(res); res < bjorckTol {
			return nil
		}
		for l := range L {
			row, t := q[l*M:(l+1)*M], tmp[l*M:(l+1)*M]
			clear(t)
			for k, qk := range row {
				c := corr[k*M : (k+1)*M]
				for j, cj := range c {
					t[j] += qk * cj
				}
			}
		}
		copy(q, tmp)
	}
	return fmt.Errorf("flows: orthogonal Sylvester: Björck orthogonalization did not converge in %d steps (|QᵀQ - I| = %.3g): the raw Q is (nearly) rank-deficient", bjorckSteps, res)
}

// oneGrad is the gradient of the polar factor U = A P⁻¹, P = (AᵀA)^½:
// dU = (I - UUᵀ) dA P⁻¹ + U Ω with P Ω + Ω P = Uᵀ dA - dAᵀ U, whose
// adjoint is Ā = (I - UUᵀ) Ū P⁻¹ + U Z, P Z + Z P = UᵀŪ - ŪᵀU. With
// P = V Λ Vᵀ (P = UᵀA, symmetrized; Jacobi's method): P⁻¹ = V Λ⁻¹ Vᵀ and
// Z = V [(Vᵀ C V)_ij / (λ_i + λ_j)] Vᵀ. Plain loops on work: gonum's
// EigenSym and products allocated on every call, which dominated.
func (m orthoMap) oneGrad(a, out, gout, g, work []float64) {
	L, M := m.L, m.M
	MM := M * M
	if !allFinite(out) {
		fill(g, math.NaN())
		return
	}
	P, V, G, T, W := work[:MM], work[MM:2*MM], work[2*MM:3*MM], work[3*MM:4*MM], work[4*MM:5*MM]
	lam, row, rv := work[5*MM:5*MM+M], work[5*MM+M:5*MM+2*M], work[5*MM+2*M:5*MM+3*M]
	// P = UᵀA (symmetrized), G = UᵀŪ.
	clear(P)
	clear(G)
	for l := range L {
		u, al, gl := out[l*M:(l+1)*M], a[l*M:(l+1)*M], gout[l*M:(l+1)*M]
		for i, ui := range u {
			for j := range M {
				P[i*M+j] += ui * al[j]
				G[i*M+j] += ui * gl[j]
			}
		}
	}
	for i := range M {
		for j := i + 1; j < M; j++ {
			v := (P[i*M+j] + P[j*M+i]) / 2
			P[i*M+j], P[j*M+i] = v, v
		}
	}
	jacobiEigen(P, V, lam, M)
	// T = Vᵀ C V with C = G - Gᵀ, divided by λ_i + λ_j; then Z = V T Vᵀ in P.
	// First P ← C V (P is free after the eigendecomposition).
	for i := range M {
		for j := range M {
			var s float64
			for k := range M {
				s += (G[i*M+k] - G[k*M+i]) * V[k*M+j]
			}
			P[i*M+j] = s
		}
	}
	for i := range M {
		for j := range M {
			var s float64
			for k := range M {
				s += V[k*M+i] * P[k*M+j]
			}
			T[i*M+j] = s / (lam[i] + lam[j])
		}
	}
	mulVTVt(P, V, T, W, M) // P = Z
	// Ā = (Ū - U G) P⁻¹ + U Z, row by row; P⁻¹ = V Λ⁻¹ Vᵀ applied as
	// ((row V) / λ) Vᵀ.
	for l := range L {
		u, gl := out[l*M:(l+1)*M], gout[l*M:(l+1)*M]
		for j := range M {
			s := gl[j]
			for k, uk := range u {
				s -= uk * G[k*M+j]
			}
			row[j] = s
		}
		for j := range M {
			var s float64
			for k := range M {
				s += row[k] * V[k*M+j]
			}
			rv[j] = s / lam[j]
		}
		dst := g[l*M : (l+1)*M]
		for j := range M {
			var s float64
			for k := range M {
				s += rv[k]*V[j*M+k] + u[k]*P[k*M+j]
			}
			dst[j] += s
		}
	}
}

// mulVTVt sets dst = V T Vᵀ (M×M, row-major), using w (M×M) as scratch.
func mulVTVt(dst, V, T, w []float64, M int) {
	for k := range M { // w = T Vᵀ
		for j := range M {
			var t float64
			for l := range M {
				t += T[k*M+l] * V[j*M+l]
			}
			w[k*M+j] = t
		}
	}
	for i := range M {
		for j := range M {
			var s float64
			for k := range M {
				s += V[i*M+k] * w[k*M+j]
			}
			dst[i*M+j] = s
		}
	}
}

// jacobiEigen diagonalizes the symmetric M×M matrix A (overwritten) by
// cyclic Jacobi rotations: A = V diag(lam) Vᵀ with V orthogonal. It stops
// when the off-diagonal mass is below 1e-30 of the diagonal's (quadratic
// convergence: a few sweeps) or after 60 sweeps.
func jacobiEigen(A, V, lam []float64, M int) {
	clear(V)
	for i := range M {
		V[i*M+i] = 1
	}
	for range 60 {
		var off, diag float64
		for i := range M {
			diag += A[i*M+i] * A[i*M+i]
			for j := i + 1; j < M; j++ {
				off += A[i*M+j] * A[i*M+j]
			}
		}
		if off <= 1e-30*diag {
			break
		}
		for p := range M {
			for q := p + 1; q < M; q++ {
				apq := A[p*M+q]
				if apq == 0 {
					continue
				}
				theta := (A[q*M+q] - A[p*M+p]) / (2 * apq)
				var t float64
				if math.Abs(theta) > 1e150 {
					t = 1 / (2 * theta)
				} else {
					t = math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				}
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range M { // columns p, q
					akp, akq := A[k*M+p], A[k*M+q]
					A[k*M+p], A[k*M+q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := range M { // rows p, q
					apk, aqk := A[p*M+k], A[q*M+k]
					A[p*M+k], A[q*M+k] = c*apk-s*aqk, s*apk+c*aqk
				}
				for k := range M {
					vkp, vkq := V[k*M+p], V[k*M+q]
					V[k*M+p], V[k*M+q] = c*vkp-s*vkq, s*vkp+c*vkq
				}
			}
		}
	}
	for i := range M {
		lam[i] = A[i*M+i]
	}
}

// householderQMap is Q = H_1 ... H_H (L×L, row-major) from v_1..v_H, for
// each of N groups of H vectors side by side.
type householderQMap struct{ L, H, N int }

func (m householderQMap) String() string  { return fmt.Sprintf("householderQ(%d,%d)x%d", m.L, m.H, m.N) }
func (m householderQMap) inWidths() []int { return []int{m.N * m.L * m.H} }
func (m householderQMap) outWidth() int   { return m.N * m.L * m.L }

func (m householderQMap) forward(in [][]float64, out, work []float64) error {
	nv, nq := m.L*m.H, m.L*m.L
	for b := range m.N {
		if err := m.one(in[0][b*nv:(b+1)*nv], out[b*nq:(b+1)*nq], work); err != nil {
			if m.N > 1 {
				return fmt.Errorf("group %d: %w", b+1, err)
			}
			return err
		}
	}
	return nil
}

func (m householderQMap) backward(in [][]float64, out, gout []float64, gin [][]float64, work []float64) error {
	nv, nq := m.L*m.H, m.L*m.L
	for b := range m.N {
		m.oneGrad(in[0][b*nv:(b+1)*nv], out[b*nq:(b+1)*nq], gout[b*nq:(b+1)*nq], gin[0][b*nv:(b+1)*nv], work)
	}
	return nil
}
func (m householderQMap) workSize() int { return 4*m.L + 2*m.L*m.L }

// reflect sets q = q (I - 2 u uᵀ) for unit u, using qu (width L) as scratch.
func reflect(q, u, qu []float64, L int) {
	for i := range L {
		row := q[i*L : (i+1)*L]
		var s float64
		for j, v := range row {
			s += v * u[j]
		}
		qu[i] = s
	}
	for i := range L {
		row := q[i*L : (i+1)*L]
		c := 2 * qu[i]
		for j := range row {
			row[j] -= c * u[j]
		}
	}
}

// unit writes v/|v| to u and returns |v|.
func unit(u, v []float64) float64 {
	var n float64
	for _, x := range v {
		n += x * x
	}
	n = math.Sqrt(n)
	for j, x := range v {
		u[j] = x / n
	}
	return n
}

func (m householderQMap) one(v, out, work []float64) error {
	L := m.L
	clear(out)
	for i := range L {
		out[i*L+i] = 1
	}
	u, qu := work[:L], work[L:2*L]
	for h := range m.H {
		if n := unit(u, v[h*L:(h+1)*L]); !(n > 0) || math.IsInf(n, 0) {
			fill(out, math.NaN()) // outside the domain, as for Householder
			return nil
		}
		reflect(out, u, qu, L)
	}
	return nil
}

// backward walks the product from the end: Q_{h-1} = Q_h H_h (H_h is its
// own inverse), Ḡ_{h-1} = Ḡ_h H_h, and for Q_h = Q_{h-1} - 2 Q_{h-1} u uᵀ,
// ū = -2 (Q_{h-1}ᵀ Ḡ_h u + Ḡ_hᵀ Q_{h-1} u), v̄ = (ū - u (u·ū))/|v|.
func (m householderQMap) oneGrad(v, out, gout, gv []float64, work []float64) {
	L := m.L
	u, qu, ub, gu := work[:L], work[L:2*L], work[2*L:3*L], work[3*L:4*L]
	q, g := work[4*L:4*L+L*L], work[4*L+L*L:4*L+2*L*L]
	copy(q, out)
	copy(g, gout)
	for h := m.H - 1; h >= 0; h-- {
		n := unit(u, v[h*L:(h+1)*L])
		reflect(q, u, qu, L) // q is now Q_{h-1}
		// a = Q_{h-1} u, b = Ḡ_h u.
		for i := range L {
			var a, b float64
			for j := range L {
				a += q[i*L+j] * u[j]
				b += g[i*L+j] * u[j]
			}
			qu[i], gu[i] = a, b
		}
		// ū_j = -2 Σ_i (Q_ij b_i + G_ij a_i).
		var uu float64
		for j := range L {
			var s float64
			for i := range L {
				s += q[i*L+j]*gu[i] + g[i*L+j]*qu[i]
			}
			ub[j] = -2 * s
			uu += u[j] * ub[j]
		}
		gvh := gv[h*L : (h+1)*L]
		for j := range L {
			gvh[j] += (ub[j] - u[j]*uu) / n
		}
		reflect(g, u, qu, L)
	}
}

func fill(v []float64, x float64) {
	for i := range v {
		v[i] = x
	}
}

func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

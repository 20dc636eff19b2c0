package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Björck's iteration gives Q with QᵀQ = I, and Q is the orthogonal polar
// factor of the raw matrix, U Vᵀ from its SVD A = U Σ Vᵀ, for odd sizes,
// M < L, M = L, and badly conditioned raw matrices.
func TestOrthogonalizationIsPolarFactor(t *testing.T) {
	const B = 4
	for _, c := range []struct{ L, M int }{{1, 1}, {3, 1}, {3, 2}, {5, 3}, {5, 5}, {8, 4}} {
		for _, cond := range []float64{1, 1e6} {
			t.Run(fmt.Sprintf("L=%d/M=%d/cond=%g", c.L, c.M, cond), func(t *testing.T) {
				L, M := c.L, c.M
				rng := rand.New(rand.NewPCG(uint64(L), uint64(M)))
				raw := randn(rng, B*L*M, 3)
				if cond > 1 && M > 1 { // scale one column down: condition number ≈ cond
					for i := range B {
						for l := range L {
							raw[i*L*M+l*M] /= cond
						}
					}
				}
				r := newRig(t)
				s, err := flows.NewOrthogonalSylvester(r.input(raw, B, L*M), r.input(make([]float64, B*M*M), B, M*M),
					r.input(make([]float64, B*M), B, M), r.input(make([]float64, B*M), B, M), r.input(make([]float64, B*M), B, M))
				if err != nil {
					t.Fatal(err)
				}
				r.watch(s.Q())
				r.run()
				q := r.get(s.Q())
				for i := range B {
					Q := mat.NewDense(L, M, q[i*L*M:(i+1)*L*M])
					var qtq mat.Dense
					qtq.Mul(Q.T(), Q)
					for a := range M {
						for b := range M {
							want := 0.0
							if a == b {
								want = 1
							}
							if math.Abs(qtq.At(a, b)-want) > 1e-12 {
								t.Errorf("row %d: (QᵀQ)[%d,%d] = %.15g, want %g", i, a, b, qtq.At(a, b), want)
							}
						}
					}
					var svd mat.SVD
					if !svd.Factorize(mat.NewDense(L, M, raw[i*L*M:(i+1)*L*M]), mat.SVDThin) {
						t.Fatal("SVD failed")
					}
					var u, v, polar mat.Dense
					svd.UTo(&u)
					svd.VTo(&v)
					polar.Mul(&u, v.T())
					// The polar factor's sensitivity grows with the condition number.
					if !mat.EqualApprox(Q, &polar, 1e-10*cond) {
						t.Errorf("row %d: Q = %v, polar factor U Vᵀ = %v", i, mat.Formatted(Q), mat.Formatted(&polar))
					}
				}
			})
		}
	}
}

// A rank-deficient raw Q is an error naming the row, not a silent
// non-orthogonal Q.
func TestOrthogonalizationRefusesRankDeficient(t *testing.T) {
	const B, L, M = 3, 4, 2
	rng := rand.New(rand.NewPCG(1, 1))
	raw := randn(rng, B*L*M, 1)
	for l := range L { // row 1: both columns equal
		raw[1*L*M+l*M+1] = raw[1*L*M+l*M]
	}
	r := newRig(t)
	if _, err := flows.NewOrthogonalSylvester(r.input(raw, B, L*M), r.input(make([]float64, B*M*M), B, M*M),
		r.input(make([]float64, B*M), B, M), r.input(make([]float64, B*M), B, M), r.input(make([]float64, B*M), B, M)); err != nil {
		t.Fatal(err)
	}
	r.vm = G.NewTapeMachine(r.g)
	var err error
	err = r.vm.RunAll()
	if err == nil || !strings.Contains(err.Error(), "row 1") || !strings.Contains(err.Error(), "rank-deficient") {
		t.Errorf("error %v, want one naming row 1 and rank deficiency", err)
	}
}

// A zero or non-finite raw Q or v yields NaN in that row only, as inputs
// outside the domain do for the other flows, not an error that would stop
// a training run.
func TestSylvesterNonFiniteInputsGiveNaN(t *testing.T) {
	const B, L, M = 3, 3, 2
	rng := rand.New(rand.NewPCG(3, 3))
	raw := randn(rng, B*L*M, 1)
	raw[0] = math.NaN() // row 0
	v := randn(rng, B*L, 1)
	clear(v[2*L : 3*L]) // row 2: v = 0
	r := newRig(t)
	zero := func(w int) *G.Node { return r.input(make([]float64, B*w), B, w) }
	orth, err := flows.NewOrthogonalSylvester(r.input(raw, B, L*M), zero(M*M), zero(M), zero(M), zero(M))
	if err != nil {
		t.Fatal(err)
	}
	hh, err := flows.NewHouseholderSylvester(r.input(v, B, L), zero(L*L), zero(L), zero(L), zero(L))
	if err != nil {
		t.Fatal(err)
	}
	r.watch(orth.Q(), hh.Q())
	r.run()
	for _, c := range []struct {
		name string
		q    []float64
		w    int
		bad  int
	}{{"orthogonal", r.get(orth.Q()), L * M, 0}, {"Householder", r.get(hh.Q()), L * L, 2}} {
		for i := range B {
			for _, x := range c.q[i*c.w : (i+1)*c.w] {
				if math.IsNaN(x) != (i == c.bad) {
					t.Errorf("%s row %d: Q entry %g (NaN expected only in row %d)", c.name, i, x, c.bad)
					break
				}
			}
		}
	}
}

// The Householder variant's Q is the product H_1 ... H_H of the reflections,
// orthogonal, with det (-1)^H.
func TestHouseholderSylvesterQ(t *testing.T) {
	const B, L, H = 3, 5, 3
	rng := rand.New(rand.NewPCG(2, 2))
	v := randn(rng, B*H*L, 1)
	r := newRig(t)
	s, err := flows.NewHouseholderSylvester(r.input(v, B, H*L), r.input(make([]float64, B*L*L), B, L*L),
		r.input(make([]float64, B*L), B, L), r.input(make([]float64, B*L), B, L), r.input(make([]float64, B*L), B, L))
	if err != nil {
		t.Fatal(err)
	}
	r.watch(s.Q())
	r.run()
	q := r.get(s.Q())
	for i := range B {
		want := eye(L)
		for h := range H {
			vh := mat.NewVecDense(L, v[i*H*L+h*L:i*H*L+(h+1)*L])
			refl := eye(L)
			var vvT mat.Dense
			vvT.Outer(-2/mat.Dot(vh, vh), vh, vh)
			refl.Add(refl, &vvT)
			want.Mul(mat.DenseCopyOf(want), refl)
		}
		got := mat.NewDense(L, L, q[i*L*L:(i+1)*L*L])
		if !mat.EqualApprox(got, want, 1e-13) {
			t.Errorf("row %d: Q = %v, product of reflections %v", i, mat.Formatted(got), mat.Formatted(want))
		}
		if d := mat.Det(got); math.Abs(d-math.Pow(-1, H)) > 1e-12 {
			t.Errorf("row %d: det Q = %g, want %g", i, d, math.Pow(-1, H))
		}
	}
}

func eye(n int) *mat.Dense {
	m := mat.NewDense(n, n, nil)
	for i := range n {
		m.Set(i, i, 1)
	}
	return m
}

// Each Sylvester variant computes the map of the paper written with dense
// matrices: R and R̃ built explicitly (upper triangular, diagonals tanh of
// the raw ones), f(z) = z + Q R tanh(R̃ Qᵀ z + b), and the log-determinant
// as log det(I_L + Q R diag(h') R̃ Qᵀ) by an L×L LU factorization, not the
// triangular shortcut the code uses.
func TestSylvesterMatchesDenseFormula(t *testing.T) {
	const B = 4
	for _, s := range []spec{orthoSylvesterFull, orthoSylvesterThin, householderSylvester, triangularSylvester(false), triangularSylvester(true)} {
		for _, L := range []int{1, 3, 4} {
			t.Run(fmt.Sprintf("%s/L=%d", s.name, L), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(L), 9))
				z := randn(rng, B*L, 1.5)
				ps := s.gens[0].draw(rng, z, B, L)
				fr := newFlowRig(t, s, z, ps, B, L)
				var qNode *G.Node
				sy := fr.flow.(*flows.Sylvester)
				if qNode = sy.Q(); qNode != nil {
					fr.watch(qNode)
				}
				out, logDet := fr.eval(z)
				_, M := sy.Dims()
				raw := ps
				if qNode != nil {
					raw = ps[1:]
				}
				for i := range B {
					var Q *mat.Dense
					switch {
					case qNode != nil:
						Q = mat.NewDense(L, M, fr.get(qNode)[i*L*M:(i+1)*L*M])
					case strings.Contains(s.name, "reverse=true"):
						Q = mat.NewDense(L, L, nil)
						for j := range L {
							Q.Set(j, L-1-j, 1)
						}
					default:
						Q = eye(L)
					}
					D := raw[0][i*M*M : (i+1)*M*M]
					R, Rt := mat.NewDense(M, M, nil), mat.NewDense(M, M, nil)
					for a := range M {
						R.Set(a, a, math.Tanh(raw[1][i*M+a]))
						Rt.Set(a, a, math.Tanh(raw[2][i*M+a]))
						for b := a + 1; b < M; b++ {
							R.Set(a, b, D[a*M+b])
							Rt.Set(a, b, D[b*M+a])
						}
					}
					zi := mat.NewVecDense(L, z[i*L:(i+1)*L])
					var qtz, pre mat.VecDense
					qtz.MulVec(Q.T(), zi)
					pre.MulVec(Rt, &qtz)
					h, hp := mat.NewVecDense(M, nil), mat.NewDiagDense(M, nil)
					for a := range M {
						x := math.Tanh(pre.AtVec(a) + raw[3][i*M+a])
						h.SetVec(a, x)
						hp.SetDiag(a, 1-x*x)
					}
					var qr, want mat.VecDense
					var QR, J mat.Dense
					QR.Mul(Q, R)
					qr.MulVec(&QR, h)
					want.AddVec(zi, &qr)
					var t1, t2 mat.Dense
					t1.Mul(&QR, hp)
					t2.Mul(&t1, Rt)
					J.Mul(&t2, Q.T())
					J.Add(&J, eye(L))
					for j := range L {
						if math.Abs(out[i*L+j]-want.AtVec(j)) > 1e-12*(1+math.Abs(want.AtVec(j))) {
							t.Errorf("row %d: out[%d] = %.15g, dense formula %.15g", i, j, out[i*L+j], want.AtVec(j))
						}
					}
					ld, sign := mat.LogDet(&J)
					// 1e-8 inside each of the M logs biases by 1e-8/factor.
					if sign <= 0 || math.Abs(logDet[i]-ld) > 1e-6 {
						t.Errorf("row %d: logDet %.12g, dense log det %.12g (sign %g)", i, logDet[i], ld, sign)
					}
				}
			})
		}
	}
}

// Whatever the raw parameters, R_ii R̃_ii > -1, so every variant has a
// positive Jacobian determinant everywhere: checked on rows whose raw
// diagonals are huge and of opposite signs (tanh saturated, the product
// within 1e-9 of -1), with z swept through the region where h' = 1.
func TestSylvesterInvertibleForExtremeRawParameters(t *testing.T) {
	const B, L = 8, 3
	for _, s := range []spec{orthoSylvesterFull, orthoSylvesterThin, householderSylvester, triangularSylvester(true)} {
		t.Run(s.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			z := randn(rng, B*L, 0.01)
			ps := s.gens[0].draw(rng, z, B, L)
			k := len(ps) - 4
			for i := range ps[k+1] {
				ps[k+1][i], ps[k+2][i] = 11, -11 // tanh(11) = 1 - 5.6e-10
			}
			for i := range ps[k+3] {
				ps[k+3][i] = 0
			}
			fr := newFlowRig(t, s, z, ps, B, L)
			_, logDet := fr.eval(z)
			for i, ld := range logDet {
				// Each factor 1 + R_ii R̃_ii h' ≥ 1 - tanh(11)² > 1e-9.
				if math.IsNaN(ld) || ld < float64(L)*math.Log(1e-9) {
					t.Errorf("row %d: logDet %g: a factor reached 0", i, ld)
				}
			}
		})
	}
}

// The pushforward of a 2-D standard normal through a composition of
// Sylvester steps of every variant (and two Householder reflections) keeps each
// grid cell's orientation and carries total mass 1 with the returned
// log-determinants.
func TestSylvesterPushforwardIntegratesToOne(t *testing.T) {
	const (
		n    = 320
		half = 7.0
		cell = 2 * half / n
		L    = 2
	)
	corners, centres := (n+1)*(n+1), n*n
	B := corners + centres
	z := make([]float64, 0, B*L)
	for i := range n + 1 {
		for j := range n + 1 {
			z = append(z, -half+float64(i)*cell, -half+float64(j)*cell)
		}
	}
	for i := range n {
		for j := range n {
			z = append(z, -half+(float64(i)+0.5)*cell, -half+(float64(j)+0.5)*cell)
		}
	}
	tile := func(v ...float64) []float64 {
		out := make([]float64, 0, B*len(v))
		for range B {
			out = append(out, v...)
		}
		return out
	}
	r := newRig(t)
	in := func(v []float64) *G.Node { return r.input(v, B, len(v)/B) }
	// Triangular, M = 2: R = [[tanh 1.2, 1.5],[0, tanh -0.4]], R̃ from D's lower triangle.
	tri, err := flows.NewTriangularSylvester(in(tile(0, 1.5, -2, 0)), in(tile(1.2, -0.4)), in(tile(0.8, 2)), in(tile(0.3, -0.5)), true)
	if err != nil {
		t.Fatal(err)
	}
	// Orthogonal, M = 1: a planar-like step along one direction.
	orth, err := flows.NewOrthogonalSylvester(in(tile(0.6, -0.8)), in(tile(0)), in(tile(2)), in(tile(1.5)), in(tile(0.2)))
	if err != nil {
		t.Fatal(err)
	}
	hh, err := flows.NewHouseholderSylvester(in(tile(1, 2, -0.5, 1)), in(tile(0, -1, 1.2, 0)), in(tile(-1, 0.7)), in(tile(1.5, 0.9)), in(tile(0, 0.4)))
	if err != nil {
		t.Fatal(err)
	}
	// Two reflections: one alone reverses orientation (det -1), which the
	// cell check would report as folding.
	refl1, err := flows.NewHouseholder(in(tile(0.3, 1)))
	if err != nil {
		t.Fatal(err)
	}
	refl2, err := flows.NewHouseholder(in(tile(1, -0.2)))
	if err != nil {
		t.Fatal(err)
	}
	out, logDet, err := flows.Compose(tri, refl1, orth, refl2, hh).Forward(r.input(z, B, L))
	if err != nil {
		t.Fatal(err)
	}
	r.watch(out, logDet)
	r.run()
	checkPushforwardMass(t, r.get(out), z, r.get(logDet), n, corners, 2e-3)
}

// A Householder step is an orthogonal reflection: it keeps norms, is its
// own inverse and has log-determinant exactly 0.
func TestHouseholderReflects(t *testing.T) {
	const B, L = 4, 5
	rng := rand.New(rand.NewPCG(6, 6))
	zv, vv := randn(rng, B*L, 1), randn(rng, B*L, 1)
	r := newRig(t)
	h, err := flows.NewHouseholder(r.input(vv, B, L))
	if err != nil {
		t.Fatal(err)
	}
	y, ld, err := h.Forward(r.input(zv, B, L))
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := h.Forward(y)
	if err != nil {
		t.Fatal(err)
	}
	r.watch(y, ld, back)
	r.run()
	yv, lv, bv := r.get(y), r.get(ld), r.get(back)
	for i := range B {
		if lv[i] != 0 {
			t.Errorf("row %d: logDet %g, want 0", i, lv[i])
		}
		zi, yi := zv[i*L:(i+1)*L], yv[i*L:(i+1)*L]
		if math.Abs(dot(zi, zi)-dot(yi, yi)) > 1e-12 {
			t.Errorf("row %d: |z|² = %g, |Hz|² = %g", i, dot(zi, zi), dot(yi, yi))
		}
		for j := range L {
			if math.Abs(bv[i*L+j]-zi[j]) > 1e-13 {
				t.Errorf("row %d: H(Hz)[%d] = %g, z = %g", i, j, bv[i*L+j], zi[j])
			}
		}
	}
}

// The chain registers K-1 maps and computes v_k = W_k v_{k-1} + c_k; its
// flow is the K reflections in order.
func TestHouseholderChain(t *testing.T) {
	const B, L, K = 3, 4, 3
	ps, err := nets.NewParams(tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	c, err := flows.NewHouseholderChain(ps, "hh", L, K)
	if err != nil {
		t.Fatal(err)
	}
	if c.Steps() != K {
		t.Errorf("Steps() = %d, want %d", c.Steps(), K)
	}
	var names []string
	for _, p := range ps.All() {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, " "), "hh.2.weight hh.2.bias hh.3.weight hh.3.bias"; got != want {
		t.Errorf("parameters %q, want %q", got, want)
	}
	ps.InitUniform(rand.New(rand.NewPCG(1, 2)))
	g := G.NewGraph()
	b := ps.Bind(g)
	rng := rand.New(rand.NewPCG(3, 3))
	v1v, zv := randn(rng, B*L, 1), randn(rng, B*L, 1)
	mk := func(name string, v []float64) *G.Node {
		return G.NewMatrix(g, tensor.Float64, G.WithShape(B, L), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(B, L), tensor.WithBacking(v))))
	}
	f, vs, err := c.Bind(b, mk("v1", v1v))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := f.Forward(mk("z", zv))
	if err != nil {
		t.Fatal(err)
	}
	var outV G.Value
	G.Read(out, &outV)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	// Reference: v_k by hand, then the reflections.
	got := outV.Data().([]float64)
	for i := range B {
		v := append([]float64(nil), v1v[i*L:(i+1)*L]...)
		z := append([]float64(nil), zv[i*L:(i+1)*L]...)
		for k := range K {
			if k > 0 {
				w := ps.Get(fmt.Sprintf("hh.%d.weight", k+1)).Float64s()
				bias := ps.Get(fmt.Sprintf("hh.%d.bias", k+1)).Float64s()
				nv := append([]float64(nil), bias...)
				for a := range L {
					for o := range L {
						nv[o] += v[a] * w[a*L+o]
					}
				}
				v = nv
			}
			c := 2 * dot(v, z) / dot(v, v)
			for j := range z {
				z[j] -= c * v[j]
			}
		}
		for j := range L {
			if math.Abs(got[i*L+j]-z[j]) > 1e-12 {
				t.Errorf("row %d: out[%d] = %g, reference %g", i, j, got[i*L+j], z[j])
			}
		}
	}
	if len(vs) != K {
		t.Errorf("%d vectors, want %d", len(vs), K)
	}
	if _, err := flows.NewHouseholderChain(ps, "bad", L, 0); err == nil {
		t.Error("K = 0 accepted")
	}
}

// Shape mistakes in the Sylvester and Householder constructors are errors
// naming the argument.
func TestSylvesterShapeErrors(t *testing.T) {
	const B, L, M = 3, 4, 2
	r := newRig(t)
	m := func(rows, cols int) *G.Node { return r.input(make([]float64, rows*cols), rows, cols) }
	for _, c := range []struct {
		name, want string
		err        func() error
	}{
		{"orth q width", "raw Q", func() error {
			_, err := flows.NewOrthogonalSylvester(m(B, L*M+1), m(B, M*M), m(B, M), m(B, M), m(B, M))
			return err
		}},
		{"orth M > L", "raw Q", func() error {
			_, err := flows.NewOrthogonalSylvester(m(B, M), m(B, M*M), m(B, M), m(B, M), m(B, M))
			return err
		}},
		{"orth D", "orthogonal Sylvester D", func() error {
			_, err := flows.NewOrthogonalSylvester(m(B, L*M), m(B, M), m(B, M), m(B, M), m(B, M))
			return err
		}},
		{"hh v", "Householder Sylvester v", func() error {
			_, err := flows.NewHouseholderSylvester(m(B, L+1), m(B, L*L), m(B, L), m(B, L), m(B, L))
			return err
		}},
		{"tri diag2", "triangular Sylvester diag2", func() error {
			_, err := flows.NewTriangularSylvester(m(B, L*L), m(B, L), m(B+1, L), m(B, L), false)
			return err
		}},
		{"tri z", "triangular Sylvester z", func() error {
			s, err := flows.NewTriangularSylvester(m(B, L*L), m(B, L), m(B, L), m(B, L), false)
			if err != nil {
				return err
			}
			_, _, err = s.Forward(m(B, L+1))
			return err
		}},
		{"householder z", "Householder z", func() error {
			h, err := flows.NewHouseholder(m(B, L))
			if err != nil {
				return err
			}
			_, _, err = flows.Compose(h).Forward(m(B, L-1))
			return err
		}},
	} {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

// TestSylvesterStackWithQ: the stacks on a Q computed apart
// (OrthogonalStackQ, HouseholderStackQ, then NewSylvesterStackWithQ) give the
// stacks' own outputs and log-determinants bit for bit.
func TestSylvesterStackWithQ(t *testing.T) {
	const B, L, M, H, K = 3, 5, 3, 2, 2
	rng := rand.New(rand.NewPCG(4, 4))
	z := randn(rng, B*L, 1)
	for _, c := range []struct {
		name     string
		m, qw    int
		own      func(q, p *G.Node) (flows.Flow, error)
		computeQ func(q *G.Node) (*G.Node, error)
	}{
		{"orthogonal", M, L * M, func(q, p *G.Node) (flows.Flow, error) { return flows.NewOrthogonalSylvesterStack(q, p, L, M, K) },
			func(q *G.Node) (*G.Node, error) { return flows.OrthogonalStackQ(q, L, M, K) }},
		{"householder", L, H * L, func(v, p *G.Node) (flows.Flow, error) { return flows.NewHouseholderSylvesterStack(v, p, L, H, K) },
			func(v *G.Node) (*G.Node, error) { return flows.HouseholderStackQ(v, L, H, K) }},
	} {
		raw, p := randn(rng, B*K*c.qw, 1), randn(rng, B*K*(c.m*c.m+3*c.m), 0.5)
		var outs [2][]float64
		for i := range outs {
			r := newRig(t)
			qn, pn := r.input(raw, B, K*c.qw), r.input(p, B, K*(c.m*c.m+3*c.m))
			var f flows.Flow
			var err error
			if i == 0 {
				f, err = c.own(qn, pn)
			} else {
				var q *G.Node
				if q, err = c.computeQ(qn); err == nil {
					f, err = flows.NewSylvesterStackWithQ(q, pn, L, c.m, K)
				}
			}
			if err != nil {
				t.Fatal(c.name, err)
			}
			out, ld, err := f.Forward(r.input(z, B, L))
			if err != nil {
				t.Fatal(c.name, err)
			}
			r.watch(out, ld)
			r.run()
			outs[i] = append(r.get(out), r.get(ld)...)
		}
		for j := range outs[0] {
			if math.Float64bits(outs[0][j]) != math.Float64bits(outs[1][j]) {
				t.Fatalf("%s: value %d: %v from the stack, %v with Q apart", c.name, j, outs[0][j], outs[1][j])
			}
		}
	}
	r := newRig(t)
	if _, err := flows.OrthogonalStackQ(r.input(make([]float64, B*7), B, 7), L, M, K); err == nil || !strings.Contains(err.Error(), "want (B, 30)") {
		t.Errorf("a raw Q of the wrong width: err = %v", err)
	}
	if _, err := flows.NewSylvesterStackWithQ(r.input(make([]float64, B*K*L*M), B, K*L*M), r.input(make([]float64, B*K*(M*M+3*M)), B, K*(M*M+3*M)), L, L+1, K); err == nil {
		t.Error("M > L accepted")
	}
}

package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/govae/govae/flows"
	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
)

// The log-determinant each flow returns equals log|det| of a central
// finite-difference Jacobian (gonum's fd.Jacobian) of the map it computes, row by row, including
// raw parameters that violate the invertibility constraint before
// reparameterization.
func TestLogDetMatchesFiniteDifferenceJacobian(t *testing.T) {
	const B, h = 6, 1e-5
	for _, s := range specs {
		for _, g := range s.gens {
			for _, L := range []int{2, 3, 5} {
				t.Run(fmt.Sprintf("%s/%s/L=%d", s.name, g.name, L), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(L), 7))
					z := randn(rng, B*L, 1.5)
					fr := newFlowRig(t, s, z, g.draw(rng, z, B, L), B, L)
					_, logDet := fr.eval(z)
					// One row's Jacobian at a time: the other rows stay at z.
					jac := make([]*mat.Dense, B)
					for i := range B {
						jac[i] = mat.NewDense(L, L, nil)
						fd.Jacobian(jac[i], func(y, x []float64) {
							zi := slices.Clone(z)
							copy(zi[i*L:(i+1)*L], x)
							out, _ := fr.eval(zi)
							copy(y, out[i*L:(i+1)*L])
						}, z[i*L:(i+1)*L], &fd.JacobianSettings{Formula: fd.Central, Step: h})
					}
					for i := range B {
						det := mat.Det(jac[i])
						want := math.Log(math.Abs(det))
						// The 1e-8 inside the log and the FD error both
						// matter only relative to |det|.
						tol := 1e-6 + 1e-7/math.Abs(det)
						if math.IsNaN(logDet[i]) || math.Abs(logDet[i]-want) > tol {
							t.Errorf("row %d: logDet %.10g, FD log|det J| %.10g (det %.3g)", i, logDet[i], want, det)
						}
					}
				})
			}
		}
	}
}

// Forward computes the maps as written in the paper, checked against a
// plain-Go transcription of the formulas (including û, α and β).
func TestForwardMatchesFormula(t *testing.T) {
	const B, L = 5, 3
	rng := rand.New(rand.NewPCG(3, 4))
	z := randn(rng, B*L, 1.5)
	for _, tc := range []struct {
		s   spec
		ref func(z, out []float64, ps [][]float64)
	}{
		{planar, func(z, out []float64, ps [][]float64) {
			for i := range B {
				zi, u, w := z[i*L:(i+1)*L], ps[0][i*L:(i+1)*L], ps[1][i*L:(i+1)*L]
				wu := dot(w, u)
				c := (-1 + softplus(wu) - wu) / dot(w, w)
				t := math.Tanh(dot(w, zi) + ps[2][i])
				for k := range L {
					out[i*L+k] = zi[k] + (u[k]+c*w[k])*t
				}
			}
		}},
		{radial, func(z, out []float64, ps [][]float64) {
			for i := range B {
				zi, z0 := z[i*L:(i+1)*L], ps[0][i*L:(i+1)*L]
				alpha := softplus(ps[1][i])
				beta := -alpha + softplus(ps[2][i])
				r := 0.0
				for k := range L {
					r += (zi[k] - z0[k]) * (zi[k] - z0[k])
				}
				r = math.Sqrt(r)
				for k := range L {
					out[i*L+k] = zi[k] + beta/(alpha+r)*(zi[k]-z0[k])
				}
			}
		}},
	} {
		for _, g := range tc.s.gens {
			t.Run(tc.s.name+"/"+g.name, func(t *testing.T) {
				ps := g.draw(rng, z, B, L)
				got, _ := newFlowRig(t, tc.s, z, ps, B, L).eval(z)
				want := make([]float64, B*L)
				tc.ref(z, want, ps)
				for i := range want {
					if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
						t.Errorf("out[%d] = %.15g, formula gives %.15g", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// Reparameterization makes any raw parameters invertible: w·û ≥ -1 for the
// planar flow and α > 0, β ≥ -α for the radial flow, over raw values up to
// 1e3 in size, the planar ones including u anti-parallel to w.
func TestConstraintHoldsForArbitraryRawParameters(t *testing.T) {
	const B, L = 64, 4
	rng := rand.New(rand.NewPCG(5, 6))
	for _, scale := range []float64{1, 10, 100, 1000} {
		t.Run(fmt.Sprintf("planar/scale=%g", scale), func(t *testing.T) {
			u, w := randn(rng, B*L, scale), randn(rng, B*L, 1+rng.Float64()*scale)
			for i := range B / 2 { // half the rows anti-parallel
				for k := range L {
					u[i*L+k] = -scale * w[i*L+k]
				}
			}
			r := newRig(t)
			p, err := flows.NewPlanar(r.input(u, B, L), r.input(w, B, L), r.input(randn(rng, B, 1), B))
			if err != nil {
				t.Fatal(err)
			}
			r.watch(p.UHat())
			r.run()
			uHat := r.get(p.UHat())
			for i := range B {
				wi, ui := w[i*L:(i+1)*L], u[i*L:(i+1)*L]
				wuHat, wu := dot(wi, uHat[i*L:(i+1)*L]), dot(wi, ui)
				// Rounding in w·û grows with |w·u|.
				if wuHat < -1-1e-13*(1+math.Abs(wu)) {
					t.Errorf("row %d: w·û = %.17g < -1 (raw w·u = %g)", i, wuHat, wu)
				}
			}
		})
		t.Run(fmt.Sprintf("radial/scale=%g", scale), func(t *testing.T) {
			// Raw α stays above -700: below, softplus underflows to 0.
			rawA := randn(rng, B, min(scale, 100))
			rawB := randn(rng, B, scale)
			r := newRig(t)
			rf, err := flows.NewRadial(r.input(randn(rng, B*L, 1), B, L), r.input(rawA, B), r.input(rawB, B))
			if err != nil {
				t.Fatal(err)
			}
			r.watch(rf.Alpha(), rf.Beta())
			r.run()
			alpha, beta := r.get(rf.Alpha()), r.get(rf.Beta())
			for i := range B {
				if !(alpha[i] > 0) || !(beta[i] >= -alpha[i]) {
					t.Errorf("row %d: raw (%g, %g) gave α = %g, β = %g", i, rawA[i], rawB[i], alpha[i], beta[i])
				}
			}
		})
	}
}

// The change of variables holds with the log-determinants the code returns:
// for a 2-D standard Gaussian pushed through a composition whose raw planar
// parameters violate the constraint, each z-grid cell's image (a quadrilateral from the
// mapped corners) carries mass q_K(f(c)) × area, with q_K(f(c)) =
// N(c) exp(-logDet(c)), and these masses sum to 1. Every image cell must
// also keep its orientation (the map is locally invertible everywhere).
// Dropping the log-determinant makes the sum miss 1 by far more than the
// tolerance, so the check has power.
func TestPushforwardDensityIntegratesToOne(t *testing.T) {
	const (
		n    = 320 // cells per side
		half = 7.0 // the grid is [-half, half]²
		cell = 2 * half / n
		L    = 2
	)
	// One flow for all points: the per-row parameters are tiled.
	// w·u = -3 violates w·u ≥ -1; after reparameterization w·û = -0.95.
	// (Nearer the boundary det J vanishes on a line and a uniform grid
	// cannot resolve the 1/det singularity of the density.)
	pu, pw, pb := []float64{-1.8, 0.6}, []float64{1.5, -0.5}, 0.3
	qu, qw, qb := []float64{2.5, 1}, []float64{0.8, 1.2}, -0.4
	z0, rawA, rawB := []float64{0.5, -0.7}, 0.2, 1.5

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
	tile := func(v []float64) []float64 {
		out := make([]float64, 0, B*len(v))
		for range B {
			out = append(out, v...)
		}
		return out
	}
	r := newRig(t)
	zn := r.input(z, B, L)
	p1, err := flows.NewPlanar(r.input(tile(pu), B, L), r.input(tile(pw), B, L), r.input(fill(B, pb), B))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := flows.NewRadial(r.input(tile(z0), B, L), r.input(fill(B, rawA), B), r.input(fill(B, rawB), B))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := flows.NewPlanar(r.input(tile(qu), B, L), r.input(tile(qw), B, L), r.input(fill(B, qb), B))
	if err != nil {
		t.Fatal(err)
	}
	out, logDet, err := flows.Compose(p1, rf, p2).Forward(zn)
	if err != nil {
		t.Fatal(err)
	}
	r.watch(out, logDet)
	r.run()
	x, ld := r.get(out), r.get(logDet)

	// The error is O(cell²): 5e-3, 1.3e-3, 3e-4 at n = 160, 320, 640.
	checkPushforwardMass(t, x, z, ld, n, corners, 2e-3)
}

// G.Grad through each flow matches central finite differences of
// sum(logDet) + sum(out) with respect to z and every raw parameter.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	const B, L, h = 3, 3, 1e-6
	for _, s := range specs {
		for _, g := range s.gens {
			t.Run(s.name+"/"+g.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(11, 12))
				z := randn(rng, B*L, 1.5)
				fr := newFlowRig(t, s, z, g.draw(rng, z, B, L), B, L)
				loss, err := G.Add(must(G.Sum(fr.logDet)), must(G.Sum(fr.out)))
				if err != nil {
					t.Fatal(err)
				}
				wrt := append([]*G.Node{fr.z}, fr.params...)
				grads, err := G.Grad(loss, wrt...)
				if err != nil {
					t.Fatal(err)
				}
				fr.watch(loss)
				fr.watch(grads...)
				fr.run()
				grad := make([][]float64, len(wrt))
				for a := range wrt {
					grad[a] = fr.get(grads[a])
				}
				for a, n := range wrt {
					vals := slices.Clone(n.Value().Data().([]float64))
					fdGrad := fd.Gradient(nil, func(x []float64) float64 {
						set(n, x)
						fr.run()
						return fr.get(loss)[0]
					}, vals, &fd.Settings{Formula: fd.Central, Step: h})
					set(n, vals)
					for e, want := range fdGrad {
						if math.Abs(grad[a][e]-want) > 1e-6*(1+math.Abs(want)) {
							t.Errorf("d/d%s[%d]: G.Grad %.8g, finite difference %.8g", n.Name(), e, grad[a][e], want)
						}
					}
				}
			})
		}
	}
}

func must(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(err)
	}
	return n
}

package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/govae/govae/flows"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distmv"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// rig is a float64 graph whose inputs are rewritten between runs and whose
// outputs are read through G.Read (the tape machine reuses buffers).
type rig struct {
	t     *testing.T
	g     *G.ExprGraph
	reads map[*G.Node]*G.Value
	vm    G.VM
	// inputs counts input nodes, for unique names.
	inputs int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, g: G.NewGraph(), reads: map[*G.Node]*G.Value{}}
	t.Cleanup(func() {
		if r.vm != nil {
			r.vm.Close()
		}
	})
	return r
}

// input adds an input node holding a copy of vals.
func (r *rig) input(vals []float64, shape ...int) *G.Node {
	v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(slices.Clone(vals)))
	// Gorgonia merges inputs of equal name and shape, so name each one.
	name := G.WithName(fmt.Sprintf("in%d", r.inputs))
	r.inputs++
	if len(shape) == 1 {
		return G.NewVector(r.g, tensor.Float64, G.WithShape(shape...), G.WithValue(v), name)
	}
	return G.NewMatrix(r.g, tensor.Float64, G.WithShape(shape...), G.WithValue(v), name)
}

func (r *rig) watch(ns ...*G.Node) {
	for _, n := range ns {
		v := new(G.Value)
		G.Read(n, v)
		r.reads[n] = v
	}
}

func (r *rig) run() {
	r.t.Helper()
	if r.vm == nil {
		r.vm = G.NewTapeMachine(r.g)
	}
	defer r.vm.Reset()
	if err := r.vm.RunAll(); err != nil {
		r.t.Fatalf("running graph: %v", err)
	}
}

// get returns a copy of a watched node's value from the last run.
func (r *rig) get(n *G.Node) []float64 {
	r.t.Helper()
	v, ok := r.reads[n]
	if !ok || *v == nil {
		r.t.Fatalf("node %v was not watched or not computed", n)
	}
	switch d := (*v).Data().(type) {
	case []float64:
		return slices.Clone(d)
	case float64:
		return []float64{d}
	}
	r.t.Fatalf("node %v holds %T", n, (*v).Data())
	return nil
}

func set(n *G.Node, vals []float64) { copy(n.Value().Data().([]float64), vals) }

// spec says how to build one kind of flow from raw parameter nodes.
type spec struct {
	name   string
	shapes func(B, L int) [][]int
	build  func(ps []*G.Node) (flows.Flow, error)
	// gen draws raw parameters for a batch z; the cases stress the
	// constraint boundary where noted.
	gens []gen
}

type gen struct {
	name string
	draw func(rng *rand.Rand, z []float64, B, L int) [][]float64
}

var planar = spec{
	name:   "planar",
	shapes: func(B, L int) [][]int { return [][]int{{B, L}, {B, L}, {B}} },
	build:  func(ps []*G.Node) (flows.Flow, error) { return flows.NewPlanar(ps[0], ps[1], ps[2]) },
	gens: []gen{
		{"random", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return [][]float64{randn(rng, B*L, 1), randn(rng, B*L, 1), randn(rng, B, 1)}
		}},
		// w·u ≈ -30|w|²: raw u violates w·u ≥ -1 badly, so û sits at the
		// boundary and the determinant is ≈ tanh².
		{"anti-parallel", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			w := randn(rng, B*L, 1)
			u := randn(rng, B*L, 0.1)
			for i := range u {
				u[i] -= 30 * w[i]
			}
			return [][]float64{u, w, randn(rng, B, 1)}
		}},
		{"parallel", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			w := randn(rng, B*L, 1)
			u := randn(rng, B*L, 0.1)
			for i := range u {
				u[i] += 3 * w[i]
			}
			return [][]float64{u, w, randn(rng, B, 1)}
		}},
		{"saturated tanh", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return [][]float64{randn(rng, B*L, 1), randn(rng, B*L, 4), randn(rng, B, 3)}
		}},
	},
}

var radial = spec{
	name:   "radial",
	shapes: func(B, L int) [][]int { return [][]int{{B, L}, {B}, {B}} },
	build:  func(ps []*G.Node) (flows.Flow, error) { return flows.NewRadial(ps[0], ps[1], ps[2]) },
	gens: []gen{
		{"random", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return [][]float64{randn(rng, B*L, 1), randn(rng, B, 1), randn(rng, B, 1)}
		}},
		// softplus(-40) ≈ 4e-18: β = -α to double precision, the
		// contracting boundary.
		{"beta at -alpha", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return [][]float64{randn(rng, B*L, 1), randn(rng, B, 1), fill(B, -40)}
		}},
		{"small alpha", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return [][]float64{randn(rng, B*L, 1), fill(B, -6), randn(rng, B, 1)}
		}},
		{"large beta", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return [][]float64{randn(rng, B*L, 1), randn(rng, B, 1), fill(B, 20)}
		}},
		// z within 0.1 of z0 and β = -α: 1 + βh is small, so the
		// (L-1)-fold term dominates.
		{"near centre at boundary", func(rng *rand.Rand, z []float64, B, L int) [][]float64 {
			z0 := randn(rng, B*L, 0.05)
			for i := range z0 {
				z0[i] += z[i]
			}
			return [][]float64{z0, randn(rng, B, 1), fill(B, -40)}
		}},
	},
}

// planarThenRadial is Compose(planar, radial) with both parameter sets.
var planarThenRadial = spec{
	name: "compose(planar, radial)",
	shapes: func(B, L int) [][]int {
		return append(planar.shapes(B, L), radial.shapes(B, L)...)
	},
	build: func(ps []*G.Node) (flows.Flow, error) {
		p, err := planar.build(ps[:3])
		if err != nil {
			return nil, err
		}
		r, err := radial.build(ps[3:])
		if err != nil {
			return nil, err
		}
		return flows.Compose(p, r), nil
	},
	gens: []gen{
		{"random", func(rng *rand.Rand, z []float64, B, L int) [][]float64 {
			return append(planar.gens[0].draw(rng, z, B, L), radial.gens[0].draw(rng, z, B, L)...)
		}},
		{"boundary", func(rng *rand.Rand, z []float64, B, L int) [][]float64 {
			return append(planar.gens[1].draw(rng, z, B, L), radial.gens[1].draw(rng, z, B, L)...)
		}},
	},
}

var specs = []spec{planar, radial, planarThenRadial}

// flowRig is a rig holding one flow applied to an input z.
type flowRig struct {
	*rig
	flow           flows.Flow
	z, out, logDet *G.Node
	params         []*G.Node
}

func newFlowRig(t *testing.T, s spec, z []float64, params [][]float64, B, L int) *flowRig {
	t.Helper()
	fr := &flowRig{rig: newRig(t)}
	fr.z = fr.input(z, B, L)
	for i, shape := range s.shapes(B, L) {
		fr.params = append(fr.params, fr.input(params[i], shape...))
	}
	f, err := s.build(fr.params)
	if err != nil {
		t.Fatal(err)
	}
	fr.flow = f
	if fr.out, fr.logDet, err = f.Forward(fr.z); err != nil {
		t.Fatal(err)
	}
	fr.watch(fr.out, fr.logDet)
	return fr
}

// eval runs the flow at z and returns f(z) and the log-determinants.
func (fr *flowRig) eval(z []float64) (out, logDet []float64) {
	set(fr.z, z)
	fr.run()
	return fr.get(fr.out), fr.get(fr.logDet)
}

func randn(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * rng.NormFloat64()
	}
	return v
}

func fill(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// softplus is log(1 + e^x) as gorgonia computes it in float64: x above 16
// (within e^-16 of the exact value), so references match to rounding.
func softplus(x float64) float64 {
	if x > 16 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// checkPushforwardMass integrates the density of a 2-D standard normal pushed
// through a flow over the image of an n×n grid: x holds the images of the
// (n+1)² grid corners (row-major, 2 values each), z the inputs of all
// points, and ld the log-determinants, with the n² cell centres at point
// index corners + i*n + j. Each image cell is a quadrilateral whose area the
// shoelace formula gives; the mass must be 1 within tol, and far from 1
// without the log-determinant (else the test proves little).
func checkPushforwardMass(t *testing.T, x, z, ld []float64, n, corners int, tol float64) {
	t.Helper()
	pt := func(i, j int) (float64, float64) {
		k := i*(n+1) + j
		return x[2*k], x[2*k+1]
	}
	// The base density N(0, I₂), from gonum rather than by hand.
	std, ok := distmv.NewNormal([]float64{0, 0}, mat.NewSymDense(2, []float64{1, 0, 0, 1}), nil)
	if !ok {
		t.Fatal("distmv: identity covariance refused")
	}
	var mass, massNoLogDet float64
	for i := range n {
		for j := range n {
			// Corners counter-clockwise in z: (i,j), (i+1,j), (i+1,j+1), (i,j+1).
			ax, ay := pt(i, j)
			bx, by := pt(i+1, j)
			cx, cy := pt(i+1, j+1)
			dx, dy := pt(i, j+1)
			area := 0.5 * ((ax*by - bx*ay) + (bx*cy - cx*by) + (cx*dy - dx*cy) + (dx*ay - ax*dy))
			if area <= 0 {
				t.Fatalf("cell (%d,%d) is folded: image area %g", i, j, area)
			}
			k := corners + i*n + j
			logN := std.LogProb(z[2*k : 2*k+2])
			mass += math.Exp(logN-ld[k]) * area
			massNoLogDet += math.Exp(logN) * area
		}
	}
	if math.Abs(mass-1) > tol {
		t.Errorf("pushforward mass %.6f, want 1 ± %g", mass, tol)
	}
	if math.Abs(massNoLogDet-1) < 10*tol {
		t.Errorf("mass without the log-determinant %.6f is within %g of 1: the flow barely changes volume and the test proves little", massNoLogDet, 10*tol)
	}
	t.Logf("mass %.6f; ignoring the log-determinant it would be %.6f", mass, massNoLogDet)
}

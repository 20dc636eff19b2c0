package flows_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/govae/govae/flows"
	G "gorgonia.org/gorgonia"
)

// sylvesterM is the number of orthonormal columns the "M<L" orthogonal
// spec uses for dimension L: about half, at least 1.
func sylvesterM(L int) int { return max(1, (L+1)/2) }

// sylvesterRaw draws D, ρ, ρ̃ and b for M columns; scale stretches the raw
// diagonals (large values saturate tanh and push R_ii R̃_ii towards ±1).
func sylvesterRaw(rng *rand.Rand, B, M int, diagMean1, diagMean2, scale float64) [][]float64 {
	d1, d2 := randn(rng, B*M, scale), randn(rng, B*M, scale)
	for i := range d1 {
		d1[i] += diagMean1
		d2[i] += diagMean2
	}
	return [][]float64{randn(rng, B*M*M, 1), d1, d2, randn(rng, B*M, 1)}
}

func sylvesterGens(q func(rng *rand.Rand, B, L int) []float64, M func(L int) int) []gen {
	with := func(rest [][]float64, rng *rand.Rand, B, L int) [][]float64 {
		if q == nil {
			return rest
		}
		return append([][]float64{q(rng, B, L)}, rest...)
	}
	return []gen{
		{"random", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return with(sylvesterRaw(rng, B, M(L), 0, 0, 1), rng, B, L)
		}},
		// R_ii R̃_ii near -1: the determinant's factors approach 1 - h'.
		{"near boundary", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 {
			return with(sylvesterRaw(rng, B, M(L), 3, -3, 0.3), rng, B, L)
		}},
	}
}

func sylvesterShapes(q func(B, L int) []int, M func(L int) int) func(B, L int) [][]int {
	return func(B, L int) [][]int {
		m := M(L)
		s := [][]int{{B, m * m}, {B, m}, {B, m}, {B, m}}
		if q != nil {
			s = append([][]int{q(B, L)}, s...)
		}
		return s
	}
}

func same(L int) int { return L }

var orthoSylvesterFull = spec{
	name:   "sylvester-orthogonal(M=L)",
	shapes: sylvesterShapes(func(B, L int) []int { return []int{B, L * L} }, same),
	build: func(ps []*G.Node) (flows.Flow, error) {
		return flows.NewOrthogonalSylvester(ps[0], ps[1], ps[2], ps[3], ps[4])
	},
	gens: sylvesterGens(func(rng *rand.Rand, B, L int) []float64 { return randn(rng, B*L*L, 1) }, same),
}

var orthoSylvesterThin = spec{
	name:   "sylvester-orthogonal(M<L)",
	shapes: sylvesterShapes(func(B, L int) []int { return []int{B, L * sylvesterM(L)} }, sylvesterM),
	build: func(ps []*G.Node) (flows.Flow, error) {
		return flows.NewOrthogonalSylvester(ps[0], ps[1], ps[2], ps[3], ps[4])
	},
	gens: sylvesterGens(func(rng *rand.Rand, B, L int) []float64 { return randn(rng, B*L*sylvesterM(L), 1) }, sylvesterM),
}

const sylvesterH = 3 // reflections per Householder-Sylvester step in the specs

var householderSylvester = spec{
	name:   fmt.Sprintf("sylvester-householder(H=%d)", sylvesterH),
	shapes: sylvesterShapes(func(B, L int) []int { return []int{B, sylvesterH * L} }, same),
	build: func(ps []*G.Node) (flows.Flow, error) {
		return flows.NewHouseholderSylvester(ps[0], ps[1], ps[2], ps[3], ps[4])
	},
	gens: sylvesterGens(func(rng *rand.Rand, B, L int) []float64 { return randn(rng, B*sylvesterH*L, 1) }, same),
}

func triangularSylvester(reverse bool) spec {
	return spec{
		name:   fmt.Sprintf("sylvester-triangular(reverse=%t)", reverse),
		shapes: sylvesterShapes(nil, same),
		build: func(ps []*G.Node) (flows.Flow, error) {
			return flows.NewTriangularSylvester(ps[0], ps[1], ps[2], ps[3], reverse)
		},
		gens: sylvesterGens(nil, same),
	}
}

var householderFlow = spec{
	name:   "householder",
	shapes: func(B, L int) [][]int { return [][]int{{B, L}} },
	build:  func(ps []*G.Node) (flows.Flow, error) { return flows.NewHouseholder(ps[0]) },
	gens: []gen{
		{"random", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 { return [][]float64{randn(rng, B*L, 1)} }},
		{"short v", func(rng *rand.Rand, _ []float64, B, L int) [][]float64 { return [][]float64{randn(rng, B*L, 0.05)} }},
	},
}

// mixed chains every fusable kind in one composition (one stack node),
// with an orthogonal Sylvester step of M < L.
var mixed = spec{
	name: "compose(householder, planar, sylvester-tri-rev, radial, sylvester-orth(M<L))",
	shapes: func(B, L int) [][]int {
		var s [][]int
		for _, p := range mixedParts() {
			s = append(s, p.shapes(B, L)...)
		}
		return s
	},
	build: func(ps []*G.Node) (flows.Flow, error) {
		var fs []flows.Flow
		for _, p := range mixedParts() {
			n := len(p.shapes(1, 2))
			f, err := p.build(ps[:n])
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
			ps = ps[n:]
		}
		return flows.Compose(fs...), nil
	},
	gens: []gen{{"random", func(rng *rand.Rand, z []float64, B, L int) [][]float64 {
		var out [][]float64
		for _, p := range mixedParts() {
			out = append(out, p.gens[0].draw(rng, z, B, L)...)
		}
		return out
	}}},
}

func mixedParts() []spec {
	return []spec{householderFlow, planar, triangularSylvester(true), radial, orthoSylvesterThin}
}

func init() {
	specs = append(specs, orthoSylvesterFull, orthoSylvesterThin, householderSylvester,
		triangularSylvester(false), triangularSylvester(true), householderFlow, mixed)
}

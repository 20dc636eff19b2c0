package flows_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/govae/govae/flows"
	G "gorgonia.org/gorgonia"
)

const stackK = 3 // steps in the packed-stack specs

// stackSpec is a packed stack of stackK steps of kind one as a spec: its
// packed inputs are the per-step parameters of one laid side by side (Q
// inputs, if any, in their own packed input first). Its generator draws
// one's parameters per step and packs them.
func stackSpec(name string, one spec, qParams int, build func(ps []*G.Node, L int) (flows.Flow, error)) spec {
	pack := func(perStep [][][]float64, B int, widths []int, from, to int) []float64 {
		W := 0
		for _, w := range widths[from:to] {
			W += w
		}
		out := make([]float64, 0, B*W*stackK)
		for i := range B {
			for k := range stackK {
				for a := from; a < to; a++ {
					out = append(out, perStep[k][a][i*widths[a]:(i+1)*widths[a]]...)
				}
			}
		}
		return out
	}
	widthsOf := func(B, L int) []int {
		var ws []int
		for _, s := range one.shapes(B, L) {
			w := 1
			if len(s) == 2 {
				w = s[1]
			}
			ws = append(ws, w)
		}
		return ws
	}
	return spec{
		name: name,
		shapes: func(B, L int) [][]int {
			ws := widthsOf(B, L)
			var out [][]int
			if qParams > 0 {
				out = append(out, []int{B, stackK * ws[0]})
			}
			W := 0
			for _, w := range ws[qParams:] {
				W += w
			}
			return append(out, []int{B, stackK * W})
		},
		build: func(ps []*G.Node) (flows.Flow, error) { return build(ps, -1) },
		gens: []gen{{"random", func(rng *rand.Rand, z []float64, B, L int) [][]float64 {
			perStep := make([][][]float64, stackK)
			for k := range perStep {
				perStep[k] = one.gens[0].draw(rng, z, B, L)
			}
			ws := widthsOf(B, L)
			var out [][]float64
			if qParams > 0 {
				out = append(out, pack(perStep, B, ws, 0, qParams))
			}
			return append(out, pack(perStep, B, ws, qParams, len(ws)))
		}}},
	}
}

// The stack constructors take L (and M, H); the specs' builds recover them
// from the packed widths.
func cols(n *G.Node) int { return n.Shape()[1] }

// quadDim solves W = L² + 3L for L.
func quadDim(W int) int { return int(math.Round((-3 + math.Sqrt(9+4*float64(W))) / 2)) }

var planarStack = stackSpec("planar stack", planar, 0, func(ps []*G.Node, _ int) (flows.Flow, error) {
	return flows.NewPlanarStack(ps[0], (cols(ps[0])/stackK-1)/2, stackK)
})
var radialStack = stackSpec("radial stack", radial, 0, func(ps []*G.Node, _ int) (flows.Flow, error) {
	return flows.NewRadialStack(ps[0], cols(ps[0])/stackK-2, stackK)
})
var triStack = stackSpec("triangular Sylvester stack", triangularSylvester(false), 0, func(ps []*G.Node, _ int) (flows.Flow, error) {
	return flows.NewTriangularSylvesterStack(ps[0], quadDim(cols(ps[0])/stackK), stackK)
})
var orthStack = stackSpec("orthogonal Sylvester stack (M<L)", orthoSylvesterThin, 1, func(ps []*G.Node, _ int) (flows.Flow, error) {
	M := quadDim(cols(ps[1]) / stackK)
	return flows.NewOrthogonalSylvesterStack(ps[0], ps[1], cols(ps[0])/stackK/M, M, stackK)
})
var hhStack = stackSpec("Householder Sylvester stack", householderSylvester, 1, func(ps []*G.Node, _ int) (flows.Flow, error) {
	L := quadDim(cols(ps[1]) / stackK)
	return flows.NewHouseholderSylvesterStack(ps[0], ps[1], L, cols(ps[0])/stackK/L, stackK)
})

func init() { specs = append(specs, planarStack, radialStack, triStack, orthStack, hhStack) }

// A packed stack computes exactly what the same steps built one by one from
// the unpacked parameters compute (the triangular stack alternating Q = I
// and the reversal from the first step).
func TestPackedStackMatchesSteps(t *testing.T) {
	const B = 4
	for _, c := range []struct {
		stack, one spec
		alt        bool
	}{
		{planarStack, planar, false}, {radialStack, radial, false},
		{triStack, triangularSylvester(false), true},
		{orthStack, orthoSylvesterThin, false}, {hhStack, householderSylvester, false},
	} {
		for _, L := range []int{1, 3, 4} {
			t.Run(fmt.Sprintf("%s/L=%d", c.stack.name, L), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(L), 5))
				z := randn(rng, B*L, 1.2)
				packed := c.stack.gens[0].draw(rng, z, B, L)
				got, gotLD := newFlowRig(t, c.stack, z, packed, B, L).eval(z)

				// Unpack into per-step inputs in the one-step spec's shapes.
				shapes := c.one.shapes(B, L)
				widths := make([]int, len(shapes))
				for a, s := range shapes {
					widths[a] = 1
					if len(s) == 2 {
						widths[a] = s[1]
					}
				}
				nq := len(packed) - 1 // 1 when Q has its own packed input
				r := newRig(t)
				var fs []flows.Flow
				for k := range stackK {
					var ps []*G.Node
					for a, w := range widths {
						src, W, off := packed[len(packed)-1], 0, 0
						from := nq
						if a < nq {
							src, from = packed[0], 0
						}
						for b := from; b < len(widths) && (a >= nq || b < nq); b++ {
							W += widths[b]
						}
						for b := from; b < a; b++ {
							off += widths[b]
						}
						vals := make([]float64, 0, B*w)
						for i := range B {
							base := i*stackK*W + k*W + off
							vals = append(vals, src[base:base+w]...)
						}
						ps = append(ps, r.input(vals, shapes[a]...))
					}
					one := c.one
					if c.alt {
						one = triangularSylvester(k%2 == 1)
					}
					f, err := one.build(ps)
					if err != nil {
						t.Fatal(err)
					}
					fs = append(fs, f)
				}
				out, ld, err := flows.Compose(fs...).Forward(r.input(z, B, L))
				if err != nil {
					t.Fatal(err)
				}
				r.watch(out, ld)
				r.run()
				want, wantLD := r.get(out), r.get(ld)
				for i := range want {
					if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
						t.Errorf("out[%d]: stack %.15g, steps %.15g", i, got[i], want[i])
					}
				}
				for i := range wantLD {
					if math.Abs(gotLD[i]-wantLD[i]) > 1e-12*(1+math.Abs(wantLD[i])) {
						t.Errorf("logDet[%d]: stack %.15g, steps %.15g", i, gotLD[i], wantLD[i])
					}
				}
			})
		}
	}
}

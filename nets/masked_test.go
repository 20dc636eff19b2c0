package nets

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The masks of a small MADE, written out from Germain et al.'s rule.
func TestMADEMasks(t *testing.T) {
	ps, _ := NewParams(tensor.Float64)
	m, err := NewMADE(ps, "made", 3, []int{2}, 1, Tanh, false)
	if err != nil {
		t.Fatal(err)
	}
	// Input degrees 1, 2, 3; hidden degrees 1, 2; outputs 1, 2, 3.
	want := [][]float64{
		{ // (3 inputs, 2 hidden): hidden k sees inputs of degree ≤ k
			1, 1,
			0, 1,
			0, 0,
		},
		{ // (2 hidden, 3 outputs): output d sees hidden of degree < d
			0, 1, 1,
			0, 0, 1,
		},
	}
	if len(m.Layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(want))
	}
	for k, l := range m.Layers {
		if !slices.Equal(l.Mask, want[k]) {
			t.Errorf("layer %d mask %v, want %v", k, l.Mask, want[k])
		}
	}
	if got := []string{ps.All()[0].Name, ps.All()[3].Name}; !slices.Equal(got, []string{"made.0.weight", "made.1.bias"}) {
		t.Errorf("parameter names %v: masks must not be parameters", got)
	}
}

// Output j of a MADE changes when input i is perturbed exactly when i comes
// before j mod D in the order: its Jacobian is strictly lower triangular in
// that order, and (with hidden layers at least D-1 wide) every entry below
// the diagonal is live.
func TestMADEJacobianStrictlyLowerTriangular(t *testing.T) {
	const B = 4
	for _, c := range []struct {
		d, outPerIn int
		hidden      []int
		reverse     bool
		dt          tensor.Dtype
		full        bool // hidden layers wide enough for every allowed dependency
	}{
		{d: 1, outPerIn: 2, hidden: []int{4}, dt: tensor.Float64, full: true},
		{d: 2, outPerIn: 1, hidden: nil, dt: tensor.Float64, full: true},
		{d: 5, outPerIn: 2, hidden: []int{12, 12}, dt: tensor.Float64, full: true},
		{d: 5, outPerIn: 2, hidden: []int{12, 12}, reverse: true, dt: tensor.Float64, full: true},
		{d: 6, outPerIn: 1, hidden: []int{10}, reverse: true, dt: tensor.Float32, full: true},
		{d: 6, outPerIn: 1, hidden: []int{3, 2}, dt: tensor.Float64},
	} {
		t.Run(fmt.Sprintf("D=%d/hidden=%v/reverse=%v/%v", c.d, c.hidden, c.reverse, c.dt), func(t *testing.T) {
			ps, _ := NewParams(c.dt)
			m, err := NewMADE(ps, "made", c.d, c.hidden, c.outPerIn, Tanh, c.reverse)
			if err != nil {
				t.Fatal(err)
			}
			ps.InitUniform(rand.New(rand.NewPCG(1, uint64(c.d))))
			g := G.NewGraph()
			x := G.NewMatrix(g, c.dt, G.WithShape(B, c.d), G.WithName("x"), G.WithInit(G.Zeroes()))
			y, err := m.Forward(ps.Bind(g), x)
			if err != nil {
				t.Fatal(err)
			}
			var yv G.Value
			G.Read(y, &yv)
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			rng := rand.New(rand.NewPCG(2, 3))
			xv := make([]float64, B*c.d)
			for i := range xv {
				xv[i] = rng.NormFloat64()
			}
			eval := func(xs []float64) []float64 {
				switch d := x.Value().Data().(type) {
				case []float64:
					copy(d, xs)
				case []float32:
					for i, v := range xs {
						d[i] = float32(v)
					}
				}
				if err := vm.RunAll(); err != nil {
					t.Fatal(err)
				}
				vm.Reset()
				var out []float64
				switch d := yv.Data().(type) {
				case []float64:
					out = slices.Clone(d)
				case []float32:
					for _, v := range d {
						out = append(out, float64(v))
					}
				}
				return out
			}
			base := eval(xv)
			pos := make([]int, c.d) // position of each input in the order
			for p, i := range m.Order {
				pos[i] = p
			}
			nOut := c.outPerIn * c.d
			for i := range c.d {
				xp := slices.Clone(xv)
				for r := range B {
					xp[r*c.d+i] += 0.5
				}
				moved := eval(xp)
				for j := range nOut {
					changed := false
					for r := range B {
						changed = changed || moved[r*nOut+j] != base[r*nOut+j]
					}
					allowed := pos[i] < pos[j%c.d]
					if changed && !allowed {
						t.Errorf("output %d (input %d at position %d) depends on input %d at position %d", j, j%c.d, pos[j%c.d], i, pos[i])
					}
					if c.full && allowed && !changed {
						t.Errorf("output %d does not depend on earlier input %d", j, i)
					}
				}
			}
		})
	}
}

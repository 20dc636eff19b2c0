package vi

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
)

var testTransforms = [][]Constraint{
	{{Kind: Real, Size: 2}},
	{{Kind: Positive, Size: 3, Lo: 0.5}},
	{{Kind: Interval, Size: 2, Lo: -1, Hi: 3}},
	{{Kind: Simplex, Size: 2}},
	{{Kind: Simplex, Size: 5}},
	{{Kind: Real, Size: 1}, {Kind: Simplex, Size: 3}, {Kind: Positive, Size: 1}, {Kind: Interval, Size: 1, Lo: 0, Hi: 1}},
}

// The log-Jacobian against log|det| of a central-difference Jacobian of
// zeta -> the free coordinates of theta (a simplex drops its last one).
func TestTransformLogDetJacobian(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for ti, blocks := range testTransforms {
		tr, err := NewTransform(blocks...)
		if err != nil {
			t.Fatal(err)
		}
		free := func(theta []float64) []float64 {
			var out []float64
			j := 0
			for _, b := range blocks {
				n := b.Size
				if b.Kind == Simplex {
					n--
				}
				out = append(out, theta[j:j+n]...)
				j += b.Size
			}
			return out
		}
		for rep := 0; rep < 5; rep++ {
			zeta := make([]float64, tr.FreeDim())
			for i := range zeta {
				zeta[i] = 1.5 * rng.NormFloat64()
			}
			theta := make([]float64, tr.Dim())
			ld := tr.Forward(zeta, theta)
			n := tr.FreeDim()
			J := mat.NewDense(n, n, nil)
			fd.Jacobian(J, func(y, z []float64) {
				th := make([]float64, tr.Dim())
				tr.Forward(z, th)
				copy(y, free(th))
			}, zeta, &fd.JacobianSettings{Formula: fd.Central})
			var lu mat.LU
			lu.Factorize(J)
			want, _ := lu.LogDet()
			if math.Abs(ld-want) > 1e-6 {
				t.Errorf("transform %d: log|J| %.9f, finite differences %.9f", ti, ld, want)
			}
			// inverse
			back := make([]float64, n)
			if err := tr.Inverse(theta, back); err != nil {
				t.Fatal(err)
			}
			for i := range back {
				if math.Abs(back[i]-zeta[i]) > 1e-9*math.Max(1, math.Abs(zeta[i])) {
					t.Errorf("transform %d: inverse %v, want %v", ti, back, zeta)
					break
				}
			}
			// simplex sums to one
			j := 0
			for _, b := range blocks {
				if b.Kind == Simplex {
					var s float64
					for _, v := range theta[j : j+b.Size] {
						s += v
					}
					if math.Abs(s-1) > 1e-12 {
						t.Errorf("simplex sums to %v", s)
					}
				}
				j += b.Size
			}
		}
	}
}

// Backward against a finite-difference gradient of f(T(zeta)) + log|J|
// with f(theta) = sum_i c_i theta_i + sum_i theta_i^2 / 2.
func TestTransformBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for ti, blocks := range testTransforms {
		tr, _ := NewTransform(blocks...)
		c := make([]float64, tr.Dim())
		for i := range c {
			c[i] = rng.NormFloat64()
		}
		f := func(theta []float64) (float64, []float64) {
			var v float64
			g := make([]float64, len(theta))
			for i, x := range theta {
				v += c[i]*x + x*x/2
				g[i] = c[i] + x
			}
			return v, g
		}
		obj := func(z []float64) float64 {
			th := make([]float64, tr.Dim())
			ld := tr.Forward(z, th)
			v, _ := f(th)
			return v + ld
		}
		zeta := make([]float64, tr.FreeDim())
		for i := range zeta {
			zeta[i] = rng.NormFloat64()
		}
		theta := make([]float64, tr.Dim())
		tr.Forward(zeta, theta)
		_, gTheta := f(theta)
		got := make([]float64, tr.FreeDim())
		tr.Backward(zeta, theta, gTheta, got)
		want := fd.Gradient(nil, obj, zeta, &fd.Settings{Formula: fd.Central})
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
				t.Errorf("transform %d: gradient %v, finite differences %v", ti, got, want)
				break
			}
		}
	}
}

func TestTransformErrors(t *testing.T) {
	for _, b := range [][]Constraint{{}, {{Kind: Real, Size: 0}}, {{Kind: Interval, Size: 1, Lo: 1, Hi: 1}}, {{Kind: Simplex, Size: 1}}} {
		if _, err := NewTransform(b...); err == nil {
			t.Errorf("NewTransform(%v): no error", b)
		}
	}
	tr, _ := NewTransform(Constraint{Kind: Positive, Size: 1})
	if err := tr.Inverse([]float64{-1}, make([]float64, 1)); err == nil {
		t.Error("Inverse of a negative value under Positive: no error")
	}
}

package vi

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// SVGDOptions configures Stein variational gradient descent (Liu & Wang
// 2016). Zero values mean the defaults noted.
type SVGDOptions struct {
	Particles int     // 0: 100
	Steps     int     // 0: 1000
	StepSize  float64 // 0: 0.05
	// Bandwidth h of the RBF kernel k(x, y) = exp(-|x-y|^2 / h); 0: the
	// median heuristic h = med^2 / log(n), recomputed every step.
	Bandwidth float64
	InitSD    float64 // particles start at N(zeta0, InitSD^2) in the unconstrained space; 0: 1
	// Init is the constrained centre zeta0 maps to (nil: the model's Init, else zeta0 = 0).
	Init     []float64
	Seed     uint64
	Progress func(step int)
}

// SVGD holds the particles, constrained (Theta) and unconstrained (Zeta).
type SVGD struct {
	Model *Model
	T     *Transform
	Zeta  [][]float64
	Theta [][]float64
	Steps int
}

// FitSVGD moves n particles along
//
//	phi(x_i) = 1/n sum_j [k(x_j, x_i) grad log p(x_j) + grad_{x_j} k(x_j, x_i)]
//
// in the unconstrained space (log p including log|J|), with the AdaGrad
// step of the authors' code (historical squared gradient with decay 0.9).
func FitSVGD(ctx context.Context, m *Model, o SVGDOptions) (*SVGD, error) {
	tr, err := NewTransform(m.Constraints...)
	if err != nil {
		return nil, err
	}
	if tr.Dim() != m.Density.Dim() {
		return nil, fmt.Errorf("vi: constraints cover %d parameters, the density has %d", tr.Dim(), m.Density.Dim())
	}
	if o.Particles == 0 {
		o.Particles = 100
	}
	if o.Steps == 0 {
		o.Steps = 1000
	}
	if o.StepSize == 0 {
		o.StepSize = 0.05
	}
	if o.InitSD == 0 {
		o.InitSD = 1
	}
	if o.Particles < 2 || o.Particles > 100000 || o.Steps < 1 || o.StepSize < 0 || o.Bandwidth < 0 {
		return nil, fmt.Errorf("vi: SVGD options particles %d, steps %d, step size %g, bandwidth %g: want 2..100000 particles, positive steps", o.Particles, o.Steps, o.StepSize, o.Bandwidth)
	}
	n, P := o.Particles, tr.FreeDim()
	rng := rand.New(rand.NewPCG(o.Seed, 0x3c6ef372fe94f82b))
	z0 := make([]float64, P)
	if err := initZeta(m, tr, o.Init, z0); err != nil {
		return nil, err
	}
	x := make([][]float64, n)
	for i := range x {
		x[i] = make([]float64, P)
		for j := range x[i] {
			x[i][j] = z0[j] + o.InitSD*rng.NormFloat64()
		}
	}
	grad := make([][]float64, n)
	phi := make([][]float64, n)
	hist := make([][]float64, n)
	for i := range grad {
		grad[i], phi[i], hist[i] = make([]float64, P), make([]float64, P), make([]float64, P)
	}
	theta, gTheta := make([]float64, tr.Dim()), make([]float64, tr.Dim())
	kern := make([]float64, n*n)
	dists := make([]float64, 0, n*(n-1)/2)
	for step := 0; step < o.Steps; step++ {
		if step%20 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		for i := range x {
			if _, err := logJoint(m, tr, x[i], theta, gTheta, grad[i]); err != nil {
				return nil, err
			}
		}
		dists = dists[:0]
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				d := sqDist(x[i], x[j])
				kern[i*n+j], kern[j*n+i] = d, d
				dists = append(dists, d)
			}
		}
		h := o.Bandwidth
		if h == 0 {
			sort.Float64s(dists)
			med := dists[len(dists)/2]
			if len(dists)%2 == 0 {
				med = (dists[len(dists)/2-1] + med) / 2
			}
			h = med / math.Log(float64(n)) // med is already the squared distance
			if h < 1e-12 {
				h = 1
			}
		}
		for i := range kern {
			kern[i] = math.Exp(-kern[i] / h)
		}
		for i := 0; i < n; i++ {
			clear(phi[i])
			for j := 0; j < n; j++ {
				k := kern[i*n+j]
				for d := 0; d < P; d++ {
					// grad_{x_j} k(x_j, x_i) = -2/h (x_j - x_i) k
					phi[i][d] += k*grad[j][d] + 2/h*(x[i][d]-x[j][d])*k
				}
			}
			for d := range phi[i] {
				phi[i][d] /= float64(n)
			}
		}
		for i := range x {
			for d := range x[i] {
				g := phi[i][d]
				if step == 0 {
					hist[i][d] = g * g
				} else {
					hist[i][d] = 0.9*hist[i][d] + 0.1*g*g
				}
				x[i][d] += o.StepSize * g / (1e-6 + math.Sqrt(hist[i][d]))
				if math.IsNaN(x[i][d]) || math.IsInf(x[i][d], 0) {
					return nil, fmt.Errorf("vi: SVGD step %d: particle %d left the finite numbers (try a smaller step size)", step, i)
				}
			}
		}
		if o.Progress != nil {
			o.Progress(step + 1)
		}
	}
	s := &SVGD{Model: m, T: tr, Zeta: x, Steps: o.Steps, Theta: make([][]float64, n)}
	for i := range x {
		s.Theta[i] = make([]float64, tr.Dim())
		tr.Forward(x[i], s.Theta[i])
	}
	return s, nil
}

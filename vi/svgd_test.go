package vi

import (
	"context"
	"math"
	"testing"
)

// Particles match the mean and variance of a 1-D Gaussian, and of a Gamma
// target reached through the log transform.
func TestSVGDMoments(t *testing.T) {
	g := &Model{Name: "n", Density: FuncDensity{D: 1, F: func(x, gr []float64) float64 {
		gr[0] = -(x[0] - 2) / 0.25
		return -(x[0] - 2) * (x[0] - 2) / 0.5
	}}, Constraints: []Constraint{{Kind: Real, Size: 1}}}
	s, err := FitSVGD(context.Background(), g, SVGDOptions{Particles: 100, Steps: 800, StepSize: 0.05, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	mean, sd := MeanSD(s.Theta)
	if math.Abs(mean[0]-2) > 0.02 || math.Abs(sd[0]-0.5) > 0.04 {
		t.Errorf("N(2, 0.5^2): particles mean %.4f sd %.4f", mean[0], sd[0])
	}
	// Gamma(shape 3, rate 2): mean 1.5, sd sqrt(3)/2.
	gm := &Model{Name: "gamma", Density: FuncDensity{D: 1, F: func(x, gr []float64) float64 {
		gr[0] = 2/x[0] - 2
		return 2*math.Log(x[0]) - 2*x[0]
	}}, Constraints: []Constraint{{Kind: Positive, Size: 1}}}
	s, err = FitSVGD(context.Background(), gm, SVGDOptions{Particles: 100, Steps: 800, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	mean, sd = MeanSD(s.Theta)
	if math.Abs(mean[0]-1.5) > 0.05 || math.Abs(sd[0]-math.Sqrt(3)/2) > 0.08 {
		t.Errorf("Gamma(3, 2): particles mean %.4f sd %.4f, want 1.5 and %.4f", mean[0], sd[0], math.Sqrt(3)/2)
	}
}

// Through the stick-breaking transform: Dirichlet(2, 3, 5) has mean
// (0.2, 0.3, 0.5) and var_i = a_i (A - a_i) / (A^2 (A + 1)).
func TestSVGDDirichlet(t *testing.T) {
	alpha := []float64{2, 3, 5}
	m := &Model{Name: "dirichlet", Density: FuncDensity{D: 3, F: func(x, g []float64) float64 {
		var v float64
		for i, a := range alpha {
			v += (a - 1) * math.Log(x[i])
			g[i] = (a - 1) / x[i]
		}
		return v
	}}, Constraints: []Constraint{{Kind: Simplex, Size: 3}}}
	s, err := FitSVGD(context.Background(), m, SVGDOptions{Particles: 100, Steps: 800, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	mean, sd := MeanSD(s.Theta)
	for i, a := range alpha {
		wantSD := math.Sqrt(a * (10 - a) / (100 * 11))
		if math.Abs(mean[i]-a/10) > 0.02 || math.Abs(sd[i]-wantSD) > 0.25*wantSD {
			t.Errorf("coordinate %d: mean %.4f sd %.4f, want %.4f and %.4f", i, mean[i], sd[i], a/10, wantSD)
		}
	}
}

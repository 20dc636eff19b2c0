package vi

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// Each estimator's average over many independent estimates matches the
// exact gradient of the ELBO for a Gaussian target N(m, S) and mean-field q:
// d/dmu = -Lambda (mu - m), d/domega_i = 1 - Lambda_ii sigma_i^2.
func TestEstimatorsUnbiased(t *testing.T) {
	m := []float64{1, -1}
	s := [][]float64{{1, 0.5}, {0.5, 2}}
	model := gaussianModel(m, s)
	tr, _ := NewTransform(model.Constraints...)
	det := s[0][0]*s[1][1] - s[0][1]*s[1][0]
	lam := [][]float64{{s[1][1] / det, -s[0][1] / det}, {-s[1][0] / det, s[0][0] / det}}
	mu, omega := []float64{0.3, 0.2}, []float64{-0.2, 0.4}
	want := make([]float64, 4)
	for i := 0; i < 2; i++ {
		for j := 0; j < 2; j++ {
			want[i] -= lam[i][j] * (mu[j] - m[j])
		}
		want[2+i] = 1 - lam[i][i]*math.Exp(2*omega[i])
	}
	rng := rand.New(rand.NewPCG(4, 4))
	const reps = 4000
	for _, est := range []Estimator{Pathwise, Score, ScoreCV} {
		sum, sum2 := make([]float64, 4), make([]float64, 4)
		g := make([]float64, 4)
		for r := 0; r < reps; r++ {
			if err := ELBOGradient(model, tr, est, mu, omega, 5, rng, g); err != nil {
				t.Fatal(err)
			}
			for i, v := range g {
				sum[i] += v
				sum2[i] += v * v
			}
		}
		for i := range sum {
			mean := sum[i] / reps
			se := math.Sqrt((sum2[i]/reps - mean*mean) / reps)
			if math.Abs(mean-want[i]) > 4*se+1e-12 {
				t.Errorf("%v coordinate %d: mean %.4f ± %.4f, exact %.4f", est, i, mean, se, want[i])
			}
		}
	}
}

// On logistic regression the pathwise estimator varies far less than the
// score function, and the control variate reduces the score's variance.
func TestEstimatorVarianceOrder(t *testing.T) {
	x, y := logisticData(100, []float64{0.5, -1, 2}, 2)
	lm, err := LogisticModel(x, y, 3)
	if err != nil {
		t.Fatal(err)
	}
	vt, err := CompareEstimators(context.Background(), lm, CompareOptions{Iters: 40, Repeats: 30, Every: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for k := range vt.Step {
		p, s, c := vt.Var[Pathwise][k], vt.Var[Score][k], vt.Var[ScoreCV][k]
		if !(p < c && c < s) {
			t.Errorf("step %d: variance pathwise %.3g, score+cv %.3g, score %.3g: want increasing", vt.Step[k], p, c, s)
		}
	}
}

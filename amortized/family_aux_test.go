package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// auxFamilies are the auxiliary-variable posteriors the family-wide checks
// below run on (their noise is wider than z, so the q rig of
// posterior_test.go does not apply).
var auxFamilies = []string{"aux:1", "aux:3:5"}

// TestAuxLogLikelihoodMatchesQuadrature: importance sampling over (a, z)
// with r(a|z,x) in the weight, log w = log p(x|z) + log p(z) + log r(a|z,x)
// - log q(a|x) - log q(z|a,x), estimates the exact log p(x) (2-D
// quadrature over z). A wrong log q, or an r left out of the weight,
// would bias it by far more than the error.
func TestAuxLogLikelihoodMatchesQuadrature(t *testing.T) {
	xs := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
	for _, post := range auxFamilies {
		m := latent2ModelFor(t, post)
		ll, se, err := m.LogLikelihoodSE(xs, 5000, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		elbo, err := m.ELBO(xs, rand.New(rand.NewPCG(3, 4)))
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range xs {
			truth := quadLogPx(t, m, x)
			t.Logf("%s row %d: IS %.4f ± %.4f, quadrature %.4f, one-sample bound %.4f", post, i, ll[i], se[i], truth, elbo[i])
			if math.Abs(ll[i]-truth) > 4*se[i]+1e-3 || se[i] > 0.15 {
				t.Errorf("%s row %d: estimate %.4f ± %.4f, quadrature %.4f", post, i, ll[i], se[i], truth)
			}
		}
	}
}

// TestAuxBoundsOrdered: averaged over draws, the auxiliary ELBO sits below
// the IWAE(20) bound over (a, z), itself below the quadrature log p(x).
func TestAuxBoundsOrdered(t *testing.T) {
	checkBoundsOrdered(t, "aux:2", "IWAE")
}

// TestAuxLossGradients: the training graph's gradients (q's and r's
// networks included) against central differences of the loss.
func TestAuxLossGradients(t *testing.T) {
	for _, post := range auxFamilies {
		cases := []TrainOptions{{}, {K: 2}, {Objective: ObjectiveIWAE, K: 3}}
		if post != auxFamilies[0] {
			cases = cases[:1]
		}
		for _, o := range cases {
			lik := Bernoulli
			if o.K == 2 {
				lik = Gaussian
			}
			m := newFamily(t, post, "float64", lik, 7)
			t.Run(fmt.Sprintf("%s/%s/k=%d", post, o.Objective, o.K), func(t *testing.T) { checkLossGradients(t, m, o) })
		}
	}
}

// TestAuxEveryToolAndResume: the public API, exact resume and learning, as
// for the other families.
func TestAuxEveryToolAndResume(t *testing.T) {
	saved := families
	defer func() { families = saved }()
	families = append([]string{"diag"}, auxFamilies...)
	t.Run("API", TestEveryFamilyPublicAPI)
	t.Run("resume", TestEveryFamilyResumesExactly)
	t.Run("learns", TestEveryFamilyLearnsThePrototypes)
	t.Run("parallel", TestLogLikelihoodEveryFamilyIndependentOfParallelism)
}

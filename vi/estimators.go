package vi

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Estimator is a Monte Carlo estimator of the ELBO's gradient with respect
// to the parameters (mu, omega) of a mean-field Gaussian
// q(zeta) = N(mu, diag(exp(2 omega))) in the unconstrained space.
type Estimator int

const (
	// Pathwise (reparameterization): zeta = mu + exp(omega) eps,
	// grad = E[g], E[g eps exp(omega)] + 1 with g = grad log p~(zeta).
	Pathwise Estimator = iota
	// Score (REINFORCE, Williams 1992; Ranganath et al. 2014):
	// grad = E[grad_lambda log q(zeta) (log p~(zeta) - log q(zeta))].
	Score
	// ScoreCV: the score estimator with the control variate h = grad log q
	// (E_q[h] = 0), f - a h, a_d = Cov(f_d, h_d)/Var(h_d) estimated on an
	// independent pilot batch so that the estimator stays unbiased.
	ScoreCV
)

func (e Estimator) String() string {
	return [...]string{"pathwise", "score", "score+cv"}[e]
}

// ELBOGradient writes an estimate with s draws into out (len 2 FreeDim:
// mu, then omega).
func ELBOGradient(m *Model, tr *Transform, est Estimator, mu, omega []float64, s int, rng *rand.Rand, out []float64) error {
	P := tr.FreeDim()
	if len(mu) != P || len(omega) != P || len(out) != 2*P || s < 1 {
		return fmt.Errorf("vi: ELBOGradient: %d, %d, %d parameters for %d coordinates, %d draws", len(mu), len(omega), len(out), P, s)
	}
	clear(out)
	zeta, eps, g := make([]float64, P), make([]float64, P), make([]float64, P)
	theta, gTheta := make([]float64, tr.Dim()), make([]float64, tr.Dim())
	draw := func(withGrad bool) (float64, error) {
		for i := range eps {
			eps[i] = rng.NormFloat64()
			zeta[i] = mu[i] + math.Exp(omega[i])*eps[i]
		}
		var gz []float64
		if withGrad {
			gz = g
		}
		return logJoint(m, tr, zeta, theta, gTheta, gz)
	}
	// log q(zeta) = sum -eps^2/2 - omega - log(2 pi)/2; grad_mu log q = eps/sigma, grad_omega log q = eps^2 - 1.
	logq := func() float64 {
		var v float64
		for i, e := range eps {
			v += -e*e/2 - omega[i] - 0.5*math.Log(2*math.Pi)
		}
		return v
	}
	w := 1 / float64(s)
	switch est {
	case Pathwise:
		for r := 0; r < s; r++ {
			if _, err := draw(true); err != nil {
				return err
			}
			for i := 0; i < P; i++ {
				out[i] += w * g[i]
				out[P+i] += w * g[i] * eps[i] * math.Exp(omega[i])
			}
		}
		for i := 0; i < P; i++ {
			out[P+i]++
		}
		return nil
	case Score, ScoreCV:
		a := make([]float64, 2*P)
		if est == ScoreCV {
			// pilot: a_d = Cov(f_d, h_d) / Var(h_d)
			sfh, sf, sh, shh := make([]float64, 2*P), make([]float64, 2*P), make([]float64, 2*P), make([]float64, 2*P)
			pilot := max(s, 10)
			h := make([]float64, 2*P)
			for r := 0; r < pilot; r++ {
				lp, err := draw(false)
				if err != nil {
					return err
				}
				d := lp - logq()
				scoreVec(eps, omega, h)
				for i, hv := range h {
					f := hv * d
					sfh[i] += f * hv
					sf[i] += f
					sh[i] += hv
					shh[i] += hv * hv
				}
			}
			np := float64(pilot)
			for i := range a {
				v := shh[i]/np - (sh[i]/np)*(sh[i]/np)
				if v > 0 {
					a[i] = (sfh[i]/np - sf[i]/np*sh[i]/np) / v
				}
			}
		}
		h := make([]float64, 2*P)
		for r := 0; r < s; r++ {
			lp, err := draw(false)
			if err != nil {
				return err
			}
			d := lp - logq()
			scoreVec(eps, omega, h)
			for i, hv := range h {
				out[i] += w * (hv*d - a[i]*hv)
			}
		}
		return nil
	}
	return fmt.Errorf("vi: unknown estimator %d", est)
}

func scoreVec(eps, omega, h []float64) {
	P := len(eps)
	for i, e := range eps {
		h[i] = e / math.Exp(omega[i])
		h[P+i] = e*e - 1
	}
}

// CompareOptions configures CompareEstimators. Zero values mean the defaults noted.
type CompareOptions struct {
	Iters    int     // optimization steps; 0: 200
	Samples  int     // draws per gradient estimate; 0: 1
	Repeats  int     // estimates per estimator whose spread is measured; 0: 50
	Every    int     // measure every Every steps; 0: Iters/20
	StepSize float64 // 0: 0.05 (Adam-free: Kucukelbir's sequence with this Eta)
	Seed     uint64
}

// VarianceTrace is, per measured step, the total variance (the trace of
// the covariance, summed over the 2 P gradient coordinates) of each
// estimator at the current q, and the ELBO estimate there.
type VarianceTrace struct {
	Step []int
	Var  map[Estimator][]float64
	ELBO []float64
	// Mu, Omega are the final q's mean and log standard deviations.
	Mu, Omega []float64
}

// CompareEstimators fits a mean-field Gaussian by pathwise ADVI steps and,
// along the way, measures how much the three estimators vary at the same q.
func CompareEstimators(ctx context.Context, m *Model, o CompareOptions) (*VarianceTrace, error) {
	tr, err := NewTransform(m.Constraints...)
	if err != nil {
		return nil, err
	}
	if o.Iters == 0 {
		o.Iters = 200
	}
	if o.Samples == 0 {
		o.Samples = 1
	}
	if o.Repeats == 0 {
		o.Repeats = 50
	}
	if o.Every == 0 {
		o.Every = max(1, o.Iters/20)
	}
	if o.StepSize == 0 {
		o.StepSize = 0.05
	}
	if o.Iters < 1 || o.Samples < 1 || o.Repeats < 2 || o.Every < 1 {
		return nil, fmt.Errorf("vi: CompareEstimators: iters %d, samples %d, repeats %d: want positive, repeats >= 2", o.Iters, o.Samples, o.Repeats)
	}
	P := tr.FreeDim()
	mu, omega := make([]float64, P), make([]float64, P)
	rng := rand.New(rand.NewPCG(o.Seed, 0xa54ff53a5f1d36f1))
	g := make([]float64, 2*P)
	s := make([]float64, 2*P)
	vt := &VarianceTrace{Var: map[Estimator][]float64{}}
	a := &ADVI{Model: m, T: tr}
	for k := 1; k <= o.Iters; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if k == 1 || k%o.Every == 0 || k == o.Iters {
			vt.Step = append(vt.Step, k)
			for _, est := range []Estimator{Pathwise, Score, ScoreCV} {
				v, err := estimatorVariance(m, tr, est, mu, omega, o.Samples, o.Repeats, rng)
				if err != nil {
					return nil, err
				}
				vt.Var[est] = append(vt.Var[est], v)
			}
			e, err := a.elbo(append(append([]float64(nil), mu...), omega...), 200, rng)
			if err != nil {
				return nil, err
			}
			vt.ELBO = append(vt.ELBO, e)
		}
		if err := ELBOGradient(m, tr, Pathwise, mu, omega, o.Samples, rng, g); err != nil {
			return nil, err
		}
		base := o.StepSize * math.Pow(float64(k), -0.5)
		for i, v := range g {
			if k == 1 {
				s[i] = v * v
			} else {
				s[i] = 0.1*v*v + 0.9*s[i]
			}
			step := base / (1 + math.Sqrt(s[i])) * v
			if i < P {
				mu[i] += step
			} else {
				omega[i-P] += step
			}
		}
	}
	vt.Mu, vt.Omega = mu, omega
	return vt, nil
}

func estimatorVariance(m *Model, tr *Transform, est Estimator, mu, omega []float64, samples, repeats int, rng *rand.Rand) (float64, error) {
	n := 2 * len(mu)
	sum, sum2 := make([]float64, n), make([]float64, n)
	g := make([]float64, n)
	for r := 0; r < repeats; r++ {
		if err := ELBOGradient(m, tr, est, mu, omega, samples, rng, g); err != nil {
			return 0, err
		}
		for i, v := range g {
			sum[i] += v
			sum2[i] += v * v
		}
	}
	var tot float64
	fr := float64(repeats)
	for i := range sum {
		tot += (sum2[i] - sum[i]*sum[i]/fr) / (fr - 1)
	}
	return tot, nil
}

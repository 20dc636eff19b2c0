package vi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ADVIOptions configures automatic differentiation variational inference
// (Kucukelbir et al. 2017). Zero values mean the defaults noted.
type ADVIOptions struct {
	FullRank  bool    // q = N(mu, L L^T) in the unconstrained space; else mean-field N(mu, diag(exp(2 omega)))
	Samples   int     // Monte Carlo draws per gradient; 0: 1
	Steps     int     // 0: 5000
	Eta       float64 // step-size scale; 0: 0.1
	EvalEvery int     // ELBO estimate every EvalEvery steps; 0: Steps/50 (at least 1)
	// EvalSamples draws make each recorded ELBO estimate; 0: 50.
	EvalSamples int
	// Average: the fitted q is the average of the parameter iterates over
	// the last Average fraction of the steps (Polyak-Ruppert), which
	// removes most of the noise of the last steps; 0: 0.25; < 0: the last iterate.
	Average float64
	Seed    uint64
	// Init is the constrained starting point of q's mean (nil: zeta = 0,
	// as in Kucukelbir et al.); the model's Init is used when this is nil.
	Init     []float64
	Progress func(step int, elbo float64)
}

// ADVI is a fitted Gaussian in the unconstrained space.
type ADVI struct {
	Model    *Model
	T        *Transform
	Mu       []float64
	Omega    []float64   // mean-field: log standard deviations
	L        [][]float64 // full-rank: lower-triangular factor, nil for mean-field
	Trace    Trace       // ELBO estimates
	Steps    int
	FullRank bool
}

// logJoint returns log p(T(zeta)) + log|J(zeta)| and writes its gradient in zeta.
func logJoint(m *Model, tr *Transform, zeta, theta, gTheta, gZeta []float64) (float64, error) {
	ld := tr.Forward(zeta, theta)
	lp, err := m.Density.LogProb(theta, gTheta)
	if err != nil {
		return 0, err
	}
	if gZeta != nil {
		tr.Backward(zeta, theta, gTheta, gZeta)
	}
	return lp + ld, nil
}

// FitADVI maximizes the ELBO, E_q[log p(T^-1(zeta)) + log|J|] + H[q], by
// stochastic gradient ascent with the pathwise (reparameterization)
// gradient, zeta = mu + L eps (full-rank) or mu + exp(omega) eps:
//
//	grad_mu = E[g], grad_L = E[g eps^T] (lower part) + diag(1/L_ii), grad_omega = E[g eps exp(omega)] + 1,
//
// g = d/d zeta [log p + log|J|]; the diagonal of L is kept positive by
// stepping its logarithm. Step size (Kucukelbir et al. 2017, eq. 10):
// rho_k = Eta k^(-1/2+1e-16) / (1 + sqrt(s_k)), s_k = 0.1 g_k^2 + 0.9 s_{k-1}.
func FitADVI(ctx context.Context, m *Model, o ADVIOptions) (*ADVI, error) {
	tr, err := NewTransform(m.Constraints...)
	if err != nil {
		return nil, err
	}
	if tr.Dim() != m.Density.Dim() {
		return nil, fmt.Errorf("vi: constraints cover %d parameters, the density has %d", tr.Dim(), m.Density.Dim())
	}
	if o.Samples == 0 {
		o.Samples = 1
	}
	if o.Steps == 0 {
		o.Steps = 5000
	}
	if o.Eta == 0 {
		o.Eta = 0.1
	}
	if o.EvalEvery == 0 {
		o.EvalEvery = max(1, o.Steps/50)
	}
	if o.EvalSamples == 0 {
		o.EvalSamples = 50
	}
	if o.Average == 0 {
		o.Average = 0.25
	}
	if o.Average > 1 {
		return nil, fmt.Errorf("vi: ADVI Average %g, want at most 1", o.Average)
	}
	if o.Samples < 1 || o.Steps < 1 || o.Eta < 0 || o.EvalEvery < 1 || o.EvalSamples < 1 {
		return nil, fmt.Errorf("vi: ADVI options samples %d, steps %d, eta %g: want positive", o.Samples, o.Steps, o.Eta)
	}
	P := tr.FreeDim()
	a := &ADVI{Model: m, T: tr, Mu: make([]float64, P), FullRank: o.FullRank}
	// parameters as one vector: mu, then omega or the lower triangle of L
	// (diagonal entries as logs).
	var np int
	if o.FullRank {
		np = P + P*(P+1)/2
	} else {
		np = 2 * P
	}
	lam := make([]float64, np)
	if err := initZeta(m, tr, o.Init, lam[:P]); err != nil {
		return nil, err
	}
	grad := make([]float64, np)
	s := make([]float64, np)
	rng := rand.New(rand.NewPCG(o.Seed, 0x6a09e667f3bcc909))
	zeta, eps := make([]float64, P), make([]float64, P)
	theta, gTheta, g := make([]float64, tr.Dim()), make([]float64, tr.Dim()), make([]float64, P)
	avgFrom := o.Steps + 1
	if o.Average > 0 {
		avgFrom = o.Steps - int(o.Average*float64(o.Steps)) + 1
	}
	avg := make([]float64, np)
	for k := 1; k <= o.Steps; k++ {
		if k%50 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		clear(grad)
		for r := 0; r < o.Samples; r++ {
			for i := range eps {
				eps[i] = rng.NormFloat64()
			}
			a.draw(lam, eps, zeta)
			if _, err := logJoint(m, tr, zeta, theta, gTheta, g); err != nil {
				return nil, err
			}
			a.accumulate(lam, eps, g, grad, 1/float64(o.Samples))
		}
		a.entropyGrad(lam, grad)
		bad := false
		for i, v := range grad {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				bad = true
				break
			}
			if k == 1 {
				s[i] = v * v
			} else {
				s[i] = 0.1*v*v + 0.9*s[i]
			}
		}
		if bad {
			return nil, fmt.Errorf("vi: ADVI step %d: gradient not finite (the log density overflowed; try a smaller -eta)", k)
		}
		base := o.Eta * math.Pow(float64(k), -0.5+1e-16)
		for i := range lam {
			lam[i] += base / (1 + math.Sqrt(s[i])) * grad[i]
		}
		if k >= avgFrom {
			w := 1 / float64(k-avgFrom+1)
			for i := range avg {
				avg[i] += w * (lam[i] - avg[i])
			}
		}
		if k%o.EvalEvery == 0 || k == o.Steps {
			cur := lam
			if k >= avgFrom {
				cur = avg
			}
			e, err := a.elbo(cur, o.EvalSamples, rng)
			if err != nil {
				return nil, err
			}
			a.Trace.Step = append(a.Trace.Step, k)
			a.Trace.ELBO = append(a.Trace.ELBO, e)
			if o.Progress != nil {
				o.Progress(k, e)
			}
		}
	}
	a.Steps = o.Steps
	if avgFrom <= o.Steps {
		lam = avg
	}
	a.unpack(lam)
	return a, nil
}

// initZeta writes T^-1 of the starting point (init, else the model's Init,
// else nothing: zeta = 0).
func initZeta(m *Model, tr *Transform, init, zeta []float64) error {
	if init == nil {
		init = m.Init
	}
	if init == nil {
		return nil
	}
	if len(init) != tr.Dim() {
		return fmt.Errorf("vi: starting point has %d parameters, want %d", len(init), tr.Dim())
	}
	if err := tr.Inverse(init, zeta); err != nil {
		return fmt.Errorf("vi: starting point: %w", err)
	}
	return nil
}

// draw sets zeta = mu + L eps.
func (a *ADVI) draw(lam, eps, zeta []float64) {
	P := len(zeta)
	mu := lam[:P]
	if !a.FullRank {
		om := lam[P:]
		for i := range zeta {
			zeta[i] = mu[i] + math.Exp(om[i])*eps[i]
		}
		return
	}
	idx := P
	for i := 0; i < P; i++ {
		z := mu[i]
		for j := 0; j <= i; j++ {
			l := lam[idx]
			if j == i {
				l = math.Exp(l)
			}
			z += l * eps[j]
			idx++
		}
		zeta[i] = z
	}
}

func (a *ADVI) accumulate(lam, eps, g, grad []float64, w float64) {
	P := len(g)
	for i := range g {
		grad[i] += w * g[i]
	}
	if !a.FullRank {
		for i := range g {
			grad[P+i] += w * g[i] * eps[i] * math.Exp(lam[P+i])
		}
		return
	}
	idx := P
	for i := 0; i < P; i++ {
		for j := 0; j <= i; j++ {
			v := g[i] * eps[j]
			if j == i {
				v *= math.Exp(lam[idx]) // the diagonal is stepped in log
			}
			grad[idx] += w * v
			idx++
		}
	}
}

// entropyGrad adds the gradient of H[q] = sum log L_ii (or sum omega): 1 per log-diagonal entry.
func (a *ADVI) entropyGrad(lam, grad []float64) {
	P := a.T.FreeDim()
	if !a.FullRank {
		for i := 0; i < P; i++ {
			grad[P+i]++
		}
		return
	}
	idx := P
	for i := 0; i < P; i++ {
		idx += i
		grad[idx]++
		idx++
	}
}

func (a *ADVI) entropy(lam []float64) float64 {
	P := a.T.FreeDim()
	h := float64(P) / 2 * (1 + math.Log(2*math.Pi))
	if !a.FullRank {
		for i := 0; i < P; i++ {
			h += lam[P+i]
		}
		return h
	}
	idx := P
	for i := 0; i < P; i++ {
		idx += i
		h += lam[idx]
		idx++
	}
	return h
}

func (a *ADVI) elbo(lam []float64, n int, rng *rand.Rand) (float64, error) {
	P := a.T.FreeDim()
	zeta, eps := make([]float64, P), make([]float64, P)
	theta := make([]float64, a.T.Dim())
	var s float64
	for r := 0; r < n; r++ {
		for i := range eps {
			eps[i] = rng.NormFloat64()
		}
		a.draw(lam, eps, zeta)
		v, err := logJoint(a.Model, a.T, zeta, theta, nil, nil)
		if err != nil {
			return 0, err
		}
		s += v
	}
	return s/float64(n) + a.entropy(lam), nil
}

func (a *ADVI) unpack(lam []float64) {
	P := a.T.FreeDim()
	copy(a.Mu, lam[:P])
	if !a.FullRank {
		a.Omega = append([]float64(nil), lam[P:]...)
		return
	}
	a.L = make([][]float64, P)
	idx := P
	for i := 0; i < P; i++ {
		a.L[i] = make([]float64, P)
		for j := 0; j <= i; j++ {
			a.L[i][j] = lam[idx]
			if j == i {
				a.L[i][j] = math.Exp(lam[idx])
			}
			idx++
		}
	}
}

func (a *ADVI) pack() []float64 {
	P := a.T.FreeDim()
	lam := append([]float64(nil), a.Mu...)
	if !a.FullRank {
		return append(lam, a.Omega...)
	}
	for i := 0; i < P; i++ {
		for j := 0; j <= i; j++ {
			v := a.L[i][j]
			if j == i {
				v = math.Log(v)
			}
			lam = append(lam, v)
		}
	}
	return lam
}

// Cov is the covariance of q in the unconstrained space.
func (a *ADVI) Cov() [][]float64 {
	P := a.T.FreeDim()
	c := make([][]float64, P)
	for i := range c {
		c[i] = make([]float64, P)
		if !a.FullRank {
			c[i][i] = math.Exp(2 * a.Omega[i])
			continue
		}
		for j := 0; j < P; j++ {
			for k := 0; k <= min(i, j); k++ {
				c[i][j] += a.L[i][k] * a.L[j][k]
			}
		}
	}
	return c
}

// Sample draws n constrained parameter vectors theta = T(zeta), zeta ~ q.
func (a *ADVI) Sample(n int, rng *rand.Rand) [][]float64 {
	lam := a.pack()
	P := a.T.FreeDim()
	zeta, eps := make([]float64, P), make([]float64, P)
	out := make([][]float64, n)
	for r := range out {
		for i := range eps {
			eps[i] = rng.NormFloat64()
		}
		a.draw(lam, eps, zeta)
		out[r] = make([]float64, a.T.Dim())
		a.T.Forward(zeta, out[r])
	}
	return out
}

// ELBOEstimate is a Monte Carlo estimate of the ELBO with n draws.
func (a *ADVI) ELBOEstimate(n int, rng *rand.Rand) (float64, error) {
	if n < 1 {
		return 0, errors.New("vi: ELBO estimate with no draws")
	}
	return a.elbo(a.pack(), n, rng)
}

// MeanSD summarizes draws: per-coordinate mean and standard deviation.
func MeanSD(draws [][]float64) (mean, sd []float64) {
	if len(draws) == 0 {
		return nil, nil
	}
	d := len(draws[0])
	mean, sd = make([]float64, d), make([]float64, d)
	for _, v := range draws {
		for i, x := range v {
			mean[i] += x
		}
	}
	for i := range mean {
		mean[i] /= float64(len(draws))
	}
	for _, v := range draws {
		for i, x := range v {
			sd[i] += (x - mean[i]) * (x - mean[i])
		}
	}
	for i := range sd {
		sd[i] = math.Sqrt(sd[i] / float64(max(len(draws)-1, 1)))
	}
	return mean, sd
}

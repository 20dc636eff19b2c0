package vi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Bayesian logistic regression with the local bound of Jaakkola & Jordan
// (2000): for every xi,
//
//	log sigma(s) >= log sigma(xi) + (s - xi)/2 - lambda(xi)(s^2 - xi^2),
//	lambda(xi) = tanh(xi/2)/(4 xi),
//
// with s = (2y-1) w^T x, a Gaussian in w: q(w) stays Gaussian (conditionally
// conjugate), and the bound is tight at xi_n^2 = E[(w^T x_n)^2]
// (Bishop 2006, 10.6). Labels are 0/1; w ~ N(0, I/Alpha).

// LogisticOptions configures CAVI and SVI with the Jaakkola-Jordan bound.
type LogisticOptions struct {
	Alpha   float64 // prior precision; 0: 1
	MaxIter int     // CAVI sweeps; 0: 200
	Tol     float64 // 0: 1e-10; < 0: never stop early
}

// Logistic is a fitted q(w) = N(Mean, Cov); ELBO is the Jaakkola-Jordan
// lower bound on the ELBO (and on log p(y)) with xi at its optimum.
type Logistic struct {
	Mean  []float64
	Cov   *mat.SymDense
	ELBO  []float64
	Iters int
	alpha float64
}

func jjLambda(xi float64) float64 {
	if math.Abs(xi) < 1e-6 {
		return 1.0/8 - xi*xi/96
	}
	return math.Tanh(xi/2) / (4 * xi)
}

func checkLogistic(x [][]float64, y []float64) (int, error) {
	if len(x) == 0 {
		return 0, errors.New("vi: no data")
	}
	if len(y) != len(x) {
		return 0, fmt.Errorf("vi: %d rows, %d labels", len(x), len(y))
	}
	d, err := checkPoints(x, 1)
	if err != nil {
		return 0, err
	}
	for i, v := range y {
		if v != 0 && v != 1 {
			return 0, fmt.Errorf("vi: label %d is %v, want 0 or 1", i, v)
		}
	}
	return d, nil
}

// logSigmoid is log(1/(1+exp(-x))) without overflow.
func logSigmoid(x float64) float64 {
	if x >= 0 {
		return -math.Log1p(math.Exp(-x))
	}
	return x - math.Log1p(math.Exp(x))
}

// jjState holds the natural parameters: precision P and h = P m.
type jjState struct {
	d    int
	P    *mat.SymDense
	h    *mat.VecDense
	cov  *mat.SymDense
	mean *mat.VecDense
	ld   float64 // log|P|
}

func (s *jjState) solve() error {
	var ch mat.Cholesky
	if !ch.Factorize(s.P) {
		return errors.New("vi: posterior precision not positive definite")
	}
	if err := ch.InverseTo(s.cov); err != nil {
		return err
	}
	s.mean.MulVec(s.cov, s.h)
	s.ld = ch.LogDet()
	return nil
}

// xi returns the optimal xi for row x under q: sqrt(x^T (S + m m^T) x).
func (s *jjState) xi(x []float64) float64 {
	v := mat.NewVecDense(len(x), x)
	xm := mat.Dot(v, s.mean)
	return math.Sqrt(mat.Inner(v, s.cov, v) + xm*xm)
}

// bound is the Jaakkola-Jordan ELBO at optimal xi:
// sum_n [log sigma(xi_n) + (y_n - 1/2) x_n^T m - xi_n/2] - KL(q || p).
func (s *jjState) bound(x [][]float64, y []float64, alpha float64) float64 {
	var e float64
	for n, row := range x {
		xi := s.xi(row)
		e += logSigmoid(xi) + (y[n]-0.5)*mat.Dot(mat.NewVecDense(len(row), row), s.mean) - xi/2
	}
	// KL(N(m, S) || N(0, I/alpha))
	d := float64(s.d)
	kl := 0.5 * (alpha*(mat.Trace(s.cov)+mat.Dot(s.mean, s.mean)) - d - d*math.Log(alpha) + s.ld)
	return e - kl
}

func newJJ(d int, alpha float64) *jjState {
	s := &jjState{d: d, P: mat.NewSymDense(d, nil), h: mat.NewVecDense(d, nil), cov: mat.NewSymDense(d, nil), mean: mat.NewVecDense(d, nil)}
	for i := 0; i < d; i++ {
		s.P.SetSym(i, i, alpha)
	}
	return s
}

// target sets P = alpha I + scale sum_n 2 lambda(xi_n) x_n x_n^T and
// h = scale sum_n (y_n - 1/2) x_n for the rows, with xi from the current q.
func (s *jjState) target(x [][]float64, y []float64, alpha, scale float64) (*mat.SymDense, *mat.VecDense) {
	P := mat.NewSymDense(s.d, nil)
	h := mat.NewVecDense(s.d, nil)
	for n, row := range x {
		l := 2 * jjLambda(s.xi(row)) * scale
		for i := 0; i < s.d; i++ {
			h.SetVec(i, h.AtVec(i)+scale*(y[n]-0.5)*row[i])
			for j := i; j < s.d; j++ {
				P.SetSym(i, j, P.At(i, j)+l*row[i]*row[j])
			}
		}
	}
	for i := 0; i < s.d; i++ {
		P.SetSym(i, i, P.At(i, i)+alpha)
	}
	return P, h
}

// FitLogistic alternates the xi update and the q(w) update
// (Bishop 10.156-10.157, 10.163); each raises the bound.
func FitLogistic(ctx context.Context, x [][]float64, y []float64, o LogisticOptions) (*Logistic, error) {
	d, err := checkLogistic(x, y)
	if err != nil {
		return nil, err
	}
	if o.Alpha == 0 {
		o.Alpha = 1
	}
	if o.Alpha < 0 {
		return nil, fmt.Errorf("vi: prior precision %g, want > 0", o.Alpha)
	}
	if o.MaxIter == 0 {
		o.MaxIter = 200
	}
	if o.Tol == 0 {
		o.Tol = 1e-10
	}
	s := newJJ(d, o.Alpha)
	if err := s.solve(); err != nil {
		return nil, err
	}
	r := &Logistic{alpha: o.Alpha}
	trace, err := coordinateAscent(ctx, o.MaxIter, o.Tol, nil, func(int) (float64, bool, error) {
		s.P, s.h = s.target(x, y, o.Alpha, 1)
		if err := s.solve(); err != nil {
			return 0, false, err
		}
		return s.bound(x, y, o.Alpha), false, nil
	})
	if err != nil {
		return nil, err
	}
	r.ELBO, r.Iters = trace, len(trace)
	r.Mean = append([]float64(nil), s.mean.RawVector().Data...)
	r.Cov = s.cov
	return r, nil
}

// FitLogisticSVI: each step draws a mini-batch, sets its xi from the
// current q, and moves the natural parameters (P, h) toward the batch's
// intermediate estimate with step rho_t.
func FitLogisticSVI(ctx context.Context, x [][]float64, y []float64, o LogisticOptions, so SVIOptions) (*Logistic, *Trace, error) {
	d, err := checkLogistic(x, y)
	if err != nil {
		return nil, nil, err
	}
	if err := so.defaults(); err != nil {
		return nil, nil, err
	}
	if o.Alpha == 0 {
		o.Alpha = 1
	}
	if o.Alpha < 0 {
		return nil, nil, fmt.Errorf("vi: prior precision %g, want > 0", o.Alpha)
	}
	s := newJJ(d, o.Alpha)
	if err := s.solve(); err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(so.Seed, 0x94d049bb133111eb))
	b := min(so.Batch, len(x))
	bx, by := make([][]float64, b), make([]float64, b)
	scale := float64(len(x)) / float64(b)
	tr := &Trace{}
	for t := 0; t < so.Steps; t++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		for i := range bx {
			j := rng.IntN(len(x))
			bx[i], by[i] = x[j], y[j]
		}
		P, h := s.target(bx, by, o.Alpha, scale)
		rho := so.Rho(t)
		s.P.ScaleSym(1-rho, s.P)
		P.ScaleSym(rho, P)
		s.P.AddSym(s.P, P)
		s.h.ScaleVec(1-rho, s.h)
		s.h.AddScaledVec(s.h, rho, h)
		if err := s.solve(); err != nil {
			return nil, nil, fmt.Errorf("SVI step %d: %w", t, err)
		}
		if (so.EvalEvery > 0 && (t+1)%so.EvalEvery == 0) || t == so.Steps-1 {
			e := s.bound(x, y, o.Alpha)
			tr.Step = append(tr.Step, t+1)
			tr.ELBO = append(tr.ELBO, e)
			if so.Progress != nil {
				so.Progress(t+1, e)
			}
		}
	}
	r := &Logistic{alpha: o.Alpha, ELBO: tr.ELBO, Iters: so.Steps, Mean: append([]float64(nil), s.mean.RawVector().Data...), Cov: s.cov}
	return r, tr, nil
}

// SD returns the posterior standard deviations.
func (r *Logistic) SD() []float64 {
	s := make([]float64, len(r.Mean))
	for i := range s {
		s[i] = math.Sqrt(r.Cov.At(i, i))
	}
	return s
}

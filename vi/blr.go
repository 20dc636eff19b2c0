package vi

import (
	"context"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// BLROptions configures mean-field Bayesian linear regression,
// t_n ~ N(w^T phi_n, 1/beta), w ~ N(0, I/alpha), alpha ~ Gam(A0, B0),
// beta ~ Gam(C0, D0), with q(w) q(alpha) q(beta) (Bishop 2006, 10.3, with
// the noise precision unknown as well). Zero values mean the defaults noted.
type BLROptions struct {
	A0, B0, C0, D0 float64 // Gamma shapes and rates; 0: 1e-2 each (vague)
	// Alpha, Beta > 0 fix the precisions (known): q(w) is then the exact
	// conjugate posterior after one update.
	Alpha, Beta float64
	MaxIter     int     // 0: 500
	Tol         float64 // 0: 1e-12 relative; < 0: never stop early
}

// BLR is a fitted q(w) = N(Mean, Cov), q(alpha) = Gam(A, B), q(beta) = Gam(C, D).
type BLR struct {
	Mean []float64
	Cov  *mat.SymDense
	A, B float64 // q(alpha); A = 0 when alpha is known
	C, D float64 // q(beta); C = 0 when beta is known
	// EAlpha, EBeta are the expected precisions (the fixed values when known).
	EAlpha, EBeta float64
	ELBO          []float64
	Iters         int
}

// FitBLR runs CAVI on design phi (N x M) and targets t:
// S^-1 = E[alpha] I + E[beta] Phi^T Phi, m = E[beta] S Phi^T t,
// a = a0 + M/2, b = b0 + E[w^T w]/2, c = c0 + N/2, d = d0 + E|t - Phi w|^2/2.
func FitBLR(ctx context.Context, phi [][]float64, t []float64, o BLROptions) (*BLR, error) {
	n := len(phi)
	if n == 0 {
		return nil, errors.New("vi: no data")
	}
	if len(t) != n {
		return nil, fmt.Errorf("vi: %d rows of features, %d targets", n, len(t))
	}
	m := len(phi[0])
	if m == 0 {
		return nil, errors.New("vi: no features")
	}
	X := mat.NewDense(n, m, nil)
	for i, r := range phi {
		if len(r) != m {
			return nil, fmt.Errorf("vi: row %d has %d features, want %d", i, len(r), m)
		}
		for j, v := range r {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("vi: row %d feature %d is %v", i, j, v)
			}
		}
		X.SetRow(i, r)
		if math.IsNaN(t[i]) || math.IsInf(t[i], 0) {
			return nil, fmt.Errorf("vi: target %d is %v", i, t[i])
		}
	}
	for _, p := range []*float64{&o.A0, &o.B0, &o.C0, &o.D0} {
		if *p == 0 {
			*p = 1e-2
		}
		if *p < 0 {
			return nil, fmt.Errorf("vi: Gamma prior parameter %g, want > 0", *p)
		}
	}
	if o.Alpha < 0 || o.Beta < 0 {
		return nil, fmt.Errorf("vi: alpha %g, beta %g: want > 0 (known) or 0 (unknown)", o.Alpha, o.Beta)
	}
	if o.MaxIter == 0 {
		o.MaxIter = 500
	}
	if o.Tol == 0 {
		o.Tol = 1e-12
	}
	var xtx mat.SymDense
	xtx.SymOuterK(1, X.T())
	tv := mat.NewVecDense(n, t)
	var xtt mat.VecDense
	xtt.MulVec(X.T(), tv)
	tt := mat.Dot(tv, tv)

	r := &BLR{EAlpha: o.Alpha, EBeta: o.Beta, Mean: make([]float64, m), Cov: mat.NewSymDense(m, nil)}
	if r.EAlpha == 0 {
		r.EAlpha = o.A0 / o.B0
	}
	if r.EBeta == 0 {
		r.EBeta = o.C0 / o.D0
	}
	prec := mat.NewSymDense(m, nil)
	trace, err := coordinateAscent(ctx, o.MaxIter, o.Tol, nil, func(int) (float64, bool, error) {
		// q(w)
		prec.ScaleSym(r.EBeta, &xtx)
		for i := 0; i < m; i++ {
			prec.SetSym(i, i, prec.At(i, i)+r.EAlpha)
		}
		var ch mat.Cholesky
		if !ch.Factorize(prec) {
			return 0, false, errors.New("vi: posterior precision of w is not positive definite")
		}
		if err := ch.InverseTo(r.Cov); err != nil {
			return 0, false, err
		}
		var mv mat.VecDense
		mv.MulVec(r.Cov, &xtt)
		mv.ScaleVec(r.EBeta, &mv)
		copy(r.Mean, mv.RawVector().Data)
		ww := mat.Dot(&mv, &mv) + mat.Trace(r.Cov)
		// E|t - Phi w|^2 = t^T t - 2 m^T Phi^T t + tr(Phi^T Phi (S + m m^T))
		var xm mat.VecDense
		xm.MulVec(X, &mv)
		sse := tt - 2*mat.Dot(&mv, &xtt) + traceProd(&xtx, r.Cov) + mat.Dot(&xm, &xm)
		// q(alpha), q(beta)
		if o.Alpha == 0 {
			r.A, r.B = o.A0+float64(m)/2, o.B0+ww/2
			r.EAlpha = r.A / r.B
		}
		if o.Beta == 0 {
			r.C, r.D = o.C0+float64(n)/2, o.D0+sse/2
			r.EBeta = r.C / r.D
		}
		// With both precisions known, one round is the exact posterior.
		return r.elbo(o, n, m, ww, sse, ch.LogDet()), o.Alpha > 0 && o.Beta > 0, nil
	})
	if err != nil {
		return nil, err
	}
	r.ELBO, r.Iters = trace, len(trace)
	return r, nil
}

// elbo: E[log p(t|w,beta)] + E[log p(w|alpha)] + E[log p(alpha)] +
// E[log p(beta)] + H[q(w)] + H[q(alpha)] + H[q(beta)]; logDetPrec = log|S^-1|.
func (r *BLR) elbo(o BLROptions, n, m int, ww, sse, logDetPrec float64) float64 {
	lnA, lnB := math.Log(r.EAlpha), math.Log(r.EBeta)
	var e float64
	if o.Alpha == 0 {
		lnA = digamma(r.A) - math.Log(r.B)
		e += gammaExpLogPrior(o.A0, o.B0, lnA, r.EAlpha) + gammaEntropy(r.A, r.B)
	}
	if o.Beta == 0 {
		lnB = digamma(r.C) - math.Log(r.D)
		e += gammaExpLogPrior(o.C0, o.D0, lnB, r.EBeta) + gammaEntropy(r.C, r.D)
	}
	fn, fm := float64(n), float64(m)
	e += fn/2*(lnB-math.Log(2*math.Pi)) - r.EBeta/2*sse
	e += fm/2*(lnA-math.Log(2*math.Pi)) - r.EAlpha/2*ww
	e += -logDetPrec/2 + fm/2*(1+math.Log(2*math.Pi))
	return e
}

// gammaExpLogPrior is E_q[log Gam(x | a0, b0)] given E[log x] and E[x].
func gammaExpLogPrior(a0, b0, elog, e float64) float64 {
	lg, _ := math.Lgamma(a0)
	return a0*math.Log(b0) - lg + (a0-1)*elog - b0*e
}

// gammaEntropy is H[Gam(a, b)] (rate b) = a - log b + lgamma(a) + (1-a) psi(a).
func gammaEntropy(a, b float64) float64 {
	lg, _ := math.Lgamma(a)
	return a - math.Log(b) + lg + (1-a)*digamma(a)
}

// SD returns the posterior standard deviations of w.
func (r *BLR) SD() []float64 {
	s := make([]float64, len(r.Mean))
	for i := range s {
		s[i] = math.Sqrt(r.Cov.At(i, i))
	}
	return s
}

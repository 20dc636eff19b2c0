package vi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// FactorOptions configures the Bayesian factor model
// x_n = W z_n + e_n, z_n ~ N(0, I_L), e_n ~ N(0, diag(psi)^-1),
// rows w_d ~ N(0, I/Alpha), psi_d ~ Gam(A0, B0), on data centred by its
// sample mean, with q = prod_n q(z_n) prod_d q(w_d) q(psi_d).
type FactorOptions struct {
	L       int     // factors; required
	Alpha   float64 // prior precision of the loadings; 0: 1
	A0, B0  float64 // 0: 1e-2 each
	MaxIter int     // 0: 500
	Tol     float64 // 0: 1e-10; < 0: never stop early
	Seed    uint64
}

// Factor is a fitted factor model. The loadings are identified only up to
// a rotation of the factors; W W^T + diag(1/psi) is not.
type Factor struct {
	D, L   int
	Center []float64   // the subtracted mean
	W      [][]float64 // E[w_d], D x L
	WCov   []*mat.SymDense
	A, B   []float64 // q(psi_d) = Gam(A_d, B_d)
	Z      [][]float64
	ZCov   *mat.SymDense // shared by every n
	ELBO   []float64
	Iters  int
}

// FitFactor runs CAVI: q(z_n) = N(S_z M^T diag(E psi) x_n, S_z) with
// S_z^-1 = I + sum_d E[psi_d] E[w_d w_d^T]; q(w_d) = N(S_d E[psi_d] sum_n x_nd E z_n, S_d)
// with S_d^-1 = alpha I + E[psi_d] sum_n E[z_n z_n^T]; q(psi_d) =
// Gam(a0 + N/2, b0 + E[sum_n (x_nd - w_d^T z_n)^2]/2).
func FitFactor(ctx context.Context, x [][]float64, o FactorOptions) (*Factor, error) {
	n := len(x)
	if n < 2 {
		return nil, errors.New("vi: factor model needs at least 2 rows")
	}
	d, err := checkPoints(x, 1)
	if err != nil {
		return nil, err
	}
	if o.L < 1 || o.L > d {
		return nil, fmt.Errorf("vi: %d factors for %d columns, want 1 <= factors <= columns", o.L, d)
	}
	if o.Alpha == 0 {
		o.Alpha = 1
	}
	if o.A0 == 0 {
		o.A0 = 1e-2
	}
	if o.B0 == 0 {
		o.B0 = 1e-2
	}
	if o.MaxIter == 0 {
		o.MaxIter = 500
	}
	if o.Tol == 0 {
		o.Tol = 1e-10
	}
	L := o.L
	mean, _ := meanCov(x, d)
	X := mat.NewDense(n, d, nil)
	for i, p := range x {
		for j, v := range p {
			X.Set(i, j, v-mean[j])
		}
	}
	f := &Factor{D: d, L: L, Center: mean, A: make([]float64, d), B: make([]float64, d)}
	// init: random loadings, psi from the variances
	rng := rand.New(rand.NewPCG(o.Seed, 77))
	M := mat.NewDense(d, L, nil)
	for i := 0; i < d; i++ {
		for j := 0; j < L; j++ {
			M.Set(i, j, 0.1*rng.NormFloat64())
		}
	}
	wcov := make([]*mat.SymDense, d)
	epsi := make([]float64, d)
	var colSS []float64
	for j := 0; j < d; j++ {
		c := mat.Col(nil, j, X)
		colSS = append(colSS, mat.Dot(mat.NewVecDense(n, c), mat.NewVecDense(n, c)))
		epsi[j] = float64(n) / math.Max(colSS[j], 1e-12)
		wcov[j] = mat.NewSymDense(L, nil)
	}
	zcov := mat.NewSymDense(L, nil)
	Z := mat.NewDense(n, L, nil)
	ezz := mat.NewSymDense(L, nil) // sum_n E[z z^T]
	var xz mat.Dense               // X^T E[Z], D x L
	trace, err := coordinateAscent(ctx, o.MaxIter, o.Tol, nil, func(int) (float64, bool, error) {
		// q(z)
		prec := mat.NewSymDense(L, nil)
		for j := 0; j < d; j++ {
			for a := 0; a < L; a++ {
				for b := a; b < L; b++ {
					prec.SetSym(a, b, prec.At(a, b)+epsi[j]*(wcov[j].At(a, b)+M.At(j, a)*M.At(j, b)))
				}
			}
		}
		for a := 0; a < L; a++ {
			prec.SetSym(a, a, prec.At(a, a)+1)
		}
		var ch mat.Cholesky
		if !ch.Factorize(prec) {
			return 0, false, errors.New("vi: factor precision not positive definite")
		}
		ch.InverseTo(zcov)
		logDetZ := -ch.LogDet()
		// E z_n = S_z M^T diag(psi) x_n  ->  Z = X diag(psi) M S_z
		var pm mat.Dense
		pm.Apply(func(i, j int, v float64) float64 { return v * epsi[i] }, M)
		var xpm mat.Dense
		xpm.Mul(X, &pm)
		Z.Mul(&xpm, zcov)
		var zz mat.SymDense
		zz.SymOuterK(1, Z.T())
		ezz.ScaleSym(float64(n), zcov)
		ezz.AddSym(ezz, &zz)
		xz.Mul(X.T(), Z)
		// q(w_d), q(psi_d)
		var e float64
		var logDetW float64
		for j := 0; j < d; j++ {
			pw := mat.NewSymDense(L, nil)
			pw.ScaleSym(epsi[j], ezz)
			for a := 0; a < L; a++ {
				pw.SetSym(a, a, pw.At(a, a)+o.Alpha)
			}
			var cw mat.Cholesky
			if !cw.Factorize(pw) {
				return 0, false, errors.New("vi: loading precision not positive definite")
			}
			cw.InverseTo(wcov[j])
			logDetW += -cw.LogDet()
			rhs := mat.NewVecDense(L, mat.Row(nil, j, &xz))
			rhs.ScaleVec(epsi[j], rhs)
			var mv mat.VecDense
			mv.MulVec(wcov[j], rhs)
			M.SetRow(j, mv.RawVector().Data)
		}
		var ww float64
		for j := 0; j < d; j++ {
			mj := mat.NewVecDense(L, mat.Row(nil, j, M))
			eww := mat.NewSymDense(L, nil)
			eww.SymOuterK(1, mj)
			eww.AddSym(eww, wcov[j])
			xzj := mat.NewVecDense(L, mat.Row(nil, j, &xz))
			sse := colSS[j] - 2*mat.Dot(mj, xzj) + traceProd(eww, ezz)
			f.A[j], f.B[j] = o.A0+float64(n)/2, o.B0+sse/2
			epsi[j] = f.A[j] / f.B[j]
			lnPsi := digamma(f.A[j]) - math.Log(f.B[j])
			e += float64(n)/2*(lnPsi-math.Log(2*math.Pi)) - epsi[j]/2*sse
			e += gammaExpLogPrior(o.A0, o.B0, lnPsi, epsi[j]) + gammaEntropy(f.A[j], f.B[j])
			ww += mat.Trace(eww)
		}
		fl := float64(L)
		e += -float64(n)*fl/2*math.Log(2*math.Pi) - mat.Trace(ezz)/2 // E log p(z)
		e += float64(d)*fl/2*math.Log(o.Alpha/(2*math.Pi)) - o.Alpha/2*ww
		e += float64(n) * (logDetZ/2 + fl/2*(1+math.Log(2*math.Pi)))
		e += logDetW/2 + float64(d)*fl/2*(1+math.Log(2*math.Pi))
		return e, false, nil
	})
	if err != nil {
		return nil, err
	}
	f.ELBO, f.Iters = trace, len(trace)
	f.W = make([][]float64, d)
	for j := range f.W {
		f.W[j] = mat.Row(nil, j, M)
	}
	f.WCov = wcov
	f.ZCov = zcov
	f.Z = make([][]float64, n)
	for i := range f.Z {
		f.Z[i] = mat.Row(nil, i, Z)
	}
	return f, nil
}

// Covariance is the implied E[W] E[W]^T + diag(1/E[psi]).
func (f *Factor) Covariance() *mat.SymDense {
	c := mat.NewSymDense(f.D, nil)
	for i := 0; i < f.D; i++ {
		for j := i; j < f.D; j++ {
			var s float64
			for a := 0; a < f.L; a++ {
				s += f.W[i][a] * f.W[j][a]
			}
			if i == j {
				s += f.B[i] / f.A[i]
			}
			c.SetSym(i, j, s)
		}
	}
	return c
}

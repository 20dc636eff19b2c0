package vi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"
)

// GMMOptions configures the variational Bayesian Gaussian mixture (Bishop
// 2006, section 10.2). Zero values mean the defaults noted.
type GMMOptions struct {
	K       int     // components (an upper bound: surplus ones are emptied); required
	Alpha0  float64 // Dirichlet concentration of the weights; 0: 1e-3 (small: prunes)
	Beta0   float64 // prior precision scale of the means; 0: 1
	Nu0     float64 // Wishart degrees of freedom, > D-1; 0: D
	M0      []float64
	W0Inv   *mat.SymDense // Wishart scale inverse; nil: Nu0 * (sample covariance)
	MaxIter int           // 0: 500
	Tol     float64       // stop when the ELBO rises by less than Tol*|ELBO|; 0: 1e-9; < 0: never
	Seed    uint64
	Workers int // 0: GOMAXPROCS
	// PruneWeight: components whose E[pi_k] falls below it are reported
	// inactive; 0: 1e-3 (below one point in a thousand).
	PruneWeight float64
	Progress    func(iter int, elbo float64)
}

// GMM is a fitted q(pi) q(mu, Lambda) = Dir(pi | Alpha) prod_k
// N(mu_k | M_k, (Beta_k Lambda_k)^-1) W(Lambda_k | W_k, Nu_k).
type GMM struct {
	K, D   int
	Alpha  []float64
	Beta   []float64
	Nu     []float64
	M      [][]float64
	W      []*mat.SymDense
	ELBO   []float64
	Assign []int
	Iters  int
	prior  gmmPrior
	// derived from the parameters, for the E-step
	chol    []mat.Cholesky // of W_k
	logPi   []float64      // E[log pi_k]
	logDetL []float64      // E[log |Lambda_k|]
	prune   float64
}

type gmmPrior struct {
	alpha0, beta0, nu0 float64
	m0                 []float64
	w0inv              *mat.SymDense
	logB0              float64 // log B(W0, nu0)
}

// gmmStats are the sums the E-step collects: R0_k = sum_n r_nk,
// R1_k = sum_n r_nk x_n, R2_k = sum_n r_nk x_n x_n^T (row-major D x D),
// and sum_nk r_nk log r_nk.
type gmmStats struct {
	R0   []float64
	R1   [][]float64
	R2   [][]float64
	negH float64
}

func newGMMStats(k, d int) *gmmStats {
	s := &gmmStats{R0: make([]float64, k), R1: make([][]float64, k), R2: make([][]float64, k)}
	for j := 0; j < k; j++ {
		s.R1[j] = make([]float64, d)
		s.R2[j] = make([]float64, d*d)
	}
	return s
}

func (s *gmmStats) scaleAdd(a float64, b *gmmStats, c float64) {
	for j := range s.R0 {
		s.R0[j] = a*s.R0[j] + c*b.R0[j]
		for t := range s.R1[j] {
			s.R1[j][t] = a*s.R1[j][t] + c*b.R1[j][t]
		}
		for t := range s.R2[j] {
			s.R2[j][t] = a*s.R2[j][t] + c*b.R2[j][t]
		}
	}
	s.negH = a*s.negH + c*b.negH
}

// checkPoints validates a data matrix for the mixtures.
func checkPoints(x [][]float64, k int) (int, error) {
	if len(x) == 0 {
		return 0, errors.New("vi: no data")
	}
	d := len(x[0])
	if d == 0 {
		return 0, errors.New("vi: points of dimension 0")
	}
	if k < 1 || k > len(x) {
		return 0, fmt.Errorf("vi: K = %d components for %d points, want 1 <= K <= points", k, len(x))
	}
	for i, p := range x {
		if len(p) != d {
			return 0, fmt.Errorf("vi: point %d has %d coordinates, want %d", i, len(p), d)
		}
		for j, v := range p {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("vi: point %d coordinate %d is %v, want a finite number", i, j, v)
			}
		}
	}
	return d, nil
}

func newGMM(x [][]float64, d int, o *GMMOptions) (*GMM, error) {
	if o.Alpha0 == 0 {
		o.Alpha0 = 1e-3
	}
	if o.Beta0 == 0 {
		o.Beta0 = 1
	}
	if o.Nu0 == 0 {
		o.Nu0 = float64(d)
	}
	if o.MaxIter == 0 {
		o.MaxIter = 500
	}
	if o.Tol == 0 {
		o.Tol = 1e-9
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.PruneWeight == 0 {
		o.PruneWeight = 1e-3
	}
	if o.Alpha0 < 0 || o.Beta0 < 0 || o.Nu0 <= float64(d)-1 {
		return nil, fmt.Errorf("vi: prior alpha0 %g, beta0 %g, nu0 %g: want alpha0, beta0 > 0 and nu0 > D-1 = %d", o.Alpha0, o.Beta0, o.Nu0, d-1)
	}
	mean, cov := meanCov(x, d)
	pr := gmmPrior{alpha0: o.Alpha0, beta0: o.Beta0, nu0: o.Nu0, m0: o.M0, w0inv: o.W0Inv}
	if pr.m0 == nil {
		pr.m0 = mean
	} else if len(pr.m0) != d {
		return nil, fmt.Errorf("vi: M0 has %d coordinates, want %d", len(pr.m0), d)
	}
	if pr.w0inv == nil {
		pr.w0inv = mat.NewSymDense(d, nil)
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				pr.w0inv.SetSym(i, j, o.Nu0*cov.At(i, j))
			}
			// a floor keeps constant coordinates from a singular scale
			pr.w0inv.SetSym(i, i, pr.w0inv.At(i, i)+1e-6*o.Nu0)
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(pr.w0inv) {
		return nil, errors.New("vi: W0^-1 is not positive definite")
	}
	// log|W0| = -log|W0^-1|
	pr.logB0 = logWishartB(-ch.LogDet(), pr.nu0, d)
	g := &GMM{K: o.K, D: d, prior: pr, prune: o.PruneWeight,
		Alpha: make([]float64, o.K), Beta: make([]float64, o.K), Nu: make([]float64, o.K),
		M: make([][]float64, o.K), W: make([]*mat.SymDense, o.K),
		chol: make([]mat.Cholesky, o.K), logPi: make([]float64, o.K), logDetL: make([]float64, o.K)}
	for j := range g.M {
		g.M[j] = make([]float64, d)
		g.W[j] = mat.NewSymDense(d, nil)
	}
	return g, nil
}

func meanCov(x [][]float64, d int) ([]float64, *mat.SymDense) {
	mean := make([]float64, d)
	for _, p := range x {
		for j, v := range p {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(len(x))
	}
	c := make([]float64, d*d)
	for _, p := range x {
		for i := 0; i < d; i++ {
			di := p[i] - mean[i]
			for j := i; j < d; j++ {
				c[i*d+j] += di * (p[j] - mean[j])
			}
		}
	}
	cov := mat.NewSymDense(d, nil)
	den := float64(max(len(x)-1, 1))
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			cov.SetSym(i, j, c[i*d+j]/den)
		}
	}
	return mean, cov
}

// logWishartB is log B(W, nu) of Bishop (B.79) from log|W|:
// -nu/2 log|W| - (nu D/2 log 2 + D(D-1)/4 log pi + sum_i lgamma((nu+1-i)/2)).
func logWishartB(logDetW, nu float64, d int) float64 {
	s := -nu/2*logDetW - nu*float64(d)/2*math.Ln2 - float64(d*(d-1))/4*math.Log(math.Pi)
	for i := 1; i <= d; i++ {
		lg, _ := math.Lgamma((nu + 1 - float64(i)) / 2)
		s -= lg
	}
	return s
}

// initStats: k-means++ seeds and one hard assignment of every point.
func (g *GMM) initStats(x [][]float64, seed uint64) *gmmStats {
	rng := rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d))
	sub := x
	if len(x) > 20000 {
		sub = make([][]float64, 20000)
		for i := range sub {
			sub[i] = x[rng.IntN(len(x))]
		}
	}
	c := kmeansPP(sub, g.K, rng)
	st := newGMMStats(g.K, g.D)
	for _, p := range x {
		best, arg := math.Inf(1), 0
		for j := range c {
			if s := sqDist(p, c[j]); s < best {
				best, arg = s, j
			}
		}
		st.add(arg, p, 1)
	}
	return st
}

func (s *gmmStats) add(k int, p []float64, r float64) {
	d := len(p)
	s.R0[k] += r
	r1, r2 := s.R1[k], s.R2[k]
	for i, v := range p {
		rv := r * v
		r1[i] += rv
		row := r2[i*d : i*d+d]
		for j := i; j < d; j++ { // upper triangle only; mirrored in mStep
			row[j] += rv * p[j]
		}
	}
}

// mStep sets the parameters from the sums (Bishop 10.58, 10.60-10.63 in
// natural form): alpha_k = alpha0 + N_k, beta_k = beta0 + N_k,
// m_k = (beta0 m0 + R1_k)/beta_k, nu_k = nu0 + N_k,
// W_k^-1 = W0^-1 + beta0 m0 m0^T + R2_k - beta_k m_k m_k^T.
func (g *GMM) mStep(st *gmmStats) error {
	pr, d := &g.prior, g.D
	var asum float64
	winv := mat.NewSymDense(d, nil)
	for k := 0; k < g.K; k++ {
		n := math.Max(st.R0[k], 0)
		g.Alpha[k] = pr.alpha0 + n
		asum += g.Alpha[k]
		g.Beta[k] = pr.beta0 + n
		g.Nu[k] = pr.nu0 + n
		for i := 0; i < d; i++ {
			g.M[k][i] = (pr.beta0*pr.m0[i] + st.R1[k][i]) / g.Beta[k]
		}
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				v := pr.w0inv.At(i, j) + pr.beta0*pr.m0[i]*pr.m0[j] + st.R2[k][i*d+j] - g.Beta[k]*g.M[k][i]*g.M[k][j]
				winv.SetSym(i, j, v)
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(winv) {
			return fmt.Errorf("vi: component %d: W^-1 lost positive definiteness (N_k = %g)", k, n)
		}
		if err := ch.InverseTo(g.W[k]); err != nil {
			return fmt.Errorf("vi: component %d: %v", k, err)
		}
		if !g.chol[k].Factorize(g.W[k]) {
			return fmt.Errorf("vi: component %d: W is not positive definite", k)
		}
	}
	dg := digamma(asum)
	for k := 0; k < g.K; k++ {
		g.logPi[k] = digamma(g.Alpha[k]) - dg
		l := float64(d)*math.Ln2 + g.chol[k].LogDet()
		for i := 1; i <= d; i++ {
			l += digamma((g.Nu[k] + 1 - float64(i)) / 2)
		}
		g.logDetL[k] = l
	}
	return nil
}

// eStep computes r_nk ∝ exp(E[log pi_k] + E[log|Lambda_k|]/2 - D/(2 beta_k)
// - nu_k (x_n - m_k)^T W_k (x_n - m_k)/2) (Bishop 10.46, 10.64-10.66) and
// the sums. assign may be nil.
func (g *GMM) eStep(x [][]float64, assign []int, st *gmmStats, workers int) {
	d, k := g.D, g.K
	// L_k^T with W_k = L_k L_k^T, row-major, so that the quadratic form is |L^T (x-m)|^2.
	lt := make([][]float64, k)
	c := make([]float64, k)
	for j := 0; j < k; j++ {
		var l mat.TriDense
		g.chol[j].LTo(&l)
		lt[j] = make([]float64, d*d)
		for a := 0; a < d; a++ {
			for b := 0; b < d; b++ {
				lt[j][a*d+b] = l.At(b, a)
			}
		}
		c[j] = g.logPi[j] + g.logDetL[j]/2 - float64(d)/(2*g.Beta[j]) - float64(d)/2*math.Log(2*math.Pi)
	}
	workers = max(1, min(workers, len(x)/512))
	parts := make([]*gmmStats, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := len(x)*w/workers, len(x)*(w+1)/workers
		parts[w] = newGMMStats(k, d)
		wg.Add(1)
		go func(p *gmmStats) {
			defer wg.Done()
			var as []int
			if assign != nil {
				as = assign[lo:hi]
			}
			g.eRange(x[lo:hi], as, lt, c, p)
		}(parts[w])
	}
	wg.Wait()
	*st = *parts[0]
	for _, p := range parts[1:] {
		st.scaleAdd(1, p, 1)
	}
}

func (g *GMM) eRange(x [][]float64, assign []int, lt [][]float64, c []float64, st *gmmStats) {
	d, k := g.D, g.K
	l := make([]float64, k)
	diff := make([]float64, d)
	for n, p := range x {
		best, arg := math.Inf(-1), 0
		for j := 0; j < k; j++ {
			m := g.M[j]
			for a := range diff {
				diff[a] = p[a] - m[a]
			}
			var q float64
			L := lt[j]
			for a := 0; a < d; a++ {
				var s float64
				row := L[a*d : a*d+d]
				for b := a; b < d; b++ { // L^T is upper triangular
					s += row[b] * diff[b]
				}
				q += s * s
			}
			l[j] = c[j] - g.Nu[j]*q/2
			if l[j] > best {
				best, arg = l[j], j
			}
		}
		var z, zl float64
		for j := 0; j < k; j++ {
			dd := l[j] - best
			e := 0.0
			if dd > -40 {
				e = expNeg(dd)
			}
			l[j] = e
			z += e
			zl += e * dd
		}
		st.negH += zl/z - math.Log(z)
		for j := 0; j < k; j++ {
			if r := l[j] / z; r > 0 {
				st.add(j, p, r)
			}
		}
		if assign != nil {
			assign[n] = arg
		}
	}
}

// elbo is the bound of Bishop (10.70-10.77) at responsibilities with sums
// st and the current parameters (any parameters, not only the M-step's).
func (g *GMM) elbo(st *gmmStats) float64 {
	pr, d := &g.prior, g.D
	fd := float64(d)
	var e float64
	lgA0, _ := math.Lgamma(pr.alpha0)
	lgK, _ := math.Lgamma(float64(g.K) * pr.alpha0)
	e += lgK - float64(g.K)*lgA0 // log C(alpha0)
	var asum float64
	for _, a := range g.Alpha {
		asum += a
	}
	lgS, _ := math.Lgamma(asum)
	e -= lgS // - log C(alpha)
	w0inv := pr.w0inv
	ek := mat.NewSymDense(d, nil)
	for k := 0; k < g.K; k++ {
		n := st.R0[k]
		m := g.M[k]
		ll, lp := g.logDetL[k], g.logPi[k]
		// E_k = sum_n r_nk (x_n - m_k)(x_n - m_k)^T
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				ek.SetSym(i, j, st.R2[k][i*d+j]-st.R1[k][i]*m[j]-m[i]*st.R1[k][j]+n*m[i]*m[j])
			}
		}
		// 10.71
		e += 0.5 * (n*(ll-fd/g.Beta[k]-fd*math.Log(2*math.Pi)) - g.Nu[k]*traceProd(g.W[k], ek))
		// 10.72, 10.73 (the (alpha0-1) sum), - 10.76's sum
		e += n*lp + (pr.alpha0-1)*lp - (g.Alpha[k]-1)*lp
		lga, _ := math.Lgamma(g.Alpha[k])
		e += lga
		// 10.74
		dm := make([]float64, d)
		for i := range dm {
			dm[i] = m[i] - pr.m0[i]
		}
		e += 0.5 * (fd*math.Log(pr.beta0/(2*math.Pi)) + ll - fd*pr.beta0/g.Beta[k] - pr.beta0*g.Nu[k]*quad(g.W[k], dm))
		e += pr.logB0 + (pr.nu0-fd-1)/2*ll - 0.5*g.Nu[k]*traceProd(w0inv, g.W[k])
		// - 10.77: q(mu, Lambda)
		logB := logWishartB(g.chol[k].LogDet(), g.Nu[k], d)
		h := -logB - (g.Nu[k]-fd-1)/2*ll + g.Nu[k]*fd/2
		e -= 0.5*ll + fd/2*math.Log(g.Beta[k]/(2*math.Pi)) - fd/2 - h
	}
	return e - st.negH // - 10.75
}

func traceProd(a, b mat.Symmetric) float64 {
	var s float64
	n := a.SymmetricDim()
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s += a.At(i, j) * b.At(j, i)
		}
	}
	return s
}

func quad(a mat.Symmetric, v []float64) float64 {
	var s float64
	for i := range v {
		for j := range v {
			s += v[i] * a.At(i, j) * v[j]
		}
	}
	return s
}

// FitGMM runs CAVI (the variational EM of Bishop 10.2) from a k-means++
// hard assignment; the ELBO is recorded after every M-step.
func FitGMM(ctx context.Context, x [][]float64, o GMMOptions) (*GMM, error) {
	d, err := checkPoints(x, o.K)
	if err != nil {
		return nil, err
	}
	g, err := newGMM(x, d, &o)
	if err != nil {
		return nil, err
	}
	st := g.initStats(x, o.Seed)
	if err := g.mStep(st); err != nil {
		return nil, err
	}
	assign := make([]int, len(x))
	trace, err := coordinateAscent(ctx, o.MaxIter, o.Tol, o.Progress, func(int) (float64, bool, error) {
		g.eStep(x, assign, st, o.Workers)
		if err := g.mStep(st); err != nil {
			return 0, false, err
		}
		return g.elbo(st), false, nil
	})
	if err != nil {
		return nil, err
	}
	g.ELBO, g.Iters = trace, len(trace)
	g.Assign = assign
	return g, nil
}

// FitGMMSVI fits the same model by SVI (Hoffman et al. 2013). The natural
// parameters of q(pi) and q(mu_k, Lambda_k) are affine in the sums
// (R0, R1, R2), so the natural-gradient step with step size rho is
// sums <- (1-rho) sums + rho (N/|B|) sums(B).
func FitGMMSVI(ctx context.Context, x [][]float64, o GMMOptions, so SVIOptions) (*GMM, *Trace, error) {
	d, err := checkPoints(x, o.K)
	if err != nil {
		return nil, nil, err
	}
	if err := so.defaults(); err != nil {
		return nil, nil, err
	}
	g, err := newGMM(x, d, &o)
	if err != nil {
		return nil, nil, err
	}
	run := g.initStats(x, o.Seed)
	if err := g.mStep(run); err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(so.Seed, 0xbf58476d1ce4e5b9))
	b := min(so.Batch, len(x))
	batch := make([][]float64, b)
	bs := newGMMStats(g.K, d)
	scale := float64(len(x)) / float64(b)
	tr := &Trace{}
	full := newGMMStats(g.K, d)
	var busy time.Duration
	for t := 0; t < so.Steps; t++ {
		t0 := time.Now()
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		for i := range batch {
			batch[i] = x[rng.IntN(len(x))]
		}
		g.eStep(batch, nil, bs, 1)
		rho := so.Rho(t)
		run.scaleAdd(1-rho, bs, rho*scale)
		if err := g.mStep(run); err != nil {
			return nil, nil, fmt.Errorf("SVI step %d: %w", t, err)
		}
		busy += time.Since(t0)
		if (so.EvalEvery > 0 && (t+1)%so.EvalEvery == 0) || t == so.Steps-1 {
			g.eStep(x, nil, full, o.Workers)
			e := g.elbo(full)
			tr.Step = append(tr.Step, t+1)
			tr.ELBO = append(tr.ELBO, e)
			tr.Seconds = append(tr.Seconds, busy.Seconds())
			if so.Progress != nil {
				so.Progress(t+1, e)
			}
		}
	}
	g.ELBO = tr.ELBO
	g.Iters = so.Steps
	g.Assign = make([]int, len(x))
	g.eStep(x, g.Assign, full, o.Workers)
	return g, tr, nil
}

// ELBOAt is the ELBO of the current global factors with q(z) at its optimum.
func (g *GMM) ELBOAt(x [][]float64) float64 {
	st := newGMMStats(g.K, g.D)
	g.eStep(x, nil, st, runtime.GOMAXPROCS(0))
	return g.elbo(st)
}

// Weights returns E[pi_k] = alpha_k / sum alpha.
func (g *GMM) Weights() []float64 {
	var s float64
	for _, a := range g.Alpha {
		s += a
	}
	w := make([]float64, g.K)
	for k, a := range g.Alpha {
		w[k] = a / s
	}
	return w
}

// Active lists the components whose E[pi_k] is at least the prune weight:
// the rest hold (almost) no data, the automatic pruning of Bishop 10.2.
func (g *GMM) Active() []int {
	var a []int
	for k, w := range g.Weights() {
		if w >= g.prune {
			a = append(a, k)
		}
	}
	return a
}

// Covariance returns E[Lambda_k]^-1 = (nu_k W_k)^-1, the plug-in covariance of component k.
func (g *GMM) Covariance(k int) *mat.SymDense {
	var c mat.SymDense
	if err := g.chol[k].InverseTo(&c); err != nil {
		return nil
	}
	c.ScaleSym(1/g.Nu[k], &c)
	return &c
}

// Predict returns the most responsible component of each point.
func (g *GMM) Predict(x [][]float64) ([]int, error) {
	if _, err := checkPoints(x, 1); err != nil {
		return nil, err
	}
	if len(x[0]) != g.D {
		return nil, fmt.Errorf("vi: points of dimension %d, want %d", len(x[0]), g.D)
	}
	a := make([]int, len(x))
	g.eStep(x, a, newGMMStats(g.K, g.D), runtime.GOMAXPROCS(0))
	return a, nil
}

// Sample draws n points from the plug-in mixture sum_k E[pi_k]
// N(m_k, E[Lambda_k]^-1), the post-hoc sampler for a VAE's latent space.
func (g *GMM) Sample(n int, rng *rand.Rand) [][]float64 { return g.SampleTemperature(n, 1, rng) }

// SampleTemperature draws from sum_k E[pi_k] N(m_k, t^2 E[Lambda_k]^-1):
// t < 1 keeps the draws closer to the component means.
func (g *GMM) SampleTemperature(n int, t float64, rng *rand.Rand) [][]float64 {
	w := g.Weights()
	chols := make([]*mat.TriDense, g.K)
	out := make([][]float64, n)
	eps := make([]float64, g.D)
	for i := range out {
		u, k := rng.Float64(), 0
		for ; k < g.K-1; k++ {
			u -= w[k]
			if u < 0 {
				break
			}
		}
		if chols[k] == nil {
			var ch mat.Cholesky
			ch.Factorize(g.Covariance(k))
			chols[k] = mat.NewTriDense(g.D, mat.Lower, nil)
			ch.LTo(chols[k])
		}
		for j := range eps {
			eps[j] = rng.NormFloat64()
		}
		z := make([]float64, g.D)
		for a := 0; a < g.D; a++ {
			z[a] = g.M[k][a]
			for b := 0; b <= a; b++ {
				z[a] += t * chols[k].At(a, b) * eps[b]
			}
		}
		out[i] = z
	}
	return out
}

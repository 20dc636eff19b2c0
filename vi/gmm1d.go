package vi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MixtureOptions configures the Bayesian mixture of unit-variance Gaussians
// (Blei et al. 2017, section 2.1). Zero values mean the defaults noted.
type MixtureOptions struct {
	K        int     // components; required
	Sigma2   float64 // prior variance of each mean, mu_k ~ N(0, Sigma2); 0: 100
	MaxIter  int     // 0: 200
	Tol      float64 // stop when the ELBO rises by less than Tol*|ELBO|; 0: 1e-10; <0: never
	Seed     uint64
	Workers  int // goroutines of the sweep over the data; 0: GOMAXPROCS
	Progress func(iter int, elbo float64)
}

func (o *MixtureOptions) defaults() {
	if o.Sigma2 == 0 {
		o.Sigma2 = 100
	}
	if o.MaxIter == 0 {
		o.MaxIter = 200
	}
	if o.Tol == 0 {
		o.Tol = 1e-10
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
}

// Mixture is a fitted q(mu_k) = N(M[k], S2[k]), q(c_i) = Cat(phi_i).
type Mixture struct {
	K      int
	Sigma2 float64
	M, S2  []float64 // posterior means and variances of the component means
	ELBO   []float64 // after every iteration
	Assign []int     // argmax_k phi_ik
	Iters  int
}

// mixStats are the sums a sweep over the data collects.
type mixStats struct {
	N, S []float64 // sum_i phi_ik, sum_i phi_ik x_i
	negH float64   // sum_i sum_k phi_ik log phi_ik
}

// FitMixture runs CAVI: phi_ik ∝ exp(m_k x_i - (s2_k + m_k^2)/2), then
// m_k = sum_i phi_ik x_i / (1/sigma^2 + sum_i phi_ik), s2_k = 1/(1/sigma^2 + sum_i phi_ik).
func FitMixture(ctx context.Context, x []float64, o MixtureOptions) (*Mixture, error) {
	if err := checkMixture(x, o.K); err != nil {
		return nil, err
	}
	o.defaults()
	mx := &Mixture{K: o.K, Sigma2: o.Sigma2, M: make([]float64, o.K), S2: make([]float64, o.K)}
	mx.init(x, o.Seed)
	assign := make([]int, len(x))
	var sumX2 float64
	for _, v := range x {
		sumX2 += v * v
	}
	st := newMixStats(o.K)
	trace, err := coordinateAscent(ctx, o.MaxIter, o.Tol, o.Progress, func(int) (float64, bool, error) {
		mx.sweep(x, assign, st, o.Workers)
		mx.update(st, 1)
		return mx.elbo(st, sumX2, len(x)), false, nil
	})
	if err != nil {
		return nil, err
	}
	mx.ELBO, mx.Iters = trace, len(trace)
	mx.Assign = assign
	return mx, nil
}

func checkMixture(x []float64, k int) error {
	if k < 1 {
		return fmt.Errorf("vi: K = %d components, want at least 1", k)
	}
	if len(x) == 0 {
		return errors.New("vi: no data")
	}
	if k > len(x) {
		return fmt.Errorf("vi: K = %d components for %d points, want K <= points", k, len(x))
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("vi: point %d is %v, want a finite number", i, v)
		}
	}
	return nil
}

func newMixStats(k int) *mixStats { return &mixStats{N: make([]float64, k), S: make([]float64, k)} }

// init places the means at K distinct data points chosen k-means++ style
// (spread out) with unit variances.
func (mx *Mixture) init(x []float64, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	centers := kmeansPPScalar(x, mx.K, rng)
	sort.Float64s(centers)
	copy(mx.M, centers)
	for k := range mx.S2 {
		mx.S2[k] = 1
	}
}

// kmeansPPScalar picks k seeds by k-means++ on a subsample of at most 10,000 points.
func kmeansPPScalar(x []float64, k int, rng *rand.Rand) []float64 {
	sub := x
	if len(x) > 10000 {
		sub = make([]float64, 10000)
		for i := range sub {
			sub[i] = x[rng.IntN(len(x))]
		}
	}
	c := []float64{sub[rng.IntN(len(sub))]}
	d := make([]float64, len(sub))
	for i := range d {
		d[i] = math.Inf(1)
	}
	for len(c) < k {
		var tot float64
		last := c[len(c)-1]
		for i, v := range sub {
			d[i] = math.Min(d[i], (v-last)*(v-last))
			tot += d[i]
		}
		if tot == 0 { // fewer distinct values than k: jitter
			c = append(c, last+float64(len(c))*1e-3)
			continue
		}
		u := rng.Float64() * tot
		j := 0
		for ; j < len(sub)-1; j++ {
			u -= d[j]
			if u <= 0 {
				break
			}
		}
		c = append(c, sub[j])
	}
	return c
}

// mixBlock is the fixed chunk of points whose sums are collected apart and
// then added in block order: the result is the same to the bit for any
// number of workers, and a worker on a less loaded core takes more blocks.
const mixBlock = 1 << 14

// mixClamp: the vector kernel takes exp(d) at max(d, mixClamp), d = logit -
// max logit (the constant is repeated in mixsums_amd64.s).
// A component that far below the best gets weight e^-600 = 3e-261 instead
// of less: at most that much per point in any sum, with no branch, and
// phi_ik stays a normal number (subnormal arithmetic can be slow).
const mixClamp = -600

// mixSkip: the scalar loop skips the exp of terms below e^mixSkip.
const mixSkip = -40

// sweep computes phi for every point from the current q(mu), accumulating
// its sums and argmax assignments (phi itself is never stored: 1e6 x K
// doubles would dominate the time). Workers take blocks of mixBlock points.
func (mx *Mixture) sweep(x []float64, assign []int, st *mixStats, workers int) {
	k := mx.K
	a := make([]float64, k) // phi_ik ∝ exp(a_k x - b_k)
	b := make([]float64, k)
	for j := range a {
		a[j] = mx.M[j]
		b[j] = (mx.S2[j] + mx.M[j]*mx.M[j]) / 2
	}
	nb := (len(x) + mixBlock - 1) / mixBlock
	w := 2*k + 1 // per block: N (k), S (k), negH
	parts := make([]float64, nb*w)
	block := func(i int, sc *mixScratch) {
		lo, hi := i*mixBlock, min(len(x), (i+1)*mixBlock)
		mixSums(x[lo:hi], assign[lo:hi], a, b, parts[i*w:(i+1)*w], sc)
	}
	if workers = min(workers, nb); workers <= 1 {
		sc := newMixScratch(k)
		for i := 0; i < nb; i++ {
			block(i, sc)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := newMixScratch(k)
				for i := int(next.Add(1) - 1); i < nb; i = int(next.Add(1) - 1) {
					block(i, sc)
				}
			}()
		}
		wg.Wait()
	}
	for j := 0; j < k; j++ {
		st.N[j], st.S[j] = 0, 0
	}
	st.negH = 0
	for i := 0; i < nb; i++ {
		p := parts[i*w : (i+1)*w]
		for j := 0; j < k; j++ {
			st.N[j] += p[j]
			st.S[j] += p[k+j]
		}
		st.negH += p[2*k]
	}
}

// mixScratch is a worker's scratch for mixSums.
type mixScratch struct {
	e   []float64 // the row of K values of a point (4K: of 4 points, lane by lane)
	acc []float64 // per-lane N_j and S_j of the vector kernel, 8K
	h   [12]float64
}

func newMixScratch(k int) *mixScratch {
	return &mixScratch{e: make([]float64, 4*k), acc: make([]float64, 8*k)}
}

// mixSums is the sweep over one block. out gets sum_i phi_ik (k values),
// sum_i phi_ik x_i (k) and sum_ik phi_ik log phi_ik. With AVX2 and FMA the
// points go four at a time through mixSumsAVX2 (one per lane), the rest
// through mixSumsGo; both work in float64 and agree to rounding and to the
// terms below e^-40 that the scalar loop drops (TestMixSumsAVX2).
func mixSums(x []float64, assign []int, a, b, out []float64, sc *mixScratch) {
	k := len(a)
	n4 := 0
	if useAVX2 {
		n4 = len(x) &^ 3
	}
	if n4 == 0 {
		mixSumsGo(x, assign, a, b, out, sc.e)
		return
	}
	clear(sc.acc)
	sc.h = [12]float64{4: 1, 5: 1, 6: 1, 7: 1}
	mixSumsAVX2(&x[0], &assign[0], n4, &a[0], &b[0], k, &sc.acc[0], &sc.e[0], &sc.h[0])
	mixSumsGo(x[n4:], assign[n4:], a, b, out, sc.e)
	for j := 0; j < k; j++ {
		l := sc.acc[8*j : 8*j+8]
		out[j] += (l[0] + l[1]) + (l[2] + l[3])
		out[k+j] += (l[4] + l[5]) + (l[6] + l[7])
	}
	for l := 0; l < 4; l++ {
		e2 := math.Float64bits(sc.h[8+l]) // an int64 in the float's bits
		out[2*k] += sc.h[l] - math.Log(sc.h[4+l]) - float64(int64(e2))*math.Ln2
	}
}

// mixSumsGo is mixSums one point at a time: the logits and their max and
// argmax, then exp, z and the entropy term, then the normalized phi into
// the sums, over the row e of K values. Unlike the vector kernel it sets
// phi_ik = 0 below e^-40 relative to the best component.
func mixSumsGo(x []float64, assign []int, a, b, out, e []float64) {
	k := len(a)
	b, e, assign = b[:k], e[:k], assign[:len(x)]
	n, s := out[:k], out[k:2*k]
	for j := range n {
		n[j], s[j] = 0, 0
	}
	// sum_i log z_i is kept as a product, mantissa times 2^exp, renormalized
	// when large (z_i <= K): one log per block instead of one per point.
	prod, exp2 := 1.0, 0
	var negH float64
	for i, v := range x {
		best, arg := a[0]*v-b[0], 0
		e[0] = best
		for j := 1; j < k; j++ {
			l := a[j]*v - b[j]
			e[j] = l
			if l > best { // a conditional move, not a branch
				arg = j
			}
			best = max(best, l)
		}
		var z, zl float64
		for j, l := range e {
			// Terms below e^-40 = 4e-18 cannot change z >= 1: skipped, one
			// scalar exp is dearer than the branch.
			d, p := l-best, 0.0
			if d > mixSkip {
				p = expRed(d)
			}
			e[j] = p
			z += p
			zl += p * d
		}
		// sum_k phi log phi = sum_k e_k d_k / z - log z.
		inv := 1 / z
		negH += zl * inv
		if prod *= z; prod > 1e200 {
			fr, ex := math.Frexp(prod)
			prod, exp2 = fr, exp2+ex
		}
		for j, p := range e {
			p *= inv
			n[j] += p
			s[j] += p * v
		}
		assign[i] = arg
	}
	out[2*k] = negH - (math.Log(prod) + float64(exp2)*math.Ln2)
}

// update sets q(mu) from the sums scaled by scale (1 for CAVI; N/|B| for a
// mini-batch's intermediate estimate).
func (mx *Mixture) update(st *mixStats, scale float64) {
	for j := range mx.M {
		prec := 1/mx.Sigma2 + scale*st.N[j]
		mx.S2[j] = 1 / prec
		mx.M[j] = scale * st.S[j] / prec
	}
}

// elbo is the ELBO at q(c) with sums st and the current q(mu):
//
//	sum_k [-log(2 pi sigma^2)/2 - (s2_k + m_k^2)/(2 sigma^2) + log(2 pi e s2_k)/2]
//	+ sum_i [-log K - log(2 pi)/2 - x_i^2/2] + sum_k [m_k S_k - N_k (s2_k + m_k^2)/2]
//	- sum_ik phi_ik log phi_ik.
func (mx *Mixture) elbo(st *mixStats, sumX2 float64, n int) float64 {
	var e float64
	for j := range mx.M {
		m, s2 := mx.M[j], mx.S2[j]
		e += -0.5*math.Log(2*math.Pi*mx.Sigma2) - (s2+m*m)/(2*mx.Sigma2) + 0.5*math.Log(2*math.Pi*math.E*s2)
		e += m*st.S[j] - st.N[j]*(s2+m*m)/2
	}
	e += float64(n)*(-math.Log(float64(mx.K))-0.5*math.Log(2*math.Pi)) - sumX2/2
	return e - st.negH
}

// ELBOAt is the ELBO of the current q(mu) with q(c) at its optimum, the
// common yardstick of CAVI and SVI.
func (mx *Mixture) ELBOAt(x []float64) float64 {
	st := newMixStats(mx.K)
	mx.sweep(x, make([]int, len(x)), st, runtime.GOMAXPROCS(0))
	var s float64
	for _, v := range x {
		s += v * v
	}
	return mx.elbo(st, s, len(x))
}

// Responsibilities returns phi_i for each point under the fitted q(mu).
func (mx *Mixture) Responsibilities(x []float64) [][]float64 {
	out := make([][]float64, len(x))
	for i, v := range x {
		p := make([]float64, mx.K)
		best := math.Inf(-1)
		for j := range p {
			p[j] = mx.M[j]*v - (mx.S2[j]+mx.M[j]*mx.M[j])/2
			best = math.Max(best, p[j])
		}
		var z float64
		for j := range p {
			p[j] = math.Exp(p[j] - best)
			z += p[j]
		}
		for j := range p {
			p[j] /= z
		}
		out[i] = p
	}
	return out
}

// SVIOptions configures stochastic variational inference (Hoffman et al.
// 2013): a mini-batch B gives the intermediate global parameter as if the
// data were B repeated N/|B| times, and the natural parameters move to it
// with step rho_t = (t + Tau)^-Kappa (Robbins-Monro: sum rho = inf,
// sum rho^2 < inf for Kappa in (0.5, 1]).
type SVIOptions struct {
	Batch     int     // mini-batch size; 0: 256
	Steps     int     // 0: 1000
	Tau       float64 // delay, >= 0; 0: 1
	Kappa     float64 // forgetting rate in (0.5, 1]; 0: 0.7
	EvalEvery int     // full-data ELBO every EvalEvery steps (0: only at the end)
	Seed      uint64
	Progress  func(step int, elbo float64)
}

func (o *SVIOptions) defaults() error {
	if o.Batch == 0 {
		o.Batch = 256
	}
	if o.Steps == 0 {
		o.Steps = 1000
	}
	if o.Tau == 0 {
		o.Tau = 1
	}
	if o.Kappa == 0 {
		o.Kappa = 0.7
	}
	if o.Batch < 1 || o.Steps < 1 || o.Tau < 0 || o.Kappa <= 0.5 || o.Kappa > 1 {
		return fmt.Errorf("vi: SVI options batch %d, steps %d, tau %g, kappa %g: want batch, steps >= 1, tau >= 0, 0.5 < kappa <= 1", o.Batch, o.Steps, o.Tau, o.Kappa)
	}
	return nil
}

// Rho is the step size at step t (from 0).
func (o SVIOptions) Rho(t int) float64 { return math.Pow(float64(t)+o.Tau, -o.Kappa) }

// Trace is an ELBO trace: the ELBO at the given steps and, for the SVI of the mixtures, the
// seconds of computation until then (the full-data ELBO evaluations
// themselves excluded).
type Trace struct {
	Step    []int
	ELBO    []float64
	Seconds []float64
}

// FitMixtureSVI fits the same model by SVI. The natural parameters of
// q(mu_k) are (sum_i phi_ik x_i, -(1/sigma^2 + sum_i phi_ik)/2): linear in
// the sums, so the natural-gradient step is an interpolation of the sums.
func FitMixtureSVI(ctx context.Context, x []float64, mo MixtureOptions, o SVIOptions) (*Mixture, *Trace, error) {
	if err := checkMixture(x, mo.K); err != nil {
		return nil, nil, err
	}
	if err := o.defaults(); err != nil {
		return nil, nil, err
	}
	mo.defaults()
	mx := &Mixture{K: mo.K, Sigma2: mo.Sigma2, M: make([]float64, mo.K), S2: make([]float64, mo.K)}
	mx.init(x, mo.Seed)
	rng := rand.New(rand.NewPCG(o.Seed, 0xda942042e4dd58b5))
	b := min(o.Batch, len(x))
	batch := make([]float64, b)
	assign := make([]int, b)
	bs := newMixStats(mo.K)
	// Running sums that reproduce the initial q(mu).
	run := newMixStats(mo.K)
	for j := range run.N {
		prec := 1 / mx.S2[j]
		run.N[j] = prec - 1/mo.Sigma2
		run.S[j] = mx.M[j] * prec
	}
	tr := &Trace{}
	scale := float64(len(x)) / float64(b)
	var busy time.Duration
	for t := 0; t < o.Steps; t++ {
		t0 := time.Now()
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		for i := range batch {
			batch[i] = x[rng.IntN(len(x))]
		}
		mx.sweep(batch, assign, bs, 1)
		rho := o.Rho(t)
		for j := range run.N {
			run.N[j] = (1-rho)*run.N[j] + rho*scale*bs.N[j]
			run.S[j] = (1-rho)*run.S[j] + rho*scale*bs.S[j]
		}
		mx.update(run, 1)
		busy += time.Since(t0)
		if (o.EvalEvery > 0 && (t+1)%o.EvalEvery == 0) || t == o.Steps-1 {
			e := mx.ELBOAt(x)
			tr.Step = append(tr.Step, t+1)
			tr.ELBO = append(tr.ELBO, e)
			tr.Seconds = append(tr.Seconds, busy.Seconds())
			if o.Progress != nil {
				o.Progress(t+1, e)
			}
		}
	}
	mx.ELBO = tr.ELBO
	mx.Iters = o.Steps
	mx.Assign = make([]int, len(x))
	mx.sweep(x, mx.Assign, newMixStats(mo.K), runtime.GOMAXPROCS(0))
	return mx, tr, nil
}

package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/govae/govae/internal/kernels/simd"
	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// A Bayesian decoder (Kingma & Welling 2014, appendix F; Blundell et al.
// 2015): every decoder parameter theta_j (weights and biases, the
// likelihood's heads included) is a global latent variable with prior
// N(0, sigma_p^2) and posterior q(theta_j) = N(mu_j, s_j^2),
// s_j = softplus(rho_j). The store keeps mu_j under the parameter's own name
// (so the mean decoder is what every tool and NumPy read by default) and
// rho_j under the name + ".rho". Each training step draws
// theta = mu + s * eps_theta outside the graph (O(#decoder weights) plain
// loops), runs the graph on theta, and turns its gradient g = dL/dtheta into
//
//	dL/dmu  = g + beta * mu / (sigma_p^2 N)
//	dL/drho = g * eps * sigmoid(rho) + beta * (s/sigma_p^2 - 1/s) * sigmoid(rho) / N
//
// the reparameterization gradient of the per-example loss plus KL(q||p)/N,
// N the training-set size (so one epoch's per-example terms add up to the
// full KL).

// rhoSuffix names a decoder parameter's scale parameter.
const rhoSuffix = ".rho"

// bayesInitScale is q's initial standard deviation, softplus(rho) = 0.03
// (rho = -3.49, inside the -3 to -5 Blundell et al. start from): small
// beside the initial weights, so that training starts near the
// point-estimate decoder, but not so small that the KL is huge for long.
// Adam moves rho by at most about its step size per step, so rho stays near
// its start for thousands of steps (at lr 1e-3, 5 epochs of 60,000 images
// move it by at most 2.3), and the start decides the KL of a short run.
// Measured (784-400-20-400-784, 10,000 MNIST images, 4 epochs, lr 1e-3):
// from s = 1e-3 (rho = -6.9) KL(q||p) fell only from 204.7 to 197.4 nats
// per training image, test ELBO -138.2, the whole model's bound -335.6;
// from s = 0.03, KL 96.9 to 96.0, test ELBO -144.3, bound -240.3.
const bayesInitScale = 3e-2

// streamWeights is the random stream of weight noise (see streamTrain):
// each chunk of the decoder's parameters draws from PCG(key, streamWeights+chunk).
const streamWeights = 0x776e6f69_00000000

// defineBayes adds a scale parameter "<name>.rho" for every decoder
// parameter when c has a Bayesian decoder. It runs after every other part
// has defined its parameters, so they keep their places and initial values.
func defineBayes(ps *nets.Params, c Config) error {
	if c.DecoderPriorSigma == 0 {
		return nil
	}
	var dec []*nets.Param
	for _, p := range ps.All() {
		if strings.HasPrefix(p.Name, "decoder.") {
			dec = append(dec, p)
		}
	}
	if len(dec) == 0 {
		return fmt.Errorf("a Bayesian decoder needs decoder parameters, the trunk defined none")
	}
	for _, p := range dec {
		if _, err := ps.New(p.Name+rhoSuffix, p.FanIn, p.Shape...); err != nil {
			return err
		}
	}
	return nil
}

// bayesPair holds the indices in the parameter list of a decoder
// parameter's mean and scale.
type bayesPair struct{ mu, rho int }

// bayesPairs lists the mean/scale pairs of ps (none without a Bayesian decoder).
func bayesPairs(ps *nets.Params, c Config) []bayesPair {
	if c.DecoderPriorSigma == 0 {
		return nil
	}
	idx := map[string]int{}
	for i, p := range ps.All() {
		idx[p.Name] = i
	}
	var out []bayesPair
	for i, p := range ps.All() {
		if j, ok := idx[p.Name+rhoSuffix]; ok && strings.HasPrefix(p.Name, "decoder.") {
			out = append(out, bayesPair{mu: i, rho: j})
		}
	}
	return out
}

// isBayesScale reports whether parameter i of ps is a scale (rho); the
// training graph does not differentiate those.
func isBayesScale(pairs []bayesPair, i int) bool {
	for _, p := range pairs {
		if p.rho == i {
			return true
		}
	}
	return false
}

// initBayes sets every rho to the initial scale (after InitUniform, so the
// other weights are those of the point-estimate model with the same seed).
func (m *Model) initBayes() {
	rho0 := math.Log(math.Expm1(bayesInitScale))
	for _, pr := range bayesPairs(m.params, m.cfg) {
		p := m.params.All()[pr.rho]
		switch v := p.Value.Data().(type) {
		case []float32:
			for i := range v {
				v[i] = float32(rho0)
			}
		case []float64:
			for i := range v {
				v[i] = rho0
			}
		}
	}
}

// softplus is log(1 + e^x), computed without overflow.
func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// sigmoid is softplus's derivative.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// gaussKL is KL(N(mu, s^2) || N(0, sp^2)) for one scalar.
func gaussKL(mu, s, sp float64) float64 {
	return math.Log(sp/s) + (s*s+mu*mu)/(2*sp*sp) - 0.5
}

// BayesDecoder reports whether the model's decoder weights are global
// latent variables with a Gaussian posterior (Config.DecoderPriorSigma > 0).
func (m *Model) BayesDecoder() bool { return m.cfg.DecoderPriorSigma > 0 }

// GlobalKL is KL(q(theta) || p(theta)) of the decoder's parameters, in
// nats, in closed form; 0 without a Bayesian decoder. The per-example ELBO
// of the whole model is the local ELBO minus GlobalKL / N_train.
func (m *Model) GlobalKL() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return globalKL(m.params, bayesPairs(m.params, m.cfg), m.cfg.DecoderPriorSigma)
}

func globalKL(ps *nets.Params, pairs []bayesPair, sp float64) float64 {
	var kl float64
	all := ps.All()
	for _, pr := range pairs {
		mu, rho := floats(all[pr.mu].Value), floats(all[pr.rho].Value)
		for j := range mu {
			kl += gaussKL(mu[j], softplus(rho[j]), sp)
		}
	}
	return kl
}

// floats copies a tensor's values into float64s.
func floats(t tensor.Tensor) []float64 { return tensorValues(t, nil) }

// pairTensors are the mean tensors of pairs, for forChunks.
func pairTensors(ps *nets.Params, pairs []bayesPair) []tensor.Tensor {
	ts := make([]tensor.Tensor, len(pairs))
	for i, pr := range pairs {
		ts[i] = ps.All()[pr.mu].Value
	}
	return ts
}

// chunkStream numbers the chunk [lo, ...) of pair i for the noise streams.
func chunkStream(i, lo int) uint64 {
	return streamWeights + uint64(i)<<32 + uint64(lo/chunkLen)
}

// weightNoise is the scratch of a weight draw, one slice per pair: the
// noise, the means it displaced, and the scale s = softplus(rho) with its
// derivative sigmoid(rho), computed once per draw (exp and log are most of
// a draw's cost).
type weightNoise struct {
	pairs             []bayesPair
	eps, mean, s, dsd [][]float64
	drawn             bool // the stores hold a draw, the means are in mean
}

func newWeightNoise(ps *nets.Params, pairs []bayesPair) *weightNoise {
	w := &weightNoise{pairs: pairs}
	for _, pr := range pairs {
		n := ps.All()[pr.mu].Len()
		w.eps, w.mean = append(w.eps, make([]float64, n)), append(w.mean, make([]float64, n))
		w.s, w.dsd = append(w.s, make([]float64, n)), append(w.dsd, make([]float64, n))
	}
	return w
}

// draw keeps the means of ps's decoder parameters and replaces them by
// theta = mu + softplus(rho) * eps, eps standard normal from streams of key
// (the same for any number of cores). Each replica (a store with ps's
// layout) receives the same theta.
func (w *weightNoise) draw(ps *nets.Params, replicas []*nets.Params, key uint64) {
	all := ps.All()
	w.drawn = true
	forChunks(pairTensors(ps, w.pairs), func(_, i, lo, hi int) {
		pr := w.pairs[i]
		rng := rand.New(rand.NewPCG(key, chunkStream(i, lo)))
		eps, mean, s, dsd := w.eps[i][lo:hi], w.mean[i][lo:hi], w.s[i][lo:hi], w.dsd[i][lo:hi]
		switch mu := all[pr.mu].Value.Data().(type) {
		case []float32:
			rho := all[pr.rho].Float32s()[lo:hi]
			for j, r := range rho {
				s[j], dsd[j] = scale32(r)
			}
			drawKernel(mu[lo:hi], eps, mean, s, rng)
			for _, r := range replicas {
				copy(r.All()[pr.mu].Float32s()[lo:hi], mu[lo:hi])
			}
		case []float64:
			for j, r := range all[pr.rho].Float64s()[lo:hi] {
				s[j], dsd[j] = softplus(r), sigmoid(r)
			}
			drawKernel(mu[lo:hi], eps, mean, s, rng)
			for _, r := range replicas {
				copy(r.All()[pr.mu].Float64s()[lo:hi], mu[lo:hi])
			}
		}
	})
}

func drawKernel[T float32 | float64](mu []T, eps, mean, s []float64, rng *rand.Rand) {
	for j := range mu {
		e := rng.NormFloat64()
		eps[j], mean[j] = e, float64(mu[j])
		mu[j] = T(float64(mu[j]) + s[j]*e)
	}
}

// scale32 is softplus(r) and sigmoid(r) of a float32 scale parameter from
// one exp, by internal/kernels/simd's float32 functions; below r = -87, where that
// exp underflows, by the math package.
func scale32(r float32) (s, ds float64) {
	e := simd.ExpNeg(-abs32(r))
	if e == 0 {
		if r > 0 {
			return float64(r), 1
		}
		return softplus(float64(r)), sigmoid(float64(r))
	}
	s = float64(max(r, 0) + simd.Log1p(e))
	if r >= 0 {
		return s, float64(1 / (1 + e))
	}
	return s, float64(e / (1 + e))
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// restore puts the means back into ps and the replicas (if a draw is in them).
func (w *weightNoise) restore(ps *nets.Params, replicas []*nets.Params) {
	if !w.drawn {
		return
	}
	w.drawn = false
	for _, s := range append([]*nets.Params{ps}, replicas...) {
		for i, pr := range w.pairs {
			switch mu := s.All()[pr.mu].Value.Data().(type) {
			case []float32:
				for j, v := range w.mean[i] {
					mu[j] = float32(v)
				}
			case []float64:
				copy(mu, w.mean[i])
			}
		}
	}
}

// gradients turns the gradients grads[s] (one tensor per parameter, shard
// s's part of the batch) with respect to the drawn theta into gradients
// with respect to mu and rho, and adds the gradient of klWeight * KL(q||p)
// to shard 0's. ps holds the means again (restore). It returns the KL.
// The rho tensors of grads are overwritten entirely.
func (w *weightNoise) gradients(ps *nets.Params, grads [][]tensor.Tensor, sp, klWeight float64) float64 {
	all := ps.All()
	chunkKL := make([][]float64, len(w.pairs))
	for i, pr := range w.pairs {
		chunkKL[i] = make([]float64, (all[pr.mu].Len()+chunkLen-1)/chunkLen)
	}
	forChunks(pairTensors(ps, w.pairs), func(_, i, lo, hi int) {
		pr := w.pairs[i]
		eps, sc, dsd := w.eps[i][lo:hi], w.s[i][lo:hi], w.dsd[i][lo:hi]
		for s, g := range grads {
			kw := 0.0
			if s == 0 {
				kw = klWeight
			}
			switch mu := all[pr.mu].Value.Data().(type) {
			case []float32:
				kl := gradKernel(mu[lo:hi], eps, sc, dsd,
					g[pr.mu].Data().([]float32)[lo:hi], g[pr.rho].Data().([]float32)[lo:hi], sp, kw, s == 0)
				if s == 0 {
					chunkKL[i][lo/chunkLen] = kl
				}
			case []float64:
				kl := gradKernel(mu[lo:hi], eps, sc, dsd,
					g[pr.mu].Data().([]float64)[lo:hi], g[pr.rho].Data().([]float64)[lo:hi], sp, kw, s == 0)
				if s == 0 {
					chunkKL[i][lo/chunkLen] = kl
				}
			}
		}
	})
	var kl float64
	for _, c := range chunkKL {
		for _, v := range c {
			kl += v
		}
	}
	return kl
}

// gradKernel: gmu holds dL/dtheta on entry and dL/dmu on return; grho is
// set to dL/drho; kw weighs the KL's gradient; s and ds are softplus(rho)
// and sigmoid(rho). With withKL it returns the KL of these elements, else 0.
// The KL's sum of log s_j is the log of their product, kept as a mantissa
// and a binary exponent (math.Frexp) so it never overflows or underflows:
// one log per chunk instead of one per weight, which was most of a step's
// added cost, and more accurate (relative rounding ~ n eps in the product).
func gradKernel[T float32 | float64](mu []T, eps, s, ds []float64, gmu, grho []T, sp, kw float64, withKL bool) float64 {
	var quad, prod = 0.0, 1.0
	var exp int
	inv := 1 / (sp * sp)
	for j := range mu {
		m, sj := float64(mu[j]), s[j]
		g := float64(gmu[j])
		gmu[j] = T(g + kw*m*inv)
		grho[j] = T(g*eps[j]*ds[j] + kw*(sj*inv-1/sj)*ds[j])
		if withKL {
			quad += sj*sj + m*m
			fr, e := math.Frexp(sj)
			prod *= fr
			exp += e
			if j&31 == 31 { // 32 factors in [1/2, 1) cannot underflow
				fr, e = math.Frexp(prod)
				prod, exp = fr, exp+e
			}
		}
	}
	if !withKL {
		return 0
	}
	logS := math.Log(prod) + float64(exp)*math.Ln2
	return quad*inv/2 - logS + float64(len(mu))*(math.Log(sp)-0.5)
}

// WeightDraws is a copy of a Bayesian-decoder model whose decoder weights
// are redrawn from q(theta) by each Next. The copy is independent of the
// model it was made from (its own weights and graphs), so evaluating it
// never disturbs concurrent calls on the original.
type WeightDraws struct {
	m     *Model
	noise *weightNoise
	seed  uint64
	n     uint64
}

// NewWeightDraws copies m for weight draws seeded by seed. m must have a
// Bayesian decoder.
func (m *Model) NewWeightDraws(seed uint64) (*WeightDraws, error) {
	if !m.BayesDecoder() {
		return nil, fmt.Errorf("amortized: weight draws need a Bayesian decoder (config decoder_prior_sigma > 0)")
	}
	c, err := newModel(m.cfg)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	err = c.params.CopyFrom(m.params)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	pairs := bayesPairs(c.params, c.cfg)
	return &WeightDraws{m: c, noise: newWeightNoise(c.params, pairs), seed: seed}, nil
}

// Next draws new decoder weights theta ~ q(theta) and returns the copy
// holding them; the previous draw's model becomes this one (the same
// *Model, changed). Calls on the returned model must be finished before
// the next Next.
func (d *WeightDraws) Next() *Model {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	d.noise.restore(d.m.params, nil)
	d.noise.draw(d.m.params, nil, d.seed^(0x9e3779b97f4a7c15*(d.n+1)))
	d.n++
	return d.m
}

// ELBODraws is each example's ELBO averaged over draws decoder weights
// theta ~ q(theta) (one z per example and draw): a Monte Carlo estimate of
// E_q(theta)[E_q(z|x)[log p(x|z,theta)] - KL(q(z|x)||p(z))], the local part
// of the ELBO; the whole model's per-example ELBO subtracts GlobalKL()/N_train.
// Without a Bayesian decoder it is ELBO, and draws must be 1.
func (m *Model) ELBODraws(x [][]float32, draws int, rng *rand.Rand) ([]float64, error) {
	if draws < 1 {
		return nil, fmt.Errorf("amortized: ELBODraws: %d weight draws, want >= 1", draws)
	}
	if !m.BayesDecoder() {
		if draws != 1 {
			return nil, fmt.Errorf("amortized: ELBODraws: %d weight draws of a decoder that is not Bayesian, want 1", draws)
		}
		return m.ELBO(x, rng)
	}
	wd, err := m.NewWeightDraws(rng.Uint64())
	if err != nil {
		return nil, err
	}
	var sum []float64
	for range draws {
		e, err := wd.Next().ELBO(x, rng)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = make([]float64, len(e))
		}
		for i, v := range e {
			sum[i] += v
		}
	}
	for i := range sum {
		sum[i] /= float64(draws)
	}
	return sum, nil
}

// LogLikelihoodDraws estimates log p(x) = log E_q(theta)[p(x|theta)] by log (1/S) sum_s phat(x|theta_s): for each of S = draws decoder
// weights theta_s ~ q(theta), phat is the importance-sampled likelihood
// with k samples (LogLikelihood), and the average over draws is taken in
// log space (logMeanExp). Both averages make it a stochastic lower bound in
// expectation (Jensen), as the IWAE estimate is.
func (m *Model) LogLikelihoodDraws(x [][]float32, k, draws int, rng *rand.Rand) ([]float64, error) {
	if draws < 1 {
		return nil, fmt.Errorf("amortized: LogLikelihoodDraws: %d weight draws, want >= 1", draws)
	}
	if !m.BayesDecoder() {
		if draws != 1 {
			return nil, fmt.Errorf("amortized: LogLikelihoodDraws: %d weight draws of a decoder that is not Bayesian, want 1", draws)
		}
		return m.LogLikelihood(x, k, rng)
	}
	wd, err := m.NewWeightDraws(rng.Uint64())
	if err != nil {
		return nil, err
	}
	per := make([][]float64, len(x)) // per example, one value per draw
	for range draws {
		ll, err := wd.Next().LogLikelihood(x, k, rng)
		if err != nil {
			return nil, err
		}
		for i, v := range ll {
			per[i] = append(per[i], v)
		}
	}
	out := make([]float64, len(x))
	for i, v := range per {
		out[i] = logMeanExp(v)
	}
	return out, nil
}

// logMeanExp is log((1/n) sum_i exp(v_i)), shifted by the maximum so that
// nothing overflows or underflows to -Inf for finite v.
func logMeanExp(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	mx := math.Inf(-1)
	for _, x := range v {
		mx = math.Max(mx, x)
	}
	if math.IsInf(mx, 0) {
		return mx
	}
	var s float64
	for _, x := range v {
		s += math.Exp(x - mx)
	}
	return mx + math.Log(s/float64(len(v)))
}

// LogMeanExpSE is log((1/n) sum_i exp(v_i)), computed stably, and the
// delta-method standard error of that log when the exp(v_i) are n
// independent unbiased estimates of one quantity:
// sd(exp(v)) / (sqrt(n) mean(exp(v))). With n < 2 the error is NaN.
func LogMeanExpSE(v []float64) (lme, se float64) {
	lme = logMeanExp(v)
	n := float64(len(v))
	if len(v) < 2 || math.IsInf(lme, 0) || math.IsNaN(lme) {
		return lme, math.NaN()
	}
	var mean, ss float64 // of exp(v_i - lme), which average to 1 up to rounding
	for _, x := range v {
		mean += math.Exp(x-lme) / n
	}
	for _, x := range v {
		d := math.Exp(x-lme) - mean
		ss += d * d
	}
	return lme, math.Sqrt(ss/(n-1)/n) / mean
}

package amortized

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// Random streams: each use of randomness draws from its own PCG stream of the
// run's seed, so changing one (say, evaluation) never shifts another.
const (
	streamInit  = 0x696e6974 // weight initialization
	streamTrain = 0x74726e00 // reparameterization noise of training step s: stream streamTrain+s
	streamEval  = 0x6576616c // noise of the per-epoch validation ELBO
	// streamPartInit: a part's own initialization (Initializer)
	streamPartInit = 0x70617274
)

// TrainOptions configures optimization. Zero values mean the defaults named.
type TrainOptions struct {
	Epochs  int     `json:"epochs"`   // epochs to reach; required
	LR      float64 `json:"lr"`       // Adam step size; 0 means 1e-3
	Beta1   float64 `json:"beta1"`    // 0 means 0.9
	Beta2   float64 `json:"beta2"`    // 0 means 0.999
	AdamEps float64 `json:"adam_eps"` // 0 means 1e-8
	Seed    uint64  `json:"seed"`     // seeds the training and evaluation noise
	// WarmupEpochs: the KL weight beta rises linearly from 0 to 1 over this
	// many epochs, step by step (Bowman et al. 2016; Sønderby et al. 2016). 0: beta = 1.
	WarmupEpochs float64 `json:"warmup_epochs"`
	// FreeBits is a per-dimension floor, in nats, on the batch-mean KL in the
	// loss (Kingma et al. 2016). 0: none. Reported ELBOs never use it.
	FreeBits float64 `json:"free_bits"`
	// KLWeight is the beta of the beta-VAE (Higgins et al. 2017): the KL's
	// weight in the loss, loss = beta KL - recon, times the warm-up's
	// weight. 0 means 1. Reported ELBOs always weigh the KL by 1.
	KLWeight float64 `json:"kl_weight,omitempty"`
	// Capacity (Burgess et al. 2018): with CapacityGamma > 0 the loss is
	// gamma |KL - C(t)| - recon, the target C(t) rising linearly from 0 at
	// step 0 to CapacityMax nats at step CapacitySteps and staying there;
	// KL is the batch mean (so one shard). The warm-up multiplies gamma.
	CapacityMax   float64 `json:"capacity_max,omitempty"`
	CapacitySteps int64   `json:"capacity_steps,omitempty"`
	CapacityGamma float64 `json:"capacity_gamma,omitempty"`
	// Objective is "elbo" (the default) or "iwae", the importance-weighted
	// bound of Burda et al. (2015).
	Objective string `json:"objective,omitempty"`
	// K is the number of z drawn per example: the ELBO averages over them,
	// the IWAE bound log-averages their weights. 0 means 1.
	K int `json:"k,omitempty"`
	// Estimator of the encoder's gradient: "pathwise" (the default, the
	// reparameterization trick) or "score" (the score function, REINFORCE,
	// with a moving-average baseline; ELBO objective only).
	Estimator string `json:"estimator,omitempty"`
	// BaselineDecay is the score estimator's moving-average decay; 0 means 0.9.
	BaselineDecay float64 `json:"baseline_decay,omitempty"`
	// Shards is the number of parts each batch is cut into and
	// differentiated in parallel, on their own goroutines, with the
	// gradients summed (see shard.go). It changes the order of
	// floating-point additions only. 0 means 2 for batches of at least 64
	// rows and 1 otherwise, or with free bits or the score estimator,
	// which need the whole batch in one graph.
	Shards int `json:"shards,omitempty"`
	// SumLoss makes a step's loss the batch's rows times its mean loss,
	// the sum over the rows as in PyTorch's reduction="sum" (the peers').
	// The gradient then grows with the rows: Adam's epsilon weighs less,
	// and a partial last batch steps in proportion to its rows. Reported
	// losses stay per row.
	SumLoss bool `json:"sum_loss,omitempty"`
}

// Objectives and estimators.
const (
	ObjectiveELBO     = "elbo"
	ObjectiveIWAE     = "iwae"
	EstimatorPathwise = "pathwise"
	EstimatorScore    = "score"
)

// Normalize returns o with defaults filled in, or an error naming the
// first invalid or contradictory setting.
func (o TrainOptions) Normalize() (TrainOptions, error) {
	if o.LR == 0 {
		o.LR = 1e-3
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.AdamEps == 0 {
		o.AdamEps = 1e-8
	}
	if o.Objective == "" {
		o.Objective = ObjectiveELBO
	}
	if o.Estimator == "" {
		o.Estimator = EstimatorPathwise
	}
	if o.K == 0 {
		o.K = 1
	}
	if o.BaselineDecay == 0 {
		o.BaselineDecay = 0.9
	}
	if o.KLWeight == 0 {
		o.KLWeight = 1
	}
	capacity := o.CapacityGamma != 0 || o.CapacityMax != 0 || o.CapacitySteps != 0
	switch {
	case !(o.KLWeight > 0) || math.IsInf(o.KLWeight, 0):
		return o, fmt.Errorf("amortized: KL weight beta %g, want a finite number > 0", o.KLWeight)
	case capacity && (!(o.CapacityGamma > 0) || math.IsInf(o.CapacityGamma, 0)):
		return o, fmt.Errorf("amortized: capacity gamma %g, want a finite number > 0", o.CapacityGamma)
	case capacity && (!(o.CapacityMax >= 0) || math.IsInf(o.CapacityMax, 0)):
		return o, fmt.Errorf("amortized: capacity %g nats, want a finite number >= 0", o.CapacityMax)
	case capacity && o.CapacitySteps < 1:
		return o, fmt.Errorf("amortized: capacity reached after %d steps, want >= 1", o.CapacitySteps)
	case capacity && o.KLWeight != 1:
		return o, fmt.Errorf("amortized: the capacity objective weighs |KL - C| by its gamma; a KL weight beta of %g as well is ambiguous: use one", o.KLWeight)
	case capacity && o.FreeBits > 0:
		return o, fmt.Errorf("amortized: the capacity objective and free bits both set the KL's target: use one")
	case capacity && o.Shards > 1:
		return o, fmt.Errorf("amortized: the capacity objective acts on the KL averaged over the whole batch, which a shard does not see: use one shard")
	case o.Objective == ObjectiveIWAE && (o.KLWeight != 1 || capacity):
		return o, fmt.Errorf("amortized: a KL weight or capacity acts on the ELBO's KL term, which the IWAE bound does not have")
	case o.Objective != ObjectiveELBO && o.Objective != ObjectiveIWAE:
		return o, fmt.Errorf("amortized: objective %q, want elbo or iwae", o.Objective)
	case o.Estimator != EstimatorPathwise && o.Estimator != EstimatorScore:
		return o, fmt.Errorf("amortized: estimator %q, want pathwise or score", o.Estimator)
	case o.K < 1:
		return o, fmt.Errorf("amortized: k = %d samples per example, want >= 1", o.K)
	case o.Shards < 0:
		return o, fmt.Errorf("amortized: %d shards per batch, want >= 1 (0: the default)", o.Shards)
	case o.Shards > 1 && o.FreeBits > 0:
		return o, fmt.Errorf("amortized: free bits floor each dimension's KL averaged over the whole batch, which a shard does not see: use one shard")
	case o.Shards > 1 && o.Estimator == EstimatorScore:
		return o, fmt.Errorf("amortized: the score-function estimator samples z for the whole batch in one graph: use one shard")
	case o.Estimator == EstimatorScore && o.Objective != ObjectiveELBO:
		return o, fmt.Errorf("amortized: the score-function estimator is implemented for the ELBO objective only")
	case o.Objective == ObjectiveIWAE && (o.WarmupEpochs > 0 || o.FreeBits > 0):
		return o, fmt.Errorf("amortized: KL warm-up and free bits act on the ELBO's KL term, which the IWAE bound does not have")
	case !(o.BaselineDecay > 0 && o.BaselineDecay < 1):
		return o, fmt.Errorf("amortized: baseline decay %g, want in (0,1)", o.BaselineDecay)
	case o.Epochs < 1:
		return o, fmt.Errorf("amortized: epochs %d, want >= 1", o.Epochs)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return o, fmt.Errorf("amortized: learning rate %g, want > 0", o.LR)
	case !(o.Beta1 > 0 && o.Beta1 < 1) || !(o.Beta2 > 0 && o.Beta2 < 1):
		return o, fmt.Errorf("amortized: Adam betas %g, %g, want each in (0,1)", o.Beta1, o.Beta2)
	case !(o.AdamEps > 0):
		return o, fmt.Errorf("amortized: Adam epsilon %g, want > 0", o.AdamEps)
	case !(o.WarmupEpochs >= 0) || math.IsInf(o.WarmupEpochs, 0):
		return o, fmt.Errorf("amortized: warm-up %g epochs, want >= 0", o.WarmupEpochs)
	case !(o.FreeBits >= 0) || math.IsInf(o.FreeBits, 0):
		return o, fmt.Errorf("amortized: free bits %g, want >= 0", o.FreeBits)
	}
	return o, nil
}

// Batches is a source of training or evaluation batches; data.Loader
// implements it. Batch b of epoch e must be the same whenever it is asked
// for, which is what makes resumed runs identical to uninterrupted ones.
type Batches interface {
	Len() int        // examples
	Dim() int        // values per example
	BatchSize() int  // rows of a full batch
	NumBatches() int // batches per epoch
	// Batch writes batch b of epoch e, row-major, into dst and returns its rows.
	Batch(epoch, b int, dst []float32) (int, error)
}

// Sums accumulates per-example terms over part of an epoch.
type Sums struct {
	Recon   float64 `json:"recon"` // sum of log p(x|z)
	KL      float64 `json:"kl"`    // sum of KL(q||p) (for flows, of its one-sample estimates)
	Bound   float64 `json:"bound"` // sum of the objective's estimate (ELBO or IWAE bound)
	N       int     `json:"n"`
	Seconds float64 `json:"seconds"` // training time, evaluation excluded
}

// TrainState is everything besides the weights that a resumed run needs.
type TrainState struct {
	Epoch   int          `json:"epoch"` // epochs completed
	Batch   int          `json:"batch"` // batches completed of epoch Epoch+1
	Step    int64        `json:"step"`  // optimizer steps taken
	Options TrainOptions `json:"options"`
	Partial Sums         `json:"partial"` // of the epoch in progress
	// BestValELBO is the best validation ELBO seen (at BestEpoch); BestEpoch 0: none yet.
	BestValELBO float64 `json:"best_val_elbo"`
	BestEpoch   int     `json:"best_epoch"`
	// Baseline is the score estimator's moving average of log p(x|z)
	// (uncorrected), after BaselineUpdates updates.
	Baseline        float64 `json:"baseline,omitempty"`
	BaselineUpdates int64   `json:"baseline_updates,omitempty"`
	// Run is the caller's description of the run (data, seeds), stored
	// verbatim so that a resumed run rebuilds the same batches.
	Run json.RawMessage `json:"run,omitempty"`
	// AdamM and AdamV are the optimizer's moments under the parameters'
	// names (the live stores, not copies).
	AdamM, AdamV *nets.Params `json:"-"`
}

// Stats are mean per-example terms in nats.
type Stats struct {
	ELBO  float64 `json:"elbo"`
	Recon float64 `json:"recon"`
	KL    float64 `json:"kl"`
	// Bound is the training objective's estimate: the ELBO, or the IWAE
	// bound with the run's k. Zero in evaluations.
	Bound float64 `json:"bound,omitempty"`
	N     int     `json:"n"`
}

func (s Sums) stats() Stats {
	n := float64(max(s.N, 1))
	return Stats{ELBO: (s.Recon - s.KL) / n, Recon: s.Recon / n, KL: s.KL / n, Bound: s.Bound / n, N: s.N}
}

// StepStats describes one optimizer step.
type StepStats struct {
	Epoch, Batch int // 1-based epoch; 0-based batch within it
	Step         int64
	Rows         int
	Loss         float64 // the minimized objective (with beta and free bits)
	Recon, KL    float64 // batch means
	Bound        float64 // batch mean of the objective's estimate (ELBO or IWAE bound)
	Beta         float64 // the KL's weight in the loss (warm-up times KLWeight, or gamma)
	Capacity     float64 // the capacity objective's target C(t) (0: none)
	// GlobalKL is a Bayesian decoder's KL(q(theta)||p(theta)) / N_train,
	// the global term of each example's loss (in Loss, times Beta); 0 without.
	GlobalKL float64
}

// EpochStats describes a finished epoch.
type EpochStats struct {
	Epoch        int     `json:"epoch"`
	Step         int64   `json:"step"`
	Beta         float64 `json:"beta"`
	Train        Stats   `json:"train"`
	Val          *Stats  `json:"val,omitempty"` // nil without a validation set
	ImagesPerSec float64 `json:"images_per_s"`
	TrainSeconds float64 `json:"train_seconds"`
	EvalSeconds  float64 `json:"eval_seconds"`
	Best         bool    `json:"best"` // Val is the best so far
}

// Hooks lets the caller observe training; an error from a hook stops it.
type Hooks struct {
	AfterStep  func(t *Trainer, s StepStats) error
	AfterEpoch func(t *Trainer, e EpochStats) error
}

// NonFiniteError reports a NaN or infinity in the loss or a gradient.
type NonFiniteError struct {
	Epoch int
	Step  int64 // 1-based number of the step that failed
	What  string
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("amortized: training diverged at epoch %d, step %d: %s is not finite", e.Epoch, e.Step, e.What)
}

// Trainer maximizes the ELBO of a model by Adam on minibatches.
type Trainer struct {
	m     *Model
	opts  TrainOptions
	state TrainState
	adam  *Adam
	batch int
	// shards cut each batch (see shard.go); g is shard 0's graph; active
	// are the shards that ran in the last gradients() call.
	shards  []*shard
	active  []*shard
	reps    []*nets.Params    // shards 1..'s weight copies, which Adam updates too
	grads   [][]tensor.Tensor // the active shards' gradients, for Adam
	g       *graph
	gradSum []tensor.Tensor // batchGrads' sum over shards
	eps     []float64       // noise, B*k rows
	xbuf    []float32
	// score estimator scratch
	headsK              [][]float64 // q's parameters repeated per sample
	buf, zs, adv, recon []float64
	fixedBaseline       *float64 // replaces the moving average (GradientVariance)
	// a Bayesian decoder's weight noise (nil without) and the training-set
	// size that divides its KL (SetDataSize; Fit sets it)
	weights *weightNoise
	nData   int
	noise   NoiseFunc // replaces the seeded noise streams (SetNoise); nil: none
}

// NewTrainer prepares to train m on batches of the given size. While the
// trainer is in use, change m's weights only through it: with more than one
// shard it keeps copies of them (see TrainOptions.Shards). With a
// non-nil resume state it continues that run (whose moments must match m's
// parameters); opts.Epochs may then exceed the saved one.
func NewTrainer(m *Model, batch int, opts TrainOptions, resume *TrainState) (*Trainer, error) {
	if batch < 1 {
		return nil, fmt.Errorf("amortized: batch size %d, want >= 1", batch)
	}
	opts, err := opts.NormalizeFor(m.cfg)
	if err != nil {
		return nil, err
	}
	adam := newAdam(m.params, opts)
	t := &Trainer{m: m, opts: opts, adam: adam, batch: batch}
	if resume != nil {
		if err := t.restore(resume); err != nil {
			return nil, err
		}
	}
	t.state.Options = opts
	t.state.AdamM, t.state.AdamV = adam.M, adam.V
	nShards := opts.Shards
	if nShards == 0 {
		nShards = defaultShards(batch, opts)
	}
	if nShards > batch {
		return nil, fmt.Errorf("amortized: %d shards for batches of %d rows, want at most one shard per row", nShards, batch)
	}
	if t.shards, err = m.newShards(batch, nShards, opts); err != nil {
		return nil, err
	}
	t.g = t.shards[0].g
	for _, sh := range t.shards[1:] {
		t.reps = append(t.reps, sh.params)
	}
	if pairs := bayesPairs(m.params, m.cfg); pairs != nil {
		t.weights = newWeightNoise(m.params, pairs)
	}
	L, D, k := m.cfg.Latent, m.cfg.DataDim, opts.K
	n := batch * k
	t.eps, t.xbuf = make([]float64, n*m.noiseWidth()), make([]float32, batch*D)
	if opts.Estimator == EstimatorScore {
		t.zs, t.adv = make([]float64, n*L), make([]float64, n)
		for _, w := range m.headWidths() {
			t.headsK = append(t.headsK, make([]float64, n*w))
		}
	}
	return t, nil
}

func (t *Trainer) restore(st *TrainState) error {
	if st.AdamM == nil || st.AdamV == nil {
		return errors.New("amortized: resume state has no optimizer moments")
	}
	for _, pair := range [][2]*nets.Params{{t.adam.M, st.AdamM}, {t.adam.V, st.AdamV}} {
		if err := pair[0].CopyFrom(pair[1]); err != nil {
			return fmt.Errorf("amortized: resume state: %w", err)
		}
	}
	if st.Epoch < 0 || st.Batch < 0 || st.Step < 0 {
		return fmt.Errorf("amortized: resume state: negative counters (epoch %d, batch %d, step %d)", st.Epoch, st.Batch, st.Step)
	}
	t.state = *st
	return nil
}

// State returns the training state; its moment stores are live.
func (t *Trainer) State() TrainState { return t.state }

// SetRun stores the caller's run description in the state.
func (t *Trainer) SetRun(run json.RawMessage) { t.state.Run = run }

// SetDataSize sets N_train, the number of training examples, by which a
// Bayesian decoder's KL is divided in each example's loss (Fit sets it to
// the training set's length).
func (t *Trainer) SetDataSize(n int) error {
	if n < 1 {
		return fmt.Errorf("amortized: training-set size %d, want >= 1", n)
	}
	t.nData = n
	return nil
}

// DataSize is N_train as set by SetDataSize or Fit (0: not set).
func (t *Trainer) DataSize() int { return t.nData }

// Model is the model being trained.
func (t *Trainer) Model() *Model { return t.m }

// Options are the normalized options.
func (t *Trainer) Options() TrainOptions { return t.opts }

// Close releases the training graphs.
func (t *Trainer) Close() { closeShards(t.shards) }

// Step takes one Adam step on the first rows rows of x (row-major) with KL
// weight beta. On a non-finite loss or gradient it changes nothing and
// returns a *NonFiniteError.
func (t *Trainer) Step(x []float32, rows int, beta float64) (StepStats, error) {
	noise := rand.New(rand.NewPCG(t.opts.Seed, streamTrain+uint64(t.state.Step)))
	if t.noise != nil {
		if err := t.replayNoise(rows); err != nil {
			return StepStats{}, err
		}
		noise = nil
	}
	s, err := t.gradients(x, rows, beta, noise)
	if err != nil {
		return s, err
	}
	t.grads = t.grads[:0]
	for _, sh := range t.active {
		t.grads = append(t.grads, sh.grads)
	}
	if t.opts.SumLoss {
		scaleGrads(t.grads, float64(rows))
	}
	if err := t.adam.update(t.m.params.All(), t.grads, t.reps, s.Step); err != nil {
		return s, err
	}
	t.state.Step++
	if t.opts.Estimator == EstimatorScore {
		d := t.opts.BaselineDecay
		t.state.Baseline = d*t.state.Baseline + (1-d)*s.Recon
		t.state.BaselineUpdates++
	}
	return s, nil
}

// baseline is the bias-corrected moving average of log p(x|z); 0 before the
// first update. It depends only on earlier steps, so the score estimator
// stays unbiased.
func (t *Trainer) baseline() float64 {
	if t.fixedBaseline != nil {
		return *t.fixedBaseline
	}
	if t.state.BaselineUpdates == 0 {
		return 0
	}
	return t.state.Baseline / (1 - math.Pow(t.opts.BaselineDecay, float64(t.state.BaselineUpdates)))
}

// gradients runs the training graphs on x with noise from rng (nil: the
// noise already in t.eps), leaving the
// gradient of the loss in the active shards' gradients (summed by
// batchGrads). Shards without real rows are skipped: their gradient would
// be zero. Nothing of the model or the optimizer changes.
func (t *Trainer) gradients(x []float32, rows int, beta float64, rng *rand.Rand) (StepStats, error) {
	D := t.m.cfg.DataDim
	if rows < 1 || rows > t.batch || len(x) < rows*D {
		return StepStats{}, fmt.Errorf("amortized: step on %d rows (%d values), want 1..%d rows of %d", rows, len(x), t.batch, D)
	}
	if rng != nil { // nil: t.eps was filled by replayNoise
		for i := range t.eps {
			t.eps[i] = rng.NormFloat64()
		}
	}
	s := StepStats{Epoch: t.state.Epoch + 1, Batch: t.state.Batch, Step: t.state.Step + 1, Rows: rows, Beta: beta,
		Capacity: t.opts.CapacityAt(t.state.Step)}
	if t.weights != nil {
		if t.nData < 1 {
			return s, fmt.Errorf("amortized: a Bayesian decoder's KL is divided by the training-set size: call SetDataSize before Step")
		}
		// theta ~ q(theta) for this step; the means come back on every return.
		t.weights.draw(t.m.params, t.reps, rng.Uint64())
		defer t.weights.restore(t.m.params, t.reps)
	}
	active := t.shards
	for len(active) > 1 && active[len(active)-1].lo >= rows {
		active = active[:len(active)-1]
	}
	for _, sh := range active {
		if err := t.setInputs(sh, x, rows, beta); err != nil {
			return s, err
		}
	}
	if t.opts.Estimator == EstimatorScore {
		if err := t.scoreInputs(x, rows); err != nil {
			return s, err
		}
	}
	t.active = nil
	if err := runShards(active, gradLimit(t.m.params.Dtype(), len(active))); err != nil {
		return s, fmt.Errorf("amortized: step %d: %w", s.Step, err)
	}
	bad := -1
	for _, sh := range active {
		s.Loss += sh.loss
		s.Recon += sh.recon
		s.KL += sh.kl
		s.Bound += sh.bound
		if sh.bad >= 0 && (bad < 0 || sh.bad < bad) {
			bad = sh.bad
		}
	}
	if nonFinite(s.Loss) {
		return s, &NonFiniteError{Epoch: s.Epoch, Step: s.Step, What: "the loss"}
	}
	if bad >= 0 {
		return s, &NonFiniteError{Epoch: s.Epoch, Step: s.Step, What: "the gradient of " + t.m.params.All()[bad].Name}
	}
	if t.weights != nil {
		t.weights.restore(t.m.params, t.reps)
		grads := make([][]tensor.Tensor, len(active))
		for i, sh := range active {
			grads[i] = sh.grads
		}
		n := float64(t.nData)
		kl := t.weights.gradients(t.m.params, grads, t.m.cfg.DecoderPriorSigma, beta/n)
		s.GlobalKL = kl / n
		s.Loss += beta * s.GlobalKL
		if nonFinite(s.Loss) {
			return s, &NonFiniteError{Epoch: s.Epoch, Step: s.Step, What: "the decoder weights' KL"}
		}
	}
	t.active = active
	return s, nil
}

// batchGrads returns the gradient of the last gradients() call's loss,
// one tensor per parameter: the sum over its shards.
func (t *Trainer) batchGrads() []tensor.Tensor {
	if len(t.active) == 1 {
		return t.active[0].grads
	}
	t.gradSum = sumGrads(t.active, t.gradSum)
	return t.gradSum
}

// scoreInputs draws z ~ q(z|x) outside the training graph and computes each
// sample's advantage log p(x|z) - b for the score-function surrogate.
func (t *Trainer) scoreInputs(x []float32, rows int) error {
	m, D, k := t.m, t.m.cfg.DataDim, t.opts.K
	n := t.batch * k
	m.mu.Lock()
	defer m.mu.Unlock()
	enc, err := m.graphFor(kindEncode, t.batch)
	if err != nil {
		return err
	}
	setRows(enc.input(inX), x[:rows*D])
	if err := enc.run(); err != nil {
		return err
	}
	for h, hd := range m.qHeads() {
		w := hd.Width
		t.buf = enc.read(outHead+hd.Name, t.buf)
		for i := 0; i < t.batch; i++ {
			for j := 0; j < k; j++ {
				copy(t.headsK[h][(i*k+j)*w:(i*k+j+1)*w], t.buf[i*w:(i+1)*w])
			}
		}
	}
	lw, err := m.graphFor(kindLogW, n)
	if err != nil {
		return err
	}
	if k > 1 {
		setRows(lw.input(inX), t.shards[0].xk)
	} else {
		setRows(lw.input(inX), x[:rows*D])
	}
	for h, hd := range m.qHeads() {
		setRows64(lw.input(inHead+hd.Name), t.headsK[h])
	}
	setRows64(lw.input(inEps), t.eps)
	if err := lw.run(); err != nil {
		return err
	}
	t.zs, t.recon = lw.read(outZ, t.zs), lw.read(outRecon, t.recon)
	b := t.baseline()
	for i := range t.adv {
		t.adv[i] = t.recon[i] - b
	}
	setRows64(t.g.input(inZ), t.zs)
	setRows64(t.g.input(inAdv), t.adv)
	return nil
}

func nonFinite(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// beta is the KL weight at the current step: the warm-up's weight times
// the KL weight (or the capacity objective's gamma).
func (t *Trainer) beta(batchesPerEpoch int) float64 {
	w := t.opts.KLWeight
	if t.opts.Capacity() {
		w = t.opts.CapacityGamma
	}
	if t.opts.WarmupEpochs == 0 {
		return w
	}
	return w * math.Min(1, float64(t.state.Step)/(t.opts.WarmupEpochs*float64(batchesPerEpoch)))
}

// Capacity reports whether the options use the capacity objective.
func (o TrainOptions) Capacity() bool { return o.CapacityGamma > 0 }

// CapacityAt is the capacity objective's target C(t) in nats after step
// steps (0 without the capacity objective).
func (o TrainOptions) CapacityAt(step int64) float64 {
	if !o.Capacity() {
		return 0
	}
	return o.CapacityMax * math.Min(1, float64(step)/float64(o.CapacitySteps))
}

// Fit trains until Options().Epochs epochs are complete, evaluating val (if
// non-nil) after each. When ctx is cancelled it returns ctx.Err() between
// steps with a consistent state, so the caller can save and resume later.
func (t *Trainer) Fit(ctx context.Context, train, val Batches, h Hooks) error {
	D := t.m.cfg.DataDim
	if train.Dim() != D || (val != nil && val.Dim() != D) {
		return fmt.Errorf("amortized: data has %d values per example, the model wants %d", train.Dim(), D)
	}
	if train.BatchSize() != t.batch {
		return fmt.Errorf("amortized: batches of %d rows, the trainer was built for %d", train.BatchSize(), t.batch)
	}
	nb := train.NumBatches()
	if nb < 1 {
		return fmt.Errorf("amortized: %d training examples make no batch of %d", train.Len(), t.batch)
	}
	if err := t.SetDataSize(train.Len()); err != nil {
		return err
	}
	for t.state.Epoch < t.opts.Epochs {
		epoch := t.state.Epoch + 1
		var beta float64
		for t.state.Batch < nb {
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			rows, err := train.Batch(epoch-1, t.state.Batch, t.xbuf)
			if err != nil {
				return fmt.Errorf("amortized: epoch %d batch %d: %w", epoch, t.state.Batch, err)
			}
			beta = t.beta(nb)
			s, err := t.Step(t.xbuf, rows, beta)
			if err != nil {
				return err
			}
			p := &t.state.Partial
			p.Recon += s.Recon * float64(rows)
			p.KL += s.KL * float64(rows)
			p.Bound += s.Bound * float64(rows)
			p.N += rows
			p.Seconds += time.Since(start).Seconds()
			t.state.Batch++
			if h.AfterStep != nil {
				if err := h.AfterStep(t, s); err != nil {
					return err
				}
			}
		}
		es := EpochStats{Epoch: epoch, Step: t.state.Step, Beta: beta, Train: t.state.Partial.stats(),
			TrainSeconds: t.state.Partial.Seconds}
		es.ImagesPerSec = float64(t.state.Partial.N) / math.Max(es.TrainSeconds, 1e-9)
		if val != nil {
			start := time.Now()
			vs, err := t.m.Evaluate(val, rand.New(rand.NewPCG(t.opts.Seed, streamEval)))
			if err != nil {
				return fmt.Errorf("amortized: validation after epoch %d: %w", epoch, err)
			}
			es.EvalSeconds = time.Since(start).Seconds()
			es.Val = &vs
			if t.state.BestEpoch == 0 || vs.ELBO > t.state.BestValELBO {
				t.state.BestValELBO, t.state.BestEpoch, es.Best = vs.ELBO, epoch, true
			}
		}
		t.state.Epoch, t.state.Batch, t.state.Partial = epoch, 0, Sums{}
		if h.AfterEpoch != nil {
			if err := h.AfterEpoch(t, es); err != nil {
				return err
			}
		}
	}
	return nil
}

// Evaluate is the mean ELBO, reconstruction term and KL over every batch of
// epoch 0 of b, with one reparameterized draw per example from rng.
func (m *Model) Evaluate(b Batches, rng *rand.Rand) (Stats, error) {
	if b.Dim() != m.cfg.DataDim {
		return Stats{}, fmt.Errorf("amortized: data has %d values per example, the model wants %d", b.Dim(), m.cfg.DataDim)
	}
	buf := make([]float32, b.BatchSize()*b.Dim())
	var sums Sums
	for i := 0; i < b.NumBatches(); i++ {
		rows, err := b.Batch(0, i, buf)
		if err != nil {
			return Stats{}, err
		}
		// Chunks may finish in any order: summed afterwards, row by row.
		rec, kl := make([]float64, rows), make([]float64, rows)
		err = m.evalFlat(buf[:rows*b.Dim()], rows, rng, func(g *graph, start, n int) {
			copy(rec[start:start+n], g.read(outRecon, nil))
			copy(kl[start:start+n], g.read(outKL, nil))
		})
		if err != nil {
			return Stats{}, err
		}
		for r := range rows {
			sums.Recon += rec[r]
			sums.KL += kl[r]
		}
		sums.N += rows
	}
	return sums.stats(), nil
}

package amortized

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestELBOMatchesReference checks the graph's per-row ELBO against a plain-Go
// evaluation with the same noise, for both likelihoods.
func TestELBOMatchesReference(t *testing.T) {
	for _, lik := range []string{Bernoulli, Gaussian} {
		m := newSmall(t, "float64", lik, 1)
		x := synthetic(5, 12, 2)
		if lik == Gaussian {
			for i := range x {
				x[i] = x[i]*0.8 + 0.1
			}
		}
		got, err := m.ELBO(rowsOf(x, 12), rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 3))
		for r := 0; r < 5; r++ {
			eps := make([]float64, 3)
			for j := range eps {
				eps[j] = rng.NormFloat64()
			}
			rec, kl := ref{m}.elbo(f64(x[r*12:(r+1)*12]), eps)
			if math.Abs(got[r]-(rec-kl)) > 1e-9*(1+math.Abs(rec)) {
				t.Errorf("%s row %d: ELBO %v, reference %v", lik, r, got[r], rec-kl)
			}
		}
	}
}

// TestKLMatchesMonteCarlo compares the analytic KL with E_q[log q(z|x) - log p(z)]
// estimated from the graph's own log-densities at sampled z.
func TestKLMatchesMonteCarlo(t *testing.T) {
	m := newSmall(t, "float64", Bernoulli, 4)
	// Push the posterior away from the prior so the KL is not trivially small.
	for _, name := range []string{"encoder.mean.bias", "encoder.logvar.bias"} {
		b := m.params.Get(name).Float64s()
		for i := range b {
			b[i] += 0.7 * float64(i+1)
		}
	}
	x := synthetic(1, 12, 5)
	const n = 20000
	xs := make([][]float32, n)
	for i := range xs {
		xs[i] = x
	}
	var analytic float64
	diffs := make([]float64, n)
	err := m.evalRows(xs, rand.New(rand.NewPCG(6, 6)), func(g *graph, start, rows int) {
		q, p, kl := g.read(outLogQ, nil), g.read(outLogP, nil), g.read(outKL, nil)
		if start == 0 {
			analytic = kl[0]
		}
		for r := 0; r < rows; r++ {
			diffs[start+r] = q[r] - p[r]
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mean, se := meanSE(diffs)
	if math.Abs(mean-analytic) > 4*se {
		t.Fatalf("Monte Carlo KL %v ± %v, analytic %v", mean, se, analytic)
	}
	if analytic < 1 {
		t.Fatalf("test KL %v too small to be a meaningful check", analytic)
	}
}

func meanSE(v []float64) (mean, se float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1) / float64(len(v)))
}

func TestBernoulliLikelihoodStableForLargeLogits(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 1)
	b := m.params.Get("decoder.logits.bias").Float32s()
	for i := range b {
		b[i] = float32(200 * (1 - 2*float64(i%2))) // ±200: sigmoid saturates in float32
	}
	x := make([]float32, 12)
	for i := range x {
		x[i] = float32(i % 2) // every pixel maximally wrong
	}
	elbo, err := m.ELBO([][]float32{x}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(elbo[0]) || math.IsInf(elbo[0], 0) || elbo[0] > -12*150 {
		t.Fatalf("ELBO %v, want finite and about -12*200", elbo[0])
	}
}

func trainSynthetic(t *testing.T, seed uint64, epochs int, resumeAfter int) (*Model, TrainState) {
	return trainSyntheticWith(t, TrainOptions{WarmupEpochs: 1.5}, seed, epochs, resumeAfter)
}

func trainSyntheticWith(t *testing.T, opts TrainOptions, seed uint64, epochs int, resumeAfter int) (*Model, TrainState) {
	return trainSyntheticFamily(t, Diagonal, opts, seed, epochs, resumeAfter)
}

// trainSyntheticFamily trains a small model with posterior post for epochs
// epochs, or for resumeAfter epochs and then, in a fresh model and trainer
// from copies of the weights and state, to epochs.
func trainSyntheticFamily(t *testing.T, post string, opts TrainOptions, seed uint64, epochs int, resumeAfter int) (*Model, TrainState) {
	t.Helper()
	m := newFamily(t, post, "float32", Bernoulli, seed)
	data := &memBatches{x: synthetic(40, 12, 1), n: 40, dim: 12, bsz: 16, seed: seed}
	opts.Epochs, opts.Seed, opts.LR = epochs, seed, 3e-3
	if resumeAfter > 0 {
		opts.Epochs = resumeAfter
	}
	tr, err := NewTrainer(m, 16, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Fit(context.Background(), data, data, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if resumeAfter == 0 {
		return m, tr.State()
	}
	// Resume in a fresh model and trainer from copies of weights and state.
	st := tr.State()
	m2, err := newModel(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.params.CopyFrom(m.params); err != nil {
		t.Fatal(err)
	}
	st.AdamM, st.AdamV = m.params.ZerosLike(), m.params.ZerosLike()
	st.AdamM.CopyFrom(tr.State().AdamM)
	st.AdamV.CopyFrom(tr.State().AdamV)
	opts.Epochs = epochs
	tr2, err := NewTrainer(m2, 16, opts, &st)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr2.Fit(context.Background(), data, data, Hooks{}); err != nil {
		t.Fatal(err)
	}
	return m2, tr2.State()
}

func sameWeights(a, b *Model) bool {
	for i, p := range a.params.All() {
		q := b.params.All()[i].Float32s()
		for j, v := range p.Float32s() {
			if math.Float32bits(v) != math.Float32bits(q[j]) {
				return false
			}
		}
	}
	return true
}

func TestTrainingIsDeterministicAndResumable(t *testing.T) {
	a, sa := trainSynthetic(t, 11, 3, 0)
	b, _ := trainSynthetic(t, 11, 3, 0)
	if !sameWeights(a, b) {
		t.Fatal("same seed gave different weights")
	}
	c, _ := trainSynthetic(t, 12, 3, 0)
	if sameWeights(a, c) {
		t.Fatal("different seeds gave identical weights")
	}
	r, sr := trainSynthetic(t, 11, 3, 2) // 2 epochs, then resume for 1
	if !sameWeights(a, r) {
		t.Fatal("resumed run differs from the uninterrupted one")
	}
	if sa.Step != sr.Step || sa.Epoch != 3 || sr.Epoch != 3 || sa.BestValELBO != sr.BestValELBO {
		t.Fatalf("states differ: %+v vs %+v", sa, sr)
	}
}

func TestResumeIsExactForEveryObjective(t *testing.T) {
	for _, o := range []TrainOptions{{Estimator: EstimatorScore, K: 2}, {Objective: ObjectiveIWAE, K: 3}} {
		a, sa := trainSyntheticWith(t, o, 4, 3, 0)
		b, sb := trainSyntheticWith(t, o, 4, 3, 2)
		if !sameWeights(a, b) || sa.Baseline != sb.Baseline || sa.BaselineUpdates != sb.BaselineUpdates {
			t.Errorf("%+v: resumed run differs (baseline %v/%d vs %v/%d)", o, sa.Baseline, sa.BaselineUpdates, sb.Baseline, sb.BaselineUpdates)
		}
		if o.Estimator == EstimatorScore && sa.BaselineUpdates != sa.Step {
			t.Errorf("baseline updated %d times in %d steps", sa.BaselineUpdates, sa.Step)
		}
	}
}

func TestTrainingImprovesELBO(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 3)
	data := &memBatches{x: synthetic(200, 12, 1), n: 200, dim: 12, bsz: 32, seed: 3}
	before, err := m.Evaluate(data, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := NewTrainer(m, 32, TrainOptions{Epochs: 30, Seed: 3, LR: 1e-2}, nil)
	var epochs []EpochStats
	err = tr.Fit(context.Background(), data, data, Hooks{AfterEpoch: func(_ *Trainer, e EpochStats) error {
		epochs = append(epochs, e)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	after := *epochs[len(epochs)-1].Val
	// 12 pixels with 10% flips: the best possible is about 12 * H(0.1) = 3.9 nats.
	if !(after.ELBO > before.ELBO+3) || after.ELBO < -7 {
		t.Fatalf("ELBO %v -> %v: training did not learn the two prototypes", before.ELBO, after.ELBO)
	}
	if len(epochs) != 30 || epochs[29].Step != 30*7 || epochs[0].ImagesPerSec <= 0 {
		t.Fatalf("epoch bookkeeping: %d epochs, last step %d", len(epochs), epochs[len(epochs)-1].Step)
	}
}

func TestNonFiniteLossStopsWithoutChangingWeights(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 3)
	tr, _ := NewTrainer(m, 4, TrainOptions{Epochs: 1}, nil)
	before := append([]float32(nil), m.params.All()[0].Float32s()...)
	x := synthetic(4, 12, 1)
	x[5] = float32(math.NaN())
	_, err := tr.Step(x, 4, 1)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Step != 1 || nf.Epoch != 1 || !strings.Contains(err.Error(), "epoch 1, step 1") {
		t.Fatalf("err = %v, want a NonFiniteError at epoch 1 step 1", err)
	}
	for i, v := range m.params.All()[0].Float32s() {
		if v != before[i] {
			t.Fatal("weights changed by a failed step")
		}
	}
	if tr.State().Step != 0 {
		t.Fatal("step counted")
	}
	// The step was not counted and the NaN gradients were zeroed, so a good
	// step now equals a fresh trainer's first step bit for bit.
	if _, err := tr.Step(synthetic(4, 12, 1), 4, 1); err != nil {
		t.Fatal(err)
	}
	m2 := newSmall(t, "float32", Bernoulli, 3)
	tr2, _ := NewTrainer(m2, 4, TrainOptions{Epochs: 1}, nil)
	if _, err := tr2.Step(synthetic(4, 12, 1), 4, 1); err != nil {
		t.Fatal(err)
	}
	if !sameWeights(m, m2) || sameWeights(m, newSmall(t, "float32", Bernoulli, 3)) {
		t.Fatal("the step after a failed one differs from a fresh first step")
	}
}

func TestFreeBitsLoss(t *testing.T) {
	m := newSmall(t, "float64", Bernoulli, 5)
	const lam = 2.0 // far above each dimension's KL at initialization
	tr, _ := NewTrainer(m, 4, TrainOptions{Epochs: 1, FreeBits: lam}, nil)
	s, err := tr.Step(synthetic(4, 12, 1), 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := -s.Recon + lam*3
	if math.Abs(s.Loss-want) > 1e-9 {
		t.Fatalf("loss %v, want -recon + latent*lambda = %v (KL %v)", s.Loss, want, s.KL)
	}
}

func TestPublicAPIShapesAndErrors(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	x := rowsOf(synthetic(7, 12, 1), 12)
	z, err := m.Encode(x)
	if err != nil || len(z) != 7 || len(z[0]) != 3 {
		t.Fatalf("Encode: %v, %d rows", err, len(z))
	}
	imgs, err := m.Decode(z)
	if err != nil || len(imgs) != 7 || len(imgs[0]) != 12 {
		t.Fatalf("Decode: %v", err)
	}
	for _, v := range imgs[0] {
		if v < 0 || v > 1 {
			t.Fatalf("Decode gave %v, want a probability", v)
		}
	}
	s, err := m.Sample(1201, rng) // more than one chunk, padded last chunk
	if err != nil || len(s) != 1201 {
		t.Fatalf("Sample: %v", err)
	}
	if rec, err := m.Reconstruct(x, rng); err != nil || len(rec) != 7 {
		t.Fatalf("Reconstruct: %v", err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"wide row", func() error { _, err := m.Encode([][]float32{make([]float32, 13)}); return err }, "row 0 has 13 values, want 12"},
		{"NaN", func() error {
			r := make([]float32, 12)
			r[4] = float32(math.NaN())
			_, err := m.ELBO([][]float32{r}, rng)
			return err
		}, "x[0][4] = NaN"},
		{"outside [0,1]", func() error {
			r := make([]float32, 12)
			r[2] = 1.5
			_, err := m.Reconstruct([][]float32{r}, rng)
			return err
		}, "want a value in [0,1]"},
		{"empty", func() error { _, err := m.Encode(nil); return err }, "no rows"},
		{"z width", func() error { _, err := m.Decode([][]float32{{1}}); return err }, "z row 0 has 1 values, want 3"},
		{"n", func() error { _, err := m.Sample(0, rng); return err }, "n = 0"},
		{"nil rng", func() error { _, err := m.ELBO(x, nil); return err }, "rng is nil"},
	} {
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Latent = 0 }, "latent 0"},
		{func(c *Config) { c.Hidden = []int{5, -1} }, "hidden width -1"},
		{func(c *Config) { c.Likelihood = "poisson" }, "likelihood \"poisson\""},
		{func(c *Config) { c.Posterior = "vampprior" }, "posterior \"vampprior\""},
		{func(c *Config) { c.Activation = "gelu" }, "unknown activation"},
		{func(c *Config) { c.ImageRows, c.ImageCols = 3, 3 }, "does not match data_dim"},
	} {
		c := smallConfig("float32", Bernoulli)
		tc.mod(&c)
		if _, err := New(c, 1); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
	c, err := ReferenceConfig().Normalize()
	if err != nil || len(c.DecoderHidden) != 1 || c.DecoderHidden[0] != 400 || c.Dtype != "float32" {
		t.Fatalf("reference config normalizes to %+v, %v", c, err)
	}
}

func TestNumParamsMatchesTheNetwork(t *testing.T) {
	for _, c := range []Config{ReferenceConfig(), smallConfig("float32", Gaussian), {DataDim: 5, Hidden: []int{}, Latent: 2}} {
		m, err := New(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.NumParams()
		if err != nil || n != int64(m.Params().Count()) {
			t.Errorf("%+v: NumParams %d (%v), the model has %d", c, n, err, m.Params().Count())
		}
	}
}

package amortized

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// shardGrads runs one gradient evaluation of m on x (rows real rows of a
// batch of 8) with the given shard count and returns the step's statistics
// and every parameter's gradient.
func shardGrads(t *testing.T, m *Model, o TrainOptions, shards int, x []float32, rows int) (StepStats, [][]float64) {
	t.Helper()
	o.Epochs, o.Shards = 1, shards
	tr, err := NewTrainer(m, 8, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if len(tr.shards) != shards {
		t.Fatalf("%d shards built, want %d", len(tr.shards), shards)
	}
	st, err := tr.gradients(x, rows, 0.7, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(tr.batchGrads()))
	for i, g := range tr.batchGrads() {
		out[i] = tensorValues(g, nil)
	}
	return st, out
}

// TestShardsGiveTheSameGradient: cutting the batch into shards changes only
// the order of additions. In float64 the loss, the reported terms and every
// gradient agree with the single graph's to rounding, for every family and
// objective, with padding rows (5 real rows of 8: with 3 shards the last
// one holds only padding and is skipped, with 2 it is partly padding).
func TestShardsGiveTheSameGradient(t *testing.T) {
	x := synthetic(8, 12, 5)
	for _, post := range []string{Diagonal, "fullcov", "planar:2", "iaf:1:7"} {
		for _, o := range []TrainOptions{{}, {K: 3}, {Objective: ObjectiveIWAE, K: 3}} {
			for _, rows := range []int{8, 5} {
				name := fmt.Sprintf("%s/%s/k=%d/rows=%d", post, o.Objective, o.K, rows)
				t.Run(name, func(t *testing.T) {
					m := newFamily(t, post, "float64", Bernoulli, 3)
					s1, g1 := shardGrads(t, m, o, 1, x, rows)
					for _, shards := range []int{2, 3} {
						s, g := shardGrads(t, m, o, shards, x, rows)
						close := func(what string, a, b float64) {
							if math.Abs(a-b) > 1e-12*(1+math.Abs(a)) {
								t.Errorf("%d shards: %s %v, one graph %v", shards, what, b, a)
							}
						}
						close("loss", s1.Loss, s.Loss)
						close("recon", s1.Recon, s.Recon)
						close("KL", s1.KL, s.KL)
						close("bound", s1.Bound, s.Bound)
						for i := range g1 {
							for j := range g1[i] {
								close(fmt.Sprintf("gradient of %s[%d]", m.params.All()[i].Name, j), g1[i][j], g[i][j])
							}
						}
					}
				})
			}
		}
	}
}

// trainShards takes steps of a float32 model with two shards on batches of
// 64 (the default's threshold) and returns the model and trainer.
func trainShards(t *testing.T, steps int) (*Model, *Trainer) {
	t.Helper()
	m := newSmall(t, "float32", Bernoulli, 3)
	tr, err := NewTrainer(m, 64, TrainOptions{Epochs: 1, Seed: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.shards) != 2 {
		t.Fatalf("default for batch 64: %d shards, want 2", len(tr.shards))
	}
	x := synthetic(64, 12, 9)
	for s := range steps {
		if _, err := tr.Step(x, 64-s%3*20, 1); err != nil { // full and partial batches
			t.Fatal(err)
		}
	}
	return m, tr
}

// TestShardsAreDeterministicOnAnyCoreCount: the shards run concurrently or
// one after the other, and the weights come out bit for bit the same; the
// replicas the other shards use stay equal to the model's weights.
func TestShardsAreDeterministicOnAnyCoreCount(t *testing.T) {
	a, tra := trainShards(t, 6)
	defer tra.Close()
	old := runtime.GOMAXPROCS(1)
	b, trb := trainShards(t, 6)
	runtime.GOMAXPROCS(old)
	defer trb.Close()
	if !sameWeights(a, b) {
		t.Fatal("weights differ between GOMAXPROCS 1 and the default")
	}
	for _, r := range tra.reps {
		for i, p := range a.params.All() {
			q := r.All()[i].Float32s()
			for j, v := range p.Float32s() {
				if math.Float32bits(v) != math.Float32bits(q[j]) {
					t.Fatalf("replica of %s[%d] = %v, model %v", p.Name, j, q[j], v)
				}
			}
		}
	}
}

// TestShardedNonFiniteStepChangesNothing plants a NaN in an image of the
// second shard: the step fails, and leaves no trace in the weights, the
// moments or the replicas.
func TestShardedNonFiniteStepChangesNothing(t *testing.T) {
	m, tr := trainShards(t, 2)
	defer tr.Close()
	before := append([]float32(nil), m.params.All()[0].Float32s()...)
	x := synthetic(64, 12, 1)
	x[40*12+3] = float32(math.NaN())
	_, err := tr.Step(x, 64, 1)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Step != 3 {
		t.Fatalf("err = %v, want a NonFiniteError at step 3", err)
	}
	for i, v := range m.params.All()[0].Float32s() {
		if math.Float32bits(v) != math.Float32bits(before[i]) {
			t.Fatal("weights changed by a failed step")
		}
	}
	// No trace of it is left: the next step equals that of a run that
	// never saw the failed one.
	good := synthetic(64, 12, 1)
	if _, err := tr.Step(good, 64, 1); err != nil {
		t.Fatal(err)
	}
	m2, tr2 := trainShards(t, 2)
	defer tr2.Close()
	if _, err := tr2.Step(good, 64, 1); err != nil {
		t.Fatal(err)
	}
	if !sameWeights(m, m2) {
		t.Fatal("the step after a failed one differs from the same step in a run without it")
	}
}

func TestShardOptionErrors(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 3)
	for _, tc := range []struct {
		o     TrainOptions
		batch int
		want  string
	}{
		{TrainOptions{Shards: -1}, 8, "want >= 1"},
		{TrainOptions{Shards: 2, FreeBits: 0.5}, 8, "use one shard"},
		{TrainOptions{Shards: 2, Estimator: EstimatorScore}, 8, "use one shard"},
		{TrainOptions{Shards: 9}, 8, "at most one shard per row"},
	} {
		tc.o.Epochs = 1
		_, err := NewTrainer(m, tc.batch, tc.o, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.want)
		}
	}
	// The default keeps free bits and the score estimator in one graph.
	for _, o := range []TrainOptions{{FreeBits: 0.5}, {Estimator: EstimatorScore}, {}} {
		o.Epochs = 1
		tr, err := NewTrainer(m, 64, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if o.FreeBits == 0 && o.Estimator == "" {
			want = 2
		}
		if len(tr.shards) != want {
			t.Errorf("%+v: %d shards, want %d", o, len(tr.shards), want)
		}
		tr.Close()
	}
}

// TestGradLimitKeepsShardSumsFinite: with two shards a float32 gradient of
// 2e38 (finite, but two of them overflow) fails the bound; with one shard
// only NaN and infinity do.
func TestGradLimitKeepsShardSumsFinite(t *testing.T) {
	g := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2e38, -3}))
	if allBelow(g, gradLimit(tensor.Float32, 2)) {
		t.Error("2e38 passed the two-shard bound")
	}
	if !allBelow(g, gradLimit(tensor.Float32, 1)) {
		t.Error("a finite gradient failed the one-shard bound")
	}
	g.Float32s()[0] = float32(math.Inf(-1))
	if allBelow(g, gradLimit(tensor.Float32, 1)) {
		t.Error("-Inf passed the one-shard bound")
	}
	if big := g.Float32s()[1]; !math.IsInf(float64(big+big), 1) {
		t.Fatal("2e38 + 2e38 is finite in float32: the premise of this test")
	}
}

// TestGradientCheckUsesBounds: after a step, every weight gradient made by
// a dense layer carries a bound below the shards' limit, which spares
// reading it, and is indeed below the limit; a gradient without a bound is
// read (a NaN fails).
func TestGradientCheckUsesBounds(t *testing.T) {
	_, tr := trainShards(t, 1)
	defer tr.Close()
	limit := gradLimit(tensor.Float32, len(tr.shards))
	bounded := 0
	for _, sh := range tr.shards {
		for i, n := range sh.g.gradNodes {
			b, ok := nets.ProductBound(n)
			if !ok {
				continue
			}
			bounded++
			if !(b < limit) || !allBelow(sh.grads[i], limit) {
				t.Fatalf("gradient %d: bound %v, limit %v", i, b, limit)
			}
		}
	}
	if bounded == 0 {
		t.Fatal("no gradient carries a bound")
	}
	nan := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, float32(math.NaN())}))
	if gradBelow(tr.shards[0].g.out[outLoss], nan, limit) {
		t.Fatal("a NaN gradient without a bound passed")
	}
}

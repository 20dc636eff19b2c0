package amortized

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLogLikelihoodReplicatesAreTheSameWeights checks that the replicate
// groups partition the k weights: combining the groups' estimates with
// their sizes gives LogPx, and the ESS lies in [1, k].
func TestLogLikelihoodReplicatesAreTheSameWeights(t *testing.T) {
	m := latent2Model(t)
	x := [][]float32{{1, 0, 1, 1, 0, 0, 1, 0}, {0, 0, 0, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 1, 1, 1, 1}}
	const k, R = 103, 10 // R does not divide k: groups of 10 and 11
	e, err := m.LogLikelihoodEstimate(x, k, R, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	ll, err := m.LogLikelihood(x, k, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if e.LogPx[i] != ll[i] {
			t.Errorf("row %d: LogPx %v, LogLikelihood %v: replicates changed the estimate", i, e.LogPx[i], ll[i])
		}
		terms := make([]float64, R)
		for g := range R {
			size := 0
			for s := range k {
				if s*R/k == g {
					size++
				}
			}
			terms[g] = e.Replicates[i][g] + math.Log(float64(size))
		}
		if got := logSumExp(terms) - math.Log(k); math.Abs(got-e.LogPx[i]) > 1e-9 {
			t.Errorf("row %d: groups combine to %v, LogPx %v", i, got, e.LogPx[i])
		}
		if e.ESS[i] < 1 || e.ESS[i] > k {
			t.Errorf("row %d: ESS %v outside [1, %d]", i, e.ESS[i], k)
		}
	}
	if e1, _ := m.LogLikelihoodEstimate(x, k, 1, rand.New(rand.NewPCG(3, 4))); e1.Replicates != nil || !math.IsNaN(e1.ReplicateSE()) {
		t.Error("R = 1 gave replicates")
	}
	if _, err := m.LogLikelihoodEstimate(x, k, 0, rand.New(rand.NewPCG(3, 4))); err == nil {
		t.Error("R = 0 accepted")
	}
}

// TestReplicateErrorMatchesSeedSpread: with an untrained encoder as the
// proposal for a sharpened decoder, the importance weights are
// heavy-tailed. The standard deviation of the dataset mean over seeds is
// the error a user should see; the replicate error must come closer to it
// than the delta-method error does.
func TestReplicateErrorMatchesSeedSpread(t *testing.T) {
	m := latent2Model(t)
	// Sharpen the decoder further: 12 times the usual initial scale.
	for _, name := range []string{"decoder.logits.weight", "decoder.0.weight"} {
		for i, w := range m.params.Get(name).Float64s() {
			m.params.Get(name).Float64s()[i] = 4 * w
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([][]float32, 40)
	for i := range x {
		x[i] = make([]float32, 8)
		for d := range x[i] {
			if rng.Float64() < 0.5 {
				x[i][d] = 1
			}
		}
	}
	const seeds, k = 24, 200
	var means []float64
	var delta, rep, ess float64
	for s := range seeds {
		e, err := m.LogLikelihoodEstimate(x, k, DefaultReplicates, rand.New(rand.NewPCG(uint64(100+s), 0)))
		if err != nil {
			t.Fatal(err)
		}
		means = append(means, mean(e.LogPx))
		delta += e.DeltaSEOfMean() / seeds
		rep += e.ReplicateSE() / seeds
		ess += e.MeanESS() / seeds
	}
	spread := math.Sqrt(sampleVar(means))
	t.Logf("sd over %d seeds %.4f; mean delta-method SE %.4f (ratio %.2f), replicate SE %.4f (ratio %.2f); mean ESS %.1f of %d",
		seeds, spread, delta, spread/delta, rep, spread/rep, ess, k)
	if math.Abs(math.Log(rep/spread)) >= math.Abs(math.Log(delta/spread)) {
		t.Errorf("replicate SE %.4f is no closer to the seed spread %.4f than the delta method's %.4f", rep, spread, delta)
	}
	// The setting must really be heavy-tailed (else the test shows nothing),
	// and the jackknife within a factor 1.5 of the spread (24 seeds give the
	// spread itself to about 15%).
	if spread/delta < 1.5 || rep/spread < 1/1.5 || rep/spread > 1.5 {
		t.Errorf("spread/delta %.2f, want >= 1.5; replicate/spread %.2f, want within a factor 1.5", spread/delta, rep/spread)
	}
}

func sampleVar(v []float64) float64 {
	var s, ss float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return ss / float64(len(v)-1)
}

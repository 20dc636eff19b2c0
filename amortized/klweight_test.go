package amortized

import (
	"math"
	"testing"
)

// TestKLWeight: with -beta B the loss is B KL - recon (times the warm-up's
// weight), while the reported bound stays recon - KL; its gradient matches
// finite differences of that loss.
func TestKLWeight(t *testing.T) {
	m := newMog(t, randomMog(2, 2, 7), 8)
	x := synthetic(4, 6, 3)
	opts := TrainOptions{Epochs: 1, Shards: 1, KLWeight: 2.5}
	s, _ := stepAt(t, m, x, 4, opts, 0)
	if math.Abs(s.Loss-(2.5*s.KL-s.Recon)) > 1e-9 || math.Abs(s.Bound-(s.Recon-s.KL)) > 1e-9 || s.Beta != 2.5 {
		t.Errorf("loss %v, bound %v, beta %v; want 2.5 KL - recon = %v and recon - KL = %v", s.Loss, s.Bound, s.Beta, 2.5*s.KL-s.Recon, s.Recon-s.KL)
	}
	// warm-up multiplies: 10 batches per epoch, 2 epochs, step 5 -> 0.25
	opts.WarmupEpochs = 2
	tr, err := NewTrainer(m, 4, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.state.Step = 5
	if b := tr.beta(10); math.Abs(b-2.5*0.25) > 1e-12 {
		t.Errorf("beta with warm-up = %v, want %v", b, 2.5*0.25)
	}
	checkGradients(t, m, x, 4, []string{"prior.means", "encoder.logvar.bias"}, TrainOptions{Epochs: 1, Shards: 1, KLWeight: 2.5})
}

// TestCapacity: the capacity objective's loss gamma |KL - C(t)| - recon
// with C rising linearly to C_max, its gradient against finite
// differences on both sides of the target, and the options it refuses.
func TestCapacity(t *testing.T) {
	o := TrainOptions{Epochs: 1, CapacityMax: 25, CapacitySteps: 100, CapacityGamma: 1000}
	for _, c := range []struct {
		step int64
		want float64
	}{{0, 0}, {40, 10}, {100, 25}, {1000, 25}} {
		if got := o.CapacityAt(c.step); got != c.want {
			t.Errorf("C(%d) = %v, want %v", c.step, got, c.want)
		}
	}
	m := newMog(t, randomMog(2, 2, 9), 10)
	x := synthetic(4, 6, 4)
	for _, step := range []int64{0, 100} { // KL above C = 0; KL below C = 25
		s, _ := stepAt(t, m, x, 4, o, step)
		c := o.CapacityAt(step)
		if want := 1000*math.Abs(s.KL-c) - s.Recon; math.Abs(s.Loss-want) > 1e-9*math.Abs(want) || s.Capacity != c {
			t.Errorf("step %d: loss %v, capacity %v; want %v and %v (KL %v)", step, s.Loss, s.Capacity, want, c, s.KL)
		}
	}
	if s, _ := stepAt(t, m, x, 4, o, 100); s.KL > 25 {
		t.Fatalf("KL %v: the test wants it below C = 25 at step 100", s.KL)
	}
	checkGradients(t, m, x, 4, []string{"prior.means", "encoder.mean.bias"}, o)        // KL above C
	checkGradientsAt(t, m, x, 4, []string{"prior.means", "encoder.mean.bias"}, o, 100) // KL below C
	for _, bad := range []TrainOptions{
		{Epochs: 1, CapacityMax: 5, CapacitySteps: 10},                                   // no gamma
		{Epochs: 1, CapacityMax: 5, CapacityGamma: 10},                                   // no steps
		{Epochs: 1, CapacityMax: -1, CapacitySteps: 10, CapacityGamma: 10},               // negative C
		{Epochs: 1, CapacityMax: 5, CapacitySteps: 10, CapacityGamma: 10, KLWeight: 2},   // with beta
		{Epochs: 1, CapacityMax: 5, CapacitySteps: 10, CapacityGamma: 10, FreeBits: 0.1}, // with free bits
		{Epochs: 1, CapacityMax: 5, CapacitySteps: 10, CapacityGamma: 10, Shards: 2},
		{Epochs: 1, CapacityMax: 5, CapacitySteps: 10, CapacityGamma: 10, Objective: ObjectiveIWAE},
		{Epochs: 1, KLWeight: 2, Objective: ObjectiveIWAE},
		{Epochs: 1, KLWeight: -1},
		{Epochs: 1, KLWeight: math.Inf(1)},
	} {
		if _, err := bad.Normalize(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if defaultShards(128, o) != 1 {
		t.Error("the capacity objective must keep the batch in one shard")
	}
}

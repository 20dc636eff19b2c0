package trainrun

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/checkpoints"
)

// TestLearnedPriorAndKLWeight trains with -prior vamp:K:data and -beta: the
// model line names the prior, the Monte Carlo KL and the weighting, with
// the note on bound-based comparisons; the checkpoints keep the prior, the
// options and (best.safetensors too) the weighting; the pseudo-inputs
// started at training images; resuming with another prior or beta is
// refused, and resuming with the same settings works.
func TestLearnedPriorAndKLWeight(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	cfg := baseConfig(ds, out, 1)
	cfg.Model.Prior, cfg.Train.KLWeight = "vamp:3:data", 2
	var log bytes.Buffer
	cfg.Stdout = &log
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"vamp:3:data prior, Monte Carlo KL", "KL weight beta = 2", "note: trained with the KL weighted otherwise than by 1"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, log.String())
		}
	}
	m, st, err := checkpoints.LoadTraining(filepath.Join(out, LatestFile))
	if err != nil {
		t.Fatal(err)
	}
	if m.Config().Prior != "vamp:3:data" || st.Options.KLWeight != 2 {
		t.Errorf("saved prior %q, KL weight %v", m.Config().Prior, st.Options.KLWeight)
	}
	for _, f := range []string{LatestFile, BestFile} {
		d, err := checkpoints.ReadData(filepath.Join(out, f))
		if err != nil || d == nil || d.KLWeighting != "KL weight beta = 2" {
			t.Errorf("%s: data %+v, %v; want the KL weighting", f, d, err)
		}
	}
	// Pixels of the synthetic images are grey levels; training from
	// N(0.05, 0.01) draws for one short epoch would leave values near 0.05.
	maxPixel := float32(0)
	for _, v := range m.Params().Get("prior.pseudo").Float32s() {
		maxPixel = max(maxPixel, v)
	}
	if maxPixel < 0.5 {
		t.Errorf("the pseudo-inputs' largest value is %v: they did not start at training images", maxPixel)
	}
	for _, tc := range []struct {
		flag string
		set  func(*Config)
		want string
	}{
		{"prior", func(c *Config) { c.Model.Prior = "mog:3" }, "-prior mog:3 (the run was started with vamp:3:data)"},
		{"beta", func(c *Config) { c.Train.KLWeight = 1 }, "-beta 1 (the run was started with 2)"},
	} {
		c := baseConfig(ds, out, 2)
		c.Resume = true
		tc.set(&c)
		c.Explicit = map[string]bool{tc.flag: true, "epochs": true}
		if err := Train(context.Background(), c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("resume with another -%s: %v", tc.flag, err)
		}
	}
	c := baseConfig(ds, out, 2)
	c.Resume, c.Model.Prior, c.Train.KLWeight = true, "vamp:3:data", 2
	c.Explicit = map[string]bool{"prior": true, "beta": true, "epochs": true}
	if err := Train(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := checkpoints.LoadTraining(filepath.Join(out, LatestFile)); st.Epoch != 2 || st.Options.KLWeight != 2 {
		t.Errorf("resumed to epoch %d with KL weight %v", st.Epoch, st.Options.KLWeight)
	}
}

// TestCapacityRun trains with the capacity objective: one shard, the
// weighting in the log and the checkpoint's options.
func TestCapacityRun(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	cfg := baseConfig(ds, out, 1)
	cfg.Train.WarmupEpochs = 0
	cfg.Train.CapacityMax, cfg.Train.CapacitySteps, cfg.Train.CapacityGamma = 5, 20, 100
	var log bytes.Buffer
	cfg.Stdout = &log
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "capacity objective 100 |KL - C|, C rising to 5 nats over 20 steps") {
		t.Errorf("the log lacks the capacity objective:\n%s", log.String())
	}
	_, st, err := checkpoints.LoadTraining(filepath.Join(out, LatestFile))
	if err != nil {
		t.Fatal(err)
	}
	if o := st.Options; !o.Capacity() || o.CapacityMax != 5 || o.CapacitySteps != 20 || o.CapacityGamma != 100 {
		t.Errorf("saved options %+v", o)
	}
}

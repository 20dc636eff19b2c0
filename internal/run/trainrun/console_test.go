package trainrun

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
)

// TestConsoleVocabulary: units stated once, the optimized objective on
// every -log-every line, no bare "loss", and the progress bar's running
// mean equal to the epoch summary's train ELBO.
func TestConsoleVocabulary(t *testing.T) {
	dataDir := writeDataset(t)
	for _, tc := range []struct {
		name string
		opts amortized.TrainOptions
		want []string
	}{
		{"elbo with warm-up", amortized.TrainOptions{Epochs: 1, Seed: 7, WarmupEpochs: 2},
			[]string{"objective ELBO,", "KL warm-up", "optimized: recon - beta KL = ", "(beta 0.", "done: 1 epoch,"}},
		{"iwae", amortized.TrainOptions{Epochs: 2, Seed: 7, Objective: "iwae", K: 3},
			[]string{"objective IWAE bound, k = 3", "IWAE bound (k=3)", "train IWAE bound (k=3)", "done: 2 epochs,"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(dataDir, filepath.Join(t.TempDir(), "run"), tc.opts.Epochs)
			cfg.Train = tc.opts
			cfg.LogEvery = 2
			var out bytes.Buffer
			cfg.Stdout = &out
			var running runningMean
			var epoch1 float64
			cfg.afterStep = func(tr *amortized.Trainer, s amortized.StepStats) {
				running.add(s)
				if s.Epoch == 1 {
					epoch1 = running.elbo / running.rows
				}
			}
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			if strings.Count(text, "nats per image") != 1 {
				t.Errorf("units stated %d times, want once:\n%s", strings.Count(text, "nats per image"), text)
			}
			if strings.Contains(text, "loss") {
				t.Errorf("output still says loss:\n%s", text)
			}
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(l, "step ") && !strings.Contains(l, "optimized") {
					t.Errorf("step line without the optimized objective: %q", l)
				}
			}
			// The running mean at the end of epoch 1 is the summary's train ELBO.
			var first Metrics
			if err := json.Unmarshal([]byte(metricsLines(t, cfg.Out)[0]), &first); err != nil {
				t.Fatal(err)
			}
			if math.Abs(first.TrainELBO-epoch1) > 1e-6*math.Abs(epoch1) {
				t.Errorf("running mean %.6f at the end of epoch 1, summary's train ELBO %.6f", epoch1, first.TrainELBO)
			}
		})
	}
}

func TestPositiveELBONoteForGreyLevels(t *testing.T) {
	var b bytes.Buffer
	printUnits(&b, amortized.Config{Likelihood: "gaussian"}, amortized.TrainOptions{})
	if !strings.Contains(b.String(), "can be above 0") {
		t.Errorf("no note on positive ELBOs:\n%s", b.String())
	}
	b.Reset()
	printUnits(&b, amortized.Config{Likelihood: "bernoulli"}, amortized.TrainOptions{})
	if strings.Contains(b.String(), "above 0") {
		t.Errorf("note on positive ELBOs for a Bernoulli model:\n%s", b.String())
	}
}

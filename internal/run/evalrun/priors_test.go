package evalrun

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
)

// TestReportNamesPriorAndKLWeighting: the evaluation of a beta-VAE with a
// mixture prior names the prior and the Monte Carlo KL, and says its
// log p(x) compares with other models' only as a bound-based estimate,
// for best.safetensors (no training state) as for model.safetensors.
func TestReportNamesPriorAndKLWeighting(t *testing.T) {
	dataDir, run := t.TempDir(), t.TempDir()
	if err := synth.WriteDataset(dataDir, 4, 200, 40); err != nil {
		t.Fatal(err)
	}
	cfg := trainrun.Config{
		Dataset: "tiny", DataDir: dataDir, Offline: true, Batch: 32, ValSize: 20, Seed: 1,
		Model:  amortized.Config{Hidden: []int{10}, Latent: 3, Prior: "mog:4"},
		Train:  amortized.TrainOptions{Epochs: 1, Seed: 1, KLWeight: 3},
		Out:    run,
		Stdout: &bytes.Buffer{},
	}
	if err := trainrun.Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{trainrun.BestFile, trainrun.LatestFile} {
		var out bytes.Buffer
		r, err := Run(context.Background(), Config{Checkpoint: filepath.Join(run, f), K: 20, Seed: 1, Stdout: &out, Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Prior != "mog:4" || r.KLMethod != "monte carlo" || r.KLWeighting != "KL weight beta = 3" || !strings.Contains(r.Note, "bound-based") {
			t.Errorf("%s: report %+v", f, r)
		}
		if !strings.Contains(out.String(), "mog:4 prior") || !strings.Contains(out.String(), "note: trained with KL weight beta = 3") {
			t.Errorf("%s: output lacks the prior or the note:\n%s", f, out.String())
		}
	}
}

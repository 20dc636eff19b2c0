package evalrun

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
)

// trainedRun trains a tiny model with the real trainer and returns the run
// directory and the dataset folder.
func trainedRun(t *testing.T) (run, dataDir string) {
	t.Helper()
	dataDir, run = t.TempDir(), t.TempDir()
	if err := synth.WriteDataset(dataDir, 4, 300, 60); err != nil {
		t.Fatal(err)
	}
	cfg := trainrun.Config{
		Dataset: "tiny", DataDir: dataDir, Offline: true, Batch: 32, ValSize: 30, Seed: 1,
		Model:  amortized.Config{Hidden: []int{10}, Latent: 3},
		Train:  amortized.TrainOptions{Epochs: 5, Seed: 1, LR: 5e-3},
		Out:    run,
		Stdout: &bytes.Buffer{},
	}
	if err := trainrun.Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return run, dataDir
}

func TestSeedsAgreeWithinReportedError(t *testing.T) {
	run, _ := trainedRun(t)
	var reps [2]*Report
	for i, seed := range []uint64{1, 2} {
		out := filepath.Join(t.TempDir(), "eval.json")
		r, err := Run(context.Background(), Config{Checkpoint: filepath.Join(run, trainrun.BestFile), K: 200, Seed: seed, JSON: out, Stdout: &bytes.Buffer{}, Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		reps[i] = r
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, *r) {
			t.Fatalf("JSON %s does not match the report %+v (%v)", b, *r, err)
		}
		// The dataset came from the description best.safetensors carries.
		if r.Dataset != "tiny" || r.N != 60 || r.Split != "test" || r.K != 200 || !strings.Contains(r.Binarization, "static") || r.KLMethod != "closed form" {
			t.Fatalf("report says %+v", r)
		}
		if !(r.LogPx >= r.ELBO-0.05) || r.LogPxStderr <= 0 || r.LogPxStderrDelta <= 0 || r.ActiveUnits < 1 || r.NLL != -r.LogPx ||
			r.Replicates != 10 || r.ESSMean < 1 || r.ESSMean > 200 {
			t.Fatalf("implausible report %+v", r)
		}
	}
	d := math.Abs(reps[0].LogPx - reps[1].LogPx)
	if d > 4*math.Hypot(reps[0].LogPxStderr, reps[1].LogPxStderr) {
		t.Fatalf("seeds give log p(x) %.4f and %.4f, reported errors %.4f and %.4f",
			reps[0].LogPx, reps[1].LogPx, reps[0].LogPxStderr, reps[1].LogPxStderr)
	}
}

func TestBadSettings(t *testing.T) {
	run, dataDir := trainedRun(t)
	ckpt := filepath.Join(run, trainrun.LatestFile)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Checkpoint: ckpt, K: 0}, "-k 0"},
		{Config{Checkpoint: ckpt, K: 5, Split: "validation"}, "-split"},
		{Config{Checkpoint: ckpt, K: 5, N: 1000}, "only 60 images"},
		{Config{Checkpoint: ckpt, K: 5, Replicates: 6}, "-replicates 6"},
		{Config{Checkpoint: ckpt, K: 50, Replicates: 1}, "-replicates 1"},
		{Config{Checkpoint: ckpt, K: 5, JSON: "/no/such/dir/x.json"}, "-json"},
		{Config{Checkpoint: filepath.Join(run, "missing.safetensors"), K: 5}, "missing.safetensors"},
		{Config{Checkpoint: ckpt, K: 5, Dataset: "nosuch", DataDir: filepath.Join(dataDir, "empty")}, "nosuch"},
	} {
		tc.cfg.Stdout, tc.cfg.Offline = &bytes.Buffer{}, true
		_, err := Run(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// A checkpoint whose width does not match the data.
	m, _ := amortized.New(amortized.Config{DataDim: 10, Hidden: []int{4}, Latent: 2}, 1)
	other := filepath.Join(t.TempDir(), "other.safetensors")
	checkpoints.Save(other, m, nil)
	_, err := Run(context.Background(), Config{Checkpoint: other, K: 5, Dataset: "tiny", DataDir: dataDir, Stdout: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "wants 10") {
		t.Errorf("mismatched width: %v", err)
	}
}

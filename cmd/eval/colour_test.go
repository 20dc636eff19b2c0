package main

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
)

// TestEvalPixelLikelihoodBitsPerDim evaluates a conv model with a logistic
// mixture trained on an RGB PNG folder (found again from the checkpoint) and
// checks the bits per dimension in the JSON against the nats.
func TestEvalPixelLikelihoodBitsPerDim(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	if err := synth.WritePNGFolder(data, 8, 20, true); err != nil {
		t.Fatal(err)
	}
	cfg := trainrun.Config{Dataset: "shapes", DataDir: data, Offline: true, Batch: 8, ValSize: 0, Seed: 1, Out: dir,
		Model: amortized.Config{Latent: 2, Likelihood: "logistic-mix:2", Trunk: "conv:4/k3/dense:8"},
		Train: amortized.TrainOptions{Epochs: 1}, Stdout: io.Discard}
	if err := trainrun.Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(t.TempDir(), "eval.json")
	if code := run([]string{"-ckpt", filepath.Join(dir, trainrun.BestFile), "-k", "5", "-json", js, "-offline"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ELBO    float64  `json:"elbo"`
		NLL     float64  `json:"nll"`
		ELBOBPD *float64 `json:"elbo_bpd"`
		NLLBPD  *float64 `json:"nll_bpd"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.ELBOBPD == nil || r.NLLBPD == nil {
		t.Fatalf("%s: %v, want elbo_bpd and nll_bpd", b, err)
	}
	D := 3.0 * 8 * 8
	if math.Abs(*r.ELBOBPD+r.ELBO/(D*math.Ln2)) > 1e-9 || math.Abs(*r.NLLBPD-r.NLL/(D*math.Ln2)) > 1e-9 {
		t.Errorf("bits/dim %v, %v for ELBO %v and NLL %v over %v values", *r.ELBOBPD, *r.NLLBPD, r.ELBO, r.NLL, D)
	}
	if !(*r.NLLBPD <= *r.ELBOBPD+0.05 && *r.ELBOBPD > 0 && *r.ELBOBPD < 9) {
		t.Errorf("bits/dim: ELBO %v, NLL %v", *r.ELBOBPD, *r.NLLBPD)
	}
}

package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
)

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 40, 20); err != nil {
		t.Fatal(err)
	}
	m, err := amortized.New(amortized.Config{DataDim: 16, Hidden: []int{5}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "m.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	notCkpt := filepath.Join(dir, "notes.txt")
	os.WriteFile(notCkpt, []byte("not a checkpoint"), 0o644)
	jsonOut := filepath.Join(dir, "out.json")
	common := []string{"-dataset", "tiny", "-data-dir", dir, "-offline"}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{append([]string{"-ckpt", ckpt, "-k", "10", "-json", jsonOut}, common...), 0},
		{[]string{"-k", "10"}, 2},                                        // no -ckpt
		{append([]string{"-ckpt", ckpt, "-k", "0"}, common...), 2},       // k out of range
		{append([]string{"-ckpt", ckpt, "-split", "dev"}, common...), 2}, // unknown split
		{append([]string{"-ckpt", ckpt, "-n", "500"}, common...), 2},     // more images than the split
		{append([]string{"-ckpt", notCkpt, "-k", "10"}, common...), 1},   // not a checkpoint
		{[]string{"-ckpt", ckpt, "stray"}, 2},                            // stray argument
		{[]string{"-nosuchflag"}, 2},
	} {
		if got := run(tc.args); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.args, got, tc.want)
		}
	}
	if _, err := os.Stat(jsonOut); err != nil {
		t.Errorf("the successful run wrote no JSON: %v", err)
	}
}

// TestEveryPosteriorFamily evaluates a checkpoint of each posterior family:
// exit 0 and a report with finite numbers and the family named.
func TestEveryPosteriorFamily(t *testing.T) {
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 40, 20); err != nil {
		t.Fatal(err)
	}
	for _, post := range []string{"fullcov", "planar:2", "radial:2", "iaf:2:6"} {
		m, err := amortized.New(amortized.Config{DataDim: 16, Hidden: []int{5}, Latent: 3, Posterior: post}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ckpt := filepath.Join(dir, "m.safetensors")
		if err := checkpoints.Save(ckpt, m, nil); err != nil {
			t.Fatal(err)
		}
		jsonOut := filepath.Join(dir, "out.json")
		if code := run([]string{"-ckpt", ckpt, "-k", "20", "-json", jsonOut, "-dataset", "tiny", "-data-dir", dir, "-offline"}); code != 0 {
			t.Fatalf("%s: exit %d", post, code)
		}
		b, err := os.ReadFile(jsonOut)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Posterior string  `json:"posterior"`
			ELBO      float64 `json:"elbo"`
			LogPx     float64 `json:"log_px"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Posterior != post || !(r.LogPx < 0) || math.IsNaN(r.ELBO) {
			t.Errorf("%s: report %s, %v", post, b, err)
		}
	}
}

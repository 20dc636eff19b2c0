package main

import (
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

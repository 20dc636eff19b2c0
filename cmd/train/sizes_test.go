//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
)

// buildTool builds ../name into dir.
func buildTool(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, "../"+name).CombinedOutput(); err != nil {
		t.Fatalf("go build ../%s: %v\n%s", name, err, out)
	}
	return bin
}

// TestSizeFlagsAreBounded runs each command with sizes that would allocate
// without bound or run without end, and requires at once (no allocation,
// no work) exit status 2 and an error naming the flag and its limit.
func TestSizeFlagsAreBounded(t *testing.T) {
	train := trainBinary(t)
	tools := t.TempDir()
	sample, eval := buildTool(t, tools, "sample"), buildTool(t, tools, "eval")
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 4, 100, 20); err != nil {
		t.Fatal(err)
	}
	m, err := amortized.New(amortized.Config{DataDim: 16, ImageRows: 4, ImageCols: 4, Hidden: []int{5}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "m.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "x.png")
	data := []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline"}
	huge := "9223372036854775807"
	for _, c := range []struct {
		bin  string
		args []string
		want string
	}{
		{train, []string{"-hidden", "100000000"}, "-hidden 100000000: 100000000 units in a layer, want at most 65536"},
		{train, []string{"-decoder-hidden", "400,100000000"}, "-decoder-hidden 400,100000000: 100000000 units in a layer, want at most 65536"},
		{train, []string{"-latent", "100000000"}, "-latent 100000000: want at most 65536"},
		{train, []string{"-batch", huge}, "-batch " + huge + ": want at most 65536"},
		{train, []string{"-k", "1000000", "-objective", "iwae"}, "-k 1000000: want at most 4096"},
		{train, []string{"-k", "4096", "-batch", "9000", "-objective", "iwae"}, "-k 4096 x -batch 9000: one training step would hold about"},
		{train, []string{"-hidden", "60000,60000"}, "parameters, over the limit of 268435456"},
		{train, []string{"-latent", "30000", "-posterior", "fullcov"}, "parameters, over the limit of 268435456"},
		{sample, []string{"generate", "-ckpt", ckpt, "-out", png, "-n", huge}, "-n " + huge + ": want at most 10000"},
		{sample, []string{"reconstruct", "-ckpt", ckpt, "-out", png, "-n", "20000"}, "-n 20000: want at most 10000"},
		{sample, append([]string{"reconstruct", "-ckpt", ckpt, "-out", png, "-first", huge}, data...), "-first " + huge + " -n 16: out of range; the test set of tiny has 20 images"},
		{sample, append([]string{"impute", "-ckpt", ckpt, "-out", png, "-first", huge}, data...), "-first " + huge + " -eval 1000: out of range"},
		{sample, []string{"impute", "-ckpt", ckpt, "-out", png, "-chains", "1000000"}, "-chains 1000000: want at most 1000"},
		{sample, []string{"impute", "-ckpt", ckpt, "-out", png, "-iters", huge}, "-iters " + huge + ": want at most 10000"},
		{sample, []string{"impute", "-ckpt", ckpt, "-out", png, "-chains", "1000", "-eval", "5000"}, "-eval 5000 x -chains 1000"},
		{sample, []string{"manifold", "-ckpt", ckpt, "-out", png, "-size", "1000000"}, "-size 1000000: want 2 to 100"},
		{sample, []string{"interpolate", "-ckpt", ckpt, "-out", png, "-steps", huge}, "-steps " + huge + ": want 2 (the two ends) to 1000"},
		{sample, append([]string{"interpolate", "-ckpt", ckpt, "-out", png, "-from", huge}, data...), "-from " + huge + ": out of range"},
		{eval, []string{"-ckpt", ckpt, "-k", "100000000"}, "-k 100000000: want 1 to 1048576"},
		{eval, append([]string{"-ckpt", ckpt, "-n", huge}, data...), "-n " + huge + ": the test split has only 20 images"},
	} {
		name := filepath.Base(c.bin) + " " + strings.Join(c.args, " ")
		args := c.args
		if c.bin == train {
			args = append(append([]string{"-out", filepath.Join(t.TempDir(), "run")}, data...), args...)
		}
		start := time.Now()
		code, _, stderr := runBinary(t, c.bin, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, want 2 and %q; stderr:\n%s", name, code, c.want, stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %v to refuse", name, d)
		}
	}
}

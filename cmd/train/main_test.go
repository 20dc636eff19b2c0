package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
)

func TestBadFlagsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-latent", "0"}, "-latent 0"},
		{[]string{"-hidden", "400,-3"}, "-hidden \"400,-3\""},
		{[]string{"-hidden", "abc"}, "positive integers"},
		{[]string{"-batch", "-1"}, "-batch -1"},
		{[]string{"-epochs", "0"}, "-epochs 0"},
		{[]string{"-lr", "0"}, "-lr 0"},
		{[]string{"-likelihood", "poisson"}, "likelihood \"poisson\""},
		{[]string{"-activation", "gelu"}, "unknown activation"},
		{[]string{"-posterior", "planar:4"}, "posterior \"planar:4\""},
		{[]string{"-free-bits", "-1"}, "-free-bits -1"},
		{[]string{"-val", "-5"}, "-val -5"},
		{[]string{"-nosuchflag"}, "not defined"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		_, err := parseFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	// Through run(): a usage error exits 2, and so does one found later
	// (a batch larger than the data), without touching the output directory
	// beyond creating it.
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 50, 10); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-latent", "0"}); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	out := filepath.Join(t.TempDir(), "run")
	if code := run([]string{"-dataset", "tiny", "-data-dir", dir, "-batch", "1000", "-out", out, "-offline"}); code != 2 {
		t.Errorf("batch larger than the data: exit %d, want 2", code)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err == nil {
		t.Error("a checkpoint was written by a run that never started")
	}
}

// TestSIGTERMSavesResumableCheckpoint runs the real binary, stops it with
// SIGTERM during training, and expects exit status 0, a message, and a
// checkpoint from which -resume finishes the run.
func TestSIGTERMSavesResumableCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "train")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir, out := t.TempDir(), t.TempDir()
	if err := synth.WriteDataset(dataDir, 8, 2000, 100); err != nil {
		t.Fatal(err)
	}
	args := []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline", "-out", out, "-batch", "4", "-epochs", "50", "-log-every", "20", "-force"}
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var lines []string
	signalled := false
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if !signalled && strings.HasPrefix(sc.Text(), "step 60 ") {
			cmd.Process.Signal(syscall.SIGTERM)
			signalled = true
		}
	}
	err := cmd.Wait()
	if !signalled {
		t.Fatalf("never saw step 60; output:\n%s", strings.Join(lines, "\n"))
	}
	if err != nil {
		t.Fatalf("exit: %v, want status 0; output:\n%s", err, strings.Join(lines, "\n"))
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "interrupted at epoch 1") || !strings.Contains(last, "-resume") {
		t.Fatalf("last line %q, want the interruption message", last)
	}
	_, _, st, err := checkpoints.Inspect(filepath.Join(out, "model.safetensors"))
	if err != nil || st.Step < 60 || st.Epoch != 0 {
		t.Fatalf("saved state %+v, %v", st, err)
	}
	resume := exec.Command(bin, "-resume", "-out", out, "-epochs", "1")
	if b, err := resume.CombinedOutput(); err != nil || !strings.Contains(string(b), "done: 1 epochs") {
		t.Fatalf("resume: %v\n%s", err, b)
	}
}

//go:build linux

package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/internal/synth"
)

// TestSecondTrainerIsRefused runs two real trainers on one -out: the second
// must fail at once with a clear error and change nothing, and the lock
// must go with the first process, even when it dies by kill -9.
func TestSecondTrainerIsRefused(t *testing.T) {
	bin := trainBinary(t)
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 8, 2000, 100); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	common := []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline", "-out", out, "-hidden", "8", "-latent", "2", "-batch", "4"}
	first := exec.Command(bin, append(common, "-epochs", "50", "-log-every", "10", "-save-every", "10")...)
	stdout, _ := first.StdoutPipe()
	var stderr bytes.Buffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "step 30 ") {
	}
	go func() { // keep the pipe flowing
		for sc.Scan() {
		}
	}()
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Fatalf("the first trainer has not saved by step 30: %v\n%s", err, &stderr)
	}
	for _, extra := range [][]string{{"-resume"}, {"-force"}} {
		code, _, errText := runBinary(t, bin, append(common, extra...)...)
		if code != 1 || !strings.Contains(errText, "-out "+out+" is in use: another process is training or resuming there") {
			t.Errorf("second trainer %v: exit %d, stderr:\n%s", extra, code, errText)
		}
	}
	// The first goes on undisturbed; killed, it takes its lock along.
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	code, stdoutText, errText := runBinary(t, bin, "-resume", "-out", out, "-epochs", "1")
	if code != 0 || !strings.Contains(stdoutText, "done: 1 epoch,") {
		t.Fatalf("resume after kill -9 of the lock holder: exit %d\n%s\n%s", code, stdoutText, errText)
	}
}

//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
	"github.com/govae/govae/internal/testutil"
)

// TestSignalStopsLogLikelihood runs the real binary with a k that would
// take minutes, signals it during log p(x), and requires it to stop within
// two seconds, exit 1 saying so, and write no report.
func TestSignalStopsLogLikelihood(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := testutil.BuildMain(t, dir, "eval")
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
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		js := filepath.Join(t.TempDir(), "eval.json")
		cmd := exec.Command(bin, "-ckpt", ckpt, "-dataset", "tiny", "-data-dir", dir, "-offline", "-k", "1000000", "-json", js)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The ELBO and the active units of 20 tiny images take milliseconds;
		// log p(x) with a million samples each takes minutes.
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(stdout.String(), "evaluating ") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		werr := testutil.SignalStops(t, cmd, sig, 2*time.Second)
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "evaluation interrupted; no report written") {
			t.Errorf("%v: %v, stderr:\n%s", sig, werr, &stderr)
		}
		if _, err := os.Stat(js); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: an interrupted evaluation wrote %s", sig, js)
		}
	}
}

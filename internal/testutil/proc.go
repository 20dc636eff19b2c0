package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BuildMain builds the main package in the test's working directory into
// dir/name and returns the binary's path: signal and crash tests need a
// real process, not a function call.
func BuildMain(t testing.TB, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// SignalStops sends sig to the started cmd and waits for it: it fails t
// if the process is still running 10 s later (and kills it), and reports
// an error if it took longer than within to exit. It returns Wait's error.
func SignalStops(t testing.TB, cmd *exec.Cmd, sig os.Signal, within time.Duration) error {
	t.Helper()
	sent := time.Now()
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if d := time.Since(sent); d > within {
			t.Errorf("%v: stopped %v after the signal, want within %v", sig, d, within)
		}
		return err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v: still running 10 s after the signal", sig)
		return nil
	}
}

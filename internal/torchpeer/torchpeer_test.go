package torchpeer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	var r Result
	for _, line := range []string{
		`{"epoch": 1, "train_seconds": 6.5, "images_per_s": 1538.5, "train_elbo": -190.1, "test_elbo": -160.25, "threads": 1}`,
		`a warning`,
		`{"threads": 1}`,
		`{"test_log_px": -108.49, "k": 1000, "n": 200, "eval_seconds": 75.2}`,
	} {
		r.Add([]byte(line))
	}
	if len(r.Epochs) != 1 || r.Epochs[0] != (Epoch{Epoch: 1, TrainSeconds: 6.5, ImagesPerSec: 1538.5, TrainELBO: -190.1, TestELBO: -160.25}) {
		t.Errorf("epochs %+v", r.Epochs)
	}
	if r.LogPx == nil || *r.LogPx != (LogPx{LogPx: -108.49, K: 1000, N: 200, EvalSeconds: 75.2}) {
		t.Errorf("log p(x) %+v", r.LogPx)
	}
}

// TestAddWithoutN: the MLP peer prints no "n"; it scored all 10,000 test
// images, and a rate must not come out as 0 images over its seconds.
func TestAddWithoutN(t *testing.T) {
	var r Result
	r.Add([]byte(`{"test_log_px": -90.1, "k": 1000, "eval_seconds": 96.2}`))
	if r.LogPx == nil || r.LogPx.N != 10000 {
		t.Fatalf("log p(x) %+v, want N = 10000", r.LogPx)
	}
}

// TestRunCancel: cancelling the context (Ctrl-C in the experiments) kills
// the peer at once, mid-run.
func TestRunCancel(t *testing.T) {
	script := filepath.Join(t.TempDir(), "peer.sh")
	if err := os.WriteFile(script, []byte("echo '{\"epoch\": 1, \"test_elbo\": -200}'\nexec sleep 60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, "sh", script, nil, func(r *Result) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("returned %v after the cancel, want at once", d)
	}
}

func TestRunFailure(t *testing.T) {
	script := filepath.Join(t.TempDir(), "peer.sh")
	if err := os.WriteFile(script, []byte("echo 'No module named torch' >&2\nexit 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), "sh", script, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "No module named torch") {
		t.Errorf("err = %v, want the peer's stderr in it", err)
	}
}

// TestUnpack checks numpy's packbits order: the first pixel in the high bit.
func TestUnpack(t *testing.T) {
	dst := make([]float32, 16)
	Unpack([]byte{0x81, 0x40}, dst)
	want := []float32{1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0}
	for i := range want {
		if dst[i] != want[i] {
			t.Fatalf("unpacked %v, want %v", dst, want)
		}
	}
}

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/testutil"
)

// Pictures never replace a checkpoint or a file of another kind, and the
// path is checked before any work.
func TestOutputNeverReplacesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	ckptPNG := filepath.Join(dir, "model.png")
	b, err := os.ReadFile(fx.ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ckptPNG, b, 0o644); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.png")
	if err := os.WriteFile(notes, []byte("my notes"), 0o644); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop.png")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ out, want string }{
		{ckptPNG, "-out " + ckptPNG + " is a checkpoint"},
		{notes, "-out " + notes + " exists and is not a PNG picture"},
		{loop, "-out " + loop + " is a loop of symbolic links"},
	} {
		for _, args := range [][]string{
			{"generate", "-ckpt", fx.ckpt, "-out", c.out},
			withData("impute", "-ckpt", fx.ckpt, "-out", c.out),
			{"curves", "-metrics", "nonexistent.jsonl", "-out", c.out},
		} {
			code, _, stderr := sample(args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("sample %s: exit %d, %q; want exit 2 and %q", strings.Join(args, " "), code, stderr, c.want)
			}
		}
	}
	if now, _ := os.ReadFile(ckptPNG); !bytes.Equal(now, b) {
		t.Error("the checkpoint was overwritten")
	}
	// A picture of ours is replaced.
	good := filepath.Join(dir, "g.png")
	mustSample(t, "generate", "-ckpt", fx.ckpt, "-out", good)
	mustSample(t, "generate", "-ckpt", fx.ckpt, "-out", good, "-seed", "2")
}

// A mask that hides no pixel (halves of a one-row image) is a usage error,
// not a NaN error printed with exit 0.
func TestImputeMaskHidingNothing(t *testing.T) {
	m, err := amortized.New(amortized.Config{DataDim: size * size, ImageRows: 1, ImageCols: size * size, Hidden: []int{5}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "row.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "i.png")
	code, stdout, stderr := sample(withData("impute", "-ckpt", ckpt, "-out", out, "-mask", "top", "-eval", "20")...)
	if code != 2 || !strings.Contains(stderr, "-mask top half hides no pixel of the model's 1x64 images") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Error("a picture was written")
	}
	// The other halves of the same image do hide pixels.
	mustSample(t, withData("impute", "-ckpt", ckpt, "-out", out, "-mask", "right", "-eval", "20", "-iters", "2")...)
}

// TestSignalStopsImputation runs the real binary on an imputation that
// would take minutes, signals it, and requires it to stop within two
// seconds, exit 1 saying so, and write no picture.
func TestSignalStopsImputation(t *testing.T) {
	if testing.Short() || runtime.GOOS != "linux" {
		t.Skip("builds and runs the binary (linux)")
	}
	bin := testutil.BuildMain(t, t.TempDir(), "sample")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		out := filepath.Join(t.TempDir(), "i.png")
		cmd := exec.Command(bin, withData("impute", "-ckpt", fx.ckpt, "-out", out, "-iters", "10000", "-chains", "1000", "-eval", "40")...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // loading takes milliseconds; 4e8 sweeps take minutes
		werr := testutil.SignalStops(t, cmd, sig, 2*time.Second)
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted; nothing written") {
			t.Errorf("%v: %v, stderr:\n%s", sig, werr, &stderr)
		}
		entries, _ := os.ReadDir(filepath.Dir(out))
		if len(entries) > 0 {
			t.Errorf("%v: an interrupted imputation left %v", sig, entries)
		}
	}
}

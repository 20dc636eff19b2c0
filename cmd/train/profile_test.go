//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/internal/synth"
)

// -cpuprofile never replaces a checkpoint or another file, is checked
// before the run, and on success holds a complete profile and no temporary.
func TestCPUProfileOutput(t *testing.T) {
	bin := trainBinary(t)
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 4, 100, 20); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model.safetensors")
	ckptBytes := append(binary.LittleEndian.AppendUint64(nil, 8), `{}      `...)
	writeFile(t, ckpt, ckptBytes)
	notes := filepath.Join(dir, "notes.txt")
	writeFile(t, notes, []byte("notes"))
	common := []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline", "-hidden", "4", "-latent", "2", "-batch", "16", "-epochs", "1"}
	for _, c := range []struct{ path, want string }{
		{ckpt, "-cpuprofile " + ckpt + " is a checkpoint"},
		{notes, "-cpuprofile " + notes + " exists and is not a CPU profile"},
		{dir, "-cpuprofile " + dir + " is a directory"},
	} {
		out := filepath.Join(t.TempDir(), "run")
		code, _, stderr := runBinary(t, bin, append(common, "-out", out, "-cpuprofile", c.path)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("-cpuprofile %s: exit %d, stderr %q, want 2 and %q", c.path, code, stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("-cpuprofile %s: the run started", c.path)
		}
	}
	if !bytes.Equal(readFile(t, ckpt), ckptBytes) || string(readFile(t, notes)) != "notes" {
		t.Error("a refused -cpuprofile changed its file")
	}
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	for range 2 { // the second run replaces the first's profile
		out := filepath.Join(t.TempDir(), "run")
		if code, _, stderr := runBinary(t, bin, append(common, "-out", out, "-cpuprofile", prof)...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if b := readFile(t, prof); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Fatalf("the profile is not gzip: % x", b[:min(len(b), 8)])
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(prof)); len(entries) != 1 {
		t.Errorf("beside the profile: %v", entries)
	}
}

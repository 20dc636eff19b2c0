package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
	"github.com/govae/govae/internal/testutil"
)

// runBinary runs the command and returns its exit code and output. A Go
// panic or runtime error trace on stderr fails the test whatever the code.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	default:
		t.Fatalf("%v: %v\n%s", args, err, &e)
	}
	for _, trace := range []string{"panic:", "goroutine ", "runtime error", ".go:"} {
		if strings.Contains(e.String(), trace) {
			t.Errorf("%v: stderr shows a Go trace (%q):\n%s", args, trace, &e)
		}
	}
	return code, o.String(), e.String()
}

// dirState maps each file in dir to its hash: what a failed run must leave
// exactly as it was.
func dirState(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	state := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return state
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			state[e.Name()+"/"] = [32]byte{} // a directory
			continue
		}
		state[e.Name()] = sha256.Sum256(b)
	}
	return state
}

func sameState(a, b map[string][32]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func names(state map[string][32]byte) []string {
	var n []string
	for k := range state {
		n = append(n, k)
	}
	return n
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadDataThroughBinary gives the command damaged datasets. Each must
// fail with exit status 1 and an error naming the file and the problem, and
// leave the run directory without any file.
func TestBadDataThroughBinary(t *testing.T) {
	bin := trainBinary(t)
	good := t.TempDir()
	if err := synth.WriteDataset(good, 8, 100, 20); err != nil {
		t.Fatal(err)
	}
	const images, labels = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   []string
	}{
		{"foreign file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, images), []byte("<html>not found</html>\n"))
		}, []string{images + ": magic 0x3c68746d (not an IDX file), want 0x00000803"}},
		{"labels in place of images", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, images), readFile(t, filepath.Join(dir, labels)))
		}, []string{images + ": magic 0x00000801 (an IDX label file), want 0x00000803"}},
		{"truncated images", func(t *testing.T, dir string) {
			b := readFile(t, filepath.Join(dir, images))
			writeFile(t, filepath.Join(dir, images), b[:len(b)/2])
		}, []string{images + ": truncated: got 3192 of 6400 data bytes for 100 images of 8x8"}},
		{"truncated header", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, images), readFile(t, filepath.Join(dir, images))[:10])
		}, []string{images + ": header truncated: got 10 of 16 bytes"}},
		{"corrupt gzip", func(t *testing.T, dir string) {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(readFile(t, filepath.Join(dir, images)))
			zw.Close()
			b := buf.Bytes()
			b[len(b)-8] ^= 0x40 // the CRC-32
			os.Remove(filepath.Join(dir, images))
			writeFile(t, filepath.Join(dir, images+".gz"), b)
		}, []string{images + ".gz: corrupt gzip data"}},
		{"header claims more images", func(t *testing.T, dir string) {
			b := readFile(t, filepath.Join(dir, images))
			binary.BigEndian.PutUint32(b[4:], 1<<30)
			writeFile(t, filepath.Join(dir, images), b)
		}, []string{images + ": header claims 1073741824 images of 8x8, 68719476736 bytes, over the limit"}},
		{"one label short", func(t *testing.T, dir string) {
			b := readFile(t, filepath.Join(dir, labels))
			binary.BigEndian.PutUint32(b[4:], 99)
			writeFile(t, filepath.Join(dir, labels), b[:len(b)-1])
		}, []string{labels + ": 99 labels, want 100 (one per image in"}},
		{"test images of another size", func(t *testing.T, dir string) {
			small := t.TempDir()
			if err := synth.WriteDataset(small, 4, 2, 20); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
				writeFile(t, filepath.Join(dir, f), readFile(t, filepath.Join(small, f)))
			}
		}, []string{"t10k-images-idx3-ubyte: images are 1x4x4, want 1x8x8"}},
		{"missing file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, labels))
		}, []string{"not found", "missing " + labels}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testutil.CopyDir(t, good)
			tc.damage(t, dir)
			out := filepath.Join(t.TempDir(), "run")
			code, _, stderr := runBinary(t, bin, "-dataset", "tiny", "-data-dir", dir, "-offline", "-out", out, "-batch", "10", "-epochs", "1")
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if files := dirState(t, out); len(files) > 0 {
				t.Errorf("the failed run left %v in -out", names(files))
			}
		})
	}
}

// TestBadCheckpointThroughBinary resumes from damaged or foreign
// checkpoints. Each must fail with exit status 1 and an error naming the
// file and the problem, and leave the run directory exactly as it was.
func TestBadCheckpointThroughBinary(t *testing.T) {
	bin := trainBinary(t)
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 8, 100, 20); err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	if code, _, stderr := runBinary(t, bin, "-dataset", "tiny", "-data-dir", dataDir, "-offline", "-out", run,
		"-hidden", "8", "-latent", "2", "-batch", "10", "-epochs", "1"); code != 0 {
		t.Fatalf("training the run to damage: exit %d\n%s", code, stderr)
	}
	const latest = "model.safetensors"
	good := readFile(t, filepath.Join(run, latest))
	newer := func() []byte {
		f, err := checkpoints.ReadFile(filepath.Join(run, latest))
		if err != nil {
			t.Fatal(err)
		}
		f.Metadata["format_version"] = "3"
		var buf bytes.Buffer
		if err := checkpoints.Encode(&buf, f); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	// A valid safetensors file from another program: no checksum, no
	// govae metadata.
	foreign := func() []byte {
		hdr := []byte(`{"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`)
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		return append(append(b, hdr...), make([]byte, 8)...)
	}
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x10
		return b
	}
	for _, tc := range []struct {
		name    string
		content []byte
		want    []string
	}{
		{"truncated", good[:len(good)*2/3], []string{latest, "truncated"}},
		{"empty", nil, []string{latest, "file is 0 bytes", "truncated"}},
		{"bit flip in the weights", flip(len(good) - 100), []string{latest, "checksum"}},
		{"bit flip in the header", flip(40), []string{latest, "header"}},
		{"newer format version", newer(), []string{latest, "format version 3 is newer than this program reads (2)"}},
		{"foreign safetensors", foreign(), []string{latest, "not a govae checkpoint"}},
		{"not a checkpoint", []byte("these are my notes, not a checkpoint\n"), []string{latest, "header length"}},
		{"weights only", readFile(t, filepath.Join(run, "best.safetensors")), []string{latest, "holds weights only, no training state"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testutil.CopyDir(t, run)
			writeFile(t, filepath.Join(dir, latest), tc.content)
			before := dirState(t, dir)
			code, _, stderr := runBinary(t, bin, "-resume", "-out", dir, "-epochs", "2")
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if after := dirState(t, dir); !sameState(before, after) {
				t.Errorf("the failed run changed -out: %v, then %v", names(before), names(after))
			}
		})
	}
}

// TestBadFlagsThroughBinary gives the command flags out of range or
// malformed. Each must exit with status 2 and an error naming the flag,
// before writing anything.
func TestBadFlagsThroughBinary(t *testing.T) {
	bin := trainBinary(t)
	dataDir := t.TempDir()
	if err := synth.WriteDataset(dataDir, 8, 100, 20); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	writeFile(t, notDir, []byte("x"))
	loop := filepath.Join(t.TempDir(), "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	data := []string{"-dataset", "tiny", "-data-dir", dataDir, "-offline"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-batch", "-1"}, "-batch -1: want >= 1"},
		{[]string{"-batch", "abc"}, `invalid value "abc" for flag -batch`},
		{[]string{"-batch", "1000"}, "-batch 1000: want 1 to 90"},
		{[]string{"-latent", "-3"}, "-latent -3: want >= 1"},
		{[]string{"-hidden", "400,-3"}, `-hidden "400,-3": want positive integers`},
		{[]string{"-decoder-hidden", "wide"}, `-decoder-hidden "wide"`},
		{[]string{"-epochs", "-1"}, "-epochs -1: want >= 1"},
		{[]string{"-epochs", "1e3"}, `invalid value "1e3" for flag -epochs`},
		{[]string{"-lr", "-0.1"}, "-lr -0.1: want a finite number > 0"},
		{[]string{"-lr", "NaN"}, "-lr NaN"},
		{[]string{"-lr", "Inf"}, "-lr +Inf"},
		{[]string{"-warmup", "-2"}, "-warmup -2"},
		{[]string{"-warmup", "Inf"}, "-warmup +Inf"},
		{[]string{"-free-bits", "-1"}, "-free-bits -1"},
		{[]string{"-val", "-5"}, "-val -5"},
		{[]string{"-val", "100"}, "-val"},
		{[]string{"-seed", "-1"}, `invalid value "-1" for flag -seed`},
		{[]string{"-log-every", "-1"}, "-log-every -1"},
		{[]string{"-save-every", "-5"}, `invalid value "-5" for flag -save-every`},
		{[]string{"-save-every", "1.5"}, `invalid value "1.5" for flag -save-every`},
		{[]string{"-keep", "-1"}, "-keep -1"},
		{[]string{"-on-nan", "ignore"}, `-on-nan "ignore": want stop or rollback`},
		{[]string{"-on-nan", "rollback", "-max-rollbacks", "-1"}, "-max-rollbacks -1"},
		{[]string{"-posterior", "nosuch:4"}, `-posterior: amortized: posterior "nosuch:4"`},
		{[]string{"-posterior", "radial:0"}, `-posterior: amortized: posterior "radial:0": the number of flow steps K "0" is not an integer from 1 to 1000`},
		{[]string{"-posterior", "planar:3", "-free-bits", "1"}, `-posterior planar:3 with -free-bits 1`},
		{[]string{"-likelihood", "poisson"}, `likelihood "poisson"`},
		{[]string{"-activation", "gelu"}, "activation"},
		{[]string{"-binarize", "sometimes"}, "-binarize"},
		{[]string{"-dtype", "float16"}, "float16"},
		{[]string{"-out", filepath.Join(notDir, "run")}, "-out: mkdir " + notDir},
		{[]string{"-out", ""}, "-out: want a directory"},
		{[]string{"-out", loop}, "-out: " + loop + " is a loop of symbolic links"},
		{[]string{"-resume", "-force"}, "-resume and -force contradict each other"},
		{[]string{"-resume"}, "no run to continue"},
		{[]string{"-nosuchflag"}, "flag provided but not defined: -nosuchflag"},
		{[]string{"stray"}, `unexpected argument "stray"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append(append([]string{"-out", out}, data...), tc.args...)
			code, _, stderr := runBinary(t, bin, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "train: ") {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
			if files := dirState(t, out); len(files) > 0 {
				t.Errorf("the failed run left %v in -out", names(files))
			}
		})
	}
}

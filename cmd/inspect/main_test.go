package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
	"github.com/govae/govae/internal/testutil"
)

func inspect(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// trained trains a tiny model for one epoch with trainrun and returns its
// run folder and data folder.
func trained(t *testing.T) (out, dataDir string) {
	t.Helper()
	dataDir, out = t.TempDir(), filepath.Join(t.TempDir(), "run")
	if err := synth.WriteDataset(dataDir, 4, 200, 40); err != nil {
		t.Fatal(err)
	}
	cfg := trainrun.Config{
		Dataset: "tiny", DataDir: dataDir, Offline: true, Batch: 16, ValSize: 20, Seed: 7,
		Model:    amortized.Config{Hidden: []int{8}, Latent: 2, Posterior: "planar:2"},
		Train:    amortized.TrainOptions{Epochs: 1, Seed: 7, WarmupEpochs: 2},
		Out:      out,
		Explicit: map[string]bool{},
		Stdout:   &bytes.Buffer{},
	}
	if err := trainrun.Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return out, dataDir
}

func TestTrainedModel(t *testing.T) {
	out, dataDir := trained(t)
	path := filepath.Join(out, trainrun.LatestFile)
	code, text, errs := inspect(t, path)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	m, st, err := checkpoints.LoadTraining(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"format version 2", "checksum:         verified", "posterior:        planar:2",
		"likelihood:       bernoulli", "widths:           16 -> 8 -> z 2 -> 8 -> 16",
		"dataset:          tiny (found in " + dataDir + ")", "binarization:     dynamic",
		"training state:   present", "1 epoch done, step " + itoa(st.Step),
		"KL warm-up over 2 epochs", "parameters:       " + itoa(int64(m.Params().Count())),
	} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}

	// -json (after the file name) gives the same facts, typed.
	code, js, errs := inspect(t, path, "-json")
	if code != 0 {
		t.Fatalf("-json: exit %d, %s", code, errs)
	}
	var in checkpoints.Info
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		t.Fatalf("-json output is not an Info: %v\n%s", err, js)
	}
	fi, _ := os.Stat(path)
	if in.Checksum != checkpoints.ChecksumVerified || in.Size != fi.Size() || in.Version != checkpoints.FormatVersion ||
		in.NumParams != int64(m.Params().Count()) || in.Data == nil || in.Data.Dataset != "tiny" || in.Data.Binarize != "dynamic" ||
		in.State == nil || in.State.Step != st.Step || in.State.BestEpoch != st.BestEpoch || in.State.BestValELBO != st.BestValELBO ||
		in.Config.Posterior != "planar:2" {
		t.Errorf("-json: %+v\nwant the values of %s", in, path)
	}
	if in.State.BestEpoch != 1 || !strings.Contains(text, "best val ELBO:") || strings.Contains(text, "none yet") {
		t.Errorf("best validation ELBO not shown: %+v\n%s", in.State, text)
	}

	// best.safetensors holds weights only, and still knows its data.
	code, text, _ = inspect(t, filepath.Join(out, trainrun.BestFile))
	if code != 0 || !strings.Contains(text, "training state:   absent") || !strings.Contains(text, "dataset:          tiny") {
		t.Errorf("best file: exit %d\n%s", code, text)
	}

	// A flipped byte in the data section: reported, exit 1.
	b, _ := os.ReadFile(path)
	b[len(b)-3] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(bad, b, 0o644)
	code, text, errs = inspect(t, bad)
	if code != 1 || !strings.Contains(text, "MISMATCH") || !strings.Contains(errs, bad) {
		t.Errorf("corrupt file: exit %d\n%s\n%s", code, text, errs)
	}
	// -no-verify reads the header only.
	if code, text, _ = inspect(t, "-no-verify", bad); code != 0 || !strings.Contains(text, "not verified") {
		t.Errorf("-no-verify: exit %d\n%s", code, text)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A row of the burda experiment (its run description holds the row's
// settings) is continued by running the experiment again with its -out, not
// by cmd/train -resume; a cmd/train checkpoint says -resume.
func TestExperimentCheckpointSaysHowToContinue(t *testing.T) {
	out, _ := trained(t)
	m, st, err := checkpoints.LoadTraining(filepath.Join(out, trainrun.LatestFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, text, _ := inspect(t, filepath.Join(out, trainrun.LatestFile)); !strings.Contains(text, "resumable with cmd/train -resume") {
		t.Errorf("a cmd/train checkpoint does not say -resume:\n%s", text)
	}
	st.Run = json.RawMessage(`{"settings":{"row":"VAE (k = 1)","objective":"elbo","k":1},"segments":[]}`)
	expOut := t.TempDir()
	for _, path := range []string{filepath.Join(expOut, "checkpoints", "vae-k-1.safetensors"), filepath.Join(t.TempDir(), "moved.safetensors")} {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := checkpoints.Save(path, m, st); err != nil {
			t.Fatal(err)
		}
		code, text, errs := inspect(t, path)
		if !strings.Contains(text, "saved without its data description") {
			t.Errorf("a version 2 file saved without data does not say so:\n%s", text)
		}
		want := "go run ./experiments -run burda -out DIR"
		if strings.Contains(path, "checkpoints") {
			want = "go run ./experiments -run burda -out " + expOut
		}
		if code != 0 || !strings.Contains(text, "a row of the burda experiment") || !strings.Contains(text, want) ||
			strings.Contains(text, "resumable with") || !strings.Contains(text, "the current stage ends at epoch") || strings.Contains(text, "run of") {
			t.Errorf("%s: exit %d, %s\nwant a burda row continued by %q:\n%s", path, code, errs, want, text)
		}
	}
}

func TestVersion1Fixture(t *testing.T) {
	code, text, errs := inspect(t, "../../checkpoints/testdata/v1_iaf.safetensors")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, s := range []string{"format version 1", "verified", "iaf:1:7", "parameters:       561", "not recorded"} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}
	code, js, _ := inspect(t, "-json", "../../checkpoints/testdata/v1_iaf.safetensors")
	var in checkpoints.Info
	if code != 0 || json.Unmarshal([]byte(js), &in) != nil || in.Data != nil || in.Version != 1 || !strings.Contains(js, `"data": null`) {
		t.Errorf("-json of a version-1 file: exit %d\n%s", code, js)
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.safetensors")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("hello, this is not a checkpoint\n"), 0o644)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.safetensors"), "no such file"},
		{fifo, "named pipe"},
		{dir, "directory"},
		{text, "not a safetensors file"},
		{"../../checkpoints/testdata/reference.safetensors", "not a govae checkpoint"},
		{"../../checkpoints/testdata/bad_truncated.safetensors", "truncated"},
	} {
		code, out, errs := inspect(t, c.path)
		if code != 1 || out != "" || !strings.Contains(errs, c.path) || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and an error naming the file and %q", c.path, code, out, errs, c.want)
		}
	}
	if code, _, errs := inspect(t); code != 2 || !strings.Contains(errs, "want a checkpoint file") {
		t.Errorf("no file: exit %d, %q", code, errs)
	}
	if code, _, _ := inspect(t, "-bogus", "x"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
}

// TestLargeFileReadsHeaderOnly: describing a 64 MB checkpoint allocates a
// small fraction of it, with and without verifying the checksum (streamed).
func TestLargeFileReadsHeaderOnly(t *testing.T) {
	m, err := amortized.New(amortized.Config{DataDim: 784, ImageRows: 28, ImageCols: 28, Hidden: []int{10000}, Latent: 20}, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := checkpoints.Save(path, m, nil); err != nil {
		t.Fatal(err)
	}
	m = nil
	fi, _ := os.Stat(path)
	for _, verify := range []bool{false, true} {
		var in *checkpoints.Info
		var err error
		alloc := testutil.Allocated(func() { in, err = checkpoints.ReadInfo(path, verify) })
		if err != nil {
			t.Fatal(err)
		}
		if alloc > uint64(fi.Size())/16 {
			t.Errorf("verify %v: describing a %d-byte file allocated %d bytes", verify, fi.Size(), alloc)
		}
		if verify && in.Checksum != checkpoints.ChecksumVerified || in.NumParams < 15_000_000 {
			t.Errorf("verify %v: %+v", verify, in)
		}
	}
}

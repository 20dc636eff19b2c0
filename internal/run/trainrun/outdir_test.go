package trainrun

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/synth"
)

// snapshot maps each file of dir (not folders) to its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

func sameSnapshot(a, b map[string]string) bool {
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

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// Any file a run writes marks the folder as a run: a full disk can leave
// best.safetensors and metrics.jsonl without model.safetensors.
func TestAnyRunFileMarksARun(t *testing.T) {
	ds := writeDataset(t)
	for _, name := range []string{LatestFile, BestFile, MetricsFile, KeptFile(40), "samples-e002.png", "recon-e001.png"} {
		out := t.TempDir()
		if err := os.WriteFile(filepath.Join(out, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := Train(context.Background(), baseConfig(ds, out, 1))
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "-force") {
			t.Errorf("%s alone: %v, want a usage error naming it and -force", name, err)
		}
		if b, _ := os.ReadFile(filepath.Join(out, name)); string(b) != "x" {
			t.Errorf("%s was changed", name)
		}
	}
}

// -force checks everything before it touches the previous run, and puts
// the previous run back if the new one fails before its first checkpoint.
func TestForceKeepsPreviousRunUntilFirstCheckpoint(t *testing.T) {
	ds := writeDataset(t)
	out := t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)

	// Failures found before training: bad data folder, a batch larger than the data.
	bad := baseConfig(t.TempDir(), out, 1)
	bad.Force = true
	if err := Train(context.Background(), bad); err == nil {
		t.Fatal("-force with an empty -data-dir succeeded")
	}
	big := baseConfig(ds, out, 1)
	big.Force, big.Batch = true, 100000
	if err := Train(context.Background(), big); err == nil || !strings.Contains(err.Error(), "-batch 100000") {
		t.Fatalf("-force -batch 100000: %v", err)
	}
	if after := snapshot(t, out); !sameSnapshot(before, after) {
		t.Fatalf("a -force that failed its checks changed the run: %v, then %v", keys(before), keys(after))
	}

	// A failure during the first epoch, before any checkpoint: restored.
	div := baseConfig(ds, out, 2)
	div.Force, div.afterStep = true, poisonAt(3, 0)
	var log bytes.Buffer
	div.Stdout = &log
	var nf *amortized.NonFiniteError
	if err := Train(context.Background(), div); !errors.As(err, &nf) {
		t.Fatalf("poisoned -force run: %v", err)
	}
	if after := snapshot(t, out); !sameSnapshot(before, after) {
		t.Fatalf("a -force run that failed before its first checkpoint did not restore the previous run: %v, then %v", keys(before), keys(after))
	}
	if !strings.Contains(log.String(), "previous run in "+out+" is restored") {
		t.Errorf("no word of the restore in the log:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(out, asideDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s remains: %v", asideDir, err)
	}

	// A successful -force replaces the run, and nothing of the old one stays.
	ok := baseConfig(ds, out, 1)
	ok.Force, ok.Seed, ok.Train.Seed = true, 99, 99
	if err := Train(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, out)
	if sameSnapshot(before, after) || after[LatestFile] == before[LatestFile] {
		t.Fatal("-force did not replace the run")
	}
	if _, err := os.Stat(filepath.Join(out, asideDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s remains after a successful -force: %v", asideDir, err)
	}
}

// A crash between moving the previous run aside and the first checkpoint
// leaves it aside; the next start puts it back (or deletes it once the new
// run has a checkpoint).
func TestInterruptedForceIsRecovered(t *testing.T) {
	ds := writeDataset(t)
	out := t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)
	if _, err := moveAside(out); err != nil {
		t.Fatal(err)
	}
	// What the killed run had written: a metrics line.
	if err := os.WriteFile(filepath.Join(out, MetricsFile), []byte(`{"epoch":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(ds, out, 2)
	cfg.Resume = true
	var log bytes.Buffer
	cfg.Stdout = &log
	cfg.Train.Epochs = 1 // finished: resume refuses after recovering
	if err := Train(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "finished its 1 epochs") {
		t.Fatalf("resume after an interrupted -force: %v", err)
	}
	if after := snapshot(t, out); !sameSnapshot(before, after) {
		t.Fatalf("the previous run was not restored: %v, then %v", keys(before), keys(after))
	}
	if !strings.Contains(log.String(), "the previous run is back") {
		t.Errorf("no word of the recovery:\n%s", log.String())
	}
}

// A metrics line cut by a crash is reported and removed on resume.
func TestResumeRepairsCutMetricsLine(t *testing.T) {
	ds := writeDataset(t)
	out := t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(out, MetricsFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(slices.Clone(good), `{"epoch":2,"step":2`...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(ds, out, 2)
	cfg.Resume, cfg.Explicit["epochs"] = true, true
	var log bytes.Buffer
	cfg.Stdout = &log
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), MetricsFile+" line 2 was cut short") {
		t.Errorf("the cut line was not reported:\n%s", log.String())
	}
	if lines := metricsLines(t, out); len(lines) != 2 || !strings.HasPrefix(lines[0], strings.TrimSpace(string(good))) {
		t.Errorf("metrics after the repair and one more epoch: %q", lines)
	}
}

// A failed save says the previous checkpoint is kept, and it is.
func TestFailedSaveSaysPreviousIsKept(t *testing.T) {
	dir := t.TempDir()
	m, err := amortized.New(amortized.Config{DataDim: 4, Hidden: []int{3}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := amortized.NewTrainer(m, 2, amortized.TrainOptions{Epochs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	sv := &saver{dir: dir, step: -1}
	if err := sv.failed(errors.New("disk full")); !strings.Contains(err.Error(), "no checkpoint of this run was saved yet") {
		t.Errorf("before any save: %v", err)
	}
	st := tr.State()
	if err := sv.save(m, st, 1); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, LatestFile))
	// Save fails before it writes, as it would on a full disk (the write
	// is atomic either way; internal/atomicfile tests that part).
	st.AdamM = nil
	st.Step = 5
	err = sv.save(m, st, 1)
	if err == nil || !strings.Contains(err.Error(), "the previous checkpoint (step 0) is kept unchanged") {
		t.Fatalf("failed save: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, LatestFile)); !bytes.Equal(now, before) {
		t.Error("the previous checkpoint changed")
	}
}

// trainedOneEpoch trains one epoch into a fresh folder and loads its
// resumable checkpoint, for tests that tamper with it.
func trainedOneEpoch(t *testing.T) (ds, out, latest string, m *amortized.Model, st *amortized.TrainState) {
	t.Helper()
	ds, out = writeDataset(t), t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	latest = filepath.Join(out, LatestFile)
	m, st, err := checkpoints.LoadTraining(latest)
	if err != nil {
		t.Fatal(err)
	}
	return ds, out, latest, m, st
}

// A training state that loads but does not fit the data (a batch size
// larger than the training set, a step that does not match the epochs and
// batches done) is refused on resume, naming the file.
func TestResumeRefusesStateThatDoesNotFitTheData(t *testing.T) {
	ds, out, latest, m, st := trainedOneEpoch(t)
	for _, c := range []struct {
		name   string
		tamper func(st *amortized.TrainState)
		want   string
	}{
		{"batch larger than the data", func(st *amortized.TrainState) {
			st.Run = []byte(strings.Replace(string(st.Run), `"batch":16`, `"batch":5000`, 1))
		}, "has batch size 5000, but the data give 180 training images"},
		{"step beyond the batches", func(st *amortized.TrainState) { st.Step += 3 }, "says step 15, but 1 epochs of 12 batches and 0 batches more make step 12"},
		{"batch beyond the epoch", func(st *amortized.TrainState) { st.Epoch, st.Batch, st.Step, st.BestEpoch = 0, 12, 12, 0 }, "is at batch 12 of an epoch of 12 batches"},
	} {
		s := *st
		s.Options.Epochs = 3
		c.tamper(&s)
		if err := checkpoints.Save(latest, m, &s); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(ds, out, 3)
		cfg.Resume, cfg.Explicit["epochs"] = true, true
		err := Train(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), latest) {
			t.Errorf("%s: %v, want an error naming %s with %q", c.name, err, latest, c.want)
		}
	}
}

// A checkpoint of the burda experiment put where cmd/train looks is
// refused on resume with how to continue it, not read as a run of no dataset.
func TestResumeRefusesExperimentCheckpoint(t *testing.T) {
	ds, out, latest, m, st := trainedOneEpoch(t)
	st.Run = []byte(`{"settings":{"row":"VAE (k = 1)","objective":"elbo","k":1,"seed":1,"batch":20},"segments":[]}`)
	if err := checkpoints.Save(latest, m, st); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(ds, out, 3)
	cfg.Resume, cfg.Explicit["epochs"] = true, true
	err := Train(context.Background(), cfg)
	if !cli.IsUsage(err) || !strings.Contains(err.Error(), latest) || !strings.Contains(err.Error(), "burda experiment") ||
		!strings.Contains(err.Error(), "go run ./experiments -run burda") {
		t.Errorf("-resume on a burda checkpoint: %v, want a usage error naming the file and the experiment", err)
	}
}

// An empty dataset is named as such, not blamed on -val.
func TestEmptyDatasetIsNamed(t *testing.T) {
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 0, 10); err != nil {
		t.Fatal(err)
	}
	err := Train(context.Background(), baseConfig(dir, t.TempDir(), 1))
	if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte: holds 0 images") || strings.Contains(err.Error(), "-val") {
		t.Errorf("empty training set: %v", err)
	}
}

package trainrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"github.com/govae/govae/internal/run/runinfo"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/synth"
)

func writeDataset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 200, 40); err != nil {
		t.Fatal(err)
	}
	return dir
}

func baseConfig(dataDir, out string, epochs int) Config {
	return Config{
		Dataset: "tiny", DataDir: dataDir, Offline: true, Batch: 16, ValSize: 20, Seed: 7,
		Model:    amortized.Config{Hidden: []int{8}, Latent: 2},
		Train:    amortized.TrainOptions{Epochs: epochs, Seed: 7, WarmupEpochs: 1},
		Out:      out,
		Explicit: map[string]bool{},
		Stdout:   &bytes.Buffer{},
	}
}

func weights(t *testing.T, path string) []float32 {
	t.Helper()
	m, err := checkpoints.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var all []float32
	for _, p := range m.Params().All() {
		all = append(all, p.Float32s()...)
	}
	return all
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func metricsLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var epochs []string // -log-every's step lines left out
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.Contains(l, `"kind":"step"`) {
			epochs = append(epochs, l)
		}
	}
	return epochs
}

func TestTrainWritesRunDirectory(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	cfg := baseConfig(ds, out, 2)
	cfg.Command = "go run ./cmd/train -epochs 2"
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{LatestFile, BestFile, MetricsFile, "samples-e001.png", "samples-e002.png", "recon-e002.png", "index.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(out, "command.txt")); string(b) != cfg.Command+"\n" {
		t.Errorf("command.txt holds %q, want the command", b)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "index.html")); !strings.Contains(string(b), cfg.Command) || !strings.Contains(string(b), "after epoch 2") {
		t.Error("index.html does not show the command and epoch 2's pictures")
	}
	lines := metricsLines(t, out)
	if len(lines) != 2 {
		t.Fatalf("%d metrics lines, want 2", len(lines))
	}
	for _, key := range []string{`"epoch":2`, `"step":24`, `"train_elbo":`, `"val_elbo":`, `"recon":`, `"kl":`, `"images_per_s":`, `"seconds":`} {
		if !strings.Contains(lines[1], key) {
			t.Errorf("metrics line lacks %s: %s", key, lines[1])
		}
	}
	f, _ := os.Open(filepath.Join(out, "recon-e002.png"))
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// 8 columns of 4x4 images at scale 2 with 2-pixel padding; 16 test images
	// make 2 pairs of rows (originals over reconstructions), and the figure
	// adds a title and row labels around them.
	if b := img.Bounds(); b.Dx() <= 8*8+9*2 || b.Dy() <= 2*(2*8+3*2) {
		t.Errorf("recon figure is %v, smaller than its grid", b)
	}
	// A second run into the same directory is refused.
	err = Train(context.Background(), baseConfig(ds, out, 2))
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "already holds a run") {
		t.Fatalf("rerun: %v", err)
	}
}

// cancelAfter is a Stdout that cancels the run when a line containing
// needle has been written.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	needle string
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.needle) {
		c.cancel()
	}
	return len(p), nil
}

// TestInterruptAndResumeMatchUninterrupted stops a run mid-epoch (as Ctrl-C
// does), resumes it, and requires the very same weights and training
// metrics as a run that was never stopped; likewise for 2 = 1 + 1 epochs.
func TestInterruptAndResumeMatchUninterrupted(t *testing.T) {
	ds := writeDataset(t)
	full := t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, full, 3)); err != nil {
		t.Fatal(err)
	}

	cut := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := baseConfig(ds, cut, 3)
	cfg.LogEvery = 1
	cfg.Stdout = &cancelAfter{needle: "step 17 ", cancel: cancel}
	if err := Train(ctx, cfg); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run returned %v", err)
	}
	_, _, st, err := checkpoints.Inspect(filepath.Join(cut, LatestFile))
	if err != nil || st.Step != 17 || st.Epoch != 1 || st.Batch != 5 {
		t.Fatalf("saved state %+v, %v; want step 17 = epoch 2 batch 5", st, err)
	}
	cfg = baseConfig(ds, cut, 3)
	cfg.Resume = true
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !sameFloats(weights(t, filepath.Join(full, LatestFile)), weights(t, filepath.Join(cut, LatestFile))) {
		t.Fatal("interrupted and resumed run ended with different weights")
	}
	a, b := metricsLines(t, full), metricsLines(t, cut)
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("metrics lines: %d and %d, want 3", len(a), len(b))
	}
	for i := range a {
		if field(a[i], "train_elbo") != field(b[i], "train_elbo") || field(a[i], "val_elbo") != field(b[i], "val_elbo") {
			t.Errorf("epoch %d metrics differ:\n%s\n%s", i+1, a[i], b[i])
		}
	}

	// Two epochs, then resume to three.
	two := t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, two, 2)); err != nil {
		t.Fatal(err)
	}
	cfg = baseConfig(ds, two, 3)
	cfg.Resume, cfg.Explicit["epochs"] = true, true
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !sameFloats(weights(t, filepath.Join(full, LatestFile)), weights(t, filepath.Join(two, LatestFile))) {
		t.Fatal("2 epochs + 1 resumed differs from 3 epochs")
	}
}

func field(line, key string) string {
	i := strings.Index(line, `"`+key+`":`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(key)+3:]
	return rest[:strings.IndexAny(rest, ",}")]
}

func TestResumeRefusesChangedSettings(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(ds, out, 2)
	cfg.Resume = true
	cfg.Model.Latent, cfg.Batch, cfg.Train.AdamEps = 5, 8, 1e-10
	cfg.Explicit = map[string]bool{"latent": true, "batch": true, "epochs": true, "adam-eps": true}
	err := Train(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "-latent 5 (the run was started with 2)") || !strings.Contains(err.Error(), "-batch 8") ||
		!strings.Contains(err.Error(), "-adam-eps 1e-10") {
		t.Fatalf("err = %v", err)
	}
	cfg = baseConfig(ds, out, 1)
	cfg.Resume = true
	if err := Train(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "finished its 1 epochs") {
		t.Fatalf("resuming a finished run: %v", err)
	}
}

// TestDivergenceKeepsLastGoodCheckpoint resumes a good run with an absurd
// learning rate: training must stop with the epoch and step, and leave
// model.safetensors exactly as it was.
func TestDivergenceKeepsLastGoodCheckpoint(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	if err := Train(context.Background(), baseConfig(ds, out, 1)); err != nil {
		t.Fatal(err)
	}
	before := fileHash(t, filepath.Join(out, LatestFile))
	cfg := baseConfig(ds, out, 5)
	cfg.Resume, cfg.Train.LR = true, 1e30
	cfg.Explicit = map[string]bool{"epochs": true, "lr": true}
	err := Train(context.Background(), cfg)
	var nf *amortized.NonFiniteError
	// Step 13 (the first of epoch 2) blows the weights up; the loss is
	// non-finite from the next step on.
	if !errors.As(err, &nf) || nf.Epoch != 2 || nf.Step < 13 || !strings.Contains(err.Error(), "epoch 2, step") {
		t.Fatalf("err = %v, want a NonFiniteError in epoch 2", err)
	}
	if fileHash(t, filepath.Join(out, LatestFile)) != before {
		t.Fatal("model.safetensors changed although the resumed epoch diverged")
	}
	if _, err := checkpoints.Load(filepath.Join(out, LatestFile)); err != nil {
		t.Fatalf("checkpoint unreadable after divergence: %v", err)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestBadSettings(t *testing.T) {
	ds := writeDataset(t)
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Batch = 500 }, "-batch 500: want 1 to 180"},
		{func(c *Config) { c.ValSize = 200 }, "-val"},
		{func(c *Config) { c.Binarize = "sometimes" }, "-binarize"},
		{func(c *Config) { c.Resume = true }, "no run to continue"},
		{func(c *Config) { c.Out = "" }, "-out"},
		{func(c *Config) { c.DataDir = filepath.Join(ds, "nope") }, "nope"},
		{func(c *Config) { c.SaveSteps = -1 }, "-save-every"},
		{func(c *Config) { c.SaveInterval = -time.Second }, "-save-every"},
		{func(c *Config) { c.Keep = -2 }, "-keep -2"},
		{func(c *Config) { c.OnNonFinite = "retry" }, `-on-nan "retry"`},
		{func(c *Config) { c.MaxRollbacks = -1 }, "-max-rollbacks -1"},
	} {
		cfg := baseConfig(ds, t.TempDir(), 1)
		tc.mod(&cfg)
		err := Train(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// TestEveryPosteriorFamilyTrainsAndResumes trains each posterior family
// through Train, as cmd/train does: 2 epochs straight equal 1 epoch resumed
// for another bit for bit; the -posterior given on resume may be the short
// form ("iaf:2" for the stored "iaf:2:5"), and a different one is refused.
func TestEveryPosteriorFamilyTrainsAndResumes(t *testing.T) {
	ds := writeDataset(t)
	for _, tc := range []struct{ post, stored string }{
		{"fullcov", "fullcov"}, {"planar:2", "planar:2"}, {"radial:3", "radial:3"}, {"iaf:2", "iaf:2:5"},
	} {
		t.Run(tc.post, func(t *testing.T) {
			full, two := t.TempDir(), t.TempDir()
			cfg := baseConfig(ds, full, 2)
			cfg.Model.Posterior = tc.post
			var out bytes.Buffer
			cfg.Stdout = &out
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.stored+" posterior") {
				t.Errorf("the run's description does not name the posterior %s:\n%s", tc.stored, &out)
			}
			cfg = baseConfig(ds, two, 1)
			cfg.Model.Posterior = tc.post
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			cfg = baseConfig(ds, two, 2)
			cfg.Resume, cfg.Model.Posterior = true, "diag"
			cfg.Explicit = map[string]bool{"epochs": true, "posterior": true}
			if err := Train(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "-posterior diag (the run was started with "+tc.stored+")") {
				t.Fatalf("resuming with another posterior: %v", err)
			}
			cfg.Model.Posterior = tc.post
			if err := Train(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			if !sameFloats(weights(t, filepath.Join(full, LatestFile)), weights(t, filepath.Join(two, LatestFile))) {
				t.Fatal("1 epoch + 1 resumed differs from 2 epochs")
			}
			m, err := checkpoints.Load(filepath.Join(two, BestFile))
			if err != nil || m.Config().Posterior != tc.stored {
				t.Fatalf("best checkpoint: %v", err)
			}
		})
	}
}

// TestResumeMayChangeShards: -shards changes only the rounding, so a run
// may resume with another value; the saved options then carry it.
func TestResumeMayChangeShards(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	cfg := baseConfig(ds, out, 1)
	cfg.Train.Shards = 1
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg = baseConfig(ds, out, 2)
	cfg.Train.Shards = 2
	cfg.Resume, cfg.Explicit["epochs"], cfg.Explicit["shards"] = true, true, true
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	_, st, err := checkpoints.LoadTraining(filepath.Join(out, LatestFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 2 || st.Options.Shards != 2 {
		t.Fatalf("after the resume: epoch %d, shards %d; want 2 and 2", st.Epoch, st.Options.Shards)
	}
}

// TestCheckpointsDescribeTheirData: every file a run writes records the
// data it was trained on, so a copied best.safetensors needs nothing
// beside it; a resume on another dataset is refused naming both.
func TestCheckpointsDescribeTheirData(t *testing.T) {
	ds, out := writeDataset(t), t.TempDir()
	cfg := baseConfig(ds, out, 1)
	cfg.Keep = 1
	if err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.safetensors"))
	if len(files) != 3 {
		t.Fatalf("run wrote %v, want model, best and one kept checkpoint", files)
	}
	for _, f := range files {
		d, err := checkpoints.ReadData(f)
		if err != nil || d == nil {
			t.Fatalf("%s: data description %+v, %v", f, d, err)
		}
		want := checkpoints.Data{Dataset: "tiny", Dir: ds, Binarize: "dynamic", EvalSeed: runinfo.EvalBinarizeSeed, Rows: 4, Cols: 4, Channels: 1}
		if *d != want {
			t.Errorf("%s: data %+v, want %+v", f, *d, want)
		}
	}
	alone := filepath.Join(t.TempDir(), "copied.safetensors")
	raw, err := os.ReadFile(filepath.Join(out, BestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoints.Load(alone)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := runinfo.RunOf(alone, m.Config()); !ok || r.Dataset != "tiny" || r.DataDir != ds || r.Binarize != "dynamic" {
		t.Errorf("runinfo.RunOf(a copied best.safetensors) = %+v, %v; want its own dataset", r, ok)
	}

	cfg = baseConfig(ds, out, 2)
	cfg.Resume, cfg.Dataset = true, "fashion-mnist"
	cfg.Explicit = map[string]bool{"dataset": true, "epochs": true}
	err = Train(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "fashion-mnist") || !strings.Contains(err.Error(), "tiny") {
		t.Fatalf("resume on another dataset: err = %v, want a refusal naming both", err)
	}
}

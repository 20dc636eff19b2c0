package evalrun

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/cli"
	"github.com/govae/govae/internal/synth"
)

func tinySetup(t *testing.T, tamper func(m *amortized.Model)) (ckpt, dataDir string) {
	t.Helper()
	dataDir = t.TempDir()
	if err := synth.WriteDataset(dataDir, 4, 40, 20); err != nil {
		t.Fatal(err)
	}
	m, err := amortized.New(amortized.Config{DataDim: 16, ImageRows: 4, ImageCols: 4, Hidden: []int{5}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		tamper(m)
	}
	ckpt = filepath.Join(t.TempDir(), "m.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	return ckpt, dataDir
}

// A finite but absurd log-variance bias makes the numbers impossible; the
// evaluation must refuse them and leave the previous report alone.
func TestImpossibleResultsAreRefused(t *testing.T) {
	for _, bias := range []float32{1e30, 200} {
		ckpt, dataDir := tinySetup(t, func(m *amortized.Model) {
			b := m.Params().Get("encoder.logvar.bias").Float32s()
			for i := range b {
				b[i] = bias
			}
		})
		js := filepath.Join(t.TempDir(), "eval.json")
		old := []byte("{\"log_px\": -10}\n")
		if err := os.WriteFile(js, old, 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err := Run(context.Background(), Config{Checkpoint: ckpt, Dataset: "tiny", DataDir: dataDir, Offline: true, K: 10, Seed: 1, JSON: js, Stdout: &out})
		if err == nil || !strings.Contains(err.Error(), "no report written") {
			t.Errorf("log-variance bias %g: %v, want a refusal naming the quantity\n%s", bias, err, &out)
		}
		if b, _ := os.ReadFile(js); !bytes.Equal(b, old) {
			t.Errorf("log-variance bias %g: the previous report was replaced by %q", bias, b)
		}
		if strings.Contains(out.String(), "wrote") {
			t.Errorf("log-variance bias %g: says it wrote:\n%s", bias, &out)
		}
	}
}

func TestCheckReport(t *testing.T) {
	good := Report{ELBO: -90, Recon: -80, KL: 10, LogPx: -85}
	bern := amortized.Config{Likelihood: amortized.Bernoulli, Posterior: "diag"}
	gauss := amortized.Config{Likelihood: amortized.Gaussian, Posterior: "planar:2"}
	for _, c := range []struct {
		name string
		edit func(r *Report)
		ll   []float64
		cfg  amortized.Config
		want string // "" = accepted
	}{
		{"good", func(*Report) {}, []float64{-85}, bern, ""},
		{"NaN ELBO", func(r *Report) { r.ELBO = nan() }, []float64{-85}, bern, "the ELBO is not finite"},
		{"infinite stderr", func(r *Report) { r.LogPxStderr = inf() }, []float64{-85}, bern, "standard error of log p(x) is not finite"},
		{"positive log p(x), Bernoulli", func(r *Report) {}, []float64{-85, 1e31}, bern, "log p(x) of image 1 is 1e+31 > 0"},
		{"positive recon, Bernoulli", func(r *Report) { r.Recon = 3 }, []float64{-85}, bern, "reconstruction term"},
		{"positive log p(x), Gaussian", func(r *Report) { r.LogPx, r.ELBO, r.Recon = 500, 490, 495 }, []float64{500}, gauss, ""},
		{"negative closed-form KL", func(r *Report) { r.KL = -1e31 }, []float64{-85}, bern, "KL term is -1e+31 < 0"},
		{"rounding of a zero KL", func(r *Report) { r.KL = -1e-6 }, []float64{-85}, bern, ""},
		{"negative Monte Carlo KL", func(r *Report) { r.KL = -2 }, []float64{-85}, gauss, ""},
	} {
		r := good
		c.edit(&r)
		err := checkReport(&r, c.ll, c.cfg)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// Output paths are checked before the checkpoint is even read.
func TestJSONPathCheckedFirst(t *testing.T) {
	ckpt, dataDir := tinySetup(t, nil)
	for _, c := range []struct{ path, want string }{
		{t.TempDir(), "is a directory"},
		{ckpt, "is a checkpoint"},
		{filepath.Join(t.TempDir(), "no", "x.json"), "does not exist"},
	} {
		var out bytes.Buffer
		_, err := Run(context.Background(), Config{Checkpoint: "/nonexistent.safetensors", Dataset: "tiny", DataDir: dataDir, Offline: true, K: 10, JSON: c.path, Stdout: &out})
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-json") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-json %s: %v, want a usage error saying it %s", c.path, err, c.want)
		}
		if out.Len() > 0 {
			t.Errorf("-json %s: work began:\n%s", c.path, &out)
		}
	}
	if _, err := checkpoints.Load(ckpt); err != nil {
		t.Errorf("the checkpoint named by -json was damaged: %v", err)
	}
}

// A cancelled context stops the evaluation: Evaluate at its next batch,
// log p(x) at once.
func TestCancelledEvaluationWritesNothing(t *testing.T) {
	ckpt, dataDir := tinySetup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	js := filepath.Join(t.TempDir(), "eval.json")
	_, err := Run(ctx, Config{Checkpoint: ckpt, Dataset: "tiny", DataDir: dataDir, Offline: true, K: 10, JSON: js, Stdout: &bytes.Buffer{}})
	if !errors.Is(err, ErrInterrupted) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(js); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled evaluation wrote %s", js)
	}
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }

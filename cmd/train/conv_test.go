package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
	"github.com/govae/govae/nets"
)

func TestConvFlags(t *testing.T) {
	c, err := parseFlags([]string{"-arch", "convpeer"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Model.Trunk != amortized.ConvPeerTrunk || c.Model.Latent != 32 || c.Model.Likelihood != "bernoulli" {
		t.Errorf("-arch convpeer: trunk %q latent %d likelihood %s", c.Model.Trunk, c.Model.Latent, c.Model.Likelihood)
	}
	// The explicit flags of the same architecture give the same trunk.
	c2, err := parseFlags([]string{"-encoder", nets.ConvPeerEncoder, "-latent", "32"})
	if err != nil || c2.Model.Trunk != c.Model.Trunk {
		t.Errorf("explicit peer flags: %q, %v", c2.Model.Trunk, err)
	}
	if c, err := parseFlags([]string{"-arch", "convpeer", "-latent", "8"}); err != nil || c.Model.Latent != 8 {
		t.Errorf("-latent with the preset: %d, %v", c.Model.Latent, err)
	}
	c3, err := parseFlags([]string{"-image-size", "32x24", "-channels", "3", "-likelihood", "logistic-rgb:5"})
	if err != nil || c3.Images.Rows != 32 || c3.Images.Cols != 24 || c3.Images.Channels != 3 {
		t.Errorf("-image-size 32x24 -channels 3: %+v, %v", c3.Images, err)
	}
	for _, args := range [][]string{
		{"-arch", "resnet"},
		{"-arch", "convpeer", "-encoder", "conv:8"},
		{"-decoder", "deconv:8"},
		{"-encoder", "deconv:8"},
		{"-encoder", "conv:8", "-decoder", "conv:8"},
		{"-encoder", "conv:8/q3"},
		{"-encoder", "conv:8", "-hidden", "100"},
		{"-encoder", "conv:8", "-activation", "elu"},
		{"-image-size", "32"},
		{"-image-size", "0x3"},
		{"-image-size", "5000x5000"},
		{"-channels", "2"},
		{"-likelihood", "logistic-mix:0"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// TestTrainConvOnPNGFolder trains a conv model with each pixel likelihood on
// a folder of RGB PNGs (and one grey run resized by -image-size) and checks
// the checkpoint's configuration, channels and the bits/dim in metrics.jsonl.
func TestTrainConvOnPNGFolder(t *testing.T) {
	rgb, grey := t.TempDir(), t.TempDir()
	if err := synth.WritePNGFolder(rgb, 8, 20, true); err != nil {
		t.Fatal(err)
	}
	if err := synth.WritePNGFolder(grey, 12, 20, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		args []string
		C    int
	}{
		{rgb, []string{"-likelihood", "logistic-rgb:2"}, 3},
		{rgb, []string{"-likelihood", "categorical", "-channels", "1"}, 1},
		{grey, []string{"-likelihood", "logistic-mix:2", "-image-size", "8x8"}, 1},
	} {
		out := filepath.Join(t.TempDir(), "run")
		args := append([]string{"-dataset", "shapes", "-data-dir", tc.dir, "-encoder", "conv:4,8/k3/dense:16", "-latent", "3",
			"-epochs", "2", "-batch", "8", "-val", "0", "-out", out, "-offline"}, tc.args...)
		if code := run(args); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		m, err := checkpoints.Load(filepath.Join(out, trainrun.LatestFile))
		if err != nil {
			t.Fatal(err)
		}
		c := m.Config()
		want := "conv:4,8/k3/s2/p1/relu/dense:16;deconv:8,4/k3/s2/p1/relu/dense:16"
		if c.Trunk != want || c.Shape().Channels != tc.C || c.ImageRows != 8 || c.ImageCols != 8 {
			t.Errorf("%v: trunk %q, shape %+v", tc.args, c.Trunk, c.Shape())
		}
		f, err := os.Open(filepath.Join(out, trainrun.MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		lines := 0
		for sc.Scan() {
			var l trainrun.Metrics
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.TestBPD == nil {
				t.Fatalf("%v: metrics line %s: %v (want test_bpd)", tc.args, sc.Text(), err)
			}
			want := -l.TestELBO / (float64(c.DataDim) * math.Ln2)
			if math.Abs(*l.TestBPD-want) > 1e-9 || !(*l.TestBPD > 0 && *l.TestBPD < 20) {
				t.Errorf("%v: test_bpd %v, want %v", tc.args, *l.TestBPD, want)
			}
			lines++
		}
		f.Close()
		if lines != 2 {
			t.Errorf("%v: %d metrics lines, want 2", tc.args, lines)
		}
	}
	// A grey folder with the RGB mixture: a usage error naming the channels.
	out := filepath.Join(t.TempDir(), "run")
	if code := run([]string{"-data-dir", grey, "-image-size", "8x8", "-encoder", "conv:4", "-likelihood", "logistic-rgb:2", "-epochs", "1", "-val", "0", "-out", out, "-offline"}); code != 2 {
		t.Errorf("logistic-rgb on grey images: exit %d, want 2", code)
	}
	// -image-size on an IDX folder is refused by data.
	idx := t.TempDir()
	if err := synth.WriteDataset(idx, 8, 20, 10); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-dataset", "tiny", "-data-dir", idx, "-image-size", "8x8", "-epochs", "1", "-out", filepath.Join(t.TempDir(), "r"), "-offline"}); code == 0 {
		t.Error("-image-size on IDX files: exit 0")
	}
	_ = strings.Contains
}

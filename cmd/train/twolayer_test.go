package main

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
)

// TestTwoLayerFlags: -latent L1,L2 makes the twolayer model (with the
// paper's default q(z2|z1) widths, or -latent-hidden), bad forms are
// refused, a run trains and saves it, and resuming with another layer
// split is refused.
func TestTwoLayerFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-latent", "3,x"}, "-latent \"3,x\": want a positive integer, or L1,L2"},
		{[]string{"-latent", "3,0"}, "-latent 3,0: want >= 1"},
		{[]string{"-latent", "3,2,1"}, "at most two stochastic layers"},
		{[]string{"-latent", "3,2", "-posterior", "fullcov"}, "takes -posterior diag"},
		{[]string{"-latent", "3", "-latent-hidden", "4"}, "-latent-hidden applies only to two stochastic layers"},
		{[]string{"-latent", "3,2", "-latent-hidden", "4,-1"}, "-latent-hidden \"4,-1\""},
		{[]string{"-latent", "3,2", "-prior", "mog:3"}, "-prior mog:3 with -latent 3,2: the top layer's prior p(z2) may be normal or vamp:K"},
		{[]string{"-latent", "3,2", "-prior", "vamp:3:data"}, "may be normal or vamp:K"},
	} {
		if _, err := parseFlags(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args            []string
		post, prior     string
		latent, layers2 int
	}{
		{[]string{"-latent", "100,50"}, "twolayer:50:50,50", "twolayer:50,50", 150, 50},
		{[]string{"-latent", "6,2", "-latent-hidden", "5,3", "-posterior", "diag"}, "twolayer:2:5,3", "twolayer:3,5", 8, 2},
		{[]string{"-latent", "6,2", "-latent-hidden", "5", "-prior", "vamp:7"}, "twolayer:2:5", "twolayer:5:vamp:7", 8, 2},
		{[]string{"-latent", "6,2", "-latent-hidden", "5", "-prior", "normal"}, "twolayer:2:5", "twolayer:5", 8, 2},
	} {
		c, err := parseFlags(tc.args)
		if err != nil || c.Model.Posterior != tc.post || c.Model.Prior != tc.prior || c.Model.Latent != tc.latent {
			t.Errorf("%v: posterior %q prior %q latent %d, %v; want %q %q %d", tc.args, c.Model.Posterior, c.Model.Prior, c.Model.Latent, err, tc.post, tc.prior, tc.latent)
		}
	}

	dir := t.TempDir()
	if err := synth.WriteDataset(dir, 4, 80, 20); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	common := []string{"-dataset", "tiny", "-data-dir", dir, "-offline", "-out", out, "-hidden", "8", "-batch", "16", "-val", "16"}
	if code := run(append(common, "-latent", "3,2", "-latent-hidden", "4", "-epochs", "1", "-objective", "iwae", "-k", "3")); code != 0 {
		t.Fatalf("two-layer run: exit %d", code)
	}
	m, err := checkpoints.Load(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Config(); c.Posterior != "twolayer:2:4" || c.Prior != "twolayer:4" || c.Latent != 5 {
		t.Fatalf("saved config %+v", c)
	}
	if _, err := m.Sample(2, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	if code := run(append(common, "-resume", "-latent", "4,1", "-epochs", "2")); code != 2 {
		t.Errorf("resume with -latent 4,1 over a 3,2 run: exit %d, want 2", code)
	}
	if code := run(append(common, "-resume", "-latent", "3,2", "-epochs", "2")); code != 0 {
		t.Errorf("resume with the same -latent 3,2: exit %d, want 0", code)
	}
}

package main

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
)

// TestGenerateTwoLayerUsesItsPrior: for a two-layer model generate shows
// Model.Sample's images (z2 ~ N(0, I), z1 ~ p(z1|z2)), not decodings of
// z ~ N(0, I), and refuses a temperature it cannot honour.
func TestGenerateTwoLayerUsesItsPrior(t *testing.T) {
	c := amortized.TwoLayerConfig(amortized.Config{DataDim: size * size, ImageRows: size, ImageCols: size, Hidden: []int{16}}, 3, 2, []int{4})
	m, err := amortized.New(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Sharpen p(z1|z2) so that its draws differ visibly from N(0, I)'s.
	for _, p := range m.Params().All() {
		if strings.HasPrefix(p.Name, "prior.z1.mean.") {
			for i := range p.Float32s() {
				p.Float32s()[i] = 3
			}
		}
	}
	ckpt := filepath.Join(t.TempDir(), "two.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "g.png")
	if got := mustSample(t, "generate", "-ckpt", ckpt, "-out", out, "-n", "4", "-columns", "2", "-scale", "2", "-seed", "5"); !strings.Contains(got, "the twolayer:4 prior") {
		t.Errorf("summary %q does not name the prior", got)
	}
	imgs, err := m.Sample(4, rand.New(rand.NewPCG(5, 0)))
	if err != nil {
		t.Fatal(err)
	}
	img := readFig(t, out)
	o := locate(t, img, levels(imgs[0]), 2, 0)
	for k := range 4 {
		if !bytes.Equal(cellAt(img, o, k/2, k%2, 2), levels(imgs[k])) {
			t.Errorf("cell %d differs from Model.Sample's image %d", k, k)
		}
	}
	code, _, errOut := sample("generate", "-ckpt", ckpt, "-out", out, "-temperature", "0.5")
	if code != 2 || !strings.Contains(errOut, "only -temperature 1") {
		t.Errorf("-temperature 0.5 on a two-layer model: exit %d, %q", code, errOut)
	}
}

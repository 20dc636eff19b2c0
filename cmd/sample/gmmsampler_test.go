package main

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateGMMSampler(t *testing.T) {
	dir := t.TempDir()
	prior, a, b := filepath.Join(dir, "p.png"), filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	mustSample(t, "generate", "-ckpt", fx.ckpt, "-out", prior, "-n", "6", "-columns", "3", "-seed", "5")
	out := mustSample(t, withData("generate", "-ckpt", fx.ckpt, "-out", a, "-n", "6", "-columns", "3", "-seed", "5", "-sampler", "gmm", "-gmm-k", "4", "-gmm-n", "200")...)
	if !strings.Contains(out, "VBGMM") || !strings.Contains(out, "200 tiny training images") {
		t.Errorf("summary %q", out)
	}
	mustSample(t, withData("generate", "-ckpt", fx.ckpt, "-out", b, "-n", "6", "-columns", "3", "-seed", "5", "-sampler", "gmm", "-gmm-k", "4", "-gmm-n", "200")...)
	pa, pb := readFig(t, a), readFig(t, b)
	if !bytes.Equal(pa.Pix, pb.Pix) {
		t.Error("the same seed gave different pictures")
	}
	// The prior's first image (what generate draws with this seed) is in
	// the prior's picture and not in the mixture's.
	imgs, err := fx.trained.Sample(6, rand.New(rand.NewPCG(5, 0)))
	if err != nil {
		t.Fatal(err)
	}
	locate(t, readFig(t, prior), levels(imgs[0]), 2, 0)
	if _, ok := find(pa, levels(imgs[0]), 2, 0); ok {
		t.Error("-sampler gmm drew the prior's images")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-sampler", "x"}, `-sampler "x": want prior or gmm`},
		{[]string{"-sampler", "gmm", "-gmm-k", "0"}, "-gmm-k 0: want 1 to 1000"},
		{[]string{"-sampler", "gmm", "-gmm-n", "100000"}, "-gmm-n 100000: the training set of tiny has 400 images"},
		{[]string{"-sampler", "gmm", "-gmm-alpha0", "-1"}, "-gmm-alpha0 -1"},
	} {
		args := withData(append([]string{"generate", "-ckpt", fx.ckpt, "-out", filepath.Join(dir, "x.png")}, tc.args...)...)
		code, _, errOut := sample(args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

package main

import (
	"context"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
)

// TestColourConvModel trains a conv model with the RGB logistic mixture on a
// folder of RGB PNGs (cmd/train's code) and runs every tool on it: each
// writes a PNG, and the pictures of images are in colour.
func TestColourConvModel(t *testing.T) {
	data, dir := t.TempDir(), t.TempDir()
	if err := synth.WritePNGFolder(data, 8, 20, true); err != nil {
		t.Fatal(err)
	}
	cfg := trainrun.Config{Dataset: "shapes", DataDir: data, Offline: true, Batch: 8, ValSize: 0, Seed: 1, Out: dir,
		Model: amortized.Config{Latent: 2, Likelihood: "logistic-rgb:2", Trunk: "conv:4,8/k3/dense:16"},
		Train: amortized.TrainOptions{Epochs: 1}, Stdout: io.Discard}
	if err := trainrun.Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, trainrun.BestFile)
	colour := func(path string) bool {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		im, err := png.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		b := im.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := im.At(x, y).RGBA()
				if r>>8 != g>>8 || g>>8 != bl>>8 {
					return true
				}
			}
		}
		return false
	}
	for _, args := range [][]string{
		{"generate", "-n", "4"},
		{"reconstruct", "-n", "4"},
		{"impute", "-n", "2", "-eval", "2", "-iters", "2", "-mask", "top"},
		{"latent", "-n", "4"},
		{"manifold", "-size", "3"},
		{"interpolate", "-steps", "3"},
	} {
		out := filepath.Join(t.TempDir(), args[0]+".png")
		a := append([]string{args[0], "-ckpt", ckpt, "-out", out}, args[1:]...)
		if args[0] != "generate" && args[0] != "manifold" {
			a = append(a, "-offline") // the tools that read images
		}
		if code, _, errOut := sample(a...); code != 0 {
			t.Fatalf("sample %s: exit %d\n%s", strings.Join(a, " "), code, errOut)
		}
		if args[0] != "latent" && !colour(out) {
			t.Errorf("sample %s: the picture has no colour", args[0])
		}
	}
	if code, _, errOut := sample("report", "-run", dir); code != 0 {
		t.Errorf("report: exit %d\n%s", code, errOut)
	}
}

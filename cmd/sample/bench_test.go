package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/synth"
)

// BenchmarkToolsRatio runs each picture tool on the reference model
// (784-400-20-400-784, at its initial weights: the speed does not depend on
// them) over synthetic 28x28 images, alternating with training the same
// model on as many images, and reports the tool's images/s and x_train, its
// speed as a multiple of training's measured side by side (issue 20:
// nothing in the sampling tools slower per image than training). An image
// is one pass of the model: impute's are image-sweeps, latent's and
// manifold's include the encoder pass of their principal plane; the time
// includes loading the checkpoint and data and drawing the picture.
func BenchmarkToolsRatio(b *testing.B) {
	dir := b.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := synth.WriteDataset(dataDir, 28, 1000, 10000); err != nil {
		b.Fatal(err)
	}
	m, err := amortized.New(amortized.ReferenceConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	ckpt := filepath.Join(dir, "ref.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		b.Fatal(err)
	}
	from, to := make([]string, 100), make([]string, 100)
	for i := range from {
		from[i], to[i] = fmt.Sprint(i), fmt.Sprint(100+i)
	}
	tools := []struct {
		name   string
		images int
		args   []string
	}{
		{"generate", 10000, []string{"generate", "-n", "10000", "-scale", "1"}},
		{"reconstruct", 10000, []string{"reconstruct", "-n", "5000", "-scale", "1"}}, // 5,000 originals beside 5,000 reconstructions: 10,000 shown
		{"impute", 100000, []string{"impute", "-n", "100", "-eval", "2000", "-iters", "50"}},
		{"latent-pca", 10000, []string{"latent", "-n", "10000", "-method", "pca"}},
		{"manifold", 15000, []string{"manifold", "-size", "100", "-n", "5000", "-scale", "1"}},
		{"interpolate", 10000, []string{"interpolate", "-from", strings.Join(from, ","), "-to", strings.Join(to, ","), "-steps", "100", "-scale", "1"}},
	}
	for _, tool := range tools {
		b.Run(tool.name, func(b *testing.B) {
			tm, err := amortized.New(amortized.ReferenceConfig(), 1)
			if err != nil {
				b.Fatal(err)
			}
			tr, err := amortized.NewTrainer(tm, 128, amortized.TrainOptions{Epochs: 1}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			batch := make([]float32, 128*784)
			for i := range batch {
				batch[i] = float32(i % 2)
			}
			steps := (tool.images + 127) / 128
			args := append(tool.args, "-ckpt", ckpt, "-dataset", "tiny", "-data-dir", dataDir, "-offline", "-out", filepath.Join(dir, tool.name+".png"))
			var spent [2]time.Duration
			round := func() {
				t0 := time.Now()
				for range steps {
					if _, err := tr.Step(batch, 128, 1); err != nil {
						b.Fatal(err)
					}
				}
				spent[0] += time.Since(t0)
				t0 = time.Now()
				if code, _, errOut := sample(args...); code != 0 {
					b.Fatalf("sample %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
				}
				spent[1] += time.Since(t0)
			}
			round() // warm up
			spent = [2]time.Duration{}
			b.ResetTimer()
			for b.Loop() {
				round()
			}
			train := float64(128*steps*b.N) / spent[0].Seconds()
			tool := float64(tool.images*b.N) / spent[1].Seconds()
			b.ReportMetric(tool, "images/s")
			b.ReportMetric(tool/train, "x_train")
		})
	}
}

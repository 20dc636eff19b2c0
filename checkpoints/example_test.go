package checkpoints_test

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
)

// stripes is a toy dataset: 4x4 images with a vertical or horizontal bar.
type stripes struct{ x []float32 }

func (s stripes) Len() int        { return len(s.x) / 16 }
func (s stripes) Dim() int        { return 16 }
func (s stripes) BatchSize() int  { return 8 }
func (s stripes) NumBatches() int { return s.Len() / 8 }
func (s stripes) Batch(_, b int, dst []float32) (int, error) {
	copy(dst, s.x[b*8*16:(b+1)*8*16])
	return 8, nil
}

// Train a tiny model, save it, and load it back the way any Go program
// that has only the checkpoint file would, then draw samples from it.
func Example() {
	x := make([]float32, 64*16)
	for i := 0; i < 64; i++ {
		for p := 0; p < 16; p++ {
			if (i%2 == 0 && p%4 == i/2%4) || (i%2 == 1 && p/4 == i/2%4) {
				x[i*16+p] = 1
			}
		}
	}
	cfg := amortized.Config{DataDim: 16, ImageRows: 4, ImageCols: 4, Hidden: []int{32}, Latent: 2}
	m, err := amortized.New(cfg, 1)
	if err != nil {
		log.Fatal(err)
	}
	tr, err := amortized.NewTrainer(m, 8, amortized.TrainOptions{Epochs: 20, LR: 1e-2, Seed: 1}, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := tr.Fit(context.Background(), stripes{x}, nil, amortized.Hooks{}); err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "govae-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")
	if err := checkpoints.Save(path, m, nil); err != nil {
		log.Fatal(err)
	}

	loaded, err := checkpoints.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	imgs, err := loaded.Sample(3, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("latent", loaded.LatentDim(), "data", loaded.DataDim())
	for _, img := range imgs {
		on := 0
		for _, p := range img {
			if p > 0.5 {
				on++
			}
		}
		fmt.Println("sample with", len(img), "pixels, bright:", on)
	}
	// Output:
	// latent 2 data 16
	// sample with 16 pixels, bright: 4
	// sample with 16 pixels, bright: 4
	// sample with 16 pixels, bright: 3
}

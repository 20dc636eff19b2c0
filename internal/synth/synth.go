// Package synth writes small synthetic IDX datasets for tests: two stroke
// patterns with pixel noise, in the four files MNIST uses, so every tool can
// run end to end without the real data.
package synth

import (
	"math/rand/v2"
	"path/filepath"

	"github.com/govae/govae/data"
)

// WriteDataset writes train (nTrain images) and t10k (nTest images) IDX
// files of size x size pixels into dir. Labels alternate 0, 1.
func WriteDataset(dir string, size, nTrain, nTest int) error {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, split := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		d := size * size
		im := &data.Images{N: split.n, Channels: 1, Rows: size, Cols: size, Pix: make([]uint8, split.n*d)}
		lab := make([]uint8, split.n)
		for i := range split.n {
			lab[i] = uint8(i % 2)
			for j := range d {
				v := 20
				if (j%size == 1) == (i%2 == 0) {
					v = 230
				}
				im.Pix[i*d+j] = uint8(v + rng.IntN(20))
			}
		}
		if err := data.WriteImagesFile(filepath.Join(dir, split.prefix+"-images-idx3-ubyte"), im); err != nil {
			return err
		}
		if err := data.WriteLabelsFile(filepath.Join(dir, split.prefix+"-labels-idx1-ubyte"), lab); err != nil {
			return err
		}
	}
	return nil
}

package synth

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// WritePNGFolder writes an image folder of n PNG images of size x size
// pixels per class, in dir/<class>/ for classes "a" and "b": RGB if rgb,
// else grey. Class a has a horizontal colour ramp, b a vertical one, plus
// noise, so that a model has something to learn. Deterministic.
func WritePNGFolder(dir string, size, n int, rgb bool) error {
	rng := rand.New(rand.NewPCG(uint64(size), uint64(n)))
	for ci, class := range []string{"a", "b"} {
		d := filepath.Join(dir, class)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for i := range n {
			var im image.Image
			level := func(y, x, c int) uint8 {
				t := x
				if ci == 1 {
					t = y
				}
				return uint8(min(255, 255*t/max(size-1, 1)/2+40*c+rng.IntN(30)))
			}
			if rgb {
				m := image.NewRGBA(image.Rect(0, 0, size, size))
				for y := range size {
					for x := range size {
						m.Set(x, y, color.RGBA{level(y, x, 0), level(y, x, 1), level(y, x, 2), 255})
					}
				}
				im = m
			} else {
				m := image.NewGray(image.Rect(0, 0, size, size))
				for y := range size {
					for x := range size {
						m.SetGray(x, y, color.Gray{level(y, x, 0)})
					}
				}
				im = m
			}
			f, err := os.Create(filepath.Join(d, fmt.Sprintf("%03d.png", i)))
			if err != nil {
				return err
			}
			if err := png.Encode(f, im); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

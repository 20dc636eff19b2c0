package imgrid

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math/rand/v2"
	"testing"
)

// encodeGray's files decode, with image/png, to the pixels written: odd
// sizes, a single row or column, a sub-image whose bounds do not start at
// the origin, and more than one IDAT chunk.
func TestEncodeGrayRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := image.NewGray(image.Rect(0, 0, 301, 517))
	for i := range big.Pix {
		big.Pix[i] = uint8(rng.IntN(256))
	}
	for _, img := range []*image.Gray{
		big,
		big.SubImage(image.Rect(7, 11, 40, 29)).(*image.Gray),
		big.SubImage(image.Rect(3, 5, 4, 60)).(*image.Gray),
		big.SubImage(image.Rect(3, 5, 90, 6)).(*image.Gray),
	} {
		var buf bytes.Buffer
		if err := encodeGray(&buf, img); err != nil {
			t.Fatal(err)
		}
		got, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("%v: %v", img.Bounds(), err)
		}
		b := img.Bounds()
		if got.Bounds().Dx() != b.Dx() || got.Bounds().Dy() != b.Dy() {
			t.Fatalf("decoded %v, wrote %v", got.Bounds(), b)
		}
		g, ok := got.(*image.Gray)
		if !ok {
			t.Fatalf("decoded a %T, want *image.Gray", got)
		}
		for y := range b.Dy() {
			for x := range b.Dx() {
				if w, v := img.GrayAt(b.Min.X+x, b.Min.Y+y).Y, g.GrayAt(x, y).Y; w != v {
					t.Fatalf("%v: pixel (%d, %d) = %d, wrote %d", b, x, y, v, w)
				}
			}
		}
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// A writer that fails partway makes encodeGray fail.
func TestEncodeGrayWriteError(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 500, 500))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * i / 7)
	}
	if err := encodeGray(&failWriter{after: 1000}, img); err == nil {
		t.Fatal("no error from a writer that failed")
	}
}

package imgrid

import (
	"bytes"
	"errors"
	"hash/adler32"
	"image"
	"image/png"
	"math/rand/v2"
	"runtime"
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

// A picture of several strips decodes to its pixels, and its file is the
// same whatever the number of goroutines compressing it.
func TestEncodeGrayStrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	img := image.NewGray(image.Rect(0, 0, 1001, 3*stripBytes/1000))
	for i := range img.Pix {
		if rng.IntN(3) == 0 {
			img.Pix[i] = uint8(rng.IntN(256))
		}
	}
	var files [2]bytes.Buffer
	for k, procs := range []int{1, 4} {
		old := runtime.GOMAXPROCS(procs)
		err := encodeGray(&files[k], img)
		runtime.GOMAXPROCS(old)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(files[0].Bytes(), files[1].Bytes()) {
		t.Error("the file depends on GOMAXPROCS")
	}
	got, err := png.Decode(&files[0])
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := got.(*image.Gray); !ok || !bytes.Equal(g.Pix, img.Pix) || g.Rect != img.Rect {
		t.Fatal("the strips do not decode to the picture")
	}
}

func TestAdler32Combine(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range [][2]int{{0, 0}, {0, 5}, {7, 0}, {1, 1}, {65521, 3}, {100000, 200000}, {3, 65521*2 + 17}} {
		a, b := make([]byte, n[0]), make([]byte, n[1])
		for _, p := range [][]byte{a, b} {
			for i := range p {
				p[i] = 255 - uint8(rng.IntN(3)) // large bytes push the sums to their modulus
			}
		}
		want := adler32.Checksum(append(append([]byte{}, a...), b...))
		if got := adler32Combine(adler32.Checksum(a), adler32.Checksum(b), int64(len(b))); got != want {
			t.Errorf("lengths %v: combined %08x, want %08x", n, got, want)
		}
	}
}

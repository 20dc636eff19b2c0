package imgrid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// goldenFigures are figures of each kind the tools draw: grey with every
// text element (title, row labels, ticks, both axis titles), grey with
// hidden pixels, colour, and a grey one large enough (over fastPNG pixels)
// to take the fast encoder.
func goldenFigures() map[string]Figure {
	cells := func(n, ch int, seed float32) [][]float32 {
		out := make([][]float32, n)
		for i := range out {
			out[i] = pattern(28, 28, ch, seed+float32(i))
		}
		return out
	}
	g := Grid{Rows: 28, Cols: 28, Pad: 2, Scale: 2, Background: 96}
	hide := make([]bool, 784)
	for j := range hide {
		hide[j] = j%7 == 0
	}
	figs := map[string]Figure{
		"grey": {Grid: g, Title: "Decoded at quantiles Φ^-1((i+0.5)/3)\nsecond line", Blocks: []Block{
			{Rows: []Row{{Label: "original", Images: cells(3, 1, 0)}, {Label: "reconstruction", Images: cells(2, 1, 5)}}},
			{Rows: []Row{{Label: "0 → 1 linear", Images: cells(3, 1, 9)}}},
		}, XTicks: []string{"-1.23", "", "1.23"}, XLabel: "z along PC1 (40% of variance)", YLabel: "z along PC2 (20%)"},
		"hidden": {Grid: g, Title: "Imputation (hidden pixels in blue)", Blocks: []Block{
			{Rows: []Row{{Label: "masked", Images: cells(2, 1, 3), Hidden: [][]bool{hide, nil}}}},
		}},
		"colour": {Grid: Grid{Rows: 28, Cols: 28, Channels: 3, Pad: 2, Scale: 1, Background: 96}, Title: "colour", Blocks: []Block{
			{Rows: []Row{{Label: "a", Images: cells(4, 3, 1)}, {Label: "b", Images: cells(3, 3, 7)}}},
		}},
	}
	big := Figure{Grid: Grid{Rows: 28, Cols: 28, Pad: 2, Scale: 1, Background: 96}, Title: "test images 0 to 2599 and their reconstructions\n(z drawn from q(z|x))"}
	for b := range 34 {
		big.Blocks = append(big.Blocks, Block{Rows: []Row{
			{Label: "original", Images: cells(70, 1, float32(b))},
			{Label: "reconstruction", Images: cells(70, 1, float32(b+100))},
		}})
	}
	figs["big"] = big
	return figs
}

// pixelHash is the SHA-256 of an image's 8-bit RGBA pixels, row by row, and
// its size, whatever its type.
func pixelHash(img image.Image) string {
	h := sha256.New()
	b := img.Bounds()
	fmt.Fprintf(h, "%dx%d\n", b.Dx(), b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			h.Write([]byte{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The decoded pixels of each kind of figure are those written before the
// figure encoder was made faster (hashes computed at commit 9f8a6bd), and
// those Render draws.
func TestFigurePixelsUnchanged(t *testing.T) {
	golden := map[string]string{
		"grey":   "7b618a86a986ce18dcc98a1562c355f1a726f75e688f099b97afc5ffe0fef2ff",
		"hidden": "e7aeacd6cac78767256db082d5e98ce7f87e88bd19dc9070ff265f9b7083aa26",
		"colour": "d320a182891576eaab3d4e47c744892b00e01f180620c545a4e436df944c85ee",
		"big":    "48490fc72f0cbb2d200849a7b8b3d942286f1d842c9286a34f6d506d1e0720c6",
	}
	dir := t.TempDir()
	for name, f := range goldenFigures() {
		path := filepath.Join(dir, name+".png")
		if err := f.WritePNG(path); err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := pixelHash(img)
		if want := golden[name]; got != want {
			t.Errorf("%s: decoded pixels hash to %s, want %s", name, got, want)
		}
		rendered, err := f.Render()
		if err != nil {
			t.Fatal(err)
		}
		if h := pixelHash(rendered); h != got {
			t.Errorf("%s: the file's pixels differ from Render's", name)
		}
	}
}

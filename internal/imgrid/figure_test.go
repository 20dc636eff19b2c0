package imgrid

import (
	"image"
	"image/color"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font"
)

// pattern is a grey image whose pixels all differ, so that it can be found
// in a figure exactly.
func pattern(rows, cols, ch int, seed float32) []float32 {
	v := make([]float32, ch*rows*cols)
	for i := range v {
		v[i] = float32(int(seed*97+float32(i)*13)%251) / 255
	}
	return v
}

// findCell returns where the image im appears in fig, each pixel an s x s
// square of exactly its value (grey: R = G = B), or false.
func findCell(fig *image.RGBA, g Grid, im []float32, hidden []bool) (image.Point, bool) {
	s, plane := g.scale(), g.Rows*g.Cols
	want := func(j int) [3]uint8 {
		switch {
		case hidden != nil && hidden[j]:
			return HiddenColor
		case g.channels() == 3:
			return [3]uint8{gray(im[j]), gray(im[plane+j]), gray(im[2*plane+j])}
		}
		v := gray(im[j])
		return [3]uint8{v, v, v}
	}
	b := fig.Bounds()
	for y0 := 0; y0+g.Rows*s <= b.Dy(); y0++ {
	next:
		for x0 := 0; x0+g.Cols*s <= b.Dx(); x0++ {
			for j := range plane {
				w := want(j)
				for k := range s * s {
					o := fig.PixOffset(x0+(j%g.Cols)*s+k%s, y0+(j/g.Cols)*s+k/s)
					if fig.Pix[o] != w[0] || fig.Pix[o+1] != w[1] || fig.Pix[o+2] != w[2] {
						continue next
					}
				}
			}
			return image.Pt(x0, y0), true
		}
	}
	return image.Point{}, false
}

func TestFigureKeepsPixelsExactly(t *testing.T) {
	for _, ch := range []int{1, 3} {
		g := Grid{Rows: 5, Cols: 4, Channels: ch, Pad: 2, Scale: 3, Background: 96}
		a, b, c := pattern(5, 4, ch, 1), pattern(5, 4, ch, 2), pattern(5, 4, ch, 3)
		hide := make([]bool, 20)
		hide[0], hide[7], hide[19] = true, true, true
		f := Figure{Grid: g, Title: "A title", Blocks: []Block{
			{Rows: []Row{{Label: "original", Images: [][]float32{a, b}}, {Label: "masked", Images: [][]float32{c}, Hidden: [][]bool{hide}}}},
		}, XTicks: []string{"-1", "1"}, XLabel: "z1", YLabel: "z2"}
		fig, err := f.Render()
		if err != nil {
			t.Fatal(err)
		}
		pa, okA := findCell(fig, g, a, nil)
		pb, okB := findCell(fig, g, b, nil)
		pc, okC := findCell(fig, g, c, hide)
		if !okA || !okB || !okC {
			t.Fatalf("channels %d: cells not found exactly: %v %v %v", ch, okA, okB, okC)
		}
		// b is right of a by a cell and its padding; c is below a.
		if pb != pa.Add(image.Pt(4*3+2, 0)) || pc != pa.Add(image.Pt(0, 5*3+2)) {
			t.Errorf("channels %d: cells at %v %v %v", ch, pa, pb, pc)
		}
		// Text is drawn: dark pixels left of the grid (labels) and above it (title).
		dark := func(r image.Rectangle) int {
			n := 0
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					if fig.RGBAAt(x, y).R < 100 {
						n++
					}
				}
			}
			return n
		}
		if dark(image.Rect(0, pa.Y, pa.X-2, pc.Y+15)) < 50 {
			t.Errorf("channels %d: no row labels drawn", ch)
		}
		if dark(image.Rect(0, 0, fig.Bounds().Dx(), pa.Y-2)) < 30 {
			t.Errorf("channels %d: no title drawn", ch)
		}
		if dark(image.Rect(0, pc.Y+20, fig.Bounds().Dx(), fig.Bounds().Dy())) < 20 {
			t.Errorf("channels %d: no ticks or axis title drawn", ch)
		}
	}
}

func TestFigureGreyIsWrittenGrey(t *testing.T) {
	dir := t.TempDir()
	g := Grid{Rows: 3, Cols: 3, Pad: 1, Scale: 2, Background: 96}
	f := Figure{Grid: g, Title: "t", Blocks: []Block{{Rows: []Row{{Label: "x", Images: [][]float32{pattern(3, 3, 1, 0)}}}}}}
	path := filepath.Join(dir, "g.png")
	if err := f.WritePNG(path); err != nil {
		t.Fatal(err)
	}
	readPNG(t, path) // fails unless *image.Gray
	// Hidden pixels make it colour.
	f.Blocks[0].Rows[0].Hidden = [][]bool{{true, false, false, false, false, false, false, false, false}}
	img, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := compact(img).(*image.RGBA); !ok {
		t.Error("a figure with hidden pixels was made grey")
	}
}

func TestFigureErrors(t *testing.T) {
	g := Grid{Rows: 2, Cols: 2, Pad: 1}
	im := make([]float32, 4)
	for _, tc := range []struct {
		name string
		f    Figure
		want string
	}{
		{"no blocks", Figure{Grid: g}, "no blocks"},
		{"no images", Figure{Grid: g, Blocks: []Block{{Rows: []Row{{Label: "a"}}}}}, "no images"},
		{"length", Figure{Grid: g, Blocks: []Block{{Rows: []Row{{Images: [][]float32{im, make([]float32, 3)}}}}}}, "block 0 row 0 image 1 has 3 values, want 4"},
		{"colour length", Figure{Grid: Grid{Rows: 2, Cols: 2, Channels: 3}, Blocks: []Block{{Rows: []Row{{Images: [][]float32{im}}}}}}, "want 12 (3x2x2)"},
		{"channels", Figure{Grid: Grid{Rows: 2, Cols: 2, Channels: 2}, Blocks: []Block{{Rows: []Row{{Images: [][]float32{im}}}}}}, "2 channels"},
		{"masks", Figure{Grid: g, Blocks: []Block{{Rows: []Row{{Images: [][]float32{im}, Hidden: [][]bool{nil, nil}}}}}}, "1 images and 2 masks"},
		{"mask size", Figure{Grid: g, Blocks: []Block{{Rows: []Row{{Images: [][]float32{im}, Hidden: [][]bool{{true}}}}}}}, "mask of 1 pixels, want 4"},
		{"ticks", Figure{Grid: g, Blocks: []Block{{Rows: []Row{{Images: [][]float32{im}}}}}, XTicks: []string{"a", "b"}}, "2 tick labels for 1 columns"},
		{"huge", Figure{Grid: Grid{Rows: 28, Cols: 28, Scale: 400}, Blocks: []Block{{Rows: []Row{{Images: [][]float32{make([]float32, 784)}}}}}}, "exceed"},
	} {
		dir := t.TempDir()
		err := tc.f.WritePNG(filepath.Join(dir, "f.png"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
		assertDirEmpty(t, dir)
	}
}

func TestColourGrid(t *testing.T) {
	// One 1x2 RGB image: pixel 0 red, pixel 1 cyan-ish.
	im := []float32{1, 0, 0, 0.5, 0, 1}
	m, err := Grid{Rows: 1, Cols: 2, Channels: 3}.Render([][]float32{im})
	if err != nil {
		t.Fatal(err)
	}
	rgba, ok := m.(*image.RGBA)
	if !ok {
		t.Fatalf("%T, want *image.RGBA", m)
	}
	if c := rgba.RGBAAt(0, 0); c.R != 255 || c.G != 0 || c.B != 0 {
		t.Errorf("pixel 0 = %v, want red", c)
	}
	if c := rgba.RGBAAt(1, 0); c.R != 0 || c.G != 128 || c.B != 255 {
		t.Errorf("pixel 1 = %v, want (0,128,255)", c)
	}
}

func TestGlyphsOfTheTitlesExist(t *testing.T) {
	reg, ttl, err := faces()
	if err != nil {
		t.Fatal(err)
	}
	// Characters cmd/sample's titles and labels use.
	for _, s := range []string{"z ~ N(0, 1² I) Φ^-1((i+0.5)/20) 0 → 1 q(z|x) ±", "Imputation (hidden pixels in blue)"} {
		for _, f := range []font.Face{reg, ttl} {
			if got := printable(f, s); got != s {
				t.Errorf("%q drawn as %q: a glyph is missing", s, got)
			}
		}
	}
	if got := printable(reg, "x⁻¹"); got != "x?¹" { // Liberation has ¹ but not ⁻
		t.Errorf("missing glyphs: %q, want x?¹", got)
	}
}

// A line drawn again over the same pixels reuses the first drawing; over
// other pixels, or clipped by the page's edge, it is drawn anew. Either way
// a grey page gets the pixels that fresh drawing on an RGBA page gives.
func TestTextsReuseOnlyOverTheSamePixels(t *testing.T) {
	reg, _, err := faces()
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	lh := lineHeight(reg)
	page := image.Rect(0, 0, 200, 4*lh)
	grey := image.NewGray(page)
	rgba := image.NewRGBA(page)
	for y := range page.Dy() {
		for x := range page.Dx() {
			v := uint8(255)
			if x >= 100 {
				v = 96
			}
			grey.Pix[grey.PixOffset(x, y)] = v
			rgba.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	ink := color.RGBA{34, 34, 34, 255}
	cached := newTexts(ink)
	at := []image.Point{{5, 0}, {5, lh}, {110, 0}, {5, 2 * lh}, {-3, 3 * lh}, {110, lh}}
	for _, p := range at {
		cached.draw(grey, reg, "original", p.X, p.Y, lh)
		newTexts(ink).draw(rgba, reg, "original", p.X, p.Y, lh)
	}
	for y := range page.Dy() {
		for x := range page.Dx() {
			if g, c := grey.GrayAt(x, y).Y, rgba.RGBAAt(x, y); g != c.R || c.R != c.G || c.R != c.B {
				t.Fatalf("pixel (%d, %d): grey page %d, RGBA page %v", x, y, g, c)
			}
		}
	}
	if dl := cached.lines[textKey{reg, "original"}]; dl == nil || dl.after == nil {
		t.Error("the line was not remembered")
	}
}

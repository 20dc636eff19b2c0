package imgrid

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// blank returns n black images of size rows x cols.
func blank(n, rows, cols int) [][]float32 {
	imgs := make([][]float32, n)
	for i := range imgs {
		imgs[i] = make([]float32, rows*cols)
	}
	return imgs
}

func readPNG(t *testing.T, path string) *image.Gray {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := m.(*image.Gray)
	if !ok {
		t.Fatalf("decoded %T, want *image.Gray", m)
	}
	return g
}

func asGray(t *testing.T, m image.Image) *image.Gray {
	t.Helper()
	g, ok := m.(*image.Gray)
	if !ok {
		t.Fatalf("rendered %T, want *image.Gray", m)
	}
	return g
}

// assertDirEmpty checks that a failed write left nothing, not even a temp file.
func assertDirEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind %s", e.Name())
	}
}

func TestWritePNGLayout(t *testing.T) {
	const bg = 77
	g := Grid{Rows: 28, Cols: 28, Columns: 5, Pad: 2, Scale: 3, Background: bg}
	imgs := blank(10, 28, 28)
	// Image 7 sits at grid row 1, column 2; light its pixel (row 4, col 9).
	imgs[7][4*28+9] = 1

	path := filepath.Join(t.TempDir(), "grid.png")
	if err := g.WritePNG(path, imgs); err != nil {
		t.Fatal(err)
	}
	m := readPNG(t, path)

	// Padding is not scaled: 5 cells of 28*3 plus 6 pads of 2.
	wantW, wantH := 5*28*3+6*2, 2*28*3+3*2
	if b := m.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
	}

	x0 := 2 + 2*(28*3+2) + 9*3
	y0 := 2 + 1*(28*3+2) + 4*3
	for y := y0 - 1; y <= y0+3; y++ {
		for x := x0 - 1; x <= x0+3; x++ {
			inside := x >= x0 && x < x0+3 && y >= y0 && y < y0+3
			want := uint8(0)
			if inside {
				want = 255
			}
			if got := m.GrayAt(x, y).Y; got != want {
				t.Errorf("pixel (%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
	white := 0
	for _, p := range m.Pix {
		if p == 255 {
			white++
		}
	}
	if white != 9 {
		t.Errorf("%d white pixels, want 9 (one pixel at scale 3)", white)
	}

	// Border, the gap between columns 0 and 1, and the gap between grid rows.
	for _, pt := range []image.Point{{0, 0}, {1, 50}, {wantW - 1, wantH - 1}, {2 + 84, 10}, {2 + 84 + 1, 10}, {10, 2 + 84}, {10, 2 + 84 + 1}} {
		if got := m.GrayAt(pt.X, pt.Y).Y; got != bg {
			t.Errorf("padding at %v = %d, want %d", pt, got, bg)
		}
	}
	// Inside a cell the black image shows, not the background.
	if got := m.GrayAt(2, 2).Y; got != 0 {
		t.Errorf("cell corner = %d, want 0", got)
	}
	// Image 9, the last cell, is drawn too.
	if got := m.GrayAt(2+4*86, 2+86).Y; got != 0 {
		t.Errorf("cell of image 9 = %d, want 0", got)
	}
}

func TestRenderShortLastRowIsBackground(t *testing.T) {
	g := Grid{Rows: 2, Cols: 2, Columns: 3, Pad: 1, Background: 200}
	img, err := g.Render(blank(4, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	m := asGray(t, img)
	// 3 columns, 2 rows: width 3*2+4, height 2*2+3.
	if b := m.Bounds(); b.Dx() != 10 || b.Dy() != 7 {
		t.Fatalf("bounds %v", b)
	}
	// Image 3 is at row 1 col 0 (black); cells (1,1) and (1,2) are empty.
	if got := m.GrayAt(1, 4).Y; got != 0 {
		t.Errorf("image 3 pixel = %d, want 0", got)
	}
	for _, x := range []int{4, 5, 7, 8} {
		if got := m.GrayAt(x, 4).Y; got != 200 {
			t.Errorf("empty cell pixel x=%d = %d, want 200", x, got)
		}
	}
}

func TestDefaultColumnsAndScale(t *testing.T) {
	for _, tc := range []struct{ n, cols, rows int }{
		{1, 1, 1}, {2, 2, 1}, {4, 2, 2}, {5, 3, 2}, {10, 4, 3}, {16, 4, 4}, {17, 5, 4}, {64, 8, 8},
	} {
		m, err := Grid{Rows: 3, Cols: 2}.Render(blank(tc.n, 3, 2))
		if err != nil {
			t.Fatal(err)
		}
		if b := m.Bounds(); b.Dx() != tc.cols*2 || b.Dy() != tc.rows*3 {
			t.Errorf("n=%d: bounds %v, want %dx%d", tc.n, b, tc.cols*2, tc.rows*3)
		}
	}
}

func TestPixelValues(t *testing.T) {
	vals := []float32{-3, 0, 0.5, 1, 7, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0.2}
	want := []uint8{0, 0, 128, 255, 255, 128, 255, 0, 51}
	img, err := Grid{Rows: 1, Cols: len(vals)}.Render([][]float32{vals})
	if err != nil {
		t.Fatal(err)
	}
	m := asGray(t, img)
	for i, w := range want {
		if got := m.GrayAt(i, 0).Y; got != w {
			t.Errorf("value %v drawn as %d, want %d", vals[i], got, w)
		}
	}
}

func TestRowMajorWithinImage(t *testing.T) {
	// A 2x3 image (2 rows, 3 columns): value index 5 is row 1, column 2.
	im := make([]float32, 6)
	im[5] = 1
	img, err := Grid{Rows: 2, Cols: 3}.Render([][]float32{im})
	if err != nil {
		t.Fatal(err)
	}
	m := asGray(t, img)
	if b := m.Bounds(); b.Dx() != 3 || b.Dy() != 2 {
		t.Fatalf("bounds %v, want 3x2", b)
	}
	if m.GrayAt(2, 1).Y != 255 || m.GrayAt(1, 1).Y != 0 || m.GrayAt(2, 0).Y != 0 {
		t.Errorf("pixels %v", m.Pix)
	}
}

func TestWriteRowsPNG(t *testing.T) {
	g := Grid{Rows: 2, Cols: 2, Pad: 1, Scale: 2, Background: 9}
	orig, recon := make([]float32, 4), make([]float32, 4)
	orig[0] = 1  // top-left pixel
	recon[3] = 1 // bottom-right pixel
	rows := [][][]float32{
		{orig, recon},
		{make([]float32, 4)},
		{}, // blank row
	}
	path := filepath.Join(t.TempDir(), "rows.png")
	if err := g.WriteRowsPNG(path, rows); err != nil {
		t.Fatal(err)
	}
	m := readPNG(t, path)
	// Longest row has 2 images: width 2*4+3, height 3*4+4.
	if b := m.Bounds(); b.Dx() != 11 || b.Dy() != 16 {
		t.Fatalf("bounds %v, want 11x16", b)
	}
	checks := []struct {
		x, y int
		want uint8
	}{
		{1, 1, 255}, {2, 2, 255}, {3, 3, 0}, // orig's top-left pixel, scaled
		{8, 3, 255}, {9, 4, 255}, {6, 1, 0}, // recon's bottom-right pixel
		{5, 2, 9},            // gap between the pair
		{1, 6, 0}, {7, 6, 9}, // row 1: one image, then an empty cell
		{1, 11, 9}, {7, 14, 9}, // blank row
	}
	for _, c := range checks {
		if got := m.GrayAt(c.x, c.y).Y; got != c.want {
			t.Errorf("pixel (%d,%d) = %d, want %d", c.x, c.y, got, c.want)
		}
	}
}

func TestErrorsLeaveNoFile(t *testing.T) {
	ok := Grid{Rows: 28, Cols: 28, Pad: 2}
	bad := blank(3, 28, 28)
	bad[2] = make([]float32, 783)
	cases := []struct {
		name  string
		write func(path string) error
		msg   string
	}{
		{"no images", func(p string) error { return ok.WritePNG(p, nil) }, "no images"},
		{"no rows", func(p string) error { return ok.WriteRowsPNG(p, [][][]float32{{}, {}}) }, "no images"},
		{"wrong length", func(p string) error { return ok.WritePNG(p, bad) }, "image 2 has 783 values, want 784"},
		{"wrong length in rows", func(p string) error {
			return ok.WriteRowsPNG(p, [][][]float32{bad[:1], bad[1:]})
		}, "row 1 image 1 has 783 values, want 784"},
		{"zero rows", func(p string) error { return Grid{Cols: 28}.WritePNG(p, bad) }, "must be positive"},
		{"negative cols", func(p string) error { return Grid{Rows: 28, Cols: -1}.WritePNG(p, bad) }, "must be positive"},
		{"negative pad", func(p string) error { return Grid{Rows: 28, Cols: 28, Pad: -1}.WritePNG(p, blank(1, 28, 28)) }, "negative Pad"},
		{"negative scale", func(p string) error { return Grid{Rows: 28, Cols: 28, Scale: -2}.WritePNG(p, blank(1, 28, 28)) }, "negative Scale"},
		{"negative columns", func(p string) error { return Grid{Rows: 28, Cols: 28, Columns: -2}.WritePNG(p, blank(1, 28, 28)) }, "negative Columns"},
		{"too large", func(p string) error { return Grid{Rows: 28, Cols: 28, Scale: 400}.WritePNG(p, blank(1, 28, 28)) }, "exceed"},
		{"overflowing scale", func(p string) error {
			return Grid{Rows: 28, Cols: 28, Scale: math.MaxInt}.WritePNG(p, blank(1, 28, 28))
		}, "exceed"},
		{"overflowing columns", func(p string) error {
			return Grid{Rows: 1, Cols: 1, Columns: math.MaxInt, Pad: math.MaxInt}.WritePNG(p, blank(1, 1, 1))
		}, "exceed"},
		{"missing directory", func(p string) error {
			return ok.WritePNG(filepath.Join(filepath.Dir(p), "nope", "x.png"), blank(1, 28, 28))
		}, "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			err := tc.write(filepath.Join(dir, "out.png"))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want one containing %q", err, tc.msg)
			}
			assertDirEmpty(t, dir)
		})
	}
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grid.png")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (Grid{Rows: 2, Cols: 2}).WritePNG(path, [][]float32{{1}}); err == nil {
		t.Fatal("no error for a short image")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "old" {
		t.Fatalf("old file now %q, %v", b, err)
	}
}

func TestSizeLimit(t *testing.T) {
	// Exactly MaxPixels is allowed; one pixel of padding more is not.
	g := Grid{Rows: 100, Cols: 100, Scale: 10}
	if w, h, err := g.size(10, 10); err != nil || w != 10_000 || h != 10_000 {
		t.Fatalf("size = %d, %d, %v; want 10000, 10000, nil", w, h, err)
	}
	g.Pad = 1
	if _, _, err := g.size(10, 10); err == nil {
		t.Fatal("10011x10011 accepted")
	}
}

package imgrid

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"

	"github.com/govae/govae/internal/atomicfile"
)

// MaxPixels bounds the size of a rendered grid. A mistake such as a huge
// Scale or image count should fail fast instead of allocating gigabytes.
const MaxPixels = 100_000_000

// nanGray is the level used for NaN inputs.
const nanGray = 128

// Grid describes a layout of equally sized grey or colour images.
//
// Padding is not scaled: Pad is in output pixels, so a grid of n columns is
// Columns*Cols*Scale + (Columns+1)*Pad pixels wide, and likewise in height.
// That keeps thin separators thin when images are enlarged.
type Grid struct {
	Rows, Cols int   // size of one image in pixels (28x28 for MNIST); images are row-major, Cols values per row
	Channels   int   // 1 (or 0): grey; 3: RGB, channel-major (all red values, then green, then blue)
	Columns    int   // images per grid row for Render; 0 means ceil(sqrt(n)); ignored by RenderRows
	Pad        int   // output pixels between cells and around the border; 0 allowed
	Scale      int   // each input pixel becomes Scale x Scale output pixels; 0 means 1
	Background uint8 // gray level of the padding and of empty cells
}

// Render lays out images row-major, Columns per grid row. The grid is always
// Columns cells wide, even if the last row is short or n < Columns, so grids
// drawn with the same Grid line up; unused cells are Background.
//
// The result is an *image.Gray for grey images and an *image.RGBA for colour.
func (g Grid) Render(images [][]float32) (image.Image, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	n := len(images)
	if n == 0 {
		return nil, errors.New("imgrid: no images")
	}
	cols := g.Columns
	if cols == 0 {
		cols = ceilSqrt(n)
	}
	rows := make([][][]float32, 0, (n-1)/cols+1)
	for i := 0; i < n; i += cols {
		rows = append(rows, images[i:min(i+cols, n)])
	}
	return g.render(rows, cols, func(r, c int) string {
		return fmt.Sprintf("image %d", r*cols+c)
	})
}

// RenderRows lays out rows of images, one inner slice per grid row, for
// layouts whose rows mean something (original / masked / imputed, or image
// beside reconstruction). Rows may differ in length: the width is that of the
// longest row and short rows are filled with Background. An empty inner
// slice yields a blank row. Columns is ignored.
func (g Grid) RenderRows(rows [][][]float32) (image.Image, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	cols := 0
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return nil, errors.New("imgrid: no images")
	}
	return g.render(rows, cols, func(r, c int) string {
		return fmt.Sprintf("row %d image %d", r, c)
	})
}

// WritePNG renders images as Render does and writes the PNG atomically to
// path. Layout errors are reported before path is touched, and a failed write
// leaves neither a partial file nor a temporary one.
func (g Grid) WritePNG(path string, images [][]float32) error {
	img, err := g.Render(images)
	if err != nil {
		return err
	}
	return writePNG(path, img)
}

// WriteRowsPNG is WritePNG for the layout of RenderRows.
func (g Grid) WriteRowsPNG(path string, rows [][][]float32) error {
	img, err := g.RenderRows(rows)
	if err != nil {
		return err
	}
	return writePNG(path, img)
}

// fastPNG is the size, in pixels, from which pictures are encoded for
// speed rather than size: on a 10,000-image picture image/png's default
// took 60% of the tool's time, more than the model's passes, for files
// 20-30% smaller. A 64-image picture is about 0.3 megapixels.
const fastPNG = 1 << 22

var fastEncoder = png.Encoder{CompressionLevel: png.BestSpeed}

func writePNG(path string, img image.Image) error {
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		b := img.Bounds()
		if b.Dx()*b.Dy() < fastPNG {
			return png.Encode(w, img)
		}
		if g, ok := img.(*image.Gray); ok {
			return encodeGray(w, g)
		}
		return fastEncoder.Encode(w, img)
	})
	if err != nil {
		return fmt.Errorf("imgrid: writing %s: %w", path, err)
	}
	return nil
}

func (g Grid) check() error {
	switch {
	case g.Rows <= 0 || g.Cols <= 0:
		return fmt.Errorf("imgrid: image size %dx%d must be positive", g.Rows, g.Cols)
	case g.Columns < 0:
		return fmt.Errorf("imgrid: negative Columns %d", g.Columns)
	case g.Pad < 0:
		return fmt.Errorf("imgrid: negative Pad %d", g.Pad)
	case g.Scale < 0:
		return fmt.Errorf("imgrid: negative Scale %d", g.Scale)
	case g.Channels != 0 && g.Channels != 1 && g.Channels != 3:
		return fmt.Errorf("imgrid: %d channels, want 1 (grey) or 3 (RGB)", g.Channels)
	}
	return nil
}

func (g Grid) channels() int {
	if g.Channels == 0 {
		return 1
	}
	return g.Channels
}

func (g Grid) scale() int {
	if g.Scale == 0 {
		return 1
	}
	return g.Scale
}

// render draws rows of images in a grid cols cells wide. name identifies the
// image at grid position (r, c) in error messages.
func (g Grid) render(rows [][][]float32, cols int, name func(r, c int) string) (image.Image, error) {
	width, height, err := g.size(len(rows), cols)
	if err != nil {
		return nil, err
	}
	if err := g.checkLengths(rows, name); err != nil {
		return nil, err
	}
	rect := image.Rect(0, 0, width, height)
	var img image.Image
	if g.channels() == 1 {
		m := image.NewGray(rect)
		fillGray(m.Pix, g.Background)
		img = m
	} else {
		m := image.NewRGBA(rect)
		fillRGBA(m.Pix, g.Background, g.Background, g.Background)
		img = m
	}
	g.drawRows(img, 0, 0, rows, nil)
	return img, nil
}

// checkLengths reports the first image whose length is not Channels*Rows*Cols.
func (g Grid) checkLengths(rows [][][]float32, name func(r, c int) string) error {
	want := g.channels() * g.Rows * g.Cols // cannot overflow: bounded by size
	for r, row := range rows {
		for c, im := range row {
			if len(im) != want {
				shape := fmt.Sprintf("%dx%d", g.Rows, g.Cols)
				if g.channels() == 3 {
					shape = "3x" + shape
				}
				return fmt.Errorf("imgrid: %s has %d values, want %d (%s)", name(r, c), len(im), want, shape)
			}
		}
	}
	return nil
}

func fillGray(pix []uint8, v uint8) {
	if len(pix) > 0 {
		pix[0] = v
		repeat(pix, 1)
	}
}

func fillRGBA(pix []uint8, r, g, b uint8) {
	if len(pix) >= 4 {
		pix[0], pix[1], pix[2], pix[3] = r, g, b, 255
		repeat(pix, 4)
	}
}

// repeat fills pix with copies of its first n bytes, doubling the filled
// part at each copy: memmove speed where a loop over bytes was a tenth of
// drawing a large picture.
func repeat(pix []uint8, n int) {
	for n < len(pix) {
		n += copy(pix[n:], pix[:n])
	}
}

// drawRows paints rows of cells with their top-left padding corner at
// (x0, y0) of dst, an *image.Gray (grey images only) or an *image.RGBA.
// hidden, when not nil, parallels rows: pixels marked true are painted
// HiddenColor instead of their value.
func (g Grid) drawRows(dst image.Image, x0, y0 int, rows [][][]float32, hidden [][][]bool) {
	s := g.scale()
	cellW, cellH := g.Cols*s, g.Rows*s
	for r, row := range rows {
		y := y0 + g.Pad + r*(cellH+g.Pad)
		for c, im := range row {
			x := x0 + g.Pad + c*(cellW+g.Pad)
			var h []bool
			if hidden != nil && r < len(hidden) && c < len(hidden[r]) {
				h = hidden[r][c]
			}
			g.paint(dst, x, y, im, h)
		}
	}
}

// HiddenColor marks pixels a picture hides (the masked row of impute): a
// blue that no grey level matches.
var HiddenColor = [3]uint8{70, 120, 210}

// paint draws one image with its top-left pixel at (x0, y0), each pixel as
// an s x s square of exactly its value.
func (g Grid) paint(dst image.Image, x0, y0 int, im []float32, hidden []bool) {
	s := g.scale()
	cellW := g.Cols * s
	plane := g.Rows * g.Cols
	switch d := dst.(type) {
	case *image.Gray:
		line := make([]uint8, cellW) // one scaled image row, copied s times
		for y := 0; y < g.Rows; y++ {
			for x, v := range im[y*g.Cols : (y+1)*g.Cols] {
				p := gray(v)
				for k := range s {
					line[x*s+k] = p
				}
			}
			for k := range s {
				off := d.PixOffset(x0, y0+y*s+k)
				copy(d.Pix[off:off+cellW], line)
			}
		}
	case *image.RGBA:
		line := make([]uint8, 4*cellW)
		color3 := g.channels() == 3
		for y := 0; y < g.Rows; y++ {
			for x := 0; x < g.Cols; x++ {
				j := y*g.Cols + x
				var r, gr, b uint8
				switch {
				case hidden != nil && (hidden[j] || len(hidden) > plane && (hidden[plane+j] || hidden[2*plane+j])):
					r, gr, b = HiddenColor[0], HiddenColor[1], HiddenColor[2]
				case color3:
					r, gr, b = gray(im[j]), gray(im[plane+j]), gray(im[2*plane+j])
				default:
					r = gray(im[j])
					gr, b = r, r
				}
				for k := range s {
					o := 4 * (x*s + k)
					line[o], line[o+1], line[o+2], line[o+3] = r, gr, b, 255
				}
			}
			for k := range s {
				off := d.PixOffset(x0, y0+y*s+k)
				copy(d.Pix[off:off+4*cellW], line)
			}
		}
	}
}

// size returns the pixel size of a grid of nr x nc cells, or an error if it
// exceeds MaxPixels. It is computed saturating so that absurd inputs report
// "too large" instead of overflowing into a small or negative size.
func (g Grid) size(nr, nc int) (width, height int, err error) {
	s := g.scale()
	nr, nc = min(nr, sat), min(nc, sat)
	cellW, cellH := mulSat(g.Cols, s), mulSat(g.Rows, s)
	width = addSat(mulSat(nc, cellW), mulSat(nc+1, g.Pad))
	height = addSat(mulSat(nr, cellH), mulSat(nr+1, g.Pad))
	if mulSat(width, height) > MaxPixels {
		return 0, 0, fmt.Errorf("imgrid: %d rows of %d images of %dx%d at scale %d exceed %d pixels",
			nr, nc, g.Rows, g.Cols, s, MaxPixels)
	}
	return width, height, nil
}

// gray maps [0,1] to 0..255, clamping out-of-range values.
func gray(v float32) uint8 {
	switch {
	case v != v:
		return nanGray
	case v <= 0:
		return 0
	case v >= 1:
		return 255
	}
	return uint8(v*255 + 0.5)
}

func ceilSqrt(n int) int {
	c := int(math.Ceil(math.Sqrt(float64(n))))
	// Correct float rounding for large n.
	for c*c < n {
		c++
	}
	for c > 1 && (c-1)*(c-1) >= n {
		c--
	}
	return c
}

// sat is above MaxPixels, and twice it fits even a 32-bit int, so saturated
// sizes compare as too large and can still be added without overflow.
const sat = 1 << 29

// mulSat multiplies non-negative a and b, saturating at sat.
func mulSat(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a >= sat || b >= sat || a > sat/b {
		return sat
	}
	return a * b
}

func addSat(a, b int) int {
	return min(a+b, sat) // operands come from mulSat, at most sat, so a+b cannot overflow
}

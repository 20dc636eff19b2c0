package imgrid

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"slices"
	"strings"
	"sync"

	"codeberg.org/go-fonts/liberation/liberationsansbold"
	"codeberg.org/go-fonts/liberation/liberationsansregular"
	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Figure is a grid of images that explains itself: a title, labelled rows
// in blocks, and optionally tick labels under the columns and axis titles,
// drawn in Liberation Sans (the font of gonum/plot) on a white page.
//
// Image cells are drawn exactly as Grid draws them (each pixel an integer
// Scale x Scale square of its value), so labels never resample the images.
type Figure struct {
	Grid          // cell size, channels, scale, padding and the colour between cells; Columns is ignored
	Title  string // may hold several lines separated by \n
	Blocks []Block
	// XTicks, when not empty, label the columns of the last block (one per
	// column; "" leaves a column unlabelled), and XLabel is written under
	// them. YLabel is written vertically, left of the row labels.
	XTicks         []string
	XLabel, YLabel string
}

// Block is a group of rows that belong together, such as test images above
// their reconstructions; blocks are drawn a little apart.
type Block struct {
	Rows []Row
}

// Row is one row of images with a label drawn on its left ("" for none).
// Hidden, when not nil, has one mask per image (nil for none), of Rows*Cols
// pixels or of Channels*Rows*Cols values: pixels marked true (in any
// channel) are drawn in HiddenColor instead of their value.
type Row struct {
	Label  string
	Images [][]float32
	Hidden [][]bool
}

// Text sizes in output pixels: readable at 100% zoom whatever the Scale.
const (
	titleSize = 17
	labelSize = 14
	margin    = 10 // around the figure
	gap       = 8  // between text and images, and between blocks
)

var (
	fontsOnce             sync.Once
	regularFont, boldFont *opentype.Font
	fontErr               error
)

func faces() (regular, title font.Face, err error) {
	fontsOnce.Do(func() {
		if regularFont, fontErr = opentype.Parse(liberationsansregular.TTF); fontErr != nil {
			return
		}
		boldFont, fontErr = opentype.Parse(liberationsansbold.TTF)
	})
	if fontErr != nil {
		return nil, nil, fmt.Errorf("imgrid: font: %w", fontErr)
	}
	// Faces cache glyphs and are not safe for concurrent use: one per render.
	regular, err = opentype.NewFace(regularFont, &opentype.FaceOptions{Size: labelSize, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, nil, err
	}
	title, err = opentype.NewFace(boldFont, &opentype.FaceOptions{Size: titleSize, DPI: 72, Hinting: font.HintingFull})
	return regular, title, err
}

// textSize is the width of the widest line of s and the number of lines.
func textSize(f font.Face, s string) (w, lines int) {
	if s == "" {
		return 0, 0
	}
	for l := range strings.SplitSeq(printable(f, s), "\n") {
		w = max(w, font.MeasureString(f, l).Ceil())
		lines++
	}
	return w, lines
}

// printable replaces the runes the font has no glyph for by '?', which
// reads better than the font's empty box.
func printable(f font.Face, s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if _, ok := f.GlyphAdvance(r); !ok {
			return '?'
		}
		return r
	}, s)
}

func lineHeight(f font.Face) int {
	m := f.Metrics()
	return (m.Ascent + m.Descent).Ceil() + 2
}

// Render draws the figure. Text is grey on white; the result is RGBA so
// that colour images and hidden pixels keep their colour.
func (f Figure) Render() (*image.RGBA, error) {
	img, err := f.render(false)
	if err != nil {
		return nil, err
	}
	return img.(*image.RGBA), nil
}

// render draws the figure on an *image.Gray page when grey is true (the
// caller knows every pixel is grey: see isGrey) and on an *image.RGBA one
// otherwise. Both hold the same pixels: a grey page is a quarter of the
// memory to fill, paint and encode.
func (f Figure) render(grey bool) (draw.Image, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if len(f.Blocks) == 0 {
		return nil, errors.New("imgrid: figure has no blocks")
	}
	cols := 0
	for b, blk := range f.Blocks {
		rows := make([][][]float32, len(blk.Rows))
		for r, row := range blk.Rows {
			rows[r] = row.Images
			cols = max(cols, len(row.Images))
			if row.Hidden != nil && len(row.Hidden) != len(row.Images) {
				return nil, fmt.Errorf("imgrid: block %d row %d has %d images and %d masks", b, r, len(row.Images), len(row.Hidden))
			}
			for c, h := range row.Hidden {
				if h != nil && len(h) != f.Rows*f.Cols && len(h) != f.channels()*f.Rows*f.Cols {
					return nil, fmt.Errorf("imgrid: block %d row %d image %d: mask of %d pixels, want %d", b, r, c, len(h), f.Rows*f.Cols)
				}
			}
		}
		if err := f.checkLengths(rows, func(r, c int) string { return fmt.Sprintf("block %d row %d image %d", b, r, c) }); err != nil {
			return nil, err
		}
	}
	if cols == 0 {
		return nil, errors.New("imgrid: no images")
	}
	if len(f.XTicks) > cols {
		return nil, fmt.Errorf("imgrid: %d tick labels for %d columns", len(f.XTicks), cols)
	}
	reg, ttl, err := faces()
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	defer ttl.Close()
	lh, th := lineHeight(reg), lineHeight(ttl)
	tx := newTexts(color.RGBA{34, 34, 34, 255})

	// Horizontal layout: margin, vertical axis title, row labels, grid, margin.
	gridW, _, err := f.size(1, cols)
	if err != nil {
		return nil, err
	}
	s := f.scale()
	cellW, cellH := f.Cols*s, f.Rows*s
	labelW := 0
	for _, blk := range f.Blocks {
		for _, row := range blk.Rows {
			w, _ := tx.size(reg, row.Label)
			labelW = max(labelW, w)
		}
	}
	yLabelW := 0
	if f.YLabel != "" {
		yLabelW = lh + gap
	}
	if labelW > 0 {
		labelW += gap
	}
	gridX := margin + yLabelW + labelW
	titleW, titleLines := textSize(ttl, f.Title)
	xLabelW, _ := textSize(reg, f.XLabel)
	width := max(gridX+gridW+margin, margin+titleW+margin, gridX+xLabelW+margin)

	// Vertical layout: margin, title, blocks, ticks, axis title, margin.
	y := margin
	titleY := y
	if titleLines > 0 {
		y += titleLines*th + gap/2
	}
	blockY := make([]int, len(f.Blocks))
	for b, blk := range f.Blocks {
		if b > 0 {
			y += gap
		}
		blockY[b] = y
		_, h, err := f.size(len(blk.Rows), cols)
		if err != nil {
			return nil, err
		}
		y += h
	}
	ticksY := y
	if len(f.XTicks) > 0 {
		y += lh
	}
	xLabelY := y
	if f.XLabel != "" {
		y += lh
	}
	height := y + margin
	if w, h := int64(width), int64(height); w*h > MaxPixels {
		return nil, fmt.Errorf("imgrid: a figure of %dx%d pixels exceeds %d", width, height, MaxPixels)
	}

	var img draw.Image
	if grey {
		m := image.NewGray(image.Rect(0, 0, width, height))
		fillGray(m.Pix, 255)
		img = m
	} else {
		m := image.NewRGBA(image.Rect(0, 0, width, height))
		fillRGBA(m.Pix, 255, 255, 255)
		img = m
	}
	tx.draw(img, ttl, f.Title, margin, titleY, th)
	type cellRow struct {
		y0  int // top of its padding
		row Row
	}
	var cells []cellRow
	for b, blk := range f.Blocks {
		for r, row := range blk.Rows {
			// The padding colour spans a row's own cells only, so that the
			// missing cells of a short row read as empty page.
			y0 := blockY[b] + r*(cellH+f.Pad)
			if n := len(row.Images); n > 0 {
				fillRect(img, image.Rect(gridX, y0, gridX+f.Pad+n*(cellW+f.Pad), y0+cellH+2*f.Pad), f.Background)
			}
			if row.Label != "" {
				w, n := tx.size(reg, row.Label)
				cy := blockY[b] + f.Pad + r*(cellH+f.Pad) + cellH/2
				tx.draw(img, reg, row.Label, gridX-gap-w, cy-n*lh/2, lh) // right-aligned beside its row
			}
			cells = append(cells, cellRow{y0, row})
		}
	}
	// Rows of cells do not overlap (nor the labels, left of the grid): they
	// are painted on all cores.
	parallel(len(cells), func(i int) {
		f.drawRows(img, gridX, cells[i].y0, [][][]float32{cells[i].row.Images}, [][][]bool{cells[i].row.Hidden})
	})
	if len(f.XTicks) > 0 {
		// Thin the ticks until neighbours cannot touch.
		widest := 0
		for _, t := range f.XTicks {
			w, _ := tx.size(reg, t)
			widest = max(widest, w)
		}
		step := 1
		for step*(cellW+f.Pad) < widest+gap {
			step++
		}
		for c, t := range f.XTicks {
			if c%step != 0 && c != len(f.XTicks)-1 || t == "" {
				continue
			}
			if c == len(f.XTicks)-1 && c%step != 0 && (c%step)*(cellW+f.Pad) < widest+gap {
				continue // the last tick would touch the one before it
			}
			w, _ := tx.size(reg, t)
			cx := gridX + f.Pad + c*(cellW+f.Pad) + cellW/2
			tx.draw(img, reg, t, cx-w/2, ticksY+2, lh)
		}
	}
	if f.XLabel != "" {
		tx.draw(img, reg, f.XLabel, gridX+(gridW-xLabelW)/2, xLabelY+2, lh)
	}
	if f.YLabel != "" {
		top := blockY[0]
		bottom := ticksY
		drawVertical(img, reg, f.YLabel, margin, (top+bottom)/2, lh, tx.ink)
	}
	return img, nil
}

// WritePNG renders the figure and writes it atomically to path, as an 8-bit
// grey PNG when every pixel is grey and as RGB otherwise.
func (f Figure) WritePNG(path string) error {
	img, err := f.render(f.isGrey())
	if err != nil {
		return err
	}
	if rgba, ok := img.(*image.RGBA); ok {
		img = compact(rgba) // colour images may still all be grey
	}
	return writePNG(path, img)
}

// isGrey reports whether every pixel of the figure will be grey: its images
// are grey and no pixel is hidden (HiddenColor is blue). The text is grey.
func (f Figure) isGrey() bool {
	if f.channels() != 1 {
		return false
	}
	for _, blk := range f.Blocks {
		for _, row := range blk.Rows {
			for _, h := range row.Hidden {
				if slices.Contains(h, true) {
					return false
				}
			}
		}
	}
	return true
}

// compact returns img as *image.Gray when all its pixels are grey, which
// makes the file about three times smaller.
func compact(img *image.RGBA) draw.Image {
	p := img.Pix
	for i := 0; i < len(p); i += 4 {
		if p[i] != p[i+1] || p[i] != p[i+2] {
			return img
		}
	}
	g := image.NewGray(img.Rect)
	for i := range g.Pix {
		g.Pix[i] = p[4*i]
	}
	return g
}

func fillRect(img draw.Image, r image.Rectangle, v uint8) {
	switch d := img.(type) {
	case *image.Gray:
		r = r.Intersect(d.Rect)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			fillGray(d.Pix[d.PixOffset(r.Min.X, y):d.PixOffset(r.Max.X, y)], v)
		}
	case *image.RGBA:
		r = r.Intersect(d.Rect)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			fillRGBA(d.Pix[d.PixOffset(r.Min.X, y):d.PixOffset(r.Max.X, y)], v, v, v)
		}
	}
}

// texts draws the lines of text of one figure, remembering the pixels of
// each line it draws: row labels repeat on every block ("original",
// "reconstruction"), and rasterizing their glyphs anew was most of a
// 10,000-image picture's drawing time.
type texts struct {
	ink   color.RGBA // grey: R = G = B
	sizes map[textKey][2]int
	lines map[textKey]*drawnLine
}

type textKey struct {
	face font.Face
	s    string
}

// drawnLine is a line of text drawn at a dot: the box its glyphs fall in,
// relative to the dot, and the RGBA pixels of that box before and after
// the line was last drawn. Drawing it again over the same pixels gives the
// same pixels: glyph blending is per pixel, and the dot is always on whole
// pixels.
type drawnLine struct {
	box           image.Rectangle
	before, after []uint8
}

func newTexts(ink color.RGBA) *texts {
	return &texts{ink: ink, sizes: map[textKey][2]int{}, lines: map[textKey]*drawnLine{}}
}

// size is textSize, remembered.
func (t *texts) size(f font.Face, s string) (w, lines int) {
	k := textKey{f, s}
	v, ok := t.sizes[k]
	if !ok {
		v[0], v[1] = textSize(f, s)
		t.sizes[k] = v
	}
	return v[0], v[1]
}

// draw writes the lines of s with the top of the first at y, on a grey
// page (*image.Gray) or a colour one (*image.RGBA).
//
// Each line is drawn into an RGBA copy of its box and copied back: a grey
// page then gets exactly the pixels of an RGBA one (draw's blending into
// *image.Gray rounds differently), and the copy is what a line drawn again
// over the same pixels reuses.
func (t *texts) draw(img draw.Image, f font.Face, s string, x, y, lh int) {
	if s == "" {
		return
	}
	s = printable(f, s)
	asc := f.Metrics().Ascent.Ceil()
	for i, l := range strings.Split(s, "\n") {
		dot := image.Pt(x, y+i*lh+asc)
		k := textKey{f, l}
		dl := t.lines[k]
		if dl == nil {
			b, _ := font.BoundString(f, l)
			dl = &drawnLine{box: image.Rect(b.Min.X.Floor(), b.Min.Y.Floor(), b.Max.X.Ceil(), b.Max.Y.Ceil()).Inset(-textSlack)}
			t.lines[k] = dl
		}
		box := dl.box.Add(dot)
		clipped := box.Intersect(img.Bounds())
		if clipped.Empty() {
			continue
		}
		scratch := image.NewRGBA(clipped)
		copyBox(scratch, img, clipped, false)
		if clipped == box && dl.after != nil && bytes.Equal(scratch.Pix, dl.before) {
			copy(scratch.Pix, dl.after)
		} else {
			before := slices.Clone(scratch.Pix)
			d := font.Drawer{Dst: scratch, Src: image.NewUniform(t.ink), Face: f, Dot: fixed.P(dot.X, dot.Y)}
			d.DrawString(l)
			if clipped == box {
				dl.before, dl.after = before, slices.Clone(scratch.Pix)
			}
		}
		copyBox(scratch, img, clipped, true)
	}
}

// copyBox copies the pixels of box from page to scratch, or back when back
// is true. Grey pixels become R = G = B; back from RGBA they keep R, which
// grey ink blended on grey leaves equal to G and B.
func copyBox(scratch *image.RGBA, page draw.Image, box image.Rectangle, back bool) {
	w := box.Dx()
	for y := box.Min.Y; y < box.Max.Y; y++ {
		p := scratch.Pix[scratch.PixOffset(box.Min.X, y):][:4*w]
		switch d := page.(type) {
		case *image.Gray:
			row := d.Pix[d.PixOffset(box.Min.X, y):][:w]
			for k := range row {
				if back {
					row[k] = p[4*k]
				} else {
					p[4*k], p[4*k+1], p[4*k+2], p[4*k+3] = row[k], row[k], row[k], 255
				}
			}
		case *image.RGBA:
			row := d.Pix[d.PixOffset(box.Min.X, y):][:4*w]
			if back {
				copy(row, p)
			} else {
				copy(p, row)
			}
		}
	}
}

// textSlack is a margin, in pixels, around a line's bounding box for
// glyph masks that round outwards.
const textSlack = 4

// drawVertical writes one line of s rotated a quarter turn anticlockwise
// (read bottom to top), its left edge at x and centred vertically on cy.
// The text is drawn upright into a mask and transposed, an exact rotation.
func drawVertical(img draw.Image, f font.Face, s string, x, cy, lh int, c color.RGBA) {
	s = printable(f, s)
	w := font.MeasureString(f, s).Ceil()
	mask := image.NewAlpha(image.Rect(0, 0, w, lh))
	d := font.Drawer{Dst: mask, Src: image.Opaque, Face: f, Dot: fixed.P(0, f.Metrics().Ascent.Ceil())}
	d.DrawString(s)
	// Mask pixel (u, v) goes to (x + v, cy + w/2 - 1 - u).
	for v := range lh {
		for u := range w {
			a := mask.Pix[mask.PixOffset(u, v)]
			if a == 0 {
				continue
			}
			px, py := x+v, cy+w/2-1-u
			if !(image.Point{px, py}.In(img.Bounds())) {
				continue
			}
			switch d := img.(type) {
			case *image.Gray:
				o := d.PixOffset(px, py)
				d.Pix[o] = blend1(d.Pix[o], c.R, a) // grey ink: R = G = B
			case *image.RGBA:
				o := d.PixOffset(px, py)
				blend(d.Pix[o:o+4], c, a)
			}
		}
	}
}

func blend(p []uint8, c color.RGBA, a uint8) {
	for k, v := range [3]uint8{c.R, c.G, c.B} {
		p[k] = blend1(p[k], v, a)
	}
}

// blend1 is p under v at opacity a/255.
func blend1(p, v, a uint8) uint8 {
	return uint8((uint32(p)*uint32(255-a) + uint32(v)*uint32(a) + 127) / 255)
}

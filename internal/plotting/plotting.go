package plotting

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"

	"github.com/govae/govae/internal/atomicfile"
	"github.com/govae/govae/internal/imgrid"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DPI is the resolution of a plot at scale 1.
const DPI = vgimg.DefaultDPI

// Palette holds the colours given to groups and series, in order: the ten
// "Tableau 10" colours, chosen to stay distinct from one another.
var Palette = []color.RGBA{
	{31, 119, 180, 255},  // blue
	{255, 127, 14, 255},  // orange
	{44, 160, 44, 255},   // green
	{214, 39, 40, 255},   // red
	{148, 103, 189, 255}, // purple
	{140, 86, 75, 255},   // brown
	{227, 119, 194, 255}, // pink
	{127, 127, 127, 255}, // grey
	{188, 189, 34, 255},  // olive
	{23, 190, 207, 255},  // cyan
}

// Scatter is a scatter plot of points in labelled groups, coloured by group,
// with the legend beside the axes so that it hides no point.
type Scatter struct {
	Title, XLabel, YLabel string
	X, Y                  []float64
	Group                 []int    // per point, an index into Names
	Names                 []string // legend entries, at most len(Palette)
	// Width and Height are the size in inches at scale 1; 0 means 7 x 6.
	Width, Height float64
}

// WritePNG draws the plot at DPI*scale dots per inch and writes it to path.
func (s Scatter) WritePNG(path string, scale int) error {
	n := len(s.X)
	switch {
	case n == 0:
		return errors.New("plotting: scatter has no points")
	case len(s.Y) != n || len(s.Group) != n:
		return fmt.Errorf("plotting: scatter has %d x, %d y and %d groups, want as many of each", n, len(s.Y), len(s.Group))
	case len(s.Names) > len(Palette):
		return fmt.Errorf("plotting: %d groups, at most %d colours", len(s.Names), len(Palette))
	}
	for i, g := range s.Group {
		if g < 0 || g >= len(s.Names) {
			return fmt.Errorf("plotting: point %d is in group %d, want 0 to %d", i, g, len(s.Names)-1)
		}
	}
	xys := make(plotter.XYs, n)
	for i := range xys {
		xys[i].X, xys[i].Y = s.X[i], s.Y[i]
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	// One scatter in the data's order, not one per group, so that no group
	// is drawn entirely on top of the others.
	sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
		c := Palette[s.Group[i]]
		// Translucent, so that dense regions show their mixture of groups.
		return draw.GlyphStyle{Color: color.NRGBA{c.R, c.G, c.B, 170}, Radius: vg.Points(1.3), Shape: draw.CircleGlyph{}}
	}
	p := newPlot(s.Title, s.XLabel, s.YLabel)
	p.Add(plotter.NewGrid(), sc)

	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	for g, name := range s.Names {
		leg.Add(name, glyphThumb{draw.GlyphStyle{Color: Palette[g], Radius: vg.Points(4), Shape: draw.CircleGlyph{}}})
	}
	w, h := orDefault(s.Width, 7), orDefault(s.Height, 6)
	return render(path, w, h, scale, func(dc draw.Canvas) {
		area, legArea := splitLegend(dc, &leg)
		p.Draw(area)
		drawLegend(legArea, p, area, &leg)
	})
}

// Series is one curve: points joined by a line, each point marked, or with
// Thin a thin translucent line without marks (per-step values under
// per-epoch points).
type Series struct {
	Name string
	X, Y []float64
	Thin bool
}

// Panel is one plot of several series.
type Panel struct {
	Title, XLabel, YLabel string
	Series                []Series
}

// Panels is a row of plots sharing one legend: series of the same name get
// the same colour in every panel and one legend entry.
type Panels struct {
	Panels []Panel
	// Width and Height are the size in inches at scale 1; 0 means 4.5
	// inches per panel by 4.
	Width, Height float64
}

// WritePNG draws the panels at DPI*scale dots per inch and writes them to path.
func (ps Panels) WritePNG(path string, scale int) error {
	if len(ps.Panels) == 0 {
		return errors.New("plotting: no panels")
	}
	var names []string
	thin := map[string]bool{}
	index := map[string]int{}
	plots := make([]*plot.Plot, len(ps.Panels))
	for i, pn := range ps.Panels {
		if len(pn.Series) == 0 {
			return fmt.Errorf("plotting: panel %q has no series", pn.Title)
		}
		p := newPlot(pn.Title, pn.XLabel, pn.YLabel)
		p.Add(plotter.NewGrid())
		for _, s := range pn.Series {
			k, ok := index[s.Name]
			if !ok {
				k = len(names)
				if k == len(Palette) {
					return fmt.Errorf("plotting: more than %d series names", len(Palette))
				}
				index[s.Name] = k
				names = append(names, s.Name)
				thin[s.Name] = s.Thin
			}
			if len(s.X) != len(s.Y) || len(s.X) == 0 {
				return fmt.Errorf("plotting: series %q in panel %q has %d x and %d y, want as many and at least one", s.Name, pn.Title, len(s.X), len(s.Y))
			}
			xys := make(plotter.XYs, len(s.X))
			for j := range xys {
				xys[j].X, xys[j].Y = s.X[j], s.Y[j]
			}
			if s.Thin {
				line, err := plotter.NewLine(xys)
				if err != nil {
					return fmt.Errorf("plotting: series %q in panel %q: %w", s.Name, pn.Title, err)
				}
				c := Palette[k]
				line.Color = color.NRGBA{c.R, c.G, c.B, 150}
				line.Width = vg.Points(0.6)
				p.Add(line)
				continue
			}
			line, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("plotting: series %q in panel %q: %w", s.Name, pn.Title, err)
			}
			line.Color = Palette[k]
			line.Width = vg.Points(1.5)
			pts.Color = Palette[k]
			pts.Radius = vg.Points(2.5)
			pts.Shape = draw.CircleGlyph{}
			p.Add(line, pts)
		}
		plots[i] = p
	}
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	for k, name := range names {
		leg.Add(name, lineThumb{Palette[k], thin[name]})
	}
	w, h := orDefault(ps.Width, 4.5*float64(len(plots))), orDefault(ps.Height, 4)
	return render(path, w, h, scale, func(dc draw.Canvas) {
		area, legArea := splitLegend(dc, &leg)
		tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(18), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4)}
		cells := plot.Align([][]*plot.Plot{plots}, tiles, area)
		for i, p := range plots {
			p.Draw(cells[0][i])
		}
		drawLegend(legArea, plots[0], cells[0][0], &leg)
	})
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	return p
}

// splitLegend divides dc into the plot area and a strip on the right wide
// enough for leg.
func splitLegend(dc draw.Canvas, leg *plot.Legend) (area, strip draw.Canvas) {
	w := leg.Rectangle(dc).Size().X + vg.Points(16)
	return draw.Crop(dc, 0, -w, 0, 0), draw.Crop(dc, dc.Size().X-w, 0, 0, 0)
}

// drawLegend draws leg in strip, its top level with the top of p's data
// area as drawn on c.
func drawLegend(strip draw.Canvas, p *plot.Plot, c draw.Canvas, leg *plot.Legend) {
	top := p.DataCanvas(c).Max.Y
	leg.Draw(draw.Crop(strip, vg.Points(6), 0, 0, top-strip.Max.Y))
}

// render draws onto a w x h inch canvas at DPI*scale and writes the PNG
// atomically.
func render(path string, w, h float64, scale int, drawFn func(draw.Canvas)) error {
	if scale < 1 {
		return fmt.Errorf("plotting: scale %d, want >= 1", scale)
	}
	dpi := DPI * scale
	if px := w * h * float64(dpi) * float64(dpi); px > imgrid.MaxPixels || math.IsNaN(px) {
		return fmt.Errorf("plotting: %gx%g inches at %d dpi exceed %d pixels", w, h, dpi, imgrid.MaxPixels)
	}
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch), vgimg.UseDPI(dpi))
	drawFn(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return fmt.Errorf("plotting: encoding %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plotting: writing %s: %w", path, err)
	}
	return nil
}

func orDefault(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// glyphThumb is a legend thumbnail showing one enlarged glyph, since the
// plot's own points are too small to read in a legend.
type glyphThumb struct{ sty draw.GlyphStyle }

func (g glyphThumb) Thumbnail(c *draw.Canvas) { c.DrawGlyph(g.sty, c.Center()) }

// lineThumb is a legend thumbnail of a line with a point on it.
type lineThumb struct {
	c    color.Color
	thin bool
}

func (l lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	if l.thin {
		c.StrokeLine2(draw.LineStyle{Color: l.c, Width: vg.Points(0.8)}, c.Min.X, y, c.Max.X, y)
		return
	}
	c.StrokeLine2(draw.LineStyle{Color: l.c, Width: vg.Points(1.5)}, c.Min.X, y, c.Max.X, y)
	c.DrawGlyph(draw.GlyphStyle{Color: l.c, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}, c.Center())
}

package main

import (
	"bytes"
	"errors"
	"image/color"
	"math"

	"github.com/govae/govae/internal/atomicfile"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
	{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255},
}

// writePlot draws the ELBO trace and, for the mixtures, the fit over the
// data: a histogram with the mixture density for one column, points
// coloured by cluster with 1- and 2-sd ellipses for two or more (the first
// two columns).
func writePlot(path string, r *Result) error {
	var plots []*plot.Plot
	if len(r.ELBO) > 0 {
		p := plot.New()
		p.Title.Text = "ELBO (" + r.Method + ")"
		p.X.Label.Text = "iteration"
		p.Y.Label.Text = "ELBO (nats)"
		pts := make(plotter.XYs, len(r.ELBO))
		for i, e := range r.ELBO {
			pts[i] = plotter.XY{X: float64(r.ELBOSteps[i]), Y: e}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = palette[0]
		p.Add(l)
		plots = append(plots, p)
	}
	if len(r.Variance) > 0 {
		p := plot.New()
		p.Title.Text = "gradient variance (total)"
		p.X.Label.Text = "iteration"
		p.Y.Label.Text = "variance (log scale)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		for i, name := range []string{"pathwise", "score+cv", "score"} {
			v := r.Variance[name]
			pts := make(plotter.XYs, 0, len(v))
			for j, y := range v {
				if y > 0 {
					pts = append(pts, plotter.XY{X: float64(r.ELBOSteps[j]), Y: y})
				}
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = palette[i]
			p.Add(l)
			p.Legend.Add(name, l)
		}
		plots = append(plots, p)
	}
	if len(r.Components) > 0 && len(r.points) > 0 {
		var p *plot.Plot
		var err error
		if len(r.points[0]) == 1 {
			p, err = histogramFit(r)
		} else {
			p, err = scatterFit(r)
		}
		if err != nil {
			return err
		}
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		return errors.New("nothing to plot (SVGD has no ELBO trace and this model no data picture)")
	}
	const w, h = 5.0, 4.0
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w*float64(len(plots)))*vg.Inch, h*vg.Inch), vgimg.UseDPI(96))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}

func histogramFit(r *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "fitted mixture over the data"
	p.X.Label.Text = r.Columns[0]
	p.Y.Label.Text = "density"
	vals := make(plotter.Values, len(r.points))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range r.points {
		vals[i] = v[0]
		lo, hi = math.Min(lo, v[0]), math.Max(hi, v[0])
	}
	bins := int(math.Min(100, math.Max(10, math.Sqrt(float64(len(vals))))))
	hist, err := plotter.NewHist(vals, bins)
	if err != nil {
		return nil, err
	}
	hist.Normalize(1)
	hist.FillColor = color.RGBA{200, 200, 200, 255}
	hist.LineStyle.Width = 0
	p.Add(hist)
	total := plotter.NewFunction(func(x float64) float64 {
		var s float64
		for _, c := range r.Components {
			s += c.Weight * normPDF(x, c.Mean[0], math.Sqrt(c.Cov[0][0]))
		}
		return s
	})
	total.Color = color.Black
	total.Width = vg.Points(1.5)
	total.Samples = 400
	for k, c := range r.Components {
		if c.Weight < 1e-3 {
			continue
		}
		f := plotter.NewFunction(func(x float64) float64 { return c.Weight * normPDF(x, c.Mean[0], math.Sqrt(c.Cov[0][0])) })
		f.Color = palette[k%len(palette)]
		f.Samples = 400
		p.Add(f)
	}
	p.Add(total)
	p.X.Min, p.X.Max = lo, hi
	return p, nil
}

func normPDF(x, m, s float64) float64 {
	z := (x - m) / s
	return math.Exp(-z*z/2) / (s * math.Sqrt(2*math.Pi))
}

func scatterFit(r *Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "clusters and 1, 2 sd ellipses"
	p.X.Label.Text = r.Columns[0]
	p.Y.Label.Text = r.Columns[1]
	// at most 20,000 points drawn
	step := max(1, len(r.points)/20000)
	groups := map[int]plotter.XYs{}
	for i := 0; i < len(r.points); i += step {
		a := 0
		if r.Assign != nil {
			a = r.Assign[i]
		}
		groups[a] = append(groups[a], plotter.XY{X: r.points[i][0], Y: r.points[i][1]})
	}
	for k, pts := range groups {
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		c := palette[k%len(palette)]
		s.GlyphStyle.Color = color.NRGBA{c.R, c.G, c.B, 140}
		s.GlyphStyle.Radius = vg.Points(1.2)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(s)
	}
	for _, c := range r.Components {
		if c.Weight < 1e-3 {
			continue
		}
		cov := mat.NewSymDense(2, []float64{c.Cov[0][0], c.Cov[0][1], c.Cov[1][0], c.Cov[1][1]})
		var eig mat.EigenSym
		if !eig.Factorize(cov, true) {
			continue
		}
		vals := eig.Values(nil)
		var vec mat.Dense
		eig.VectorsTo(&vec)
		for _, rad := range []float64{1, 2} {
			pts := make(plotter.XYs, 101)
			for i := range pts {
				t := 2 * math.Pi * float64(i) / 100
				a, b := rad*math.Sqrt(math.Max(vals[0], 0))*math.Cos(t), rad*math.Sqrt(math.Max(vals[1], 0))*math.Sin(t)
				pts[i] = plotter.XY{X: c.Mean[0] + vec.At(0, 0)*a + vec.At(0, 1)*b, Y: c.Mean[1] + vec.At(1, 0)*a + vec.At(1, 1)*b}
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return nil, err
			}
			l.Color = color.Black
			if rad == 2 {
				l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
			}
			p.Add(l)
		}
	}
	return p, nil
}

package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/govae/govae/internal/imgrid"
	"github.com/govae/govae/internal/plotting"
	"gonum.org/v1/gonum/stat/distuv"
)

type generateOptions struct {
	model       modelFlags
	output      outputFlags
	n, columns  int
	seed        uint64
	temperature float64
	weightDraws int // a Bayesian decoder's weight draws to show (0: the mean weights only)
}

// generate decodes z = T*eps, eps ~ N(0, I), drawn in the order Model.Sample
// draws them, so that T = 1 gives exactly Sample's images.
func generate(o generateOptions, stdout io.Writer) error {
	src, g, err := openWithGrid(o.model, o.output.scale, o.columns, nil)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(o.seed, 0))
	var imgs, z [][]float32
	from, fromText := fmt.Sprintf("z ~ N(0, %g² I)", o.temperature), fmt.Sprintf("z ~ N(0, %g^2 I)", o.temperature)
	if prior := src.m.Config().Prior; prior != "" {
		// Only the prior's sampler knows it (a mixture, a VampPrior, two
		// layers: z1 ~ p(z1|z2)): z ~ p(z) by Model.Sample, no temperature.
		if o.temperature != 1 {
			return usagef("-temperature %g: this model's prior is %s, not N(0, I); only -temperature 1 (Model.Sample) is defined for it", o.temperature, prior)
		}
		if o.weightDraws > 0 {
			return usagef("-weight-draws: this model's prior is %s; weight draws are shown for the N(0, I) prior only", prior)
		}
		imgs, err = src.m.Sample(o.n, rng)
		from = fmt.Sprintf("z ~ p(z), the %s prior", prior)
		fromText = from
	} else {
		z = make([][]float32, o.n)
		for i := range z {
			z[i] = make([]float32, src.m.LatentDim())
			for j := range z[i] {
				z[i][j] = float32(o.temperature * rng.NormFloat64())
			}
		}
		imgs, err = src.m.Decode(z)
	}
	if err != nil {
		return err
	}
	if o.weightDraws > 0 {
		return generateWeightDraws(o, src.m, g, z, imgs, stdout)
	}
	if err := writeSampleFigure(g, imgs, fmt.Sprintf("%d images decoded from %s, seed %d", o.n, from, o.seed), o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d images decoded from %s, seed %d\n", o.output.out, o.n, fromText, o.seed)
	return nil
}

type reconstructOptions struct {
	model             modelFlags
	output            outputFlags
	first, n, columns int
	mean              bool
	seed              uint64
}

func reconstruct(o reconstructOptions, stdout, stderr io.Writer) error {
	src, g, err := openWithGrid(o.model, o.output.scale, 0, stderr)
	if err != nil {
		return err
	}
	x, err := src.testRange(o.first, o.n, fmt.Sprintf("-first %d -n %d", o.first, o.n))
	if err != nil {
		return err
	}
	var rec [][]float32
	how := "z drawn from q(z|x)"
	if o.mean {
		how = "z the mean of q(z|x)"
		z, err := src.m.Encode(x)
		if err != nil {
			return err
		}
		rec, err = src.m.Decode(z)
	} else {
		rec, err = src.m.Reconstruct(x, rand.New(rand.NewPCG(o.seed, 0)))
	}
	if err != nil {
		return err
	}
	fig := imgrid.Figure{Grid: g, Title: fmt.Sprintf("%s test images %d to %d and their reconstructions\n(%s)", displayName(src.ds.Name), o.first, o.first+o.n-1, how)}
	for _, r := range chunk(o.n, o.columns) {
		fig.Blocks = append(fig.Blocks, imgrid.Block{Rows: []imgrid.Row{
			{Label: "original", Images: x[r[0]:r[1]]},
			{Label: "reconstruction", Images: rec[r[0]:r[1]]},
		}})
	}
	if err := fig.WritePNG(o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: test images %d to %d of %s, each row above its reconstructions (%s)\n",
		o.output.out, o.first, o.first+o.n-1, src.ds.Name, how)
	return nil
}

type manifoldOptions struct {
	model   modelFlags
	output  outputFlags
	size, n int
}

// manifold decodes z at normal quantiles: equal steps in probability under
// the prior, so that the grid covers the prior's mass evenly (Kingma &
// Welling 2014, figure 4).
func manifold(o manifoldOptions, stdout, stderr io.Writer) error {
	src, g, err := openWithGrid(o.model, o.output.scale, o.size, stderr)
	if err != nil {
		return err
	}
	L := src.m.LatentDim()
	var plane plotting.Plane
	axes := "z1 (left to right) and z2 (bottom to top)"
	xLabel, yLabel := "z1", "z2"
	switch {
	case L < 2:
		return fmt.Errorf("the model has %d latent dimension; a manifold needs at least 2", L)
	case L == 2:
		plane.Dirs = [2][]float64{{1, 0}, {0, 1}}
	default:
		if err := src.checkRange(0, o.n, fmt.Sprintf("-n %d", o.n)); err != nil {
			return err
		}
		if plane, err = principalPlane(src, o.n); err != nil {
			return err
		}
		xLabel = fmt.Sprintf("z along PC1 (%.0f%% of variance)", 100*plane.Explained[0])
		yLabel = fmt.Sprintf("z along PC2 (%.0f%%)", 100*plane.Explained[1])
		axes = fmt.Sprintf("the first principal direction of %d test images' posterior means (%.0f%% of their variance; left to right) and the second (%.0f%%; bottom to top)",
			o.n, 100*plane.Explained[0], 100*plane.Explained[1])
	}
	q := make([]float64, o.size)
	std := distuv.UnitNormal
	for i := range q {
		q[i] = std.Quantile((float64(i) + 0.5) / float64(o.size))
	}
	z := make([][]float32, 0, o.size*o.size)
	for r := range o.size {
		for c := range o.size {
			z = append(z, plane.Point(q[c], q[o.size-1-r]))
		}
	}
	imgs, err := src.m.Decode(z)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("Decoded at the prior's normal quantiles Φ^-1((i+0.5)/%d)", o.size)
	if prior := src.m.Config().Prior; prior != "" {
		title = fmt.Sprintf("Decoded at N(0, 1) quantiles Φ^-1((i+0.5)/%d)\n(the model's prior is %s, not N(0, I): the grid does not follow its mass)", o.size, prior)
	}
	fig := imgrid.Figure{Grid: g, Title: title,
		XLabel: xLabel, YLabel: yLabel}
	blk := imgrid.Block{}
	for r := range o.size {
		blk.Rows = append(blk.Rows, imgrid.Row{Label: fmt.Sprintf("%.2f", q[o.size-1-r]), Images: imgs[r*o.size : (r+1)*o.size]})
		fig.XTicks = append(fig.XTicks, fmt.Sprintf("%.2f", q[r]))
	}
	fig.Blocks = []imgrid.Block{blk}
	if err := fig.WritePNG(o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %dx%d images decoded at normal quantiles %.2f to %.2f along %s\n",
		o.output.out, o.size, o.size, q[0], q[o.size-1], axes)
	return nil
}

// principalPlane is the plane of the top two principal components of the
// posterior means of the first n test images.
func principalPlane(src *source, n int) (plotting.Plane, error) {
	x, _, err := src.testImages(indexRange(0, n))
	if err != nil {
		return plotting.Plane{}, err
	}
	z, err := src.m.Encode(x)
	if err != nil {
		return plotting.Plane{}, err
	}
	return plotting.PrincipalPlane(z)
}

type interpolateOptions struct {
	model    modelFlags
	output   outputFlags
	from, to []int
	steps    int
}

func interpolate(o interpolateOptions, stdout, stderr io.Writer) error {
	src, g, err := openWithGrid(o.model, o.output.scale, 0, stderr)
	if err != nil {
		return err
	}
	for k := range o.from {
		for _, f := range []struct {
			name string
			i    int
		}{{"-from", o.from[k]}, {"-to", o.to[k]}} {
			if err := src.checkRange(f.i, 1, fmt.Sprintf("%s %d", f.name, f.i)); err != nil {
				return err
			}
		}
	}
	x, _, err := src.testImages(append(append([]int{}, o.from...), o.to...))
	if err != nil {
		return err
	}
	z, err := src.m.Encode(x)
	if err != nil {
		return err
	}
	n := len(o.from)
	var path [][]float32
	for k := range n {
		a, b := z[k], z[n+k]
		for t := range o.steps {
			path = append(path, lerp(a, b, float64(t)/float64(o.steps-1)))
		}
		for t := range o.steps {
			path = append(path, slerp(a, b, float64(t)/float64(o.steps-1)))
		}
	}
	imgs, err := src.m.Decode(path)
	if err != nil {
		return err
	}
	fig := imgrid.Figure{Grid: g, Title: "Decoded along paths between test images' posterior means\n(first and last columns: the test images themselves)"}
	fig.XTicks = append(fig.XTicks, "image")
	for t := range o.steps {
		fig.XTicks = append(fig.XTicks, fmt.Sprintf("t=%.2g", float64(t)/float64(o.steps-1)))
	}
	fig.XTicks = append(fig.XTicks, "image")
	for k := range n {
		var blk imgrid.Block
		for p, name := range []string{fmt.Sprintf("%d → %d linear", o.from[k], o.to[k]), "great circle"} {
			row := [][]float32{x[k]}
			row = append(row, imgs[(2*k+p)*o.steps:(2*k+p+1)*o.steps]...)
			blk.Rows = append(blk.Rows, imgrid.Row{Label: name, Images: append(row, x[n+k])})
		}
		fig.Blocks = append(fig.Blocks, blk)
	}
	if err := fig.WritePNG(o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: for each pair of test images (%s), a row along the straight line and a row along the great circle between their posterior means, %d decoded points each, between the two images\n",
		o.output.out, pairs(o.from, o.to), o.steps)
	return nil
}

// lerp is (1-t) a + t b.
func lerp(a, b []float32, t float64) []float32 {
	out := make([]float32, len(a))
	for j := range a {
		out[j] = float32((1-t)*float64(a[j]) + t*float64(b[j]))
	}
	return out
}

// slerp is spherical interpolation (Shoemake 1985), the path White (2016)
// recommends in a Gaussian latent space, where mass concentrates near a
// sphere and the straight line passes through improbably short vectors:
//
//	sin((1-t) w)/sin w a + sin(t w)/sin w b,   cos w = a.b / (|a| |b|).
//
// Nearly parallel ends, where the formula is ill-conditioned, fall back to lerp.
func slerp(a, b []float32, t float64) []float32 {
	var dot, na, nb float64
	for j := range a {
		dot += float64(a[j]) * float64(b[j])
		na += float64(a[j]) * float64(a[j])
		nb += float64(b[j]) * float64(b[j])
	}
	w := math.Acos(max(-1, min(1, dot/math.Sqrt(na*nb))))
	if math.IsNaN(w) || math.Sin(w) < 1e-6 {
		return lerp(a, b, t)
	}
	ca, cb := math.Sin((1-t)*w)/math.Sin(w), math.Sin(t*w)/math.Sin(w)
	out := make([]float32, len(a))
	for j := range a {
		out[j] = float32(ca*float64(a[j]) + cb*float64(b[j]))
	}
	return out
}

func pairs(from, to []int) string {
	s := ""
	for k := range from {
		if k > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d to %d", from[k], to[k])
	}
	return s
}

// ceilSqrt is the side of the smallest square grid holding n images.
// writeSampleFigure writes images in a square grid (or g.Columns wide)
// under a title.
func writeSampleFigure(g imgrid.Grid, imgs [][]float32, title, out string) error {
	cols := g.Columns
	if cols == 0 {
		cols = ceilSqrt(len(imgs))
	}
	blk := imgrid.Block{}
	for _, r := range chunk(len(imgs), cols) {
		blk.Rows = append(blk.Rows, imgrid.Row{Images: imgs[r[0]:r[1]]})
	}
	return imgrid.Figure{Grid: g, Title: title, Blocks: []imgrid.Block{blk}}.WritePNG(out)
}

func ceilSqrt(n int) int {
	c := int(math.Sqrt(float64(n)))
	for c*c < n {
		c++
	}
	return c
}

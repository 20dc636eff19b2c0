package plotting

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/internal/testutil"
)

// countColor counts pixels within a small distance of c (drawn colours are
// anti-aliased and blended, so only the core of a mark matches).
func countColor(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			d := math.Abs(float64(r>>8)-float64(c.R)) + math.Abs(float64(g>>8)-float64(c.G)) + math.Abs(float64(bl>>8)-float64(c.B))
			if d < 12 {
				n++
			}
		}
	}
	return n
}

func TestScatterDrawsEachGroupAndScales(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	s := Scatter{Title: "t", XLabel: "x", YLabel: "y", Names: []string{"a", "b", "c"}, Width: 4, Height: 3}
	for i := range 300 {
		g := i % 2 // group "c" has no points but a legend entry
		s.X = append(s.X, rng.NormFloat64()+3*float64(g))
		s.Y = append(s.Y, rng.NormFloat64())
		s.Group = append(s.Group, g)
	}
	dir := t.TempDir()
	for _, scale := range []int{1, 2} {
		path := filepath.Join(dir, "s.png")
		if err := s.WritePNG(path, scale); err != nil {
			t.Fatal(err)
		}
		img := testutil.ReadPNG(t, path)
		if b := img.Bounds(); b.Dx() != 4*DPI*scale || b.Dy() != 3*DPI*scale {
			t.Fatalf("scale %d: %v, want %dx%d", scale, b, 4*DPI*scale, 3*DPI*scale)
		}
		for g := range 3 {
			if n := countColor(img, Palette[g]); n < 20*scale*scale {
				t.Errorf("scale %d: group %d's colour covers %d pixels; want its points or legend mark", scale, g, n)
			}
		}
		if n := countColor(img, Palette[3]); n != 0 {
			t.Errorf("colour of a fourth group, which does not exist, covers %d pixels", n)
		}
	}
}

func TestPanelsShareColoursAndLegend(t *testing.T) {
	ps := Panels{Panels: []Panel{
		{Title: "A", XLabel: "epoch", YLabel: "nats", Series: []Series{{Name: "train", X: []float64{1, 2, 3}, Y: []float64{-3, -2, -1}}, {Name: "val", X: []float64{1, 2, 3}, Y: []float64{-2.5, -2, -1.5}}}},
		{Title: "B", XLabel: "epoch", YLabel: "nats", Series: []Series{{Name: "train", X: []float64{1, 2, 3}, Y: []float64{1, 2, 3}}}},
	}}
	path := filepath.Join(t.TempDir(), "p.png")
	if err := ps.WritePNG(path, 1); err != nil {
		t.Fatal(err)
	}
	img := testutil.ReadPNG(t, path)
	if b := img.Bounds(); b.Dx() != 9*DPI || b.Dy() != 4*DPI {
		t.Fatalf("%v, want %dx%d (two panels of 4.5 x 4 inches)", b, 9*DPI, 4*DPI)
	}
	// Left and right halves each have the first series' colour.
	left := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(0, 0, 4*DPI, 4*DPI))
	right := img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(5*DPI, 0, 8*DPI, 4*DPI))
	if countColor(left, Palette[0]) == 0 || countColor(right, Palette[0]) == 0 {
		t.Error("the train series is missing from a panel")
	}
	if countColor(left, Palette[1]) == 0 {
		t.Error("the val series is missing")
	}
}

func TestPlotErrorsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.png")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"empty", Scatter{}.WritePNG(path, 1), "no points"},
		{"lengths", Scatter{X: []float64{1}, Y: []float64{1, 2}, Group: []int{0}, Names: []string{"a"}}.WritePNG(path, 1), "want as many"},
		{"group", Scatter{X: []float64{1}, Y: []float64{1}, Group: []int{1}, Names: []string{"a"}}.WritePNG(path, 1), "group 1"},
		{"NaN", Scatter{X: []float64{math.NaN()}, Y: []float64{1}, Group: []int{0}, Names: []string{"a"}}.WritePNG(path, 1), "NaN"},
		{"scale", Scatter{X: []float64{1}, Y: []float64{1}, Group: []int{0}, Names: []string{"a"}}.WritePNG(path, 0), "scale 0"},
		{"huge", Scatter{X: []float64{1}, Y: []float64{1}, Group: []int{0}, Names: []string{"a"}}.WritePNG(path, 1000), "exceed"},
		{"no panels", Panels{}.WritePNG(path, 1), "no panels"},
		{"empty series", Panels{Panels: []Panel{{Title: "A", Series: []Series{{Name: "s"}}}}}.WritePNG(path, 1), "at least one"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, tc.err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed plots left %d files behind", len(entries))
	}
}

// TestPrincipalPlaneRecoversAxes draws points from a Gaussian with standard
// deviations 3, 2, 1 along known orthonormal directions, shifted away from
// the origin, and expects those directions and variance shares back.
func TestPrincipalPlaneRecoversAxes(t *testing.T) {
	s := 1 / math.Sqrt(2)
	dirs := [3][3]float64{{s, s, 0}, {s, -s, 0}, {0, 0, 1}}
	sd := [3]float64{3, 2, 1}
	rng := rand.New(rand.NewPCG(2, 2))
	pts := make([][]float32, 20000)
	for i := range pts {
		p := []float32{5, -2, 1}
		for k := range 3 {
			a := sd[k] * rng.NormFloat64()
			for j := range 3 {
				p[j] += float32(a * dirs[k][j])
			}
		}
		pts[i] = p
	}
	pl, err := PrincipalPlane(pts)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 2 {
		var dot float64
		for j := range 3 {
			dot += pl.Dirs[k][j] * dirs[k][j]
		}
		if math.Abs(math.Abs(dot)-1) > 1e-3 {
			t.Errorf("direction %d = %v, want ±%v", k, pl.Dirs[k], dirs[k])
		}
		if want := sd[k] * sd[k] / 14; math.Abs(pl.Explained[k]-want) > 0.01 {
			t.Errorf("direction %d explains %.3f of the variance, want %.3f", k, pl.Explained[k], want)
		}
	}
	// Project and Point are adjoint on the plane, through the origin.
	x, y := pl.Project(pl.Point(1.5, -0.5))
	if math.Abs(x-1.5) > 1e-6 || math.Abs(y+0.5) > 1e-6 {
		t.Errorf("Project(Point(1.5, -0.5)) = (%v, %v)", x, y)
	}
	if _, err := PrincipalPlane(pts[:1]); err == nil {
		t.Error("one point: no error")
	}
	if _, err := PrincipalPlane([][]float32{{1}, {2}}); err == nil {
		t.Error("one dimension: no error")
	}
}

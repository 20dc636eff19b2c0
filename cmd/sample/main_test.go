package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"image"
	"image/color"
	"image/draw"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/imgrid"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/internal/synth"
	"github.com/govae/govae/internal/testutil"
)

// fx holds the fixtures every test shares: synthetic 8x8 data with labels
// 0 and 1 (40 test images), a model with 2 latent dimensions trained
// briefly on it, and an untrained one with 3.
var fx struct {
	dir, data      string
	ckpt, ckpt3    string
	test           *data.Images
	trained, three *amortized.Model
}

const size = 8 // synthetic images are size x size

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "govae-sample-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := setup(dir); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
	} else {
		code = testutil.RunMain(m)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(dir string) error {
	fx.dir, fx.data = dir, filepath.Join(dir, "data")
	if err := os.Mkdir(fx.data, 0o755); err != nil {
		return err
	}
	if err := synth.WriteDataset(fx.data, size, 400, 40); err != nil {
		return err
	}
	ds, err := data.LoadDir(fx.data)
	if err != nil {
		return err
	}
	fx.test = ds.Test.Images
	cfg := amortized.Config{DataDim: size * size, ImageRows: size, ImageCols: size, Hidden: []int{32}, Latent: 2}
	if fx.trained, err = amortized.New(cfg, 1); err != nil {
		return err
	}
	train, err := data.NewLoader(ds.Train.Images, nil, data.LoaderOptions{Batch: 20, Seed: 1, Shuffle: true, Binarize: data.BinarizeDynamic})
	if err != nil {
		return err
	}
	tr, err := amortized.NewTrainer(fx.trained, 20, amortized.TrainOptions{Epochs: 15, LR: 1e-2, Seed: 1}, nil)
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := tr.Fit(context.Background(), train, nil, amortized.Hooks{}); err != nil {
		return err
	}
	fx.ckpt = filepath.Join(dir, "trained.safetensors")
	if err := checkpoints.Save(fx.ckpt, fx.trained, nil); err != nil {
		return err
	}
	cfg.Latent = 3
	if fx.three, err = amortized.New(cfg, 2); err != nil {
		return err
	}
	fx.ckpt3 = filepath.Join(dir, "three.safetensors")
	return checkpoints.Save(fx.ckpt3, fx.three, nil)
}

// sample runs the command and returns its exit status and output.
func sample(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// withData adds the flags that point a command at the synthetic data.
func withData(args ...string) []string {
	return append(args, "-dataset", "tiny", "-data-dir", fx.data, "-offline")
}

func mustSample(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := sample(args...)
	if code != 0 {
		t.Fatalf("sample %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	if !strings.HasPrefix(out, "wrote ") {
		t.Fatalf("sample %s: printed %q, want a summary starting with \"wrote\"", strings.Join(args, " "), out)
	}
	return out
}

// readFig decodes a figure PNG (grey or colour) as RGBA.
func readFig(t *testing.T, path string) *image.RGBA {
	t.Helper()
	img := testutil.ReadPNG(t, path)
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Rect, img, img.Bounds().Min, draw.Src)
	return out
}

// cellAt returns the grey levels (red channel) of the 8x8 cell at (r, c)
// cells from the cell whose top-left pixel is at o, for images drawn at
// scale s with imageGrid's padding of 2.
func cellAt(img *image.RGBA, o image.Point, r, c, s int) []uint8 {
	out := make([]uint8, 0, size*size)
	x0, y0 := o.X+c*(size*s+2), o.Y+r*(size*s+2)
	for y := range size {
		for x := range size {
			out = append(out, img.Pix[img.PixOffset(x0+x*s, y0+y*s)])
		}
	}
	return out
}

// locate finds where the grey image want is drawn exactly (each pixel an
// s x s square of its level, R = G = B) in img, searching from row y0.
func locate(t *testing.T, img *image.RGBA, want []uint8, s, y0 int) image.Point {
	t.Helper()
	p, ok := find(img, want, s, y0)
	if !ok {
		t.Fatalf("image not found exactly in the figure (from row %d)", y0)
	}
	return p
}

// find is locate that reports whether the image is there.
func find(img *image.RGBA, want []uint8, s, y0 int) (image.Point, bool) {
	b := img.Bounds()
	for y := y0; y+size*s <= b.Dy(); y++ {
	next:
		for x := 0; x+size*s <= b.Dx(); x++ {
			for j, v := range want {
				for k := range s * s {
					o := img.PixOffset(x+(j%size)*s+k%s, y+(j/size)*s+k/s)
					if img.Pix[o] != v || img.Pix[o+1] != v || img.Pix[o+2] != v {
						continue next
					}
				}
			}
			return image.Pt(x, y), true
		}
	}
	return image.Point{}, false
}

// testImage is test image i as the command feeds it to a Bernoulli model:
// binarized with seed 0, as 0/255 grey levels.
func testImage(t *testing.T, i int) []uint8 {
	t.Helper()
	l, err := data.NewLoader(fx.test, []int{i}, data.LoaderOptions{Batch: 1, Seed: runinfo.EvalBinarizeSeed, Binarize: data.BinarizeStatic})
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, size*size)
	if _, err := l.Batch(0, 0, row); err != nil {
		t.Fatal(err)
	}
	out := make([]uint8, len(row))
	for j, v := range row {
		out[j] = uint8(v * 255)
	}
	return out
}

func TestGenerateDrawsModelSamples(t *testing.T) {
	out := filepath.Join(t.TempDir(), "g.png")
	mustSample(t, "generate", "-ckpt", fx.ckpt, "-out", out, "-n", "6", "-columns", "3", "-scale", "2", "-seed", "5")
	img := readFig(t, out)
	// At temperature 1 the grid is Model.Sample's images, 3 per row.
	imgs, err := fx.trained.Sample(6, rand.New(rand.NewPCG(5, 0)))
	if err != nil {
		t.Fatal(err)
	}
	o := locate(t, img, levels(imgs[0]), 2, 0)
	for k := range 6 {
		if !bytes.Equal(cellAt(img, o, k/3, k%3, 2), levels(imgs[k])) {
			t.Errorf("cell %d differs from Model.Sample's image %d", k, k)
		}
	}
	mustSample(t, "generate", "-ckpt", fx.ckpt, "-out", out, "-n", "6", "-columns", "3", "-scale", "2", "-seed", "5", "-temperature", "0.3")
	if bytes.Equal(cellAt(readFig(t, out), o, 0, 0, 2), levels(imgs[0])) {
		t.Error("-temperature 0.3 changed nothing")
	}
}

func TestReconstructShowsTestImagesAboveReconstructions(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.png")
	mustSample(t, withData("reconstruct", "-ckpt", fx.ckpt, "-out", out, "-first", "3", "-n", "5", "-columns", "4", "-scale", "1")...)
	// Two blocks (4 images, then 1), each an image row above its
	// reconstructions.
	img := readFig(t, out)
	o := locate(t, img, testImage(t, 3), 1, 0)
	o2 := locate(t, img, testImage(t, 7), 1, o.Y+2*(size+2))
	if o2.X != o.X {
		t.Errorf("second block starts at x %d, the first at %d", o2.X, o.X)
	}
	for k := range 5 {
		p, c := o, k
		if k == 4 {
			p, c = o2, 0
		}
		if !bytes.Equal(cellAt(img, p, 0, c, 1), testImage(t, 3+k)) {
			t.Errorf("cell of image %d is not test image %d", k, 3+k)
		}
		grey := 0
		for _, p := range cellAt(img, p, 1, c, 1) {
			if p != 0 && p != 255 {
				grey++
			}
		}
		if grey == 0 {
			t.Errorf("reconstruction %d has no grey levels; want decoded probabilities", k)
		}
	}
}

func TestImputeKeepsShownPixelsAndBeatsPixelMeans(t *testing.T) {
	out := filepath.Join(t.TempDir(), "i.png")
	for _, tc := range []struct {
		mask   string
		hidden int // per image
	}{{"bottom", 32}, {"left", 32}, {"center", 16}, {"random:0.3", 19}} {
		for _, method := range []string{"sample", "mean"} {
			stdout := mustSample(t, withData("impute", "-ckpt", fx.ckpt, "-out", out, "-mask", tc.mask, "-method", method,
				"-n", "4", "-columns", "4", "-eval", "40", "-iters", "20", "-scale", "1")...)
			img := readFig(t, out)
			o := locate(t, img, testImage(t, 0), 1, 0)
			for k := range 4 {
				orig, masked, imputed := cellAt(img, o, 0, k, 1), cellAt(img, o, 1, k, 1), cellAt(img, o, 2, k, 1)
				if !bytes.Equal(orig, testImage(t, k)) {
					t.Fatalf("%s: the original row's image %d is not test image %d", tc.mask, k, k)
				}
				hidden := 0
				for p := range orig {
					x, y := o.X+k*(size+2)+p%size, o.Y+(size+2)+p/size
					if c := img.RGBAAt(x, y); [3]uint8{c.R, c.G, c.B} == imgrid.HiddenColor {
						hidden++
					} else if masked[p] != orig[p] || imputed[p] != orig[p] {
						t.Fatalf("%s %s: image %d pixel %d is shown (%d) but the imputed image has %d", tc.mask, method, k, p, orig[p], imputed[p])
					}
				}
				if hidden != tc.hidden {
					t.Errorf("%s: image %d has %d hidden pixels, want %d", tc.mask, k, hidden, tc.hidden)
				}
			}
			var n, images int
			var mse, base float64
			line := stdout[strings.Index(stdout, "\n")+1:]
			if _, err := fmt.Sscanf(line, "mean squared error on the %d hidden pixels of %d test images: %g imputed, %g with", &n, &images, &mse, &base); err != nil {
				t.Fatalf("%s: cannot read the error line %q: %v", tc.mask, line, err)
			}
			if n != 40*tc.hidden || images != 40 {
				t.Errorf("%s: error over %d pixels of %d images, want %d of 40", tc.mask, n, images, 40*tc.hidden)
			}
			t.Logf("%s %s: squared error %.4f imputed, %.4f per-pixel mean", tc.mask, method, mse, base)
			// The shown pixels tell the class apart, so a trained model beats
			// the per-pixel mean by far.
			if !(mse < 0.7*base) {
				t.Errorf("%s %s: squared error %g imputed, %g per-pixel mean: want well below", tc.mask, method, mse, base)
			}
		}
	}
}

func TestLatentScatterColouredByLabel(t *testing.T) {
	out := filepath.Join(t.TempDir(), "l.png")
	stdout := mustSample(t, withData("latent", "-ckpt", fx.ckpt, "-out", out, "-n", "40")...)
	if !strings.Contains(stdout, "z2 against z1") {
		t.Errorf("2-D latents: %q, want z1 and z2 axes", stdout)
	}
	img := testutil.ReadPNG(t, out)
	if b := img.Bounds(); b.Dx() != 7*plotting.DPI || b.Dy() != 6*plotting.DPI {
		t.Fatalf("plot is %v, want 7 x 6 inches at %d dpi", b, plotting.DPI)
	}
	for label, want := range []bool{true, true, false} {
		if got := countColour(img, plotting.Palette[label]) > 0; got != want {
			t.Errorf("colour of label %d present: %v, want %v (labels are 0 and 1)", label, got, want)
		}
	}
	stdout = mustSample(t, withData("latent", "-ckpt", fx.ckpt3, "-out", out, "-n", "40", "-scale", "2")...)
	if !strings.Contains(stdout, "PC2 (") || !strings.Contains(stdout, "% of variance)") {
		t.Errorf("3-D latents: %q, want principal-component axes with their variance", stdout)
	}
	if b := testutil.ReadPNG(t, out).Bounds(); b.Dx() != 14*plotting.DPI {
		t.Errorf("-scale 2: width %d, want %d", b.Dx(), 14*plotting.DPI)
	}
}

func countColour(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if math.Abs(float64(r>>8)-float64(c.R))+math.Abs(float64(g>>8)-float64(c.G))+math.Abs(float64(bl>>8)-float64(c.B)) < 12 {
				n++
			}
		}
	}
	return n
}

func TestManifoldGrid(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.png")
	mustSample(t, "manifold", "-ckpt", fx.ckpt, "-out", out, "-size", "5")
	img := readFig(t, out)
	// The centre cell decodes z = 0 exactly (the middle quantile); the
	// corners decode (-q, q) top left and (q, -q) bottom right.
	q := 1.2815515655446004 // Phi^-1(0.9)
	dec, err := fx.trained.Decode([][]float32{{0, 0}, {float32(-q), float32(q)}, {float32(q), float32(-q)}})
	if err != nil {
		t.Fatal(err)
	}
	o := locate(t, img, levels(dec[1]), 1, 0)
	if !bytes.Equal(cellAt(img, o, 2, 2, 1), levels(dec[0])) {
		t.Error("the centre of the manifold is not the decoding of z = 0")
	}
	if !bytes.Equal(cellAt(img, o, 4, 4, 1), levels(dec[2])) {
		t.Error("the bottom-right corner is not the decoding of (q, -q)")
	}
	if bytes.Equal(cellAt(img, o, 0, 0, 1), cellAt(img, o, 4, 4, 1)) {
		t.Error("opposite corners of the manifold are the same image")
	}
	// More than two latent dimensions: the plane of the principal components.
	stdout := mustSample(t, withData("manifold", "-ckpt", fx.ckpt3, "-out", out, "-size", "4", "-n", "40")...)
	if !strings.Contains(stdout, "principal direction") {
		t.Errorf("3-D latents: %q, want the principal directions named", stdout)
	}
	readFig(t, out)
}

func TestInterpolateRunsBetweenTheTwoImages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.png")
	mustSample(t, withData("interpolate", "-ckpt", fx.ckpt, "-out", out, "-from", "0,5", "-to", "1,2", "-steps", "4", "-scale", "1")...)
	img := readFig(t, out)
	y0 := 0
	for k, pair := range [][2]int{{0, 1}, {5, 2}} {
		o := locate(t, img, testImage(t, pair[0]), 1, y0)
		y0 = o.Y + 2*(size+2)
		for r := range 2 { // straight, then spherical
			if !bytes.Equal(cellAt(img, o, r, 0, 1), testImage(t, pair[0])) || !bytes.Equal(cellAt(img, o, r, 5, 1), testImage(t, pair[1])) {
				t.Errorf("pair %d row %d does not run from test image %d to %d", k, r, pair[0], pair[1])
			}
		}
		if !bytes.Equal(cellAt(img, o, 0, 1, 1), cellAt(img, o, 1, 1, 1)) {
			t.Errorf("pair %d: the straight and spherical paths start at different points", k)
		}
	}
}

// levels is an image in [0,1] as the grey levels a grid draws.
func levels(im []float32) []uint8 {
	m, _ := imgrid.Grid{Rows: size, Cols: size}.Render([][]float32{im})
	return m.(*image.Gray).Pix
}

func TestCurvesFromMetrics(t *testing.T) {
	dir := t.TempDir()
	for _, val := range []bool{true, false} {
		var buf bytes.Buffer
		for e := 1; e <= 4; e++ {
			m := trainrun.Metrics{Epoch: e, TrainELBO: -200 + 20*float64(e), Recon: -190 + 22*float64(e), KL: 10 + 2*float64(e),
				TestELBO: -195 + 20*float64(e), TestRecon: -185 + 22*float64(e), TestKL: 10 + 2*float64(e)}
			if val {
				v, r, k := m.TestELBO+1, m.TestRecon+1, m.TestKL
				m.ValELBO, m.ValRecon, m.ValKL = &v, &r, &k
			}
			b, _ := json.Marshal(m)
			buf.Write(append(b, '\n'))
		}
		metrics := filepath.Join(dir, "metrics.jsonl")
		if err := os.WriteFile(metrics, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "c.png")
		stdout := mustSample(t, "curves", "-metrics", metrics, "-out", out)
		wantHeld := "validation"
		if !val {
			wantHeld = "test (no validation set)"
		}
		if !strings.Contains(stdout, "over 4 epochs (train and "+wantHeld+")") {
			t.Errorf("validation %v: %q, want 4 epochs of train and %s", val, stdout, wantHeld)
		}
		img := testutil.ReadPNG(t, out)
		if b := img.Bounds(); b.Dx() != 3*4.5*plotting.DPI || b.Dy() != 4*plotting.DPI {
			t.Fatalf("plot is %v, want three 4.5 x 4 inch panels", b)
		}
		if countColour(img, plotting.Palette[0]) == 0 || countColour(img, plotting.Palette[1]) == 0 {
			t.Error("a series is missing")
		}
	}
}

func TestCurvesOverlayRunsAndSteps(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for r, name := range []string{"small", "large"} {
		var buf bytes.Buffer
		for e := 1; e <= 3; e++ {
			for s := 1; s <= 5; s++ {
				fmt.Fprintf(&buf, `{"kind":"step","epoch":%d,"step":%d,"elbo":-150,"recon":-140,"kl":10,"beta":1,"loss":150}`+"\n", e, (e-1)*5+s)
			}
			v := -150 + 10*float64(e) + float64(r)
			m := trainrun.Metrics{Epoch: e, Step: int64(5 * e), TrainELBO: v, Recon: v - 10, KL: 10, ValELBO: &v, ValRecon: &v, ValKL: &v, TestELBO: v, TestRecon: v, TestKL: 10}
			b, _ := json.Marshal(m)
			buf.Write(append(b, '\n'))
		}
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name, "metrics.jsonl")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out := filepath.Join(dir, "c.png")
	stdout := mustSample(t, "curves", "-metrics", paths[0], "-out", out)
	if !strings.Contains(stdout, "3 epochs and 15 per-step lines") {
		t.Errorf("one run with steps: %q", stdout)
	}
	// train, validation and the per-step line: three colours.
	if img := testutil.ReadPNG(t, out); countColour(img, plotting.Palette[2]) == 0 {
		t.Error("one run: a series is missing")
	}
	stdout = mustSample(t, "curves", "-metrics", strings.Join(paths, ","), "-out", out)
	if !strings.Contains(stdout, ": small: ") || !strings.Contains(stdout, ": large: ") {
		t.Errorf("two runs: %q, want both named", stdout)
	}
	img := testutil.ReadPNG(t, out)
	if countColour(img, plotting.Palette[0]) == 0 || countColour(img, plotting.Palette[1]) == 0 || countColour(img, plotting.Palette[2]) != 0 {
		t.Error("two runs: want exactly two colours, one per run")
	}
	if code, _, errOut := sample("curves", "-metrics", paths[0]+","+filepath.Join(dir, "nope.jsonl"), "-out", out); code != 1 || !strings.Contains(errOut, "nope.jsonl") {
		t.Errorf("a missing second file: exit %d, %q", code, errOut)
	}
}

// TestDataFromTrainingRun checks that best.safetensors, which holds weights
// only, finds its data through the run description in model.safetensors
// beside it.
func TestDataFromTrainingRun(t *testing.T) {
	dir := t.TempDir()
	tr, err := amortized.NewTrainer(fx.trained, 4, amortized.TrainOptions{Epochs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.SetRun(json.RawMessage(fmt.Sprintf(`{"dataset":"tiny","data_dir":%q,"binarize":"dynamic"}`, fx.data)))
	st := tr.State()
	if err := checkpoints.Save(filepath.Join(dir, trainrun.LatestFile), fx.trained, &st); err != nil {
		t.Fatal(err)
	}
	best := filepath.Join(dir, trainrun.BestFile)
	if err := checkpoints.Save(best, fx.trained, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.png")
	stdout := mustSample(t, "reconstruct", "-ckpt", best, "-out", out, "-n", "2", "-offline")
	if !strings.Contains(stdout, "of tiny") {
		t.Errorf("%q, want the run's dataset, tiny", stdout)
	}
}

// The tools that show test images read the test split alone: a broken
// training file does not stop reconstruct, while impute, which fills hidden
// pixels' baseline from the training images, reads it and says so.
func TestTestImagesOnlyReadTheTestSplit(t *testing.T) {
	dir := t.TempDir()
	entries, err := os.ReadDir(fx.data)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(fx.data, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), "train-images") {
			b = []byte("not an IDX file")
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "r.png")
	args := []string{"-ckpt", fx.ckpt, "-out", out, "-n", "2", "-dataset", "tiny", "-data-dir", dir, "-offline"}
	code, _, stderr := sample(append([]string{"reconstruct"}, args...)...)
	if code != 0 || !strings.Contains(stderr, "training images not read") {
		t.Errorf("reconstruct with a broken training file: exit %d, %s", code, stderr)
	}
	code, _, stderr = sample(append([]string{"impute"}, args...)...)
	if code == 0 || !strings.Contains(stderr, "train-images") {
		t.Errorf("impute with a broken training file: exit %d, %s; want an error naming it", code, stderr)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.png")
	foreign := filepath.Join(dir, "foreign.safetensors")
	notMetrics := filepath.Join(dir, "other.jsonl")
	empty := filepath.Join(dir, "empty.jsonl")
	for path, content := range map[string]string{foreign: "not a checkpoint at all", notMetrics: `{"loss": 1.5}` + "\n", empty: ""} {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ck := fx.ckpt
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"generate", "-ckpt", filepath.Join(dir, "missing.safetensors"), "-out", out}, 1, "no such file"},
		{[]string{"generate", "-ckpt", foreign, "-out", out}, 1, "-ckpt: checkpoints: " + foreign},
		{[]string{"generate", "-out", out}, 2, "-ckpt: want the checkpoint"},
		{[]string{"generate", "-ckpt", ck}, 2, "-out: want the PNG file"},
		{[]string{"generate", "-ckpt", ck, "-out", filepath.Join(dir, "x.jpg")}, 2, "ending in .png"},
		{[]string{"generate", "-ckpt", ck, "-out", filepath.Join(dir, "nowhere", "x.png")}, 2, "does not exist"},
		{[]string{"generate", "-ckpt", ck, "-out", out, "-scale", "0"}, 2, "-scale 0"},
		{[]string{"generate", "-ckpt", ck, "-out", out, "-temperature", "0"}, 2, "-temperature 0"},
		{[]string{"generate", "-ckpt", ck, "-out", out, "-n", "0"}, 2, "-n 0"},
		{[]string{"generate", "-ckpt", ck, "-out", out, "stray"}, 2, "unexpected argument \"stray\""},
		{[]string{"generate", "-ckpt", ck, "-out", out, "-nosuch"}, 2, "flag provided but not defined"},
		{withData("reconstruct", "-ckpt", ck, "-out", out, "-first", "39", "-n", "2"), 2, "-first 39 -n 2: out of range; the test set of tiny has 40 images"},
		{withData("impute", "-ckpt", ck, "-out", out, "-first", "30", "-eval", "20"), 2, "out of range"},
		{withData("impute", "-ckpt", ck, "-out", out, "-mask", "random:0"), 2, "0 < F < 1"},
		{withData("impute", "-ckpt", ck, "-out", out, "-mask", "random:1"), 2, "0 < F < 1"},
		{withData("impute", "-ckpt", ck, "-out", out, "-mask", "random"), 2, "0 < F < 1"},
		{withData("impute", "-ckpt", ck, "-out", out, "-mask", "diagonal"), 2, "want top, bottom"},
		{withData("impute", "-ckpt", ck, "-out", out, "-method", "median"), 2, "-method \"median\""},
		{withData("impute", "-ckpt", ck, "-out", out, "-method", "mean", "-chains", "4"), 2, "-chains 4 with -method mean"},
		{withData("impute", "-ckpt", ck, "-out", out, "-n", "20", "-eval", "10"), 2, "-eval 10"},
		{withData("interpolate", "-ckpt", ck, "-out", out, "-from", "40"), 2, "-from 40: out of range"},
		{withData("interpolate", "-ckpt", ck, "-out", out, "-from", "0,1", "-to", "2"), 2, "-from has 2 indices and -to 1"},
		{withData("interpolate", "-ckpt", ck, "-out", out, "-from", "-3"), 2, "integers >= 0"},
		{withData("latent", "-ckpt", ck, "-out", out, "-n", "41"), 2, "out of range"},
		{[]string{"reconstruct", "-ckpt", ck, "-out", out, "-dataset", "tiny", "-data-dir", filepath.Join(dir, "nodata"), "-offline"}, 1, "not found"},
		{[]string{"curves", "-metrics", notMetrics, "-out", out}, 1, "line 1: no \"epoch\" field"},
		{[]string{"curves", "-metrics", ck, "-out", out}, 1, "not a JSON object"},
		{[]string{"curves", "-metrics", empty, "-out", out}, 1, "no epochs"},
		{[]string{"curves", "-metrics", filepath.Join(dir, "missing.jsonl"), "-out", out}, 1, "no such file"},
		{[]string{"curves", "-out", out}, 2, "-metrics: want"},
		{[]string{"scatter"}, 2, "unknown subcommand \"scatter\""},
		{nil, 2, "usage: sample SUBCOMMAND"},
	} {
		code, _, stderr := sample(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("sample %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
		if strings.Contains(stderr, "goroutine ") {
			t.Errorf("sample %s: a panic trace", strings.Join(tc.args, " "))
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".png") || strings.Contains(e.Name(), ".tmp") {
				t.Fatalf("sample %s left %s behind", strings.Join(tc.args, " "), e.Name())
			}
		}
	}
}

func TestHelpDocumentsEachSubcommand(t *testing.T) {
	for _, c := range commands {
		code, _, stderr := sample(c.name, "-h")
		want := "-out" // every subcommand but report writes a picture
		if c.name == "report" {
			want = "-run"
		}
		if code != 0 || !strings.Contains(stderr, "usage: sample "+c.name) || !strings.Contains(stderr, want) {
			t.Errorf("%s -h: exit %d, %q", c.name, code, stderr)
		}
	}
}

// TestRealMNIST runs the commands that read test images on real MNIST with
// an untrained reference-architecture model: 28x28 grids and a plot.
func TestRealMNIST(t *testing.T) {
	testutil.SkipWithoutData(t)
	m, err := amortized.New(amortized.ReferenceConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ref.safetensors")
	if err := checkpoints.Save(ckpt, m, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "i.png")
	mustSample(t, "impute", "-ckpt", ckpt, "-out", out, "-dataset", "mnist", "-offline", "-n", "5", "-eval", "20", "-iters", "2", "-scale", "1")
	// The masked row's bottom halves are HiddenColor: 5 x 14 x 28 pixels,
	// the first of them at row 14 of the first masked cell.
	img := readFig(t, out)
	hidden, first := 0, image.Point{-1, -1}
	for y := range img.Rect.Dy() {
		for x := range img.Rect.Dx() {
			if c := img.RGBAAt(x, y); [3]uint8{c.R, c.G, c.B} == imgrid.HiddenColor {
				if hidden == 0 {
					first = image.Pt(x, y)
				}
				hidden++
			}
		}
	}
	if hidden != 5*14*28 {
		t.Fatalf("%d hidden pixels drawn, want 5 x 14 x 28", hidden)
	}
	// The original above it: binarized, as the model sees it.
	orig := first.Add(image.Pt(0, -14-(28+2)))
	for y := range 28 {
		for x := range 28 {
			if c := img.RGBAAt(orig.X+x, orig.Y+y); c.R != 0 && c.R != 255 || c.R != c.G {
				t.Fatalf("test image pixel (%d,%d) = %v: want binarized grey (0 or 255)", x, y, c)
			}
		}
	}
	mustSample(t, "latent", "-ckpt", ckpt, "-out", out, "-dataset", "mnist", "-offline", "-n", "300")
	if b := testutil.ReadPNG(t, out).Bounds(); b.Dx() != 7*plotting.DPI {
		t.Fatalf("latent plot is %v", b)
	}
}

// TestEveryPosteriorFamily runs the subcommands that encode images
// (reconstruct, impute, latent, interpolate) on a checkpoint of each
// posterior family, trained briefly so its pictures are not noise.
func TestEveryPosteriorFamily(t *testing.T) {
	ds, err := data.LoadDir(fx.data)
	if err != nil {
		t.Fatal(err)
	}
	train, err := data.NewLoader(ds.Train.Images, nil, data.LoaderOptions{Batch: 20, Seed: 1, Shuffle: true, Binarize: data.BinarizeDynamic})
	if err != nil {
		t.Fatal(err)
	}
	for _, post := range []string{"fullcov", "planar:2", "radial:2", "iaf:2"} {
		t.Run(post, func(t *testing.T) {
			cfg := amortized.Config{DataDim: size * size, ImageRows: size, ImageCols: size, Hidden: []int{32}, Latent: 3, Posterior: post}
			m, err := amortized.New(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := amortized.NewTrainer(m, 20, amortized.TrainOptions{Epochs: 2, LR: 1e-2, Seed: 1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if err := tr.Fit(context.Background(), train, nil, amortized.Hooks{}); err != nil {
				t.Fatal(err)
			}
			ckpt := filepath.Join(t.TempDir(), "m.safetensors")
			if err := checkpoints.Save(ckpt, m, nil); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			mustSample(t, withData("reconstruct", "-ckpt", ckpt, "-out", filepath.Join(out, "r.png"), "-n", "4")...)
			mustSample(t, withData("reconstruct", "-ckpt", ckpt, "-out", filepath.Join(out, "rm.png"), "-n", "4", "-mean")...)
			mustSample(t, withData("impute", "-ckpt", ckpt, "-out", filepath.Join(out, "i.png"), "-mask", "bottom", "-n", "4", "-iters", "3", "-eval", "20")...)
			mustSample(t, withData("latent", "-ckpt", ckpt, "-out", filepath.Join(out, "l.png"), "-n", "40")...)
			mustSample(t, withData("interpolate", "-ckpt", ckpt, "-out", filepath.Join(out, "p.png"), "-from", "0", "-to", "1", "-steps", "3")...)
			mustSample(t, "generate", "-ckpt", ckpt, "-out", filepath.Join(out, "g.png"), "-n", "4")
		})
	}
}

func TestLatentTSNEIsSeeded(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png"), filepath.Join(dir, "c.png")
	args := func(out, seed string) []string {
		return withData("latent", "-ckpt", fx.ckpt3, "-out", out, "-n", "40", "-method", "tsne", "-perplexity", "5", "-iters", "150", "-seed", seed)
	}
	if out := mustSample(t, args(a, "1")...); !strings.Contains(out, "t-SNE 2 against t-SNE 1") {
		t.Errorf("printed %q", out)
	}
	mustSample(t, args(b, "1")...)
	mustSample(t, args(c, "2")...)
	pa, _ := os.ReadFile(a)
	pb, _ := os.ReadFile(b)
	pc, _ := os.ReadFile(c)
	if !bytes.Equal(pa, pb) || bytes.Equal(pa, pc) {
		t.Error("want the same map for the same seed and another for another seed")
	}
	// Exact t-SNE too.
	mustSample(t, append(args(b, "1"), "-theta", "0")...)
	if pb, _ = os.ReadFile(b); bytes.Equal(pa, pb) {
		t.Error("-theta 0 (exact) drew the same map as Barnes-Hut")
	}
	for _, bad := range [][]string{{"-method", "umap"}, {"-method", "tsne", "-perplexity", "40"}, {"-method", "tsne", "-theta", "2"}} {
		if code, _, _ := sample(append(withData("latent", "-ckpt", fx.ckpt3, "-out", a, "-n", "40"), bad...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

func TestReportCommand(t *testing.T) {
	if code, _, errOut := sample("report"); code != 2 || !strings.Contains(errOut, "-run: want") {
		t.Errorf("no -run: exit %d, %q", code, errOut)
	}
	if code, _, errOut := sample("report", "-run", filepath.Join(t.TempDir(), "nope")); code != 2 || !strings.Contains(errOut, "not a directory") {
		t.Errorf("missing -run: exit %d, %q", code, errOut)
	}
	if code, _, errOut := sample("report", "-run", t.TempDir()); code != 1 || !strings.Contains(errOut, "metrics.jsonl") {
		t.Errorf("empty run: exit %d, %q", code, errOut)
	}
	// A real run of cmd/train's code.
	dir := t.TempDir()
	cfg := trainrun.Config{Dataset: "tiny", DataDir: fx.data, Offline: true, Batch: 20, ValSize: 40, Seed: 1, Out: dir,
		Model: amortized.Config{Hidden: []int{16}, Latent: 2}, Train: amortized.TrainOptions{Epochs: 1}, Stdout: io.Discard, Command: "go run ./cmd/train -epochs 1"}
	if err := trainrun.Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "index.html"))
	if out := mustSample(t, "report", "-run", dir); !strings.Contains(out, "index.html") {
		t.Errorf("printed %q", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil || !strings.Contains(string(b), "go run ./cmd/train -epochs 1") {
		t.Errorf("index.html: %v, without the command", err)
	}
}

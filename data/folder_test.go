package data

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeImage(t *testing.T, path string, im image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var err error
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(&buf, im)
	} else {
		err = jpeg.Encode(&buf, im, &jpeg.Options{Quality: 100})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// greyImage is w x h with pixel (x, y) = base + x + w*y.
func greyImage(w, h, base int) *image.Gray {
	im := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.SetGray(x, y, color.Gray{uint8(base + x + w*y)})
		}
	}
	return im
}

func uniform(w, h int, c color.Color) *image.RGBA {
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.Set(x, y, c)
		}
	}
	return im
}

// Sub-folders are classes; without a test folder a fixed 10% is held out,
// chosen by the files' paths, the same on every load.
func TestImageFolderClasses(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]uint8{} // file -> its pixels
	for c, class := range []string{"dog", "cat"} {
		for i := range 10 {
			p := filepath.Join(dir, class, string(rune('a'+i))+".png")
			im := greyImage(6, 4, 10*i+100*c)
			writeImage(t, p, im)
			want[p] = slices.Clone(im.Pix)
		}
	}
	os.WriteFile(filepath.Join(dir, "cat", "notes.txt"), []byte("not an image"), 0o644)
	os.WriteFile(filepath.Join(dir, ".DS_Store"), []byte("junk"), 0o644)
	ds, err := Load("pets", LoadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Kind != KindImageFolder || !slices.Equal(ds.Classes, []string{"cat", "dog"}) {
		t.Fatalf("kind %q classes %q", ds.Kind, ds.Classes)
	}
	tr, te := ds.Train, ds.Test
	if tr.Images.N != 18 || te.Images.N != 2 || tr.Images.Channels != 1 || tr.Images.Rows != 4 || tr.Images.Cols != 6 {
		t.Fatalf("got %d + %d images of %s", tr.Images.N, te.Images.N, tr.Images.shape())
	}
	seen := map[string]bool{}
	for _, s := range []Split{tr, te} {
		for i, f := range s.Files {
			if seen[f] {
				t.Errorf("%s in both splits", f)
			}
			seen[f] = true
			if !bytes.Equal(s.Images.Image(i), want[f]) {
				t.Errorf("%s: pixels differ", f)
			}
			class := filepath.Base(filepath.Dir(f))
			if ds.Classes[s.Labels[i]] != class {
				t.Errorf("%s: label %d (%s)", f, s.Labels[i], ds.Classes[s.Labels[i]])
			}
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d files loaded, want 20", len(seen))
	}
	ds2, err := Load("pets", LoadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Test.Files, ds2.Test.Files) {
		t.Errorf("test split changed between loads: %q vs %q", ds.Test.Files, ds2.Test.Files)
	}
	ds3, err := Load("pets", LoadOptions{Dir: dir, Images: ImageFolderOptions{TestFraction: 0.5}})
	if err != nil || ds3.Test.Images.N != 10 {
		t.Fatalf("TestFraction 0.5: %v", err)
	}
}

// train/ and test/ folders are the splits; images with no class folder
// are unlabelled.
func TestImageFolderTrainTest(t *testing.T) {
	dir := t.TempDir()
	for i := range 3 {
		writeImage(t, filepath.Join(dir, "train", "x"+string(rune('0'+i))+".png"), greyImage(3, 3, i))
	}
	writeImage(t, filepath.Join(dir, "test", "y.png"), greyImage(3, 3, 50))
	ds, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.Images.N != 3 || ds.Test.Images.N != 1 || ds.Classes != nil || ds.Test.Images.Pix[0] != 50 {
		t.Fatalf("got %d + %d images, classes %q", ds.Train.Images.N, ds.Test.Images.N, ds.Classes)
	}
	if ds.Train.ImagesPath != filepath.Join(dir, "train") || ds.Test.ImagesPath != filepath.Join(dir, "test") {
		t.Errorf("paths %s, %s", ds.Train.ImagesPath, ds.Test.ImagesPath)
	}
}

// Colour images are stored channel-major; grey is repeated for 3
// channels and colour weighted for 1.
func TestImageFolderChannels(t *testing.T) {
	dir := t.TempDir()
	im := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for y := range 2 {
		for x := range 3 {
			im.Set(x, y, color.RGBA{uint8(10 + x + 3*y), uint8(100 + x + 3*y), uint8(200 + x + 3*y), 255})
		}
	}
	for _, n := range []string{"a", "b"} {
		writeImage(t, filepath.Join(dir, n+".png"), im)
	}
	ds, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := ds.Train.Images
	if m.Channels != 3 || m.Dim() != 18 || m.Plane() != 6 {
		t.Fatalf("shape %s", m.shape())
	}
	for c, base := range []int{10, 100, 200} {
		for k := range 6 { // k = x + 3y
			if got := m.Image(0)[c*6+k]; int(got) != base+k {
				t.Fatalf("channel %d, pixel %d: %d, want %d", c, k, got, base+k)
			}
		}
	}
	ds, err = Load("x", LoadOptions{Dir: dir, Images: ImageFolderOptions{Channels: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for k := range 6 {
		want := color.GrayModel.Convert(im.At(k%3, k/3)).(color.Gray).Y
		if got := ds.Train.Images.Image(0)[k]; got != want {
			t.Fatalf("grey pixel %d: %d, want %d", k, got, want)
		}
	}

	grey := t.TempDir()
	writeImage(t, filepath.Join(grey, "a.png"), greyImage(2, 2, 7))
	writeImage(t, filepath.Join(grey, "b.png"), greyImage(2, 2, 7))
	ds, err = Load("x", LoadOptions{Dir: grey, Images: ImageFolderOptions{Channels: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ds.Train.Images.Image(0); !slices.Equal(got, []uint8{7, 8, 9, 10, 7, 8, 9, 10, 7, 8, 9, 10}) {
		t.Fatalf("grey as RGB: %v", got)
	}
}

// With a size, each image is centre-cropped to its aspect ratio and
// resized; without one, sizes must agree and the odd one is named.
func TestImageFolderResize(t *testing.T) {
	dir := t.TempDir()
	// 8x4: red, green (the centre 4x4), blue columns.
	wide := uniform(8, 4, color.RGBA{0, 200, 0, 255})
	for y := range 4 {
		for _, x := range []int{0, 1} {
			wide.Set(x, y, color.RGBA{255, 0, 0, 255})
			wide.Set(7-x, y, color.RGBA{0, 0, 255, 255})
		}
	}
	writeImage(t, filepath.Join(dir, "wide.png"), wide)
	writeImage(t, filepath.Join(dir, "tall.png"), uniform(5, 9, color.RGBA{30, 60, 90, 255}))

	_, err := LoadDir(dir)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != filepath.Join(dir, "wide.png") || !strings.Contains(err.Error(), "image is 8x4 (width x height), but "+filepath.Join(dir, "tall.png")+" is 5x9") {
		t.Fatalf("got %v", err)
	}

	ds, err := Load("x", LoadOptions{Dir: dir, Images: ImageFolderOptions{Rows: 4, Cols: 4, TestFraction: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Split{ds.Train, ds.Test} {
		want := []uint8{30, 60, 90}
		if filepath.Base(s.Files[0]) == "wide.png" {
			want = []uint8{0, 200, 0}
		}
		px := s.Images.Image(0)
		for c := range 3 {
			for k := range 16 {
				if px[c*16+k] != want[c] {
					t.Fatalf("%s: channel %d pixel %d is %d, want %d (centre crop, resize)", s.Files[0], c, k, px[c*16+k], want[c])
				}
			}
		}
	}
	for _, bad := range []ImageFolderOptions{{Rows: 4}, {Rows: -1, Cols: 2}, {Rows: MaxImageSide + 1, Cols: 1}, {Channels: 2}, {TestFraction: 1}, {MaxImages: -1}} {
		if _, err := Load("x", LoadOptions{Dir: dir, Images: bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// JPEG files are read too.
func TestImageFolderJPEG(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a", "1.jpg"), uniform(8, 8, color.RGBA{200, 100, 50, 255}))
	writeImage(t, filepath.Join(dir, "b", "2.jpeg"), uniform(8, 8, color.RGBA{20, 40, 60, 255}))
	ds, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(ds.Train.Files), ds.Test.Files...)
	if len(all) != 2 || ds.Train.Images.Channels != 3 {
		t.Fatalf("files %q, %d channels", all, ds.Train.Images.Channels)
	}
	px := ds.Train.Images.Image(0)
	want := []int{200, 100, 50}
	if ds.Train.Labels[0] == 1 {
		want = []int{20, 40, 60}
	}
	for c := range 3 {
		if d := int(px[c*64]) - want[c]; d < -4 || d > 4 {
			t.Errorf("channel %d: %d, want %d within JPEG error", c, px[c*64], want[c])
		}
	}
}

// pngHeaderClaiming is a 1x1 PNG whose IHDR claims w x h (CRC fixed).
func pngHeaderClaiming(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	// signature (8), length (4), "IHDR" (4), width, height, ...
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// Broken, huge or misplaced files are named; nothing panics.
func TestImageFolderErrors(t *testing.T) {
	good := func(t *testing.T, dir string, names ...string) {
		for _, n := range names {
			writeImage(t, filepath.Join(dir, n), greyImage(2, 2, 0))
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the file to be named
		opts  LoadOptions
		want  string
	}{
		{"not an image", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "b.png")
			os.WriteFile(filepath.Join(dir, "c.png"), []byte("hello"), 0o644)
			return filepath.Join(dir, "c.png")
		}, LoadOptions{}, "not a readable PNG or JPEG image"},
		{"truncated", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "b.png")
			var buf bytes.Buffer
			png.Encode(&buf, greyImage(2, 2, 9))
			os.WriteFile(filepath.Join(dir, "c.png"), buf.Bytes()[:buf.Len()-20], 0o644)
			return filepath.Join(dir, "c.png")
		}, LoadOptions{}, "cannot decode image"},
		{"huge claim", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "b.png")
			os.WriteFile(filepath.Join(dir, "c.png"), pngHeaderClaiming(t, 1<<20, 1<<20), 0o644)
			return filepath.Join(dir, "c.png")
		}, LoadOptions{}, "png image of 1048576x1048576 pixels, want 1 to 67108864 pixels"},
		{"mixed", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "cls/b.png", "cls/c.png")
			return filepath.Join(dir, "a.png")
		}, LoadOptions{}, "a.png: is in no class folder, but " + "DIR/cls/b.png is in one"},
		{"one image", func(t *testing.T, dir string) string {
			good(t, dir, "a.png")
			return dir
		}, LoadOptions{}, "1 images cannot be split into a training and a test set"},
		{"directory named .png", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "b.png")
			os.Mkdir(filepath.Join(dir, "c.png"), 0o755)
			good(t, dir, "c.png/d.png")
			return filepath.Join(dir, "a.png")
		}, LoadOptions{}, "is in no class folder, but DIR/c.png/d.png is in one"},
		{"too many", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "b.png", "c.png")
			return dir
		}, LoadOptions{Images: ImageFolderOptions{MaxImages: 2}}, "more than 2 image files"},
		{"too many bytes", func(t *testing.T, dir string) string {
			good(t, dir, "a.png", "b.png", "c.png")
			return dir
		}, LoadOptions{MaxBytes: 11}, "3 images of 1x2x2 take 12 bytes, over the limit of 11 bytes"},
		{"empty test folder", func(t *testing.T, dir string) string {
			good(t, dir, "train/a.png")
			os.MkdirAll(filepath.Join(dir, "test"), 0o755)
			return filepath.Join(dir, "test")
		}, LoadOptions{}, "holds no .png, .jpg or .jpeg images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := tt.setup(t, dir)
			opts := tt.opts
			opts.Dir = dir
			_, err := Load("x", opts)
			var fe *FormatError
			if want := strings.ReplaceAll(tt.want, "DIR", dir); !errors.As(err, &fe) || !strings.Contains(err.Error(), filepath.FromSlash(want)) {
				t.Fatalf("got %v, want a *FormatError with %q", err, tt.want)
			}
			if fe.File != file {
				t.Errorf("names %s, want %s", fe.File, file)
			}
		})
	}

	dir := t.TempDir()
	good(t, dir, "a.png", "b.png")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LoadContext(ctx, "x", LoadOptions{Dir: dir}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// cifarRecord builds one CIFAR-10 record: label, then pixel k of channel c
// = v + c + k (mod 256).
func cifarRec(label, v uint8) []byte {
	b := []byte{label}
	for c := range 3 {
		for k := range 1024 {
			b = append(b, uint8(int(v)+c+k))
		}
	}
	return b
}

func writeCIFAR(t *testing.T, dir string, batches map[string][]byte) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	for name, b := range batches {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR(t, dir, map[string][]byte{
		"data_batch_1.bin":  slices.Concat(cifarRec(3, 1), cifarRec(9, 2)),
		"data_batch_10.bin": cifarRec(0, 4), // after 2, by number
		"data_batch_2.bin":  cifarRec(5, 3),
		"test_batch.bin":    cifarRec(7, 9),
		"readme.html":       []byte("<p>"),
	})
	if kind, why := DetectKind(dir); kind != KindCIFAR10 {
		t.Fatalf("DetectKind = %q, %q", kind, why)
	}
	ds, err := Load("cifar10", LoadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m := ds.Train.Images
	if ds.Kind != KindCIFAR10 || m.N != 4 || m.Channels != 3 || m.Rows != 32 || m.Cols != 32 || ds.Test.Images.N != 1 {
		t.Fatalf("got %s", ds.Description())
	}
	if !slices.Equal(ds.Train.Labels, []uint8{3, 9, 5, 0}) || ds.Test.Labels[0] != 7 || ds.Classes[3] != "cat" {
		t.Fatalf("labels %v, %v, classes %q", ds.Train.Labels, ds.Test.Labels, ds.Classes)
	}
	for i, v := range []uint8{1, 2, 3, 4} {
		if !bytes.Equal(m.Image(i), cifarRec(0, v)[1:]) {
			t.Fatalf("training image %d differs from its record", i)
		}
	}

	os.WriteFile(filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\n\n"), 0o644)
	_, err = LoadDir(dir)
	checkFormatError(t, err, filepath.Join(dir, "data_batch_1.bin"), "record 0: label 3, want 0 to 1", false)
	os.Remove(filepath.Join(dir, "batches.meta.txt"))

	os.WriteFile(filepath.Join(dir, "data_batch_2.bin"), cifarRec(5, 3)[:3000], 0o644)
	_, err = LoadDir(dir)
	checkFormatError(t, err, filepath.Join(dir, "data_batch_2.bin"), "3000 bytes, not a whole number of 3073-byte records", false)

	_, err = Load("x", LoadOptions{Dir: dir, Images: ImageFolderOptions{Rows: 8, Cols: 8}})
	if err == nil || !strings.Contains(err.Error(), "is a CIFAR-10 folder; size, channel and split options apply only to image folders") {
		t.Errorf("image options on CIFAR-10: %v", err)
	}

	_, err = Load("x", LoadOptions{Dir: dir, MaxBytes: 100})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit: %v", err)
	}

	os.Remove(filepath.Join(dir, "test_batch.bin"))
	if _, why := DetectKind(dir); why != "CIFAR-10 folder: missing test_batch.bin" {
		t.Errorf("DetectKind without the test batch: %q", why)
	}
	os.Mkdir(filepath.Join(dir, "test_batch.bin"), 0o755)
	if _, why := DetectKind(dir); why != "CIFAR-10 folder: missing test_batch.bin; test_batch.bin is a directory, want a data file" {
		t.Errorf("DetectKind with a directory: %q", why)
	}
}

func TestDetectKind(t *testing.T) {
	idx := t.TempDir()
	tinySet{trainN: 1, testN: 1}.write(t, idx, "")
	imgs := t.TempDir()
	writeImage(t, filepath.Join(imgs, "train", "cat", "a.png"), greyImage(2, 2, 0))
	deep := t.TempDir()
	writeImage(t, filepath.Join(deep, "a", "b", "c", "d", "e.png"), greyImage(2, 2, 0))
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	partial := t.TempDir()
	tinySet{trainN: 1, testN: 1}.write(t, partial, "")
	os.Remove(filepath.Join(partial, "t10k-labels-idx1-ubyte"))
	writeImage(t, filepath.Join(partial, "x.png"), greyImage(2, 2, 0))
	for dir, want := range map[string][2]string{
		idx:                      {KindIDX, ""},
		imgs:                     {KindImageFolder, ""},
		deep:                     {"", "(image folder)"},
		file:                     {"", "not a folder"},
		filepath.Join(idx, "no"): {"", "does not exist"},
		partial:                  {"", "missing t10k-labels-idx1-ubyte[.gz]"},
	} {
		kind, why := DetectKind(dir)
		if kind != want[0] || !strings.HasSuffix(why, want[1]) {
			t.Errorf("DetectKind(%s) = %q, %q, want %q, ...%q", dir, kind, why, want[0], want[1])
		}
	}
}

// FuzzImageFile loads a folder holding one fuzzed file next to a valid
// image, as is and resized: it must load or fail with a *FormatError that
// names the fuzzed file, and never panic.
func FuzzImageFile(f *testing.F) {
	enc := func(im image.Image, jpg bool) []byte {
		var buf bytes.Buffer
		if jpg {
			jpeg.Encode(&buf, im, nil)
		} else {
			png.Encode(&buf, im)
		}
		return buf.Bytes()
	}
	pal := image.NewPaletted(image.Rect(0, 0, 3, 5), color.Palette{color.Black, color.RGBA{200, 10, 10, 255}})
	pal.SetColorIndex(1, 1, 1)
	f.Add(enc(greyImage(4, 4, 0), false))
	f.Add(enc(uniform(7, 3, color.RGBA{1, 2, 3, 128}), false))
	f.Add(enc(pal, false))
	f.Add(enc(uniform(9, 9, color.RGBA{90, 80, 70, 255}), true))
	f.Add(enc(image.NewGray16(image.Rect(0, 0, 1, 1)), false))
	f.Add(pngHeaderClaiming(nil, 1<<16, 1<<16))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		writeImage(t, filepath.Join(dir, "a.png"), greyImage(4, 4, 0))
		bad := filepath.Join(dir, "b.png")
		if err := os.WriteFile(bad, in, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, o := range []ImageFolderOptions{{TestFraction: 0.5}, {Rows: 3, Cols: 5, TestFraction: 0.5}} {
			ds, err := Load("x", LoadOptions{Dir: dir, Images: o})
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) || (fe.File != bad && !strings.Contains(err.Error(), bad)) {
					t.Fatalf("%+v: got %v, want a *FormatError naming %s", o, err, bad)
				}
				continue
			}
			if err := ds.Train.Images.check(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

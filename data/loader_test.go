package data

import (
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func randomImages(seed uint64, n, rows, cols int) *Images {
	r := rand.New(rand.NewPCG(seed, 0))
	m := &Images{N: n, Channels: 1, Rows: rows, Cols: cols, Pix: make([]uint8, n*rows*cols)}
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	return m
}

func mustLoader(t testing.TB, imgs *Images, idx []int, opts LoaderOptions) *Loader {
	t.Helper()
	l, err := NewLoader(imgs, idx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// epochRows returns every batch of an epoch, concatenated, and the indices.
func epochRows(t testing.TB, l *Loader, epoch int) ([]float32, []int) {
	t.Helper()
	var rows []float32
	var idx []int
	dst := make([]float32, l.BatchSize()*l.Dim())
	ids := make([]int, l.BatchSize())
	for b := range l.NumBatches() {
		n, err := l.Batch(epoch, b, dst)
		if err != nil {
			t.Fatal(err)
		}
		k, err := l.BatchIndices(epoch, b, ids)
		if err != nil {
			t.Fatal(err)
		}
		if k != n {
			t.Fatalf("Batch wrote %d rows, BatchIndices %d", n, k)
		}
		rows = append(rows, dst[:n*l.Dim()]...)
		idx = append(idx, ids[:n]...)
	}
	return rows, idx
}

func TestLoaderBatchPolicy(t *testing.T) {
	imgs := randomImages(1, 10, 2, 3)
	tests := []struct {
		name     string
		indices  []int
		batch    int
		dropLast bool
		shuffle  bool
		batches  int
		last     int // rows in the last batch
	}{
		{"exact", nil, 5, false, false, 2, 5},
		{"partial kept", nil, 4, false, true, 3, 2},
		{"partial dropped", nil, 4, true, true, 2, 4},
		{"batch larger than set", nil, 32, false, false, 1, 10},
		{"batch larger than set, dropped", nil, 32, true, false, 0, 0},
		{"subset", []int{9, 3, 3, 0}, 3, false, true, 2, 1},
		{"empty subset", []int{}, 3, false, false, 0, 0},
		{"one per batch", nil, 1, false, true, 10, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLoader(t, imgs, tt.indices, LoaderOptions{Batch: tt.batch, Shuffle: tt.shuffle, DropLast: tt.dropLast, Seed: 7})
			want := tt.indices
			if want == nil {
				want = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
			}
			if l.Len() != len(want) || l.Dim() != 6 || l.BatchSize() != tt.batch {
				t.Fatalf("Len, Dim, BatchSize = %d, %d, %d", l.Len(), l.Dim(), l.BatchSize())
			}
			if l.NumBatches() != tt.batches {
				t.Fatalf("NumBatches = %d, want %d", l.NumBatches(), tt.batches)
			}
			for epoch := range 3 {
				_, got := epochRows(t, l, epoch)
				if tt.batches > 0 {
					n, _ := l.BatchIndices(epoch, tt.batches-1, make([]int, tt.batch))
					if n != tt.last {
						t.Errorf("last batch has %d rows, want %d", n, tt.last)
					}
				}
				if !tt.shuffle && !slices.Equal(got, want[:len(got)]) {
					t.Errorf("epoch %d order %v, want %v", epoch, got, want)
				}
				// Every example at most once (exactly once without DropLast).
				slices.Sort(got)
				w := slices.Clone(want)
				slices.Sort(w)
				if !tt.dropLast && !slices.Equal(got, w) {
					t.Errorf("epoch %d covers %v, want %v", epoch, got, w)
				}
				if tt.dropLast && len(got) != tt.batches*tt.batch {
					t.Errorf("epoch %d has %d examples", epoch, len(got))
				}
			}
		})
	}
}

// Batches are pure functions of (seed, epoch, b): computing them in any
// order, on a fresh or a used loader, gives the same rows.
func TestLoaderAnyCallOrder(t *testing.T) {
	imgs := randomImages(2, 37, 4, 5)
	for _, bin := range []Binarization{BinarizeNone, BinarizeStatic, BinarizeDynamic} {
		t.Run(bin.String(), func(t *testing.T) {
			opts := LoaderOptions{Batch: 8, Seed: 99, Shuffle: true, Binarize: bin}
			ref := mustLoader(t, imgs, nil, opts)
			type key struct{ e, b int }
			want := map[key][]float32{}
			for e := range 3 {
				for b := range ref.NumBatches() {
					dst := make([]float32, ref.BatchSize()*ref.Dim())
					n, err := ref.Batch(e, b, dst)
					if err != nil {
						t.Fatal(err)
					}
					want[key{e, b}] = dst[:n*ref.Dim()]
				}
			}
			// A fresh loader, asked in a shuffled order that jumps between epochs.
			var keys []key
			for k := range want {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, func(a, b key) int { return a.e*100 + a.b - b.e*100 - b.b })
			rand.New(rand.NewPCG(5, 5)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
			l := mustLoader(t, imgs, nil, opts)
			dst := make([]float32, l.BatchSize()*l.Dim())
			for _, k := range keys {
				n, err := l.Batch(k.e, k.b, dst)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(dst[:n*l.Dim()], want[k]) {
					t.Fatalf("epoch %d batch %d differs when computed out of order", k.e, k.b)
				}
			}
		})
	}
}

func TestLoaderShuffle(t *testing.T) {
	imgs := randomImages(3, 50, 1, 1)
	order := func(seed uint64, epoch int) []int {
		_, idx := epochRows(t, mustLoader(t, imgs, nil, LoaderOptions{Batch: 7, Seed: seed, Shuffle: true}), epoch)
		return idx
	}
	base := order(1, 0)
	if slices.IsSorted(base) {
		t.Error("shuffled epoch is in order")
	}
	if slices.Equal(base, order(1, 1)) {
		t.Error("epochs 0 and 1 share an order")
	}
	if slices.Equal(base, order(2, 0)) {
		t.Error("seeds 1 and 2 share an order")
	}
	if !slices.Equal(base, order(1, 0)) {
		t.Error("same seed and epoch give different orders")
	}
	// The order is a property of (seed, epoch), not of the batch size.
	_, idx := epochRows(t, mustLoader(t, imgs, nil, LoaderOptions{Batch: 50, Seed: 1, Shuffle: true}), 0)
	if !slices.Equal(base, idx) {
		t.Error("batch size changes the epoch order")
	}
}

// Pinned values: a change here changes what resumed runs and saved data
// orders mean, so it must be deliberate.
func TestLoaderStreamsPinned(t *testing.T) {
	imgs := &Images{N: 10, Channels: 1, Rows: 1, Cols: 8, Pix: slices.Repeat([]uint8{0, 40, 80, 120, 160, 200, 240, 255}, 10)}
	l := mustLoader(t, imgs, nil, LoaderOptions{Batch: 10, Seed: 42, Shuffle: true, Binarize: BinarizeDynamic})
	rows, idx := epochRows(t, l, 3)
	if want := []int{8, 4, 2, 9, 6, 0, 1, 7, 5, 3}; !slices.Equal(idx, want) {
		t.Errorf("epoch 3 order %v, want %v", idx, want)
	}
	var bits strings.Builder
	for _, x := range rows[:16] {
		bits.WriteByte('0' + byte(x))
	}
	if want := "0001011100001011"; bits.String() != want {
		t.Errorf("first two rows of epoch 3 are %s, want %s", bits.String(), want)
	}
}

func TestLoaderPixels(t *testing.T) {
	imgs := randomImages(4, 64, 7, 9)
	imgs.Pix[0], imgs.Pix[1] = 0, 255
	d := imgs.Dim()
	none, idx := epochRows(t, mustLoader(t, imgs, nil, LoaderOptions{Batch: 10, Shuffle: true, Seed: 3}), 0)
	for r, i := range idx {
		for j, v := range imgs.Image(i) {
			if none[r*d+j] != float32(v)/255 {
				t.Fatalf("none: example %d pixel %d = %v, want %v/255", i, j, none[r*d+j], v)
			}
		}
	}

	static := mustLoader(t, imgs, nil, LoaderOptions{Batch: 10, Binarize: BinarizeStatic, Seed: 3})
	s0, _ := epochRows(t, static, 0)
	s1, _ := epochRows(t, static, 1)
	if !slices.Equal(s0, s1) {
		t.Error("static draw changes between epochs")
	}
	if want := imgs.Binarize(3).Float32(); !slices.Equal(s0, want) {
		t.Error("static loader draw differs from Images.Binarize with the same seed")
	}
	other, _ := epochRows(t, mustLoader(t, imgs, nil, LoaderOptions{Batch: 10, Binarize: BinarizeStatic, Seed: 4}), 0)
	if slices.Equal(s0, other) {
		t.Error("static draws for seeds 3 and 4 are equal")
	}

	dyn := mustLoader(t, imgs, nil, LoaderOptions{Batch: 10, Binarize: BinarizeDynamic, Seed: 3})
	d0, _ := epochRows(t, dyn, 0)
	d1, _ := epochRows(t, dyn, 1)
	if slices.Equal(d0, d1) {
		t.Error("dynamic draw repeats across epochs")
	}
	if slices.Equal(d0, s0) {
		t.Error("dynamic epoch 0 equals the static draw")
	}
	for _, rows := range [][]float32{s0, d0, d1} {
		for k, x := range rows {
			if x != 0 && x != 1 {
				t.Fatalf("binarized value %v", x)
			}
			if v := imgs.Pix[k]; (v == 0 && x != 0) || (v == 255 && x != 1) {
				t.Fatalf("pixel %d of value %d drew %v", k, v, x)
			}
		}
	}
}

// The draw of an example depends on (seed, epoch, index in Images) only, not
// on which subset or position it is served from.
func TestBinarizationIndependentOfSplit(t *testing.T) {
	imgs := randomImages(5, 30, 4, 4)
	train, valid, err := ValidationSplit(30, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []Binarization{BinarizeStatic, BinarizeDynamic} {
		all, allIdx := epochRows(t, mustLoader(t, imgs, nil, LoaderOptions{Batch: 4, Binarize: bin, Seed: 11}), 2)
		for _, part := range [][]int{train, valid} {
			rows, idx := epochRows(t, mustLoader(t, imgs, part, LoaderOptions{Batch: 3, Shuffle: true, Binarize: bin, Seed: 11}), 2)
			d := imgs.Dim()
			for r, i := range idx {
				at := slices.Index(allIdx, i)
				if !slices.Equal(rows[r*d:(r+1)*d], all[at*d:(at+1)*d]) {
					t.Fatalf("%v: example %d drawn differently in a subset", bin, i)
				}
			}
		}
	}
}

// Each pixel is 1 with probability pixel/255.
func TestBernoulliFrequencies(t *testing.T) {
	values := []uint8{0, 1, 13, 64, 128, 200, 254, 255}
	const n = 20000
	pix := slices.Repeat(values, 4)
	ones := make([]int, len(pix))
	row := make([]float32, len(pix))
	for i := range n {
		drawBinary(row, pix, dynamicKey(9, 0), i)
		for j, x := range row {
			ones[j] += int(x)
		}
	}
	for j, v := range pix {
		p := float64(v) / 255
		got := float64(ones[j]) / n
		if sd := math.Sqrt(p * (1 - p) / n); math.Abs(got-p) > 5*sd+1e-5 {
			t.Errorf("pixel %d (value %d): frequency %.4f, want %.4f", j, v, got, p)
		}
	}
}

func TestBernoulliThreshold(t *testing.T) {
	if bernoulliThreshold[0] != 0 || bernoulliThreshold[255] != 1<<16 {
		t.Fatalf("thresholds at 0 and 255 are %d and %d", bernoulliThreshold[0], bernoulliThreshold[255])
	}
	for v, th := range bernoulliThreshold {
		if d := float64(th)/65536 - float64(v)/255; math.Abs(d) > 1.0/(1<<17) {
			t.Errorf("P(1) for %d is off by %g", v, d)
		}
	}
}

// Once running, a batch costs no allocation, whether the epoch is cached or
// new (its permutation is rebuilt in place).
func TestLoaderNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so pooled jobs allocate")
	}
	imgs := randomImages(6, 300, 28, 28)
	for _, bin := range []Binarization{BinarizeNone, BinarizeStatic, BinarizeDynamic} {
		l := mustLoader(t, imgs, nil, LoaderOptions{Batch: 128, Shuffle: true, Binarize: bin, Seed: 1})
		dst := make([]float32, l.BatchSize()*l.Dim())
		ids := make([]int, l.BatchSize())
		b := 0
		if a := testing.AllocsPerRun(50, func() {
			l.Batch(0, b%l.NumBatches(), dst)
			l.BatchIndices(0, b%l.NumBatches(), ids)
			b++
		}); a != 0 {
			t.Errorf("%v: %v allocations per batch within an epoch", bin, a)
		}
		e := 0
		if a := testing.AllocsPerRun(20, func() {
			e++
			l.Batch(e, 0, dst)
		}); a != 0 {
			t.Errorf("%v: %v allocations per batch at an epoch change", bin, a)
		}
	}
}

func TestLoaderErrors(t *testing.T) {
	imgs := randomImages(7, 5, 2, 2)
	ctor := []struct {
		name string
		imgs *Images
		idx  []int
		opts LoaderOptions
		err  string
	}{
		{"nil images", nil, nil, LoaderOptions{Batch: 1}, "nil *Images"},
		{"bad images", &Images{N: 2, Channels: 1, Rows: 2, Cols: 2, Pix: make([]uint8, 3)}, nil, LoaderOptions{Batch: 1}, "images hold 3 values, want 2 x 1 x 2 x 2"},
		{"batch 0", imgs, nil, LoaderOptions{}, "batch size 0"},
		{"index high", imgs, []int{0, 5}, LoaderOptions{Batch: 1}, "index 5 (position 1) out of range [0, 5)"},
		{"index negative", imgs, []int{-1}, LoaderOptions{Batch: 1}, "index -1"},
		{"binarization", imgs, nil, LoaderOptions{Batch: 1, Binarize: 9}, "invalid binarization 9"},
	}
	for _, tt := range ctor {
		if _, err := NewLoader(tt.imgs, tt.idx, tt.opts); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}

	l := mustLoader(t, imgs, nil, LoaderOptions{Batch: 2})
	empty := mustLoader(t, imgs, nil, LoaderOptions{Batch: 8, DropLast: true})
	calls := []struct {
		name     string
		l        *Loader
		epoch, b int
		dst      int
		err      string
	}{
		{"negative epoch", l, -1, 0, 8, "epoch -1"},
		{"batch past end", l, 0, 3, 8, "batch 3 out of range [0, 3)"},
		{"negative batch", l, 0, -1, 8, "batch -1 out of range"},
		{"dst short", l, 0, 0, 7, "needs 2 x 4 = 8 values, dst holds 7"},
		{"no batches", empty, 0, 0, 32, "no batches"},
	}
	for _, tt := range calls {
		if _, err := tt.l.Batch(tt.epoch, tt.b, make([]float32, tt.dst)); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.err)
		}
	}
	// The last batch holds one row, so one row of room is enough.
	if n, err := l.Batch(0, 2, make([]float32, 4)); n != 1 || err != nil {
		t.Errorf("last batch into a one-row dst: %d, %v", n, err)
	}
}

func TestLoaderCopiesIndices(t *testing.T) {
	imgs := randomImages(8, 5, 1, 1)
	idx := []int{4, 3}
	l := mustLoader(t, imgs, idx, LoaderOptions{Batch: 2})
	idx[0] = 0
	got := make([]int, 2)
	l.BatchIndices(0, 0, got)
	if !slices.Equal(got, []int{4, 3}) {
		t.Errorf("loader sees the caller's later change: %v", got)
	}
}

func TestParseBinarization(t *testing.T) {
	tests := []struct {
		in   string
		want Binarization
		err  bool
	}{
		{"none", BinarizeNone, false},
		{"static", BinarizeStatic, false},
		{"dynamic", BinarizeDynamic, false},
		{"Dynamic", BinarizeDynamic, false},
		{"", 0, true},
		{"bernoulli", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseBinarization(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseBinarization(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), `unknown binarization "`+tt.in+`" (want none, static or dynamic)`) {
			t.Errorf("unclear error: %v", err)
		}
	}
	if s := Binarization(7).String(); s != "Binarization(7)" {
		t.Errorf("String of an invalid value: %q", s)
	}
}

func TestBinarizationText(t *testing.T) {
	var cfg struct{ B Binarization }
	if err := json.Unmarshal([]byte(`{"B":"static"}`), &cfg); err != nil || cfg.B != BinarizeStatic {
		t.Fatalf("JSON: %v, %v", cfg.B, err)
	}
	out, err := json.Marshal(struct{ B Binarization }{BinarizeDynamic})
	if err != nil || string(out) != `{"B":"dynamic"}` {
		t.Fatalf("JSON: %s, %v", out, err)
	}
	if _, err := json.Marshal(struct{ B Binarization }{9}); err == nil {
		t.Error("marshalling an invalid value succeeded")
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var b Binarization
	fs.TextVar(&b, "binarize", BinarizeDynamic, "")
	if err := fs.Parse([]string{"-binarize", "none"}); err != nil || b != BinarizeNone {
		t.Fatalf("flag: %v, %v", b, err)
	}
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse([]string{"-binarize", "odd"}); err == nil {
		t.Error("flag accepted an unknown binarization")
	}
}

func TestValidationSplit(t *testing.T) {
	for _, tt := range []struct{ n, size int }{{10, 0}, {10, 1}, {10, 9}, {60000, 10000}, {1, 0}} {
		train, valid, err := ValidationSplit(tt.n, tt.size, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(valid) != tt.size || len(train) != tt.n-tt.size {
			t.Fatalf("%v: sizes %d, %d", tt, len(train), len(valid))
		}
		if !slices.IsSorted(train) || !slices.IsSorted(valid) {
			t.Errorf("%v: not sorted", tt)
		}
		all := slices.Sorted(slices.Values(append(slices.Clone(train), valid...)))
		for i, v := range all {
			if v != i {
				t.Fatalf("%v: train and validation do not partition 0..n-1", tt)
			}
		}
		again, _, _ := ValidationSplit(tt.n, tt.size, 5)
		if !slices.Equal(train, again) {
			t.Errorf("%v: same seed, different split", tt)
		}
	}
	_, a, _ := ValidationSplit(1000, 100, 1)
	_, b, _ := ValidationSplit(1000, 100, 2)
	if slices.Equal(a, b) {
		t.Error("seeds 1 and 2 give the same validation set")
	}
	if a[len(a)-1] < 500 {
		t.Error("validation set drawn from the front only")
	}
	for _, tt := range []struct{ n, size int }{{10, -1}, {10, 10}, {10, 11}, {0, 0}} {
		if _, _, err := ValidationSplit(tt.n, tt.size, 1); err == nil {
			t.Errorf("ValidationSplit(%d, %d) succeeded", tt.n, tt.size)
		}
	}
}

func TestLoaderRows(t *testing.T) {
	imgs := randomImages(3, 37, 4, 5)
	l := mustLoader(t, imgs, nil, LoaderOptions{Batch: 8, Seed: 7, Shuffle: true, Binarize: BinarizeDynamic})
	rows, err := l.Rows(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != l.Len() {
		t.Fatalf("%d rows, want %d", len(rows), l.Len())
	}
	dst := make([]float32, l.BatchSize()*l.Dim())
	r := 0
	for b := range l.NumBatches() {
		n, err := l.Batch(2, b, dst)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if !slices.Equal(rows[r], dst[i*l.Dim():(i+1)*l.Dim()]) {
				t.Fatalf("row %d differs from batch %d row %d", r, b, i)
			}
			r++
		}
	}
}

// BatchPixels serves the raw values of Batch's rows, in Batch's order.
func TestBatchPixels(t *testing.T) {
	m := &Images{N: 7, Channels: 3, Rows: 2, Cols: 1, Pix: make([]uint8, 42)}
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 6)
	}
	l, err := NewLoader(m, []int{6, 2, 4, 0, 5}, LoaderOptions{Batch: 2, Seed: 3, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, r, k := l.Shape(); c != 3 || r != 2 || k != 1 || l.Dim() != 6 {
		t.Fatalf("Shape = %d, %d, %d; Dim %d", c, r, k, l.Dim())
	}
	x := make([]float32, 12)
	px := make([]uint8, 12)
	idx := make([]int, 2)
	for b := range l.NumBatches() {
		n, err := l.Batch(1, b, x)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := l.BatchPixels(1, b, px)
		if err != nil || n2 != n {
			t.Fatalf("BatchPixels: %d rows, %v; Batch %d", n2, err, n)
		}
		l.BatchIndices(1, b, idx)
		for r := range n {
			if !slices.Equal(px[r*6:(r+1)*6], m.Image(idx[r])) {
				t.Fatalf("batch %d row %d: %v, want image %d", b, r, px[r*6:(r+1)*6], idx[r])
			}
			for k := range 6 {
				if x[r*6+k] != float32(px[r*6+k])/255 {
					t.Fatalf("batch %d row %d value %d: %g vs raw %d", b, r, k, x[r*6+k], px[r*6+k])
				}
			}
		}
	}
	if _, err := l.BatchPixels(0, 0, px[:5]); err == nil {
		t.Error("short dst accepted")
	}
}

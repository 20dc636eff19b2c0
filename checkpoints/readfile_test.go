//go:build unix

package checkpoints

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
)

// withTimeout fails the test if fn does not return within d: a reader that
// blocks on a FIFO would otherwise hang the test binary.
func withTimeout(t *testing.T, d time.Duration, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("still reading after %v", d)
		return nil
	}
}

func TestReadFileRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.safetensors")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{dir, "is a directory"},
		{fifo, "is a named pipe (FIFO)"},
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		cases = append(cases, struct{ path, want string }{"/dev/zero", "is a character device"})
	}
	for _, c := range cases {
		err := withTimeout(t, 5*time.Second, func() error { _, err := Load(c.path); return err })
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("Load(%s): %v, want an error naming it and saying it %s", c.path, err, c.want)
		}
	}
}

// sparseFile writes prefix at the start of a file of size bytes whose rest
// is a hole: no disk space, no time.
func sparseFile(t *testing.T, prefix []byte, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sparse.safetensors")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(prefix); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Skipf("cannot make a %d-byte sparse file here: %v", size, err)
	}
	return p
}

func headerBytes(hdr string) []byte {
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(b, hdr...)
}

func TestReadFileChecksSizesBeforeReading(t *testing.T) {
	const big = 40 << 30
	defer func(old int64) { MaxReadSize = old }(MaxReadSize)
	MaxReadSize = 1 << 30

	// All zeros: a header length of 0 is no JSON object.
	zero := sparseFile(t, nil, big)
	err := withTimeout(t, 5*time.Second, func() error { _, err := ReadFile(zero); return err })
	if err == nil || !strings.Contains(err.Error(), "not a JSON object") {
		t.Errorf("40 GB of zeros: %v", err)
	}
	// A header that declares all 40 GB: the sizes agree, the limit refuses.
	n := int64(big - 8 - 64)
	hdr := headerBytes(`{"w":{"dtype":"U8","shape":[` + itoa(n) + `],"data_offsets":[0,` + itoa(n) + `]}}`)
	whole := sparseFile(t, hdr, 8+int64(len(hdr)-8)+n)
	err = withTimeout(t, 5*time.Second, func() error { _, err := ReadFile(whole); return err })
	if err == nil || !strings.Contains(err.Error(), "over the 1073741824-byte limit") {
		t.Errorf("declared 40 GB: %v", err)
	}
	// A header that declares more than the file holds: truncated, before any data is read.
	short := sparseFile(t, hdr, 1<<20)
	err = withTimeout(t, 5*time.Second, func() error { _, err := ReadFile(short); return err })
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "run past the end of the data section") {
		t.Errorf("declared more than the file: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestLoadRefusesNonFiniteWeights(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		m, err := amortized.New(tinyConfig(), 1)
		if err != nil {
			t.Fatal(err)
		}
		p := m.Params().All()[1]
		p.Float32s()[2] = bad
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := Save(path, m, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `"`+p.Name+`"`) || !strings.Contains(err.Error(), "NaN or an infinity") {
			t.Errorf("weight %g: Load gave %v, want an error naming tensor %q", bad, err, p.Name)
		}
	}
}

func TestLoadTrainingRefusesTamperedState(t *testing.T) {
	m, tr := trainedTiny(t) // 2 epochs of 3 batches: step 6
	defer tr.Close()
	cases := []struct {
		name   string
		tamper func(st *amortized.TrainState)
		want   string
	}{
		{"negative step", func(st *amortized.TrainState) { st.Step = -1 }, "negative counters"},
		{"step behind the epochs", func(st *amortized.TrainState) { st.Step = 1 }, "step 1 is fewer than"},
		{"epochs beyond the run", func(st *amortized.TrainState) { st.Epoch = 3 }, "3 epochs completed of a run of 2"},
		{"batch beyond the run", func(st *amortized.TrainState) { st.Batch = 1 }, "beyond the run's 2 epochs"},
		{"best epoch in the future", func(st *amortized.TrainState) { st.BestEpoch = 5 }, "best epoch 5"},
		{"zero learning rate", func(st *amortized.TrainState) { st.Options.LR = -1 }, "learning rate"},
		{"negative image count", func(st *amortized.TrainState) { st.Partial.N = -3 }, "partial sums"},
		{"negative second moment", func(st *amortized.TrainState) {
			st.AdamV = st.AdamV.ZerosLike()
			st.AdamV.All()[0].Float32s()[3] = -0.5
		}, "Adam second moment \"adam_v." + m.Params().All()[0].Name + "\" holds -0.5 at index 3"},
		{"NaN first moment", func(st *amortized.TrainState) {
			st.AdamM = st.AdamM.ZerosLike()
			st.AdamM.All()[1].Float32s()[0] = float32(math.NaN())
		}, "Adam first moment \"adam_m." + m.Params().All()[1].Name + "\""},
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	st := tr.State()
	if err := Save(good, m, &st); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadTraining(good); err != nil {
		t.Fatalf("untampered state: %v", err)
	}
	for _, c := range cases {
		st := tr.State()
		c.tamper(&st)
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		if err := Save(path, m, &st); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadTraining(path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming %s and containing %q", c.name, err, path, c.want)
		}
	}
}

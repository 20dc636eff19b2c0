package checkpoints

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
)

func tinyConfig() amortized.Config {
	return amortized.Config{DataDim: 16, ImageRows: 4, ImageCols: 4, Hidden: []int{8}, Latent: 2}
}

// tinyBatches serves fixed binary rows in order.
type tinyBatches struct{ x []float32 }

func (b tinyBatches) Len() int        { return len(b.x) / 16 }
func (b tinyBatches) Dim() int        { return 16 }
func (b tinyBatches) BatchSize() int  { return 4 }
func (b tinyBatches) NumBatches() int { return (b.Len() + 3) / 4 }
func (b tinyBatches) Batch(_, i int, dst []float32) (int, error) {
	rows := min(4, b.Len()-4*i)
	copy(dst, b.x[i*64:i*64+rows*16])
	return rows, nil
}

func trainedTiny(t *testing.T) (*amortized.Model, *amortized.Trainer) {
	t.Helper()
	m, err := amortized.New(tinyConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 10*16)
	for i := range x {
		x[i] = float32((i / 16 % 2) ^ (i % 2))
	}
	tr, err := amortized.NewTrainer(m, 4, amortized.TrainOptions{Epochs: 2, Seed: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.SetRun([]byte(`{"note":"test"}`))
	if err := tr.Fit(context.Background(), tinyBatches{x}, nil, amortized.Hooks{}); err != nil {
		t.Fatal(err)
	}
	return m, tr
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, dtype := range []string{"float32", "float64"} {
		cfg := tinyConfig()
		cfg.Dtype = dtype
		m, err := amortized.New(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := Save(path, m, nil); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range m.Params().All() {
			q := got.Params().All()[i]
			if p.Name != q.Name || !p.Value.Eq(q.Value) {
				t.Fatalf("%s: tensor %s differs after load", dtype, p.Name)
			}
		}
		z := [][]float32{{0.3, -1.2}, {2, 0}}
		a, _ := m.Decode(z)
		b, _ := got.Decode(z)
		for i := range a {
			for j := range a[i] {
				if a[i][j] != b[i][j] {
					t.Fatalf("%s: Decode differs after load", dtype)
				}
			}
		}
		if _, _, err := LoadTraining(path); err == nil || !strings.Contains(err.Error(), "no training state") {
			t.Errorf("LoadTraining of a weights-only file: %v", err)
		}
	}
}

func TestTrainingStateRoundTrip(t *testing.T) {
	m, tr := trainedTiny(t)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	st := tr.State()
	if err := Save(path, m, &st); err != nil {
		t.Fatal(err)
	}
	_, got, err := LoadTraining(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 2 || got.Step != st.Step || got.Options != st.Options || string(got.Run) != `{"note":"test"}` {
		t.Fatalf("state %+v, want %+v", got, st)
	}
	for i, p := range st.AdamV.All() {
		if !p.Value.Eq(got.AdamV.All()[i].Value) {
			t.Fatalf("Adam moment %s differs", p.Name)
		}
	}
	version, cfg, ist, err := Inspect(path)
	if err != nil || version != FormatVersion || cfg.Latent != 2 || ist == nil || ist.Step != st.Step {
		t.Fatalf("Inspect: %v %+v %v", err, cfg, ist)
	}
}

// rewrite edits the metadata of a saved checkpoint and saves it again.
func rewrite(t *testing.T, path string, edit func(f *File)) {
	t.Helper()
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(f)
	if err := WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	m, _ := amortized.New(tinyConfig(), 1)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	if err := Save(good, m, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	cases := []struct {
		name string
		make func(p string)
		want string
	}{
		{"truncated", func(p string) { os.WriteFile(p, raw[:len(raw)-7], 0o644) }, "checkpoints:"},
		{"bit flip", func(p string) {
			b := append([]byte(nil), raw...)
			b[len(b)-100] ^= 0x10
			os.WriteFile(p, b, 0o644)
		}, "checksum"},
		{"not a checkpoint", func(p string) { os.WriteFile(p, []byte("hello, world\n"), 0o644) }, "checkpoints:"},
		{"foreign safetensors", func(p string) {
			f := &File{Metadata: map[string]string{"format": "pt"}}
			f.AddFloat32("weight", []int{2}, []float32{1, 2})
			WriteFile(p, f)
		}, "not a govae checkpoint"},
		{"newer version", func(p string) {
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) { f.Metadata["format_version"] = "3" })
		}, "format version 3 is newer"},
		{"no checksum", func(p string) {
			f, _ := ReadFile(good)
			os.WriteFile(p, stripChecksum(t, f), 0o644)
		}, "has no checksum"},
		{"wrong shape", func(p string) {
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) {
				f.Metadata["config"] = strings.Replace(f.Metadata["config"], `"latent":2`, `"latent":3`, 1)
			})
		}, "shape"},
		{"huge config", func(p string) {
			// A few bytes claiming a 2e9-unit layer must fail before any allocation.
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) {
				f.Metadata["config"] = `{"data_dim":784,"hidden":[2000000000],"latent":2}`
			})
		}, "the configuration describes"},
		{"overflowing config", func(p string) {
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) {
				f.Metadata["config"] = `{"data_dim":9000000000000000000,"hidden":[9000000000000000000],"latent":2}`
			})
		}, "2^63"},
		{"posterior the file does not hold", func(p string) {
			// A diag file relabelled with a flow posterior: its heads are
			// missing, and the count says so before anything is allocated.
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) {
				f.Metadata["config"] = strings.Replace(f.Metadata["config"], `"posterior":"diag"`, `"posterior":"planar:1000"`, 1)
			})
		}, "the configuration describes"},
		{"fullcov label on a diag file", func(p string) {
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) {
				f.Metadata["config"] = strings.Replace(f.Metadata["config"], `"posterior":"diag"`, `"posterior":"fullcov"`, 1)
			})
		}, "the configuration describes 349 parameters, the file holds 340"},
		{"unknown posterior", func(p string) {
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) {
				f.Metadata["config"] = strings.Replace(f.Metadata["config"], `"posterior":"diag"`, `"posterior":"vamp:3"`, 1)
			})
		}, `posterior "vamp:3": unknown family`},
		{"stranger tensor", func(p string) {
			os.WriteFile(p, raw, 0o644)
			rewrite(t, p, func(f *File) { f.AddFloat32("extra", []int{1}, []float32{0}) })
		}, `tensor "extra" is not part`},
		{"missing file", func(p string) {}, "no such file"},
	}
	for _, tc := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		tc.make(p)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
			continue
		}
		if tc.name != "missing file" && !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", tc.name, err)
		}
	}
}

// stripChecksum encodes f in plain safetensors, without our checksum key.
func stripChecksum(t *testing.T, f *File) []byte {
	t.Helper()
	var b strings.Builder
	if err := Encode(&b, f); err != nil {
		t.Fatal(err)
	}
	enc := []byte(b.String())
	// Remove the checksum entry from the header; the header length and the
	// data offsets stay valid if we pad with spaces.
	i := strings.Index(string(enc), `"checksum":"sha256:`)
	if i < 0 {
		t.Fatal("no checksum in encoding")
	}
	j := i + len(`"checksum":"sha256:`) + 64 + 1
	if enc[j] == ',' {
		j++
	} else if enc[i-1] == ',' {
		i--
	}
	for k := i; k < j; k++ {
		enc[k] = ' '
	}
	return enc
}

func TestSaveIsAtomicOnFailure(t *testing.T) {
	m, _ := amortized.New(tinyConfig(), 1)
	if err := Save(filepath.Join(t.TempDir(), "no", "such", "dir", "m.safetensors"), m, nil); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
}

func TestELBOAfterLoadIsFinite(t *testing.T) {
	m, _ := trainedTiny(t)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Save(path, m, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := [][]float32{make([]float32, 16)}
	a, _ := m.ELBO(x, rand.New(rand.NewPCG(1, 1)))
	b, _ := got.ELBO(x, rand.New(rand.NewPCG(1, 1)))
	if a[0] != b[0] || math.IsNaN(a[0]) {
		t.Fatalf("ELBO %v before save, %v after load", a[0], b[0])
	}
}

package checkpoints

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden seed files in testdata/")

// ---- helpers ----

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustEncode(t testing.TB, f *File) []byte {
	t.Helper()
	var buf bytes.Buffer
	must(t, Encode(&buf, f))
	return buf.Bytes()
}

func mustDecode(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := Decode(b, "test.safetensors")
	must(t, err)
	return f
}

func le32(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func f32bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// raw assembles a file from a literal header, unpadded, and data bytes.
func raw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// diffFiles describes how two files differ, ignoring the checksum value
// (which depends on header details that a re-encode may change).
func diffFiles(a, b *File) string {
	strip := func(m map[string]string) map[string]string {
		m = maps.Clone(m)
		delete(m, ChecksumKey)
		return m
	}
	if ma, mb := strip(a.Metadata), strip(b.Metadata); !maps.Equal(ma, mb) {
		return fmt.Sprintf("metadata %q != %q", ma, mb)
	}
	if len(a.Tensors) != len(b.Tensors) {
		return fmt.Sprintf("%d tensors != %d", len(a.Tensors), len(b.Tensors))
	}
	for i := range a.Tensors {
		x, y := &a.Tensors[i], &b.Tensors[i]
		if x.Name != y.Name || x.DType != y.DType || !slices.Equal(x.Shape, y.Shape) || !bytes.Equal(x.Data, y.Data) {
			return fmt.Sprintf("tensor %d: %q %s %v % x != %q %s %v % x", i, x.Name, x.DType, x.Shape, x.Data, y.Name, y.DType, y.Shape, y.Data)
		}
	}
	return ""
}

// sampleFile has every dtype the trainer uses, a scalar, empty tensors,
// awkward names, and tensors deliberately not in name order.
func sampleFile(t testing.TB) *File {
	f := &File{Metadata: map[string]string{
		"format_version": "1",
		"config":         "{\"latent\": 20,\n\t\"name\": \"vae ✓\"}",
		"dataset_sha256": "sha256:" + strings.Repeat("ab", 32), // checksum-shaped, but "checksum" is present
		"":               "empty key",
	}}
	must(t, f.AddFloat32("z.weight", []int{2, 3}, []float32{1, -2.5, float32(math.Inf(1)), float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, math.MaxFloat32}))
	must(t, f.AddFloat64("a.bias", []int{3}, []float64{math.Pi, -1e300, math.Float64frombits(0x7ff8000000000001)}))
	must(t, f.AddInt64("step", []int{}, []int64{math.MinInt64}))
	must(t, f.AddInt64("counts", []int{4}, []int64{0, 1, -1, math.MaxInt64}))
	must(t, f.AddFloat32("empty", []int{0}, nil))
	must(t, f.AddFloat32("empty3d", []int{2, 0, 3}, []float32{}))
	must(t, f.Add(Tensor{Name: "pixels", DType: U8, Shape: []int{2, 2}, Data: []byte{0, 127, 128, 255}}))
	must(t, f.Add(Tensor{Name: "order", DType: I32, Shape: []int{2}, Data: le32(-7, 1<<30)}))
	must(t, f.Add(Tensor{Name: "name with \"quotes\", \\, \n and ✓", DType: F32, Shape: []int{1}, Data: f32bytes(0.5)}))
	return f
}

// ---- round trips ----

func TestRoundTripEachDType(t *testing.T) {
	shapes := [][]int{{}, {0}, {2, 3}, {3, 0, 2}}
	for _, dt := range []DType{F32, F64, I64, U8, I32} {
		for _, shape := range shapes {
			t.Run(fmt.Sprintf("%s%v", dt, shape), func(t *testing.T) {
				n, err := numElements(shape)
				must(t, err)
				f := &File{}
				switch dt {
				case F32:
					v := make([]float32, n)
					for i := range v {
						v[i] = float32(i)*1.5 - 2
					}
					must(t, f.AddFloat32("t", shape, v))
					got, gotShape, err := mustDecode(t, mustEncode(t, f)).Float32("t")
					must(t, err)
					if !slices.Equal(got, v) || !slices.Equal(gotShape, shape) {
						t.Fatalf("got %v %v, want %v %v", got, gotShape, v, shape)
					}
				case F64:
					v := make([]float64, n)
					for i := range v {
						v[i] = float64(i)/3 - 1e10
					}
					must(t, f.AddFloat64("t", shape, v))
					got, gotShape, err := mustDecode(t, mustEncode(t, f)).Float64("t")
					must(t, err)
					if !slices.Equal(got, v) || !slices.Equal(gotShape, shape) {
						t.Fatalf("got %v %v, want %v %v", got, gotShape, v, shape)
					}
				case I64:
					v := make([]int64, n)
					for i := range v {
						v[i] = int64(i)*(1<<40) - (1 << 62)
					}
					must(t, f.AddInt64("t", shape, v))
					got, gotShape, err := mustDecode(t, mustEncode(t, f)).Int64("t")
					must(t, err)
					if !slices.Equal(got, v) || !slices.Equal(gotShape, shape) {
						t.Fatalf("got %v %v, want %v %v", got, gotShape, v, shape)
					}
				default:
					data := make([]byte, int(n)*dt.Size())
					for i := range data {
						data[i] = byte(i*37 + 1)
					}
					must(t, f.Add(Tensor{Name: "t", DType: dt, Shape: shape, Data: data}))
					g := mustDecode(t, mustEncode(t, f))
					tt, ok := g.Lookup("t")
					if !ok || tt.DType != dt || !slices.Equal(tt.Shape, shape) || !bytes.Equal(tt.Data, data) {
						t.Fatalf("got %+v, want %s %v % x", tt, dt, shape, data)
					}
				}
			})
		}
	}
}

func TestRoundTripKeepsOrderMetadataAndBits(t *testing.T) {
	f := sampleFile(t)
	g := mustDecode(t, mustEncode(t, f))
	if d := diffFiles(f, g); d != "" {
		t.Fatal(d)
	}
	if !g.HasChecksum() {
		t.Fatal("encoded file reports no checksum")
	}
	if f.HasChecksum() {
		t.Fatal("Encode added a checksum to the caller's metadata")
	}
	// Bit-exact floats: NaN payloads and negative zero survive.
	v, _, err := g.Float64("a.bias")
	must(t, err)
	if math.Float64bits(v[2]) != 0x7ff8000000000001 {
		t.Fatalf("NaN payload lost: %#x", math.Float64bits(v[2]))
	}
	w, _, err := g.Float32("z.weight")
	must(t, err)
	if !math.Signbit(float64(w[3])) || w[3] != 0 || !math.IsInf(float64(w[2]), 1) {
		t.Fatalf("special floats changed: %v", w)
	}
	s, shape, err := g.Int64("step")
	must(t, err)
	if len(s) != 1 || s[0] != math.MinInt64 || shape == nil || len(shape) != 0 {
		t.Fatalf("scalar: got %v shape %#v", s, shape)
	}
}

func TestEncodeIsDeterministicAndIdempotent(t *testing.T) {
	f := sampleFile(t)
	a, b := mustEncode(t, f), mustEncode(t, f)
	if !bytes.Equal(a, b) {
		t.Fatal("two encodings of one file differ")
	}
	if c := mustEncode(t, mustDecode(t, a)); !bytes.Equal(a, c) {
		t.Fatal("re-encoding a decoded file changed its bytes")
	}
	// A stale checksum in the caller's metadata is replaced, not written.
	f.Metadata[ChecksumKey] = "sha256:" + strings.Repeat("0", 64)
	if c := mustEncode(t, f); !bytes.Equal(a, c) {
		t.Fatal("a stale metadata checksum leaked into the output")
	}
}

func TestEncodedLayout(t *testing.T) {
	b := mustEncode(t, sampleFile(t))
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Fatalf("header length %d is not a multiple of 8", n)
	}
	hdr := b[8 : 8+n]
	body := bytes.TrimRight(hdr, " ")
	if body[len(body)-1] != '}' || len(hdr)-len(body) >= 8 {
		t.Fatalf("header padding wrong: %q", hdr[len(body)-1:])
	}
	// An independent parse: plain encoding/json into generic values.
	var m map[string]json.RawMessage
	must(t, json.Unmarshal(hdr, &m))
	var meta map[string]string
	must(t, json.Unmarshal(m["__metadata__"], &meta))
	digits, ok := strings.CutPrefix(meta["checksum"], "sha256:")
	if !ok || len(digits) != 64 || strings.ToLower(digits) != digits {
		t.Fatalf("checksum %q", meta["checksum"])
	}
	// Recompute the checksum the way the format comment tells Python users to.
	zeroed := bytes.Replace(b, []byte(digits), bytes.Repeat([]byte("0"), 64), 1)
	if sum := sha256.Sum256(zeroed); hex.EncodeToString(sum[:]) != digits {
		t.Fatal("checksum does not follow the documented recipe")
	}
	data := b[8+n:]
	var end int64
	f := sampleFile(t)
	for _, want := range f.Tensors {
		var info struct {
			DType       string   `json:"dtype"`
			Shape       []int    `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		must(t, json.Unmarshal(m[want.Name], &info))
		if info.DataOffsets[0] != end {
			t.Fatalf("%q starts at %d, want %d (tensors must follow File order)", want.Name, info.DataOffsets[0], end)
		}
		end = info.DataOffsets[1]
		if DType(info.DType) != want.DType || !slices.Equal(info.Shape, want.Shape) || !bytes.Equal(data[info.DataOffsets[0]:end], want.Data) {
			t.Fatalf("%q: header %+v does not describe its data", want.Name, info)
		}
	}
	if end != int64(len(data)) {
		t.Fatalf("tensors cover %d of %d data bytes", end, len(data))
	}
}

func TestWriteFileReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.safetensors")
	f := sampleFile(t)
	must(t, WriteFile(p, f))
	g, err := ReadFile(p)
	must(t, err)
	if d := diffFiles(f, g); d != "" {
		t.Fatal(d)
	}
	st, err := os.Stat(p)
	must(t, err)
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
}

// ---- compatibility with the reference implementation ----

// These are the exact bytes the reference Rust writer (huggingface/safetensors,
// whose own tests pin them) produces: one F32 tensor holding 0..5, once with a
// header that needs no padding and once with one padded by seven spaces; and
// an empty file with metadata.
var (
	refData = []byte{
		0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40,
		0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40,
	}
	refUnpadded = slices.Concat(
		[]byte{64, 0, 0, 0, 0, 0, 0, 0},
		[]byte(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`),
		refData)
	refPadded = slices.Concat(
		[]byte{72, 0, 0, 0, 0, 0, 0, 0},
		[]byte(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `),
		refData)
	refEmptyWithMetadata = slices.Concat(
		[]byte{40, 0, 0, 0, 0, 0, 0, 0},
		[]byte(`{"__metadata__":{"framework":"pt"}}     `))
)

func TestDecodeReferenceWriterOutput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		b     []byte
		shape []int
	}{
		{"attn.0", refUnpadded, []int{1, 2, 3}},
		{"attn0", refPadded, []int{1, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustDecode(t, tc.b)
			if f.HasChecksum() {
				t.Fatal("reference file reported as checksummed")
			}
			v, shape, err := f.Float32(tc.name)
			must(t, err)
			if !slices.Equal(v, []float32{0, 1, 2, 3, 4, 5}) || !slices.Equal(shape, tc.shape) {
				t.Fatalf("got %v %v", v, shape)
			}
			if len(f.Tensors) != 1 || f.Metadata != nil {
				t.Fatalf("unexpected content %+v", f)
			}
		})
	}
	f := mustDecode(t, refEmptyWithMetadata)
	if len(f.Tensors) != 0 || !maps.Equal(f.Metadata, map[string]string{"framework": "pt"}) || f.HasChecksum() {
		t.Fatalf("empty file: %+v", f)
	}
}

func TestDecodeSortsTensorsByOffset(t *testing.T) {
	// The reference writer orders by dtype then name, and serde maps may
	// list keys in any order; the data order is what counts.
	b := raw(`{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"e":{"dtype":"U8","shape":[0],"data_offsets":[8,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32bytes(1, 2))
	f := mustDecode(t, b)
	var names []string
	for _, tt := range f.Tensors {
		names = append(names, tt.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "e"}) {
		t.Fatalf("order %v, want [a b e]", names)
	}
	if v, _, _ := f.Float32("b"); !slices.Equal(v, []float32{2}) {
		t.Fatalf("b = %v", v)
	}
}

const pythonScript = `
import hashlib, json, sys
import numpy as np

NP = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1"}

def check(path, expected):
    d = open(path, "rb").read()
    n = int.from_bytes(d[:8], "little")
    assert n % 8 == 0, n
    hdr = json.loads(d[8:8 + n].decode("utf-8"))
    meta = hdr.pop("__metadata__")
    want = meta.pop("checksum")[len("sha256:"):]
    got = hashlib.sha256(d.replace(want.encode(), b"0" * 64, 1)).hexdigest()
    assert got == want, ("checksum", got, want)
    assert meta == expected["metadata"], (meta, expected["metadata"])
    data = d[8 + n:]
    order = sorted(hdr, key=lambda k: hdr[k]["data_offsets"])
    assert order == [t["name"] for t in expected["tensors"]], order
    end = 0
    for t in expected["tensors"]:
        info = hdr[t["name"]]
        b, e = info["data_offsets"]
        assert b == end, (t["name"], b, end)
        end = e
        a = np.frombuffer(data[b:e], dtype=NP[info["dtype"]]).reshape(info["shape"])
        w = np.array(t["values"], dtype=NP[t["dtype"]]).reshape(t["shape"])
        assert info["dtype"] == t["dtype"] and a.shape == w.shape and np.array_equal(a, w), (t["name"], a, w)
    assert end == len(data)
    try:
        from safetensors.numpy import load_file
    except ImportError:
        return
    loaded = load_file(path)
    for t in expected["tensors"]:
        w = np.array(t["values"], dtype=NP[t["dtype"]]).reshape(t["shape"])
        assert np.array_equal(loaded[t["name"]], w), t["name"]

def write(path):
    tensors = [("w", np.arange(6, dtype="<f4").reshape(2, 3) / 4), ("step", np.array(-(2**62), dtype="<i8"))]
    hdr = {"__metadata__": {"checksum": "sha256:" + "0" * 64, "by": "python \u2713"}}
    data, off = b"", 0
    for name, a in tensors:
        raw = a.tobytes()
        hdr[name] = {"dtype": {"float32": "F32", "int64": "I64"}[str(a.dtype)], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * (-len(h) % 8)
    d = len(h).to_bytes(8, "little") + h + data
    sum = hashlib.sha256(d).hexdigest()
    open(path, "wb").write(d.replace(b"0" * 64, sum.encode(), 1))

if sys.argv[1] == "check":
    check(sys.argv[2], json.load(open(sys.argv[3])))
else:
    write(sys.argv[2])
print("OK")
`

// TestPythonReadsAndWrites checks the format against an independent reader
// and writer in NumPy, including the documented checksum recipe.
func TestPythonReadsAndWrites(t *testing.T) {
	// The system Python is the one the lead provisions; a python3 earlier
	// in PATH (pyenv, venv) may lack NumPy.
	py := ""
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(c, "-c", "import numpy").Run() == nil {
			py = c
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with numpy")
	}
	dir := t.TempDir()

	type tensorJSON struct {
		Name   string `json:"name"`
		DType  DType  `json:"dtype"`
		Shape  []int  `json:"shape"`
		Values any    `json:"values"`
	}
	f := &File{Metadata: map[string]string{"config": "{\"latent\": 2}\n", "unicode": "✓ é"}}
	var want []tensorJSON
	addF32 := func(name string, shape []int, v []float32) {
		must(t, f.AddFloat32(name, shape, v))
		want = append(want, tensorJSON{name, F32, shape, v})
	}
	addF32("enc.w", []int{2, 3}, []float32{0.5, -1.25, 3, 1e-3, -1e30, 7})
	addF32("empty", []int{0}, []float32{})
	must(t, f.AddFloat64("enc.b", []int{2}, []float64{math.Pi, -2.5e-300}))
	want = append(want, tensorJSON{"enc.b", F64, []int{2}, []float64{math.Pi, -2.5e-300}})
	must(t, f.AddInt64("step", []int{}, []int64{1<<62 + 3}))
	want = append(want, tensorJSON{"step", I64, []int{}, []int64{1<<62 + 3}})
	must(t, f.Add(Tensor{Name: "px", DType: U8, Shape: []int{3}, Data: []byte{0, 1, 255}}))
	want = append(want, tensorJSON{"px", U8, []int{3}, []int{0, 1, 255}})
	must(t, f.Add(Tensor{Name: "idx", DType: I32, Shape: []int{1, 2}, Data: le32(-5, 1<<31-1)}))
	want = append(want, tensorJSON{"idx", I32, []int{1, 2}, []int32{-5, 1<<31 - 1}})

	model := filepath.Join(dir, "model.safetensors")
	must(t, WriteFile(model, f))
	expected, err := json.Marshal(map[string]any{"metadata": f.Metadata, "tensors": want})
	must(t, err)
	expPath := filepath.Join(dir, "expected.json")
	must(t, os.WriteFile(expPath, expected, 0o644))
	if out, err := exec.Command(py, "-c", pythonScript, "check", model, expPath).CombinedOutput(); err != nil {
		t.Fatalf("python check failed: %v\n%s", err, out)
	}

	fromPy := filepath.Join(dir, "python.safetensors")
	if out, err := exec.Command(py, "-c", pythonScript, "write", fromPy).CombinedOutput(); err != nil {
		t.Fatalf("python write failed: %v\n%s", err, out)
	}
	g, err := ReadFile(fromPy)
	must(t, err)
	if !g.HasChecksum() || g.Metadata["by"] != "python ✓" {
		t.Fatalf("metadata %q", g.Metadata)
	}
	w, shape, err := g.Float32("w")
	must(t, err)
	if !slices.Equal(w, []float32{0, 0.25, 0.5, 0.75, 1, 1.25}) || !slices.Equal(shape, []int{2, 3}) {
		t.Fatalf("w = %v %v", w, shape)
	}
	s, _, err := g.Int64("step")
	must(t, err)
	if s[0] != -(1 << 62) {
		t.Fatalf("step = %v", s)
	}
}

// ---- corruption ----

func TestEveryBitFlipIsDetected(t *testing.T) {
	f := &File{Metadata: map[string]string{"format_version": "1"}}
	must(t, f.AddFloat32("w", []int{2, 2}, []float32{1, 2, 3, 4}))
	must(t, f.AddInt64("step", []int{}, []int64{9}))
	must(t, f.AddFloat32("e", []int{0}, nil))
	b := mustEncode(t, f)
	dataStart := 8 + int(binary.LittleEndian.Uint64(b))
	for pos := range b {
		for bit := range 8 {
			c := bytes.Clone(b)
			c[pos] ^= 1 << bit
			_, err := Decode(c, "x")
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("flip of bit %d at byte %d: err = %v, want a *FormatError", bit, pos, err)
			}
			// The header may fail any check, but the data is only protected
			// by the checksum.
			if pos >= dataStart && !errors.Is(err, ErrChecksum) {
				t.Fatalf("flip at data byte %d: %v, want ErrChecksum", pos-dataStart, err)
			}
		}
	}
}

func TestSampledFlipsInLargeFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 1<<16)
	for i := range v {
		v[i] = rng.Float32()
	}
	f := &File{}
	must(t, f.AddFloat32("big", []int{256, 256}, v))
	b := mustEncode(t, f)
	for range 500 {
		pos, bit := rng.IntN(len(b)), rng.IntN(8)
		b[pos] ^= 1 << bit
		if _, err := Decode(b, "x"); err == nil {
			t.Fatalf("flip of bit %d at byte %d went undetected", bit, pos)
		}
		b[pos] ^= 1 << bit
	}
	mustDecode(t, b) // restored
}

func TestTruncationIsReported(t *testing.T) {
	for name, b := range map[string][]byte{"encoded": mustEncode(t, sampleFile(t)), "reference": refPadded} {
		for n := range len(b) {
			_, err := Decode(b[:n], "x")
			if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("%s cut to %d of %d bytes: err = %v, want a truncation error", name, n, len(b), err)
			}
		}
	}
}

func TestChecksumMismatchMessage(t *testing.T) {
	f := &File{}
	must(t, f.AddFloat32("w", []int{2}, []float32{1, 2}))
	b := mustEncode(t, f)
	good := mustDecode(t, b).Metadata[ChecksumKey]
	b[len(b)-1] ^= 0x01
	zeroed := bytes.Replace(b, []byte(good[7:]), bytes.Repeat([]byte("0"), 64), 1)
	sum := sha256.Sum256(zeroed)
	found := "sha256:" + hex.EncodeToString(sum[:])

	_, err := Decode(b, "runs/m.safetensors")
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	msg := err.Error()
	for _, want := range []string{"checkpoints: runs/m.safetensors: ", "corrupt", "want " + good, "found " + found} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

// ---- malformed headers ----

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestMalformedFiles(t *testing.T) {
	prefix := func(n uint64, rest string) []byte {
		return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
	}
	f32 := func(name, shape, off string) string {
		return fmt.Sprintf(`%q:{"dtype":"F32","shape":%s,"data_offsets":%s}`, name, shape, off)
	}
	one := func(entry string, data []byte) []byte { return raw("{"+entry+"}", data) }
	eight := make([]byte, 8)
	cases := []struct {
		name string
		b    []byte
		want []string
		is   error
	}{
		{"empty file", nil, []string{"0 bytes", "shorter than the 8-byte header length"}, io.ErrUnexpectedEOF},
		{"7 bytes", []byte{1, 2, 3, 4, 5, 6, 7}, []string{"7 bytes", "truncated"}, io.ErrUnexpectedEOF},
		{"header past end", prefix(100, "{}"), []string{"header length 100 runs past the end", "want at least 108 bytes, found 10"}, io.ErrUnexpectedEOF},
		{"header over limit", prefix(MaxHeaderSize+1, "{}"), []string{"header length 100000001 exceeds the 100000000-byte limit"}, nil},
		{"header length 2^64-1", prefix(math.MaxUint64, "{}"), []string{"exceeds"}, nil},
		{"empty header", raw("", nil), []string{"not a JSON object", "found nothing"}, nil},
		{"array header", raw(`[1,2]`, nil), []string{"not a JSON object", `found '['`}, nil},
		{"leading space", raw(` {}`, nil), []string{"want '{' as first byte"}, nil},
		{"invalid UTF-8", raw("{\"\xff\":1}", nil), []string{"not valid UTF-8"}, nil},
		{"unterminated JSON", raw(`{"a":`, nil), []string{"not valid JSON"}, nil},
		{"missing colon", raw(`{"a" {}}`, nil), []string{"not valid JSON"}, nil},
		{"trailing comma", raw(`{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]},}`, []byte{1}), []string{"not valid JSON"}, nil},
		{"second object", raw(`{}{}`, nil), []string{"data after its JSON object at byte 2", `found "{}"`}, nil},
		{"garbage after padding", raw(`{}   x`, nil), []string{"data after its JSON object"}, nil},
		{"unknown dtype", one(`"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}`, eight[:4]), []string{`tensor "a"`, `unknown dtype "F17"`, "F32"}, nil},
		{"sub-byte dtype", one(`"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}`, eight[:1]), []string{`unknown dtype "F4"`}, nil},
		{"dtype not a string", one(`"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}`, eight[:4]), []string{"dtype is not a string (found the number 4)"}, nil},
		{"negative dimension", one(f32("a", "[-1]", "[0,4]"), eight[:4]), []string{`tensor "a"`, "shape has negative value -1"}, nil},
		{"fractional dimension", one(f32("a", "[1.5]", "[0,4]"), eight[:4]), []string{"shape must hold integers (found 1.5)"}, nil},
		{"exponent dimension", one(f32("a", "[1e0]", "[0,4]"), eight[:4]), []string{"shape must hold integers (found 1e0)"}, nil},
		{"dimension not a number", one(f32("a", `["1"]`, "[0,4]"), eight[:4]), []string{`shape must hold integers (found the string "1")`}, nil},
		{"shape not an array", one(f32("a", `1`, "[0,4]"), eight[:4]), []string{"shape must be an array of integers (found the number 1)"}, nil},
		{"dimension overflows int64", one(f32("a", "[9223372036854775808]", "[0,4]"), eight[:4]), []string{"shape value 9223372036854775808 overflows int64"}, nil},
		{"element count overflows", one(f32("a", "[4294967296,4294967296,0]", "[0,0]"), nil), []string{"element count of shape [4294967296 4294967296 0] overflows int64"}, nil},
		{"byte size overflows", one(f32("a", "[2305843009213693952]", "[0,4]"), eight[:4]), []string{"byte size of F32 shape [2305843009213693952] overflows int64"}, nil},
		{"size does not match offsets", one(f32("a", "[3]", "[0,8]"), eight), []string{`tensor "a"`, "data_offsets [0, 8] do not fit F32 shape [3] (want 12 bytes, found 8)"}, nil},
		{"offsets past data", one(f32("a", "[3]", "[0,12]"), eight), []string{"run past the end of the data section", "want at least 12 data bytes, found 8"}, io.ErrUnexpectedEOF},
		{"offsets reversed", one(f32("a", "[0]", "[8,4]"), eight), []string{"data_offsets [8, 4] end before they begin"}, nil},
		{"offsets too short", one(f32("a", "[0]", "[0]"), nil), []string{"want 2 numbers, found 1"}, nil},
		{"offsets too long", one(f32("a", "[0]", "[0,0,0]"), nil), []string{"want 2 numbers, found 3"}, nil},
		{"offsets negative", one(f32("a", "[0]", "[-4,0]"), nil), []string{"data_offsets has negative value -4"}, nil},
		{"overlap", raw("{"+f32("a", "[2]", "[0,8]")+","+f32("b", "[2]", "[4,12]")+"}", make([]byte, 12)), []string{`tensor "b" data_offsets [4, 12] overlap tensor "a" [0, 8]`}, nil},
		{"gap", raw("{"+f32("a", "[1]", "[0,4]")+","+f32("b", "[1]", "[8,12]")+"}", make([]byte, 12)), []string{`4-byte gap in the data section before tensor "b" (want begin 4, found 8)`}, nil},
		{"data not starting at 0", one(f32("a", "[1]", "[4,8]"), eight), []string{`4-byte gap`, `before tensor "a" (want begin 0, found 4)`}, nil},
		{"uncovered data", one(f32("a", "[1]", "[0,4]"), eight), []string{"4 trailing bytes after the last tensor (want 4 data bytes, found 8)"}, nil},
		{"data with no tensors", raw(`{}`, eight), []string{"8 trailing bytes"}, nil},
		{"metadata value a number", raw(`{"__metadata__":{"k":1}}`, nil), []string{`__metadata__ value for "k" is not a string (found the number 1)`}, nil},
		{"metadata value null", raw(`{"__metadata__":{"k":null}}`, nil), []string{`value for "k" is not a string (found null)`}, nil},
		{"metadata value object", raw(`{"__metadata__":{"k":{}}}`, nil), []string{"not a string (found an object)"}, nil},
		{"metadata not an object", raw(`{"__metadata__":"v"}`, nil), []string{`__metadata__ must be an object of strings (found the string "v")`}, nil},
		{"duplicate tensor", raw("{"+f32("a", "[0]", "[0,0]")+","+f32("a", "[0]", "[0,0]")+"}", nil), []string{`duplicate key "a"`}, nil},
		{"duplicate __metadata__", raw(`{"__metadata__":{},"__metadata__":{}}`, nil), []string{`duplicate key "__metadata__"`}, nil},
		{"duplicate metadata key", raw(`{"__metadata__":{"k":"1","k":"2"}}`, nil), []string{`__metadata__ has duplicate key "k"`}, nil},
		{"duplicate field", one(`"a":{"dtype":"U8","dtype":"U8","shape":[0],"data_offsets":[0,0]}`, nil), []string{`tensor "a" has duplicate field "dtype"`}, nil},
		{"missing dtype", one(`"a":{"shape":[0],"data_offsets":[0,0]}`, nil), []string{`tensor "a" is missing dtype`}, nil},
		{"missing shape", one(`"a":{"dtype":"U8","data_offsets":[0,0]}`, nil), []string{`tensor "a" is missing shape`}, nil},
		{"missing data_offsets", one(`"a":{"dtype":"U8","shape":[0]}`, nil), []string{`tensor "a" is missing data_offsets`}, nil},
		{"unknown field", one(`"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"stride":[1]}`, nil), []string{`tensor "a" has unknown field "stride"`}, nil},
		{"tensor not an object", one(`"a":[1]`, nil), []string{`tensor "a" must be an object`, "found an array"}, nil},
		{"empty tensor name", one(f32("", "[0]", "[0,0]"), nil), []string{"empty tensor name"}, nil},
		{"malformed checksum", raw(`{"__metadata__":{"checksum":"sha256:xyz"}}`, nil), []string{"malformed checksum", `found "sha256:xyz"`}, ErrChecksum},
		{"uppercase checksum", raw(`{"__metadata__":{"checksum":"sha256:`+strings.ToUpper(hex64)+`"}}`, nil), []string{"malformed checksum"}, ErrChecksum},
		{"other hash", raw(`{"__metadata__":{"checksum":"md5:`+hex64[:32]+`"}}`, nil), []string{"malformed checksum"}, ErrChecksum},
		{"escaped checksum", raw(`{"__metadata__":{"checksum":"\u0073ha256:`+hex64+`"}}`, nil), []string{"escaped or repeated"}, ErrChecksum},
		{"repeated checksum digits", raw(`{"__metadata__":{"checksum":"sha256:`+hex64+`","copy":"`+hex64+`"}}`, nil), []string{"escaped or repeated"}, ErrChecksum},
		{"wrong checksum", raw(`{"__metadata__":{"checksum":"sha256:`+hex64+`"}}`, nil), []string{"file is corrupt", "want sha256:" + hex64}, ErrChecksum},
		{"damaged checksum key", raw(`{"__metadata__":{"checksuM":"sha256:`+hex64+`"}}`, nil), []string{`no "checksum" key but "checksuM" holds a checksum`}, ErrChecksum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(tc.b, "bad.safetensors")
			if err == nil {
				t.Fatalf("decoded to %+v, want an error", f)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != "bad.safetensors" {
				t.Fatalf("err = %#v, want *FormatError naming the file", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "checkpoints: bad.safetensors: ") {
				t.Errorf("error %q lacks the checkpoints: FILE: prefix", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", msg, tc.is)
			}
			if tc.is == nil && (errors.Is(err, ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF)) {
				t.Errorf("error %q wraps %v", msg, errors.Unwrap(err))
			}
		})
	}
}

// A metadata value that merely looks like a checksum is fine when the real
// "checksum" key is there, and in a file with no checksum at all it is only
// rejected in exactly the checksum form.
func TestChecksumLikeMetadata(t *testing.T) {
	f := &File{Metadata: map[string]string{"data": "sha256:" + hex64}}
	g := mustDecode(t, mustEncode(t, f))
	if g.Metadata["data"] != "sha256:"+hex64 {
		t.Fatalf("metadata %q", g.Metadata)
	}
	mustDecode(t, raw(`{"__metadata__":{"data":"sha256:`+hex64[:63]+`"}}`, nil))
}

// ---- API errors ----

func TestAddErrors(t *testing.T) {
	f := &File{}
	must(t, f.AddFloat32("w", []int{2}, []float32{1, 2}))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"duplicate", f.AddFloat64("w", []int{1}, []float64{1}), `duplicate tensor name "w"`},
		{"too few values", f.AddFloat32("x", []int{2, 3}, []float32{1}), `tensor "x": shape [2 3] holds 6 elements, got 1 values`},
		{"too many values", f.AddInt64("x", []int{}, []int64{1, 2}), `shape [] holds 1 elements, got 2 values`},
		{"reserved name", f.AddFloat32("__metadata__", []int{1}, []float32{1}), `tensor name "__metadata__" is reserved`},
		{"empty name", f.AddInt64("", []int{1}, []int64{1}), "empty tensor name"},
		{"invalid UTF-8 name", f.AddInt64("\xff", []int{1}, []int64{1}), "not valid UTF-8"},
		{"negative dimension", f.AddFloat32("x", []int{-2, -3}, make([]float32, 6)), "negative dimension -2"},
		{"unknown dtype", f.Add(Tensor{Name: "x", DType: "F12", Shape: []int{1}, Data: []byte{1}}), `unknown dtype "F12"`},
		{"data length", f.Add(Tensor{Name: "x", DType: I32, Shape: []int{2}, Data: []byte{1, 2, 3}}), `tensor "x": I32 shape [2] needs 8 bytes, got 3`},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, tc.err, tc.want)
		}
	}
	if len(f.Tensors) != 1 {
		t.Fatalf("failed adds changed the file: %d tensors", len(f.Tensors))
	}
}

func TestAddCopies(t *testing.T) {
	v, shape, data := []float32{1, 2}, []int{2}, []byte{1, 2}
	f := &File{}
	must(t, f.AddFloat32("v", shape, v))
	must(t, f.Add(Tensor{Name: "d", DType: U8, Shape: shape, Data: data}))
	v[0], shape[0], data[0] = 9, 9, 9
	got, gotShape, err := f.Float32("v")
	must(t, err)
	d, _ := f.Lookup("d")
	if got[0] != 1 || gotShape[0] != 2 || d.Data[0] != 1 || d.Shape[0] != 2 {
		t.Fatal("File shares memory with the caller's slices")
	}
	got[0], gotShape[0] = 7, 7
	if again, s, _ := f.Float32("v"); again[0] != 1 || s[0] != 2 {
		t.Fatal("Float32 returned slices that alias the File")
	}
}

func TestAccessorErrors(t *testing.T) {
	f := &File{}
	must(t, f.AddFloat64("d", []int{1}, []float64{1}))
	if _, _, err := f.Float32("missing"); err == nil || !strings.Contains(err.Error(), `no tensor "missing"`) {
		t.Errorf("missing: %v", err)
	}
	if _, _, err := f.Float32("d"); err == nil || !strings.Contains(err.Error(), `tensor "d" has dtype F64, want F32`) {
		t.Errorf("wrong dtype: %v", err)
	}
	if _, _, err := f.Int64("d"); err == nil || !strings.Contains(err.Error(), "want I64") {
		t.Errorf("wrong dtype: %v", err)
	}
	d, _ := f.Lookup("d")
	d.Data = d.Data[:5] // edited in place after being added
	if _, _, err := f.Float64("d"); err == nil || !strings.Contains(err.Error(), "needs 8 bytes, has 5") {
		t.Errorf("inconsistent tensor: %v", err)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return 0, errors.New("disk full")
}

func TestEncodeRejectsInvalidFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *File
		want string
	}{
		{"nil", nil, "nil File"},
		{"short data", &File{Tensors: []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: make([]byte, 7)}}}, `tensor "a": F32 shape [2] needs 8 bytes, has 7`},
		{"duplicate names", &File{Tensors: []Tensor{{Name: "a", DType: U8, Shape: []int{}, Data: []byte{1}}, {Name: "a", DType: U8, Shape: []int{}, Data: []byte{1}}}}, `duplicate tensor name "a"`},
		{"unknown dtype", &File{Tensors: []Tensor{{Name: "a", DType: "f32", Shape: []int{0}}}}, `unknown dtype "f32"`},
		{"reserved name", &File{Tensors: []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}}, "reserved"},
		{"invalid metadata", &File{Metadata: map[string]string{"k": "\xfe"}}, "not valid UTF-8"},
	} {
		var w failWriter
		err := Encode(&w, tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if w.n != 0 {
			t.Errorf("%s: wrote %d bytes before failing", tc.name, w.n)
		}
	}
	var w failWriter
	if err := Encode(&w, sampleFile(t)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("writer error not returned: %v", err)
	}
}

// ---- atomic writes ----

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	must(t, WriteFile(p, sampleFile(t)))
	old, err := os.ReadFile(p)
	must(t, err)

	// Encoding fails after the temporary file exists.
	bad := &File{Tensors: []Tensor{{Name: "a", DType: F32, Shape: []int{2}, Data: []byte{1}}}}
	if err := WriteFile(p, bad); err == nil {
		t.Fatal("WriteFile of an invalid File succeeded")
	}
	if now, _ := os.ReadFile(p); !bytes.Equal(now, old) {
		t.Fatal("old checkpoint changed by a failed write")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Fatalf("directory holds %v after a failed write", names)
	}

	// The rename fails: the destination is a non-empty directory.
	target := filepath.Join(dir, "sub")
	must(t, os.MkdirAll(filepath.Join(target, "keep"), 0o755))
	if err := WriteFile(target, sampleFile(t)); err == nil {
		t.Fatal("WriteFile over a directory succeeded")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors", "sub"}) {
		t.Fatalf("directory holds %v after a failed rename", names)
	}

	if err := WriteFile(filepath.Join(dir, "missing", "m.safetensors"), sampleFile(t)); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}

func TestWriteFileUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "model.safetensors")
	must(t, WriteFile(p, sampleFile(t)))
	old, err := os.ReadFile(p)
	must(t, err)
	must(t, os.Chmod(dir, 0o555))
	defer os.Chmod(dir, 0o755)
	if err := WriteFile(p, &File{}); err == nil {
		t.Fatal("WriteFile into a read-only directory succeeded")
	}
	if now, _ := os.ReadFile(p); !bytes.Equal(now, old) {
		t.Fatal("old checkpoint changed")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Fatalf("directory holds %v", names)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "nope.safetensors")
	if _, err := ReadFile(p); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), p) {
		t.Errorf("missing file: %v", err)
	}
	must(t, os.WriteFile(p, []byte("not a checkpoint"), 0o644))
	_, err := ReadFile(p)
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != p {
		t.Errorf("foreign file: %v, want a *FormatError naming %s", err, p)
	}
}

// ---- golden seed files ----

func tinyFile(t testing.TB) *File {
	f := &File{Metadata: map[string]string{"format_version": "1"}}
	must(t, f.AddFloat32("w", []int{2, 2}, []float32{1, -1, 0.5, 2}))
	return f
}

func mixedFile(t testing.TB) *File {
	f := &File{Metadata: map[string]string{"config": `{"latent":2}`}}
	must(t, f.AddFloat64("b", []int{2}, []float64{-1, 1}))
	must(t, f.AddInt64("step", []int{}, []int64{3}))
	must(t, f.AddFloat32("e", []int{0}, nil))
	must(t, f.Add(Tensor{Name: "px", DType: U8, Shape: []int{3}, Data: []byte{0, 9, 255}}))
	must(t, f.Add(Tensor{Name: "ix", DType: I32, Shape: []int{1, 1}, Data: le32(-2)}))
	return f
}

// seeds are both the fuzz corpus and golden files: an unintended change to
// Encode's output makes the first two differ from what is on disk.
var seeds = []struct {
	file    string
	build   func(t testing.TB) []byte
	wantErr string
}{
	{"tiny.safetensors", func(t testing.TB) []byte { return mustEncode(t, tinyFile(t)) }, ""},
	{"mixed.safetensors", func(t testing.TB) []byte { return mustEncode(t, mixedFile(t)) }, ""},
	{"reference.safetensors", func(testing.TB) []byte { return refPadded }, ""},
	{"reference_metadata.safetensors", func(testing.TB) []byte { return refEmptyWithMetadata }, ""},
	{"unordered.safetensors", func(testing.TB) []byte {
		return raw(`{"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[2,2],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	}, ""},
	{"bad_checksum.safetensors", func(t testing.TB) []byte {
		b := mustEncode(t, tinyFile(t))
		b[len(b)-1] ^= 0x80
		return b
	}, "file is corrupt"},
	{"bad_overlap.safetensors", func(testing.TB) []byte {
		return raw(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, []byte{1, 2, 3})
	}, "overlap"},
	{"bad_truncated.safetensors", func(t testing.TB) []byte {
		b := mustEncode(t, tinyFile(t))
		return b[:len(b)-3]
	}, "truncated"},
}

func TestGoldenSeeds(t *testing.T) {
	for _, s := range seeds {
		t.Run(s.file, func(t *testing.T) {
			p := filepath.Join("testdata", s.file)
			want := s.build(t)
			if *update {
				must(t, os.WriteFile(p, want, 0o644))
			}
			got, err := os.ReadFile(p)
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from what the code produces; if the format change is intended, run go test -run TestGoldenSeeds -update", p)
			}
			f, err := Decode(got, p)
			switch {
			case s.wantErr == "" && err != nil:
				t.Fatal(err)
			case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
				t.Fatalf("err = %v, want %q", err, s.wantErr)
			case s.wantErr == "" && len(f.Tensors) == 0 && len(f.Metadata) == 0:
				t.Fatal("seed decodes to nothing")
			}
		})
	}
}

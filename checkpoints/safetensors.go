// Checkpoint file format: safetensors plus a checksum.
//
// A checkpoint is a plain safetensors file, so the safetensors library, or
// NumPy with json and np.frombuffer, can read it:
//
//	bytes 0..7   N, the header length, uint64 little-endian
//	bytes 8..8+N the header: UTF-8 JSON, padded with spaces to a multiple of 8
//	the rest     the data section: raw tensor bytes, little-endian, row-major
//
// The header is one JSON object. Each key except "__metadata__" is a tensor
// name mapping to {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]};
// b and e are byte offsets into the data section. Tensors are contiguous, in
// the order of File.Tensors, with no gaps or overlaps, and together cover
// the data section exactly. "__metadata__" maps strings to strings. A scalar
// has shape [] and one element; a shape with a 0 has no bytes. The header
// length is a multiple of 8 so the data section starts 8-aligned, as with the
// reference writer; unlike it, Encode keeps the caller's tensor order instead
// of sorting by dtype, so individual tensors need not be aligned.
//
// Checksum (our addition; other readers ignore it): __metadata__["checksum"]
// is "sha256:" followed by 64 lowercase hex digits, the SHA-256 of the whole
// file (length prefix, header, data) with those 64 digits replaced by 64
// ASCII '0'. Encode writes the placeholder, hashes, then patches the digits.
// Checking it in Python:
//
//	d = open(path, "rb").read()
//	n = int.from_bytes(d[:8], "little")
//	want = json.loads(d[8:8+n])["__metadata__"]["checksum"][len("sha256:"):]
//	ok = hashlib.sha256(d.replace(want.encode(), b"0"*64, 1)).hexdigest() == want
//
// Decode verifies the checksum when present. Files without one (written by
// other tools) still decode; File.HasChecksum tells them apart so a loader
// can insist. A header with no "checksum" key but another metadata value in
// checksum form is rejected, because that is what a damaged key looks like,
// and the file would otherwise pass as unchecksummed.
//
// Decode is stricter than the reference reader about things no safetensors
// writer produces: duplicate keys (in the header or in __metadata__),
// unknown fields in a tensor entry and an empty tensor name are errors. It
// does not support the sub-byte dtypes F4, F6_E2M3 and F6_E3M2. Like the
// reference reader, it sorts tensors by data_offsets, caps the header at
// 100 MB, and rejects a shape whose element count overflows 64 bits even if
// another dimension is 0.

package checkpoints

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/govae/govae/internal/atomicfile"
)

// DType names a tensor element type as safetensors spells it.
type DType string

// The safetensors dtypes with whole-byte elements.
const (
	Bool   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	C64    DType = "C64" // complex64: two F32
	I64    DType = "I64"
	U64    DType = "U64"
)

var dtypeSizes = map[DType]int{
	Bool: 1, U8: 1, I8: 1, F8E5M2: 1, F8E4M3: 1, F8E8M0: 1,
	I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4,
	F64: 8, C64: 8, I64: 8, U64: 8,
}

// Size is the number of bytes per element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

func knownDTypes() string {
	names := make([]string, 0, len(dtypeSizes))
	for d := range dtypeSizes {
		names = append(names, string(d))
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

const (
	// MaxHeaderSize is the largest header Decode accepts, as in the
	// reference implementation; it bounds what a damaged length prefix can
	// make us parse.
	MaxHeaderSize = 100_000_000

	// ChecksumKey is the metadata key holding the file's checksum.
	ChecksumKey = "checksum"

	metadataKey    = "__metadata__"
	checksumPrefix = "sha256:"
)

// ErrChecksum is wrapped by errors for a checksum that is present but does
// not verify or is itself malformed: the file is corrupt.
var ErrChecksum = errors.New("checkpoints: checksum mismatch")

// FormatError reports a file that is not a valid checkpoint.
type FormatError struct {
	File string // name given to Decode, usually the path
	Msg  string // what was wrong
	Err  error  // ErrChecksum, io.ErrUnexpectedEOF for truncation, or nil
}

func (e *FormatError) Error() string {
	if e.File == "" {
		return "checkpoints: " + e.Msg
	}
	return "checkpoints: " + e.File + ": " + e.Msg
}

func (e *FormatError) Unwrap() error { return e.Err }

// Tensor is one named array. Data holds the raw little-endian elements in
// row-major order; len(Data) is the element count times DType.Size().
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// File is the content of a checkpoint. Tensors are stored in slice order.
// Metadata["checksum"] is reserved: Encode replaces it with the file's
// checksum, and Decode leaves the verified value there.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor
}

// HasChecksum reports whether the file carried a checksum. For a File from
// Decode or ReadFile that checksum has been verified.
func (f *File) HasChecksum() bool {
	_, ok := f.Metadata[ChecksumKey]
	return ok
}

// Lookup returns the named tensor. The pointer aliases f.Tensors.
func (f *File) Lookup(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Add appends a copy of t after checking that its name is new and usable,
// its dtype known, and len(t.Data) matches its shape.
func (f *File) Add(t Tensor) error {
	n, err := f.checkNew(t.Name, t.DType, t.Shape)
	if err != nil {
		return err
	}
	if want := n * int64(t.DType.Size()); int64(len(t.Data)) != want {
		return fmt.Errorf("checkpoints: tensor %q: %s shape %v needs %d bytes, got %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	f.Tensors = append(f.Tensors, Tensor{Name: t.Name, DType: t.DType, Shape: cloneShape(t.Shape), Data: bytes.Clone(t.Data)})
	return nil
}

// AddFloat32 appends a copy of v as an F32 tensor of the given shape.
func (f *File) AddFloat32(name string, shape []int, v []float32) error {
	return addValues(f, name, F32, shape, v, func(b []byte, x float32) []byte {
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	})
}

// AddFloat64 appends a copy of v as an F64 tensor of the given shape.
func (f *File) AddFloat64(name string, shape []int, v []float64) error {
	return addValues(f, name, F64, shape, v, func(b []byte, x float64) []byte {
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	})
}

// AddInt64 appends a copy of v as an I64 tensor of the given shape.
func (f *File) AddInt64(name string, shape []int, v []int64) error {
	return addValues(f, name, I64, shape, v, func(b []byte, x int64) []byte {
		return binary.LittleEndian.AppendUint64(b, uint64(x))
	})
}

func addValues[T any](f *File, name string, dt DType, shape []int, v []T, put func([]byte, T) []byte) error {
	n, err := f.checkNew(name, dt, shape)
	if err != nil {
		return err
	}
	if n != int64(len(v)) {
		return fmt.Errorf("checkpoints: tensor %q: shape %v holds %d elements, got %d values", name, shape, n, len(v))
	}
	data := make([]byte, 0, len(v)*dt.Size())
	for _, x := range v {
		data = put(data, x)
	}
	f.Tensors = append(f.Tensors, Tensor{Name: name, DType: dt, Shape: cloneShape(shape), Data: data})
	return nil
}

// checkNew validates a tensor about to be added and returns its element count.
func (f *File) checkNew(name string, dt DType, shape []int) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("checkpoints: %w", err)
	}
	if _, dup := f.Lookup(name); dup {
		return 0, fmt.Errorf("checkpoints: duplicate tensor name %q", name)
	}
	if dt.Size() == 0 {
		return 0, fmt.Errorf("checkpoints: tensor %q: unknown dtype %q (want one of %s)", name, dt, knownDTypes())
	}
	n, err := numElements(shape)
	if err != nil {
		return 0, fmt.Errorf("checkpoints: tensor %q: %w", name, err)
	}
	return n, nil
}

// Float32 returns a copy of the named F32 tensor's values and its shape.
func (f *File) Float32(name string) ([]float32, []int, error) {
	return values(f, name, F32, func(b []byte) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	})
}

// Float64 returns a copy of the named F64 tensor's values and its shape.
func (f *File) Float64(name string) ([]float64, []int, error) {
	return values(f, name, F64, func(b []byte) float64 {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	})
}

// Int64 returns a copy of the named I64 tensor's values and its shape.
func (f *File) Int64(name string) ([]int64, []int, error) {
	return values(f, name, I64, func(b []byte) int64 {
		return int64(binary.LittleEndian.Uint64(b))
	})
}

func values[T any](f *File, name string, dt DType, get func([]byte) T) ([]T, []int, error) {
	t, ok := f.Lookup(name)
	if !ok {
		return nil, nil, fmt.Errorf("checkpoints: no tensor %q", name)
	}
	if t.DType != dt {
		return nil, nil, fmt.Errorf("checkpoints: tensor %q has dtype %s, want %s", name, t.DType, dt)
	}
	// The Tensor is exported and may have been edited since it was checked.
	if err := checkTensor(t); err != nil {
		return nil, nil, fmt.Errorf("checkpoints: %w", err)
	}
	size := dt.Size()
	out := make([]T, len(t.Data)/size)
	for i := range out {
		out[i] = get(t.Data[i*size:])
	}
	return out, cloneShape(t.Shape), nil
}

// cloneShape copies a shape, keeping a scalar's shape non-nil.
func cloneShape(s []int) []int { return append([]int{}, s...) }

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty tensor name")
	case name == metadataKey:
		return fmt.Errorf("tensor name %q is reserved", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("tensor name %q is not valid UTF-8", name)
	}
	return nil
}

// numElements multiplies out a shape, failing as the reference reader does
// when a partial product overflows int64.
func numElements(shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("element count of shape %v overflows int64", shape)
		}
		n *= int64(d)
	}
	return n, nil
}

// byteSize is the number of data bytes a dtype and shape need.
func byteSize(dt DType, shape []int) (int64, error) {
	size := int64(dt.Size())
	if size == 0 {
		return 0, fmt.Errorf("unknown dtype %q (want one of %s)", dt, knownDTypes())
	}
	n, err := numElements(shape)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/size {
		return 0, fmt.Errorf("byte size of %s shape %v overflows int64", dt, shape)
	}
	return n * size, nil
}

func checkTensor(t *Tensor) error {
	if err := checkName(t.Name); err != nil {
		return err
	}
	want, err := byteSize(t.DType, t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %s shape %v needs %d bytes, has %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// validate checks everything Encode relies on, so it never writes a file
// that Decode would reject.
func (f *File) validate() error {
	if f == nil {
		return errors.New("checkpoints: nil File")
	}
	seen := make(map[string]bool, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if err := checkTensor(t); err != nil {
			return fmt.Errorf("checkpoints: %w", err)
		}
		if seen[t.Name] {
			return fmt.Errorf("checkpoints: duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = true
	}
	for k, v := range f.Metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("checkpoints: metadata %q: key or value is not valid UTF-8", k)
		}
	}
	return nil
}

// Encode writes f as a checksummed safetensors file. Whatever f.Metadata
// holds under "checksum" is replaced by the real checksum; f is not modified.
func Encode(w io.Writer, f *File) error {
	if err := f.validate(); err != nil {
		return err
	}
	hdr, digits, err := buildHeader(f)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write(hdr)
	for i := range f.Tensors {
		h.Write(f.Tensors[i].Data)
	}
	hex.Encode(hdr[digits:digits+sha256.Size*2], h.Sum(nil))

	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("checkpoints: writing header: %w", err)
	}
	for i := range f.Tensors {
		if _, err := w.Write(f.Tensors[i].Data); err != nil {
			return fmt.Errorf("checkpoints: writing tensor %q: %w", f.Tensors[i].Name, err)
		}
	}
	return nil
}

// buildHeader returns the length prefix and padded header, with the checksum
// digits as '0' placeholders starting at index digits.
func buildHeader(f *File) (hdr []byte, digits int, err error) {
	b := make([]byte, 8, 256+64*len(f.Tensors))
	b = append(b, `{"__metadata__":{`...)
	keys := []string{ChecksumKey}
	for k := range f.Metadata {
		if k != ChecksumKey {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		if k == ChecksumKey {
			b = append(b, '"')
			b = append(b, checksumPrefix...)
			digits = len(b)
			b = append(b, strings.Repeat("0", sha256.Size*2)...)
			b = append(b, '"')
		} else {
			b = appendJSONString(b, f.Metadata[k])
		}
	}
	b = append(b, '}')
	var off int64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		b = append(b, ',')
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, string(t.DType))
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, off, 10)
		off += int64(len(t.Data))
		b = append(b, ',')
		b = strconv.AppendInt(b, off, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for (len(b)-8)%8 != 0 {
		b = append(b, ' ')
	}
	n := len(b) - 8
	if n > MaxHeaderSize {
		return nil, 0, fmt.Errorf("checkpoints: header would be %d bytes, over the %d-byte limit readers accept", n, MaxHeaderSize)
	}
	binary.LittleEndian.PutUint64(b, uint64(n))
	return b, digits, nil
}

// appendJSONString quotes s, which must be valid UTF-8. Only what JSON
// requires is escaped, so names stay readable in the header.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// WriteFile encodes f to path atomically: on any error the old file, if
// any, is untouched and no temporary file remains.
func WriteFile(path string, f *File) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return Encode(w, f) })
}

// Decode parses and validates a checkpoint held in b and verifies its
// checksum if it has one. name (usually the path) is used in errors, which
// are *FormatError. The result does not alias b.
func Decode(b []byte, name string) (*File, error) {
	return decode(b, name, true)
}

// entry is a tensor as described by the header.
type entry struct {
	name       string
	dtype      DType
	shape      []int
	begin, end int64
}

func decode(b []byte, name string, copyData bool) (*File, error) {
	fail := func(wrapped error, format string, args ...any) (*File, error) {
		return nil, &FormatError{File: name, Msg: fmt.Sprintf(format, args...), Err: wrapped}
	}
	if len(b) < 8 {
		return fail(io.ErrUnexpectedEOF, "file is %d bytes, shorter than the 8-byte header length: truncated", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		// Text and other formats land here: their first 8 bytes read as a huge length.
		return fail(nil, "not a safetensors file: header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return fail(io.ErrUnexpectedEOF, "header length %d runs past the end of the file: truncated (want at least %d bytes, found %d)", n, 8+n, len(b))
	}
	hdr, data := b[8:8+n], b[8+n:]

	meta, entries, err := parseHeader(hdr)
	if err != nil {
		return fail(nil, "%v", err)
	}
	// Truncation is the likeliest cause, so report it before the checksum.
	for _, e := range entries {
		if e.end > int64(len(data)) {
			return fail(io.ErrUnexpectedEOF, "tensor %q data_offsets [%d, %d] run past the end of the data section: truncated (want at least %d data bytes, found %d)", e.name, e.begin, e.end, e.end, len(data))
		}
	}
	// Verify before the semantic checks so that a damaged checksummed file
	// is reported as corrupt rather than by whatever the damage broke.
	if err := verifyChecksum(b, int(8+n), meta); err != nil {
		return fail(ErrChecksum, "%v", err)
	}
	for _, e := range entries {
		want, err := byteSize(e.dtype, e.shape)
		if err != nil {
			return fail(nil, "tensor %q: %v", e.name, err)
		}
		if e.end-e.begin != want {
			return fail(nil, "tensor %q: data_offsets [%d, %d] do not fit %s shape %v (want %d bytes, found %d)", e.name, e.begin, e.end, e.dtype, e.shape, want, e.end-e.begin)
		}
	}
	// Tensors may be listed in any order; the data order is by offset.
	sort.SliceStable(entries, func(i, j int) bool {
		if entries[i].begin != entries[j].begin {
			return entries[i].begin < entries[j].begin
		}
		return entries[i].end < entries[j].end
	})
	var prev int64
	for i, e := range entries {
		if e.begin < prev {
			p := entries[i-1]
			return fail(nil, "tensor %q data_offsets [%d, %d] overlap tensor %q [%d, %d]", e.name, e.begin, e.end, p.name, p.begin, p.end)
		}
		if e.begin > prev {
			return fail(nil, "%d-byte gap in the data section before tensor %q (want begin %d, found %d)", e.begin-prev, e.name, prev, e.begin)
		}
		prev = e.end
	}
	if prev != int64(len(data)) {
		return fail(nil, "%d trailing bytes after the last tensor (want %d data bytes, found %d)", int64(len(data))-prev, prev, len(data))
	}

	if copyData {
		data = bytes.Clone(data)
	}
	f := &File{Metadata: meta, Tensors: make([]Tensor, len(entries))}
	for i, e := range entries {
		f.Tensors[i] = Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: data[e.begin:e.end:e.end]}
	}
	return f, nil
}

// verifyChecksum checks the checksum in meta, if any, against the file b
// whose header ends at hdrEnd.
func verifyChecksum(b []byte, hdrEnd int, meta map[string]string) error {
	v, ok := meta[ChecksumKey]
	if !ok {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if checksumDigits(meta[k]) != "" {
				return fmt.Errorf("metadata has no %q key but %q holds a checksum: the key is damaged (want key %q, found %q)", ChecksumKey, k, ChecksumKey, k)
			}
		}
		return nil
	}
	want := checksumDigits(v)
	if want == "" {
		return fmt.Errorf("malformed checksum (want %q and 64 lowercase hex digits, found %q)", checksumPrefix, v)
	}
	hdr := b[8:hdrEnd]
	// The digits must occur exactly once, written literally, so that the
	// bytes to zero are unambiguous (and a Python bytes.replace agrees).
	if bytes.Count(hdr, []byte(want)) != 1 || !bytes.Contains(hdr, []byte(`"`+v+`"`)) {
		return fmt.Errorf("checksum %s is escaped or repeated in the header, so it cannot be verified", v)
	}
	pos := 8 + bytes.Index(hdr, []byte(want))
	var zeros [sha256.Size * 2]byte
	for i := range zeros {
		zeros[i] = '0'
	}
	h := sha256.New()
	h.Write(b[:pos])
	h.Write(zeros[:])
	h.Write(b[pos+len(zeros):])
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return fmt.Errorf("file is corrupt: its content does not match its checksum (want %s%s, found %s%s)", checksumPrefix, want, checksumPrefix, got)
	}
	return nil
}

// checksumDigits returns the hex digits of a well-formed checksum value,
// or "" if v is not one.
func checksumDigits(v string) string {
	d, ok := strings.CutPrefix(v, checksumPrefix)
	if !ok || len(d) != sha256.Size*2 {
		return ""
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return d
}

// headerParser walks the header as a token stream, which lets it see
// duplicate keys (lost by unmarshalling into a map) and stop at the first
// unexpected token without building a tree of arbitrary JSON.
type headerParser struct {
	dec *json.Decoder
}

func parseHeader(hdr []byte) (meta map[string]string, entries []entry, err error) {
	if !utf8.Valid(hdr) {
		return nil, nil, errors.New("header is not valid UTF-8")
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		first := "nothing"
		if len(hdr) > 0 {
			r, _ := utf8.DecodeRune(hdr)
			first = strconv.QuoteRune(r)
		}
		return nil, nil, fmt.Errorf("header is not a JSON object (want '{' as first byte, found %s)", first)
	}
	p := headerParser{dec: json.NewDecoder(bytes.NewReader(hdr))}
	p.dec.UseNumber()
	if _, err := p.dec.Token(); err != nil { // the '{' checked above
		return nil, nil, p.syntax(err)
	}
	seen := make(map[string]bool)
	for p.dec.More() {
		key, err := p.key()
		if err != nil {
			return nil, nil, err
		}
		if seen[key] {
			return nil, nil, fmt.Errorf("header has duplicate key %q", key)
		}
		seen[key] = true
		if key == metadataKey {
			if meta, err = p.metadata(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err := checkName(key); err != nil {
			return nil, nil, fmt.Errorf("header: %v", err)
		}
		e, err := p.tensor(key)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
	}
	if _, err := p.dec.Token(); err != nil { // the closing '}'
		return nil, nil, p.syntax(err)
	}
	rest := hdr[p.dec.InputOffset():]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return !strings.ContainsRune(" \t\r\n", r) }); i >= 0 {
		return nil, nil, fmt.Errorf("header has data after its JSON object at byte %d (want only space padding, found %q)", int(p.dec.InputOffset())+i, rest[i:min(len(rest), i+16)])
	}
	return meta, entries, nil
}

func (p *headerParser) syntax(err error) error {
	return fmt.Errorf("header is not valid JSON: %v", err)
}

func (p *headerParser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, p.syntax(err)
	}
	return tok, nil
}

func (p *headerParser) key() (string, error) {
	tok, err := p.token()
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok { // the decoder rejects this itself; never panic if it changes
		return "", fmt.Errorf("header: object key is %s", describe(tok))
	}
	return k, nil
}

// open consumes the opening delimiter of an object or array.
func (p *headerParser) open(want json.Delim, what string) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("%s (found %s)", what, describe(tok))
	}
	return nil
}

func (p *headerParser) metadata() (map[string]string, error) {
	if err := p.open('{', "__metadata__ must be an object of strings"); err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("__metadata__ has duplicate key %q", k)
		}
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("__metadata__ value for %q is not a string (found %s)", k, describe(tok))
		}
		m[k] = v
	}
	_, err := p.token()
	return m, err
}

func (p *headerParser) tensor(name string) (entry, error) {
	e := entry{name: name}
	if err := p.open('{', fmt.Sprintf("tensor %q must be an object with dtype, shape and data_offsets", name)); err != nil {
		return e, err
	}
	seen := make(map[string]bool, 3)
	for p.dec.More() {
		field, err := p.key()
		if err != nil {
			return e, err
		}
		if seen[field] {
			return e, fmt.Errorf("tensor %q has duplicate field %q", name, field)
		}
		seen[field] = true
		switch field {
		case "dtype":
			tok, err := p.token()
			if err != nil {
				return e, err
			}
			s, ok := tok.(string)
			if !ok {
				return e, fmt.Errorf("tensor %q: dtype is not a string (found %s)", name, describe(tok))
			}
			e.dtype = DType(s)
		case "shape":
			dims, err := p.ints(name, field)
			if err != nil {
				return e, err
			}
			e.shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return e, fmt.Errorf("tensor %q: dimension %d does not fit in an int", name, d)
				}
				e.shape[i] = int(d)
			}
		case "data_offsets":
			off, err := p.ints(name, field)
			if err != nil {
				return e, err
			}
			if len(off) != 2 {
				return e, fmt.Errorf("tensor %q: data_offsets must be [begin, end] (want 2 numbers, found %d)", name, len(off))
			}
			e.begin, e.end = off[0], off[1]
			if e.begin > e.end {
				return e, fmt.Errorf("tensor %q: data_offsets [%d, %d] end before they begin", name, e.begin, e.end)
			}
		default:
			return e, fmt.Errorf("tensor %q has unknown field %q (want dtype, shape, data_offsets)", name, field)
		}
	}
	if _, err := p.token(); err != nil {
		return e, err
	}
	for _, f := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[f] {
			return e, fmt.Errorf("tensor %q is missing %s", name, f)
		}
	}
	return e, nil
}

// ints reads an array of non-negative integers that fit in an int64.
func (p *headerParser) ints(name, field string) ([]int64, error) {
	if err := p.open('[', fmt.Sprintf("tensor %q: %s must be an array of integers", name, field)); err != nil {
		return nil, err
	}
	out := []int64{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("tensor %q: %s must hold integers (found %s)", name, field, describe(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return nil, fmt.Errorf("tensor %q: %s value %s overflows int64", name, field, num)
		case err != nil:
			return nil, fmt.Errorf("tensor %q: %s must hold integers (found %s)", name, field, num)
		case v < 0:
			return nil, fmt.Errorf("tensor %q: %s has negative value %d", name, field, v)
		}
		out = append(out, v)
	}
	_, err := p.token()
	return out, err
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return strconv.Quote(v.String())
	case string:
		return "the string " + strconv.Quote(v)
	case json.Number:
		return "the number " + string(v)
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

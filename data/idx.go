package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"strings"

	"github.com/govae/govae/internal/atomicfile"
)

// IDX magic numbers: two zero bytes, the element type (0x08 = uint8) and the
// number of dimensions.
const (
	imagesMagic uint32 = 0x00000803
	labelsMagic uint32 = 0x00000801
)

// firstChunk bounds the first allocation when the payload size is not known
// from the input itself (gzip, or a plain io.Reader). Later allocations double,
// so memory follows the bytes that actually arrive, never the header's claim.
const firstChunk = 1 << 20

// FormatError reports input that is not a well-formed IDX file of the
// expected kind. File names the input; Err, when set, is the underlying cause
// (io.ErrUnexpectedEOF for truncated input, a gzip error for corrupt
// compression) and is returned by Unwrap.
type FormatError struct {
	File string
	Msg  string
	Err  error
}

func (e *FormatError) Error() string {
	s := "data: " + e.File + ": " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

// Images holds N images of Channels x Rows x Cols uint8 values. Pix holds
// them image after image, each channel-major (CHW: all of channel 0 row by
// row, then channel 1, ...), the layout a convolutional trunk reads and the
// one CIFAR-10 stores; len(Pix) = N*Channels*Rows*Cols. Channels is 1 (grey)
// or 3 (red, green, blue). The 8-bit values are kept as they are, for
// discretized likelihoods; Float32 and the Loader give value/255 in [0, 1].
type Images struct {
	N, Channels, Rows, Cols int
	Pix                     []uint8
}

// Dim is the number of values in one image, Channels*Rows*Cols.
func (m *Images) Dim() int { return m.Channels * m.Rows * m.Cols }

// Plane is the number of values in one channel of one image, Rows*Cols.
func (m *Images) Plane() int { return m.Rows * m.Cols }

// Image returns the pixels of image i; the slice shares memory with m.Pix.
func (m *Images) Image(i int) []uint8 {
	d := m.Dim()
	return m.Pix[i*d : (i+1)*d : (i+1)*d]
}

// Float32 returns all pixels scaled to [0, 1] (pixel/255), row-major.
func (m *Images) Float32() []float32 {
	out := make([]float32, len(m.Pix))
	for i, v := range m.Pix {
		out[i] = unitScale[v]
	}
	return out
}

// Vectors returns the first n images (all of them when n <= 0 or n > N) as one
// []float32 per image, pixel/255 in channel-major order: the form the Go API
// of a model (amortized.Model.Encode, ELBO, LogLikelihood) takes. The rows
// share one backing array. For a Bernoulli model's fixed binarized test set,
// call Binarize(seed).Vectors(n).
func (m *Images) Vectors(n int) [][]float32 {
	if n <= 0 || n > m.N {
		n = m.N
	}
	d := m.Dim()
	flat := make([]float32, n*d)
	rows := make([][]float32, n)
	for i := range rows {
		rows[i] = flat[i*d : (i+1)*d : (i+1)*d]
		for j, v := range m.Image(i) {
			rows[i][j] = unitScale[v]
		}
	}
	return rows
}

// Subset returns a copy of the images at the given indices, in that order.
// Like slice indexing, it panics if an index is out of range.
func (m *Images) Subset(idx []int) *Images {
	d := m.Dim()
	out := &Images{N: len(idx), Channels: m.Channels, Rows: m.Rows, Cols: m.Cols, Pix: make([]uint8, len(idx)*d)}
	for k, i := range idx {
		copy(out.Pix[k*d:], m.Image(i))
	}
	return out
}

// shape writes m's image shape as channels x rows x cols.
func (m *Images) shape() string { return fmt.Sprintf("%dx%dx%d", m.Channels, m.Rows, m.Cols) }

// check reports whether m is internally consistent, so that bad values are
// caught where they enter rather than as an index panic later.
func (m *Images) check() error {
	if m == nil {
		return errors.New("data: nil *Images")
	}
	if m.Channels != 1 && m.Channels != 3 {
		return fmt.Errorf("data: images have %d channels, want 1 (grey) or 3 (RGB)", m.Channels)
	}
	if m.N < 0 || m.Rows <= 0 || m.Cols <= 0 {
		return fmt.Errorf("data: invalid image dimensions %d x %d x %d x %d", m.N, m.Channels, m.Rows, m.Cols)
	}
	want, ok := product(uint64(m.N), uint64(m.Channels), uint64(m.Rows), uint64(m.Cols))
	if !ok || uint64(len(m.Pix)) != want {
		return fmt.Errorf("data: images hold %d values, want %d x %d x %d x %d", len(m.Pix), m.N, m.Channels, m.Rows, m.Cols)
	}
	return nil
}

// unitScale maps a pixel to pixel/255 without a division per pixel.
var unitScale = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// DefaultMaxBytes bounds the decompressed data of one file (and of one
// split of an image or CIFAR folder) unless ReadOptions.MaxBytes,
// LoadOptions.MaxBytes or $GOVAE_DATA_MAX_BYTES say otherwise: 2 GiB, room
// for 2.7 million 28x28 images or 700,000 32x32 colour ones, far below this
// machine's memory. A header claiming more is refused before anything is
// allocated or decompressed.
const DefaultMaxBytes int64 = 2 << 30

// ErrTooLarge is wrapped by the error for input over the size limit.
var ErrTooLarge = errors.New("over the size limit")

// ReadOptions bounds and cancels the IDX readers. The zero value reads with
// DefaultMaxBytes and no cancellation.
type ReadOptions struct {
	// Context, when set, stops a read within one 1 MiB chunk of its
	// cancellation, returning an error that wraps the context's.
	Context context.Context
	// MaxBytes bounds the decompressed payload (pixels or labels): 0 means
	// DefaultMaxBytes, a negative value no limit.
	MaxBytes int64
}

func (o ReadOptions) limit() uint64 {
	switch {
	case o.MaxBytes == 0:
		return uint64(DefaultMaxBytes)
	case o.MaxBytes < 0:
		return math.MaxInt
	}
	return uint64(o.MaxBytes)
}

func (o ReadOptions) ctx() context.Context {
	if o.Context == nil {
		return context.Background()
	}
	return o.Context
}

// ReadImages reads an IDX image file (magic 0x00000803, uint8 pixels) from r,
// gzip-compressed or raw: the format is detected from the content. name
// identifies the input in error messages.
func ReadImages(r io.Reader, name string) (*Images, error) {
	return ReadOptions{}.ReadImages(r, name)
}

// ReadLabels reads an IDX label file (magic 0x00000801) from r, gzip or raw.
func ReadLabels(r io.Reader, name string) ([]uint8, error) {
	return ReadOptions{}.ReadLabels(r, name)
}

// ReadImagesFile reads an IDX image file, gzip-compressed or raw.
func ReadImagesFile(path string) (*Images, error) { return ReadOptions{}.ReadImagesFile(path) }

// ReadLabelsFile reads an IDX label file, gzip-compressed or raw.
func ReadLabelsFile(path string) ([]uint8, error) { return ReadOptions{}.ReadLabelsFile(path) }

// ReadImages is the package's ReadImages with o's bounds and context.
func (o ReadOptions) ReadImages(r io.Reader, name string) (*Images, error) {
	return o.readImages(r, name, -1)
}

// ReadLabels is the package's ReadLabels with o's bounds and context.
func (o ReadOptions) ReadLabels(r io.Reader, name string) ([]uint8, error) {
	_, payload, err := o.readIDX(r, name, labelsMagic, -1)
	return payload, err
}

// ReadImagesFile is the package's ReadImagesFile with o's bounds and context.
func (o ReadOptions) ReadImagesFile(path string) (*Images, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return o.readImages(f, path, size)
}

// ReadLabelsFile is the package's ReadLabelsFile with o's bounds and context.
func (o ReadOptions) ReadLabelsFile(path string) ([]uint8, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, payload, err := o.readIDX(f, path, labelsMagic, size)
	return payload, err
}

// openSized opens path and returns its size when it is a regular file (-1
// otherwise), so that a raw file's header can be checked against it before
// anything is allocated. A directory is refused by name.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("data: %w", err)
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		if fi.IsDir() {
			f.Close()
			return nil, 0, &FormatError{File: path, Msg: "is a directory, want a data file"}
		}
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	return f, size, nil
}

func (o ReadOptions) readImages(r io.Reader, name string, size int64) (*Images, error) {
	dims, payload, err := o.readIDX(r, name, imagesMagic, size)
	if err != nil {
		return nil, err
	}
	return &Images{N: dims[0], Channels: 1, Rows: dims[1], Cols: dims[2], Pix: payload}, nil
}

// ctxReader stops reading once its context is done, and reads at most
// ctxChunk bytes per call so that a cancellation is seen promptly.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

const ctxChunk = 1 << 20

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) > ctxChunk {
		p = p[:ctxChunk]
	}
	return c.r.Read(p)
}

// readIDX reads one uint8 IDX file whose magic must be want. size is the
// total input size when known (a regular file), else -1.
func (o ReadOptions) readIDX(r io.Reader, name string, want uint32, size int64) (dims []int, payload []byte, err error) {
	ndim := int(want & 0xff)
	ctx := o.ctx()
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("data: %s: %w", name, err)
	}
	br := bufio.NewReaderSize(ctxReader{ctx, r}, 64<<10)
	var src io.Reader = br
	compressed := false
	if sig, _ := br.Peek(2); len(sig) == 2 && sig[0] == 0x1f && sig[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, readFailure(name, "gzip header truncated", err)
		}
		defer zr.Close()
		src, compressed = zr, true
	}

	var hdr [4 + 4*3]byte
	hdrLen := 4 + 4*ndim
	if n, err := io.ReadFull(src, hdr[:4]); err != nil {
		return nil, nil, readFailure(name, fmt.Sprintf("header truncated: got %d of %d bytes", n, hdrLen), err)
	}
	if magic := binary.BigEndian.Uint32(hdr[:4]); magic != want {
		return nil, nil, &FormatError{File: name, Msg: fmt.Sprintf("magic 0x%08x%s, want 0x%08x", magic, magicHint(magic), want)}
	}
	if n, err := io.ReadFull(src, hdr[4:hdrLen]); err != nil {
		return nil, nil, readFailure(name, fmt.Sprintf("header truncated: got %d of %d bytes", 4+n, hdrLen), err)
	}
	dims = make([]int, ndim)
	udims := make([]uint64, ndim)
	for i := range dims {
		udims[i] = uint64(binary.BigEndian.Uint32(hdr[4+4*i:]))
		dims[i] = int(udims[i])
	}
	what := "labels"
	if ndim == 3 {
		what = fmt.Sprintf("images of %dx%d", dims[1], dims[2])
		if dims[1] == 0 || dims[2] == 0 {
			return nil, nil, &FormatError{File: name, Msg: fmt.Sprintf("image size %dx%d, want both dimensions > 0", dims[1], dims[2])}
		}
	}
	total, ok := product(udims...)
	if !ok {
		return nil, nil, &FormatError{File: name, Msg: fmt.Sprintf("header claims %d %s: the byte count overflows", dims[0], what)}
	}

	if limit := o.limit(); total > limit {
		return nil, nil, &FormatError{File: name, Msg: fmt.Sprintf("header claims %d %s, %d bytes, over the limit of %d bytes (raise it with $%s or LoadOptions.MaxBytes)", dims[0], what, total, limit, EnvMaxBytes), Err: ErrTooLarge}
	}
	if compressed && size >= 0 && total > uint64(size)*maxDeflateRatio {
		// A gzip bomb or a lying header: deflate cannot expand this far.
		return nil, nil, &FormatError{File: name, Msg: fmt.Sprintf("header claims %d %s, %d bytes, but %d compressed bytes expand to at most %d", dims[0], what, total, size, uint64(size)*maxDeflateRatio), Err: io.ErrUnexpectedEOF}
	}

	known := !compressed && size >= 0
	if known {
		// The whole input is on hand: check the claim before allocating.
		rest := uint64(max(size-int64(hdrLen), 0))
		switch {
		case total > rest:
			return nil, nil, &FormatError{File: name, Msg: truncatedMsg(rest, total, dims[0], what), Err: io.ErrUnexpectedEOF}
		case total < rest:
			return nil, nil, &FormatError{File: name, Msg: trailingMsg(rest-total, dims[0], what)}
		}
	}

	initial := min(total, firstChunk)
	if compressed && total > firstChunk && gzipSizeHint(r, size) == uint32(uint64(hdrLen)+total) && total/maxDeflateRatio <= uint64(size) {
		// The gzip trailer agrees with the header, and the compressed size
		// could really expand this far: allocate once.
		initial = total
	}
	payload, err = readPayload(src, int(total), known, int(initial))
	if err != nil && len(payload) < int(total) {
		return nil, nil, readFailure(name, truncatedMsg(uint64(len(payload)), total, dims[0], what), err)
	}

	// Reading on to EOF also makes gzip verify its CRC-32 and length. An
	// error that came with the last data bytes belongs here.
	var one [1]byte
	n := 0
	if err == nil {
		n, err = io.ReadFull(src, one[:])
	}
	if n > 0 {
		// Count what follows, within reason: a gzip bomb is not worth
		// inflating just to report its size.
		extra, _ := io.Copy(io.Discard, io.LimitReader(src, maxTrailingCount))
		return nil, nil, &FormatError{File: name, Msg: trailingMsg(uint64(1+extra), dims[0], what)}
	}
	if err != io.EOF {
		return nil, nil, readFailure(name, "gzip stream truncated after the data", err)
	}
	return dims, payload, nil
}

// maxTrailingCount caps how many trailing bytes are counted for an error.
const maxTrailingCount = 1 << 20

func truncatedMsg(got, want uint64, n int, what string) string {
	return fmt.Sprintf("truncated: got %d of %d data bytes for %d %s", got, want, n, what)
}

func trailingMsg(extra uint64, n int, what string) string {
	if extra > maxTrailingCount {
		return fmt.Sprintf("more than %d trailing bytes after %d %s", maxTrailingCount, n, what)
	}
	return fmt.Sprintf("%d trailing bytes after %d %s", extra, n, what)
}

// readPayload reads want bytes. When the input's size was checked (known) it
// allocates once; otherwise it starts with initial bytes and grows the buffer
// geometrically with the data that arrives, so a header that lies costs at
// most twice the bytes really present. It may return all want bytes together with an error met at their
// end (say, corrupt data after a gzip stream).
func readPayload(src io.Reader, want int, known bool, initial int) ([]byte, error) {
	if known {
		buf := make([]byte, want)
		n, err := io.ReadFull(src, buf)
		return buf[:n], err
	}
	buf := make([]byte, 0, initial)
	for len(buf) < want {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(len(buf), want-len(buf)))
		}
		n, err := src.Read(buf[len(buf):min(cap(buf), want)])
		buf = buf[:len(buf)+n]
		if err == io.EOF && len(buf) == want {
			break
		}
		if err != nil {
			return buf, err
		}
	}
	return buf[:want:want], nil
}

// maxDeflateRatio bounds how far deflate can expand its input (a 258-byte
// match costs at least two bits, so about 1032:1).
const maxDeflateRatio = 1032

// gzipSizeHint returns the ISIZE field of a gzip file, its uncompressed size
// mod 2^32 (of the last member only, so only a hint), or 0 when r cannot be
// read at an offset.
func gzipSizeHint(r io.Reader, size int64) uint32 {
	ra, ok := r.(io.ReaderAt)
	if !ok || size < 18 {
		return 0
	}
	var b [4]byte
	if _, err := ra.ReadAt(b[:], size-4); err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b[:])
}

// product multiplies dims, reporting false if the result exceeds math.MaxInt.
func product(dims ...uint64) (uint64, bool) {
	p := uint64(1)
	for _, d := range dims {
		hi, lo := bits.Mul64(p, d)
		if hi != 0 || lo > math.MaxInt {
			return 0, false
		}
		p = lo
	}
	return p, true
}

func magicHint(m uint32) string {
	switch m {
	case imagesMagic:
		return " (an IDX image file)"
	case labelsMagic:
		return " (an IDX label file)"
	}
	if m>>16 != 0 {
		return " (not an IDX file)"
	}
	return ""
}

// readFailure classifies an error met while reading: the input ending early
// is a truncation (msg, wrapping io.ErrUnexpectedEOF); corrupt gzip input is a
// format error; anything else (a failing disk, a closed pipe) is an I/O error
// passed on as it is.
func readFailure(name, msg string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return &FormatError{File: name, Msg: msg, Err: io.ErrUnexpectedEOF}
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return &FormatError{File: name, Msg: "corrupt gzip data", Err: err}
	}
	return fmt.Errorf("data: %s: %w", name, err)
}

// WriteImages writes m to w as a raw (uncompressed) IDX image file.
func WriteImages(w io.Writer, m *Images) error {
	if err := m.check(); err != nil {
		return err
	}
	if m.Channels != 1 {
		return fmt.Errorf("data: IDX image files hold grey images; these have %d channels", m.Channels)
	}
	if err := checkUint32(m.N, m.Rows, m.Cols); err != nil {
		return err
	}
	var hdr [16]byte
	binary.BigEndian.PutUint32(hdr[0:], imagesMagic)
	binary.BigEndian.PutUint32(hdr[4:], uint32(m.N))
	binary.BigEndian.PutUint32(hdr[8:], uint32(m.Rows))
	binary.BigEndian.PutUint32(hdr[12:], uint32(m.Cols))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(m.Pix)
	return err
}

// WriteLabels writes labels to w as a raw IDX label file.
func WriteLabels(w io.Writer, labels []uint8) error {
	if err := checkUint32(len(labels)); err != nil {
		return err
	}
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[0:], labelsMagic)
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(labels)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(labels)
	return err
}

func checkUint32(dims ...int) error {
	for _, d := range dims {
		if uint64(d) > math.MaxUint32 {
			return fmt.Errorf("data: dimension %d does not fit the IDX header's 32 bits", d)
		}
	}
	return nil
}

// WriteImagesFile writes m to path atomically, gzip-compressed when path
// ends in ".gz" (readers look at the content, but people look at the name).
func WriteImagesFile(path string, m *Images) error {
	return writeFile(path, func(w io.Writer) error { return WriteImages(w, m) })
}

// WriteLabelsFile writes labels to path atomically, gzip-compressed when
// path ends in ".gz".
func WriteLabelsFile(path string, labels []uint8) error {
	return writeFile(path, func(w io.Writer) error { return WriteLabels(w, labels) })
}

func writeFile(path string, write func(io.Writer) error) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if !strings.HasSuffix(path, ".gz") {
			return write(w)
		}
		zw := gzip.NewWriter(w)
		if err := write(zw); err != nil {
			return err
		}
		return zw.Close()
	})
}

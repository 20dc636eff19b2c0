package imgrid

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"image"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// encodeGray writes img as an 8-bit grey PNG whose rows all take the Up
// filter (each byte minus the one above it; the first row's "above" is
// zero). image/png tries all five filters on every row and keeps the
// smallest: that choice was most of a 10,000-image picture's encoding
// time, where on grids of images on a flat background Up compresses about
// as well.
//
// The filtered rows are compressed in strips of about stripBytes, each
// strip by its own deflate writer, on as many goroutines as there are cores
// (as pigz does): every strip but the last ends on a sync flush, so that
// their concatenation is one deflate stream. The strips depend on the
// image only, so the file is the same whatever the number of cores.
func encodeGray(w io.Writer, img *image.Gray) error {
	bw := bufio.NewWriter(w)
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	bw.WriteString("\x89PNG\r\n\x1a\n")
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = 8, 0 // bit depth 8, colour type 0 (grey); compression, filter, interlace 0
	writeChunk(bw, "IHDR", ihdr[:])

	per := max(1, stripBytes/(1+width)) // rows per strip
	strips := make([]strip, max(1, (height+per-1)/per))
	writers := make(chan *flate.Writer, runtime.GOMAXPROCS(0)) // reused from strip to strip
	parallel(len(strips), func(i int) {
		var zw *flate.Writer
		select {
		case zw = <-writers:
		default:
		}
		y0 := b.Min.Y + i*per
		strips[i].compress(&zw, img, y0, min(y0+per, b.Max.Y), i == len(strips)-1)
		select {
		case writers <- zw:
		default:
		}
	})

	cw := &chunkWriter{w: bw}
	cw.Write([]byte{0x78, 0x01}) // zlib header: deflate, 32 KiB window, fastest level
	var sum uint32 = 1           // Adler-32 of nothing
	for i := range strips {
		s := &strips[i]
		if s.err != nil {
			return s.err
		}
		cw.Write(s.z.Bytes())
		sum = adler32Combine(sum, s.sum, s.n)
	}
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], sum)
	cw.Write(tail[:])
	if err := cw.flush(); err != nil {
		return err
	}
	writeChunk(bw, "IEND", nil)
	return bw.Flush()
}

// stripBytes is the size of the filtered rows a strip compresses: large
// enough that restarting the compressor costs nothing measurable (its
// window is 32 KiB), small enough that a 10-megapixel picture makes
// several strips for the cores to share.
const stripBytes = 1 << 20

// strip is one run of rows, filtered and compressed.
type strip struct {
	z   bytes.Buffer // deflate blocks ending on a sync flush, or on the final block
	sum uint32       // Adler-32 of the filtered rows
	n   int64        // their length in bytes
	err error
}

// compress filters rows y0 to y1-1 of img and compresses them into s.z,
// closing the deflate stream when last; *zw is reused from strip to strip.
func (s *strip) compress(zw **flate.Writer, img *image.Gray, y0, y1 int, last bool) {
	b := img.Bounds()
	width := b.Dx()
	raw := make([]byte, (y1-y0)*(1+width))
	zero := make([]byte, width)
	for y := y0; y < y1; y++ {
		row := raw[(y-y0)*(1+width):][:1+width]
		row[0] = 2 // Up
		prev := zero
		if y > b.Min.Y {
			prev = img.Pix[img.PixOffset(b.Min.X, y-1):][:width]
		}
		for x, v := range img.Pix[img.PixOffset(b.Min.X, y):][:width] {
			row[1+x] = v - prev[x]
		}
	}
	s.sum, s.n = adler32.Checksum(raw), int64(len(raw))
	if *zw == nil {
		if *zw, s.err = flate.NewWriter(&s.z, flate.BestSpeed); s.err != nil {
			return
		}
	} else {
		(*zw).Reset(&s.z)
	}
	if _, s.err = (*zw).Write(raw); s.err != nil {
		return
	}
	if last {
		s.err = (*zw).Close()
	} else {
		s.err = (*zw).Flush()
	}
}

// parallel calls fn(0), ..., fn(n-1) on as many goroutines as there are
// cores, each taking the next index, and returns when all have returned.
func parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// adler32Combine is the Adler-32 of a and then b, from their checksums and
// b's length (zlib's adler32_combine).
func adler32Combine(sumA, sumB uint32, lenB int64) uint32 {
	const mod = 65521
	rem := uint32(lenB % mod)
	a := sumA & 0xffff
	c := rem * a % mod
	a += sumB&0xffff + mod - 1
	c += sumA>>16 + sumB>>16 + mod - rem
	if a >= mod {
		a -= mod
	}
	if a >= mod {
		a -= mod
	}
	if c >= 2*mod {
		c -= 2 * mod
	}
	if c >= mod {
		c -= mod
	}
	return c<<16 | a
}

// writeChunk writes one PNG chunk: length, type, data, CRC of type and data.
// Errors stay in bw until its Flush.
func writeChunk(bw *bufio.Writer, kind string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	bw.Write(n[:])
	bw.WriteString(kind)
	bw.Write(data)
	crc := crc32.NewIEEE()
	crc.Write([]byte(kind))
	crc.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	bw.Write(n[:])
}

// chunkWriter cuts the zlib stream into IDAT chunks of up to 64 KiB.
type chunkWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	const size = 1 << 16
	n := len(p)
	for len(p) > 0 {
		k := min(size-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == size {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) > 0 {
		writeChunk(c.w, "IDAT", c.buf)
		c.buf = c.buf[:0]
	}
	return nil
}

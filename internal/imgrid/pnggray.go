package imgrid

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"io"
)

// encodeGray writes img as an 8-bit grey PNG whose rows all take the Up
// filter (each byte minus the one above it; the first row's "above" is
// zero). image/png tries all five filters on every row and keeps the
// smallest: that choice was most of a 10,000-image picture's encoding
// time, where on grids of images on a flat background Up compresses about
// as well.
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
	cw := &chunkWriter{w: bw}
	zw, err := zlib.NewWriterLevel(cw, zlib.BestSpeed)
	if err != nil {
		return err
	}
	row := make([]byte, 1+width)
	row[0] = 2 // Up
	prev := make([]byte, width)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		cur := img.Pix[img.PixOffset(b.Min.X, y):][:width]
		for x, v := range cur {
			row[1+x] = v - prev[x]
		}
		if _, err := zw.Write(row); err != nil {
			return err
		}
		prev = cur
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := cw.flush(); err != nil {
		return err
	}
	writeChunk(bw, "IEND", nil)
	return bw.Flush()
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

package evalrun

import (
	"context"

	"github.com/govae/govae/data"
)

// rowSource is the images of a split as float32 rows, in order and in runs
// of at most a batch: len is their number, and each calls fn with each
// run and the index of its first row, stopping at fn's first error. A run
// is valid only during its call.
type rowSource struct {
	len  int
	each func(ctx context.Context, fn func(start int, x [][]float32) error) error
}

// sliceRows serves rows already in memory, encodeChunk at a time.
func sliceRows(x [][]float32) rowSource {
	return rowSource{len: len(x), each: func(ctx context.Context, fn func(int, [][]float32) error) error {
		for i := 0; i < len(x); i += encodeChunk {
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			if err := fn(i, x[i:min(i+encodeChunk, len(x))]); err != nil {
				return err
			}
		}
		return nil
	}}
}

// loaderRows converts the loader's images (epoch 0) one batch at a time
// into one buffer, so that evaluation holds the split once, as its bytes,
// and not also as float32 rows (four times as many bytes).
func loaderRows(l *data.Loader) rowSource {
	return rowSource{len: l.Len(), each: func(ctx context.Context, fn func(int, [][]float32) error) error {
		d := l.Dim()
		buf := make([]float32, l.BatchSize()*d)
		x := make([][]float32, l.BatchSize())
		start := 0
		for b := range l.NumBatches() {
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			n, err := l.Batch(0, b, buf)
			if err != nil {
				return err
			}
			for i := range n {
				x[i] = buf[i*d : (i+1)*d : (i+1)*d]
			}
			if err := fn(start, x[:n]); err != nil {
				return err
			}
			start += n
		}
		return nil
	}}
}

package data

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/govae/govae/internal/kernels/cores"
)

// LoaderOptions configures a Loader. The zero value, apart from Batch, is
// in-order, non-binarized, keep-the-last-partial-batch.
type LoaderOptions struct {
	// Batch is the number of rows per batch; it must be at least 1.
	Batch int
	// Seed drives shuffling and binarization.
	Seed uint64
	// Shuffle visits the examples in a fresh random order every epoch.
	Shuffle bool
	// Binarize selects how pixels become inputs.
	Binarize Binarization
	// DropLast skips a final batch smaller than Batch, as PyTorch's
	// drop_last=True; by default it is kept.
	DropLast bool
}

// Loader yields batches of one split as float32 rows (pixels/255, or 0/1
// after binarization).
//
// Batch b of epoch e holds positions b*Batch ... of that epoch's order: the
// given indices as they are, or permuted by a permutation that is a pure
// function of (Seed, e) when Shuffle is set. A dynamic binarization of
// example i in epoch e is a pure function of (Seed, e, i) and a static one of
// (Seed, i), where i is the index into Images, so it does not depend on the
// order, the split or the batch size. Hence any batch can be recomputed
// exactly, in any order, which is what resuming mid-epoch needs.
//
// A Loader caches the permutation of the epoch it last served, so Batch calls
// within an epoch allocate nothing. It is not safe for concurrent use.
type Loader struct {
	imgs  *Images
	idx   []int
	opts  LoaderOptions
	dim   int
	words int      // uint64 words per row in static
	bits  []uint64 // static draw, one row per position in idx

	perm      []int
	permEpoch int // epoch perm belongs to; -1 for none
}

// NewLoader returns a Loader over imgs restricted to indices (nil means all
// images, in order). The indices are copied and may repeat.
func NewLoader(imgs *Images, indices []int, opts LoaderOptions) (*Loader, error) {
	if err := imgs.check(); err != nil {
		return nil, err
	}
	if opts.Batch < 1 {
		return nil, fmt.Errorf("data: batch size %d, want at least 1", opts.Batch)
	}
	if !opts.Binarize.valid() {
		return nil, fmt.Errorf("data: invalid binarization %d", uint8(opts.Binarize))
	}
	var idx []int
	if indices == nil {
		idx = make([]int, imgs.N)
		for i := range idx {
			idx[i] = i
		}
	} else {
		idx = make([]int, len(indices))
		for k, i := range indices {
			if i < 0 || i >= imgs.N {
				return nil, fmt.Errorf("data: index %d (position %d) out of range [0, %d)", i, k, imgs.N)
			}
			idx[k] = i
		}
	}
	l := &Loader{imgs: imgs, idx: idx, opts: opts, dim: imgs.Dim(), permEpoch: -1}
	if opts.Shuffle {
		l.perm = make([]int, len(idx))
	}
	if opts.Binarize == BinarizeStatic {
		l.words = (l.dim + 63) / 64
		l.bits = make([]uint64, len(idx)*l.words)
		key := staticKey(opts.Seed)
		for p, i := range idx {
			drawBits(l.bits[p*l.words:(p+1)*l.words], imgs.Image(i), key, i)
		}
	}
	return l, nil
}

// Len is the number of examples.
func (l *Loader) Len() int { return len(l.idx) }

// Dim is the number of values per row, channels*rows*cols.
func (l *Loader) Dim() int { return l.dim }

// BatchSize is the number of rows in a full batch.
func (l *Loader) BatchSize() int { return l.opts.Batch }

// NumBatches is the number of batches per epoch: ceil(Len/BatchSize), or
// floor with DropLast.
func (l *Loader) NumBatches() int {
	if l.opts.DropLast {
		return len(l.idx) / l.opts.Batch
	}
	return (len(l.idx) + l.opts.Batch - 1) / l.opts.Batch
}

// Batch writes batch b of epoch e into dst (len >= BatchSize()*Dim(), row-major) and returns the
// number of rows written (the last batch may be partial unless DropLast). Same (seed, epoch, b)
// gives the same rows and pixels, in any call order. Only the rows written
// need room: the last, partial batch may be given a shorter dst.
func (l *Loader) Batch(epoch, b int, dst []float32) (int, error) {
	order, start, n, err := l.locate(epoch, b)
	if err != nil {
		return 0, err
	}
	if len(dst) < n*l.dim {
		return 0, fmt.Errorf("data: batch %d needs %d x %d = %d values, dst holds %d", b, n, l.dim, n*l.dim, len(dst))
	}
	var key uint64
	if l.opts.Binarize == BinarizeDynamic {
		key = dynamicKey(l.opts.Seed, epoch)
	}
	// Rows are independent and each is written by one call, so the batch
	// is the same however the rows are spread over the cores.
	j := fillPool.Get().(*fillJob)
	defer fillPool.Put(j)
	j.l, j.dst, j.order, j.start, j.n, j.key = l, dst, order, start, n, key
	j.workers = 1
	if n*l.dim >= 1<<15 && cores.Spare() {
		j.workers = min(runtime.GOMAXPROCS(0), n)
	}
	cores.Run(j.workers, j.fn)
	j.l, j.dst, j.order = nil, nil, nil
	return n, nil
}

// fillJob writes the rows of one batch, split into workers parts; jobs are
// pooled and fn (its run method) is bound once, so Batch does not allocate.
type fillJob struct {
	l        *Loader
	dst      []float32
	order    []int
	start, n int
	key      uint64
	workers  int
	fn       func(int)
}

var fillPool = sync.Pool{New: func() any {
	j := new(fillJob)
	j.fn = j.run
	return j
}}

// run writes part w of the rows.
func (j *fillJob) run(w int) {
	l, d := j.l, j.l.dim
	for r := j.n * w / j.workers; r < j.n*(w+1)/j.workers; r++ {
		p := j.start + r
		if j.order != nil {
			p = j.order[p]
		}
		i := l.idx[p]
		row := j.dst[r*d : (r+1)*d]
		switch l.opts.Binarize {
		case BinarizeNone:
			for k, v := range l.imgs.Image(i) {
				row[k] = unitScale[v]
			}
		case BinarizeStatic:
			words := l.bits[p*l.words : (p+1)*l.words]
			for k := range row {
				row[k] = float32(words[k/64] >> (k % 64) & 1)
			}
		case BinarizeDynamic:
			drawBinary(row, l.imgs.Image(i), j.key, i)
		}
	}
}

// BatchPixels writes the raw 8-bit values of batch b of epoch e into dst
// (len >= rows*Dim()), the same rows in the same order as Batch, and
// returns the number of rows. Binarization does not apply: these are the
// values discretized likelihoods (logistic, 256-way categorical) model,
// and Batch's BinarizeNone rows are exactly these divided by 255.
func (l *Loader) BatchPixels(epoch, b int, dst []uint8) (int, error) {
	order, start, n, err := l.locate(epoch, b)
	if err != nil {
		return 0, err
	}
	if len(dst) < n*l.dim {
		return 0, fmt.Errorf("data: batch %d needs %d x %d = %d values, dst holds %d", b, n, l.dim, n*l.dim, len(dst))
	}
	for r := range n {
		p := start + r
		if order != nil {
			p = order[p]
		}
		copy(dst[r*l.dim:(r+1)*l.dim], l.imgs.Image(l.idx[p]))
	}
	return n, nil
}

// Shape is the image shape of each row of Dim() = channels*rows*cols
// values, stored channel-major (see Images).
func (l *Loader) Shape() (channels, rows, cols int) {
	return l.imgs.Channels, l.imgs.Rows, l.imgs.Cols
}

// BatchIndices writes the Images indices of the examples in batch b of epoch
// e to dst, in the order Batch writes their rows, and returns how many there
// are. It serves to fetch labels or check a resumed run's data order.
func (l *Loader) BatchIndices(epoch, b int, dst []int) (int, error) {
	order, start, n, err := l.locate(epoch, b)
	if err != nil {
		return 0, err
	}
	if len(dst) < n {
		return 0, fmt.Errorf("data: batch %d has %d examples, dst holds %d", b, n, len(dst))
	}
	for r := range n {
		p := start + r
		if order != nil {
			p = order[p]
		}
		dst[r] = l.idx[p]
	}
	return n, nil
}

// locate checks (epoch, b) and returns the epoch's order (nil for the
// identity), the first position of batch b in it, and its number of rows.
func (l *Loader) locate(epoch, b int) (order []int, start, n int, err error) {
	if epoch < 0 {
		return nil, 0, 0, fmt.Errorf("data: epoch %d, want >= 0", epoch)
	}
	nb := l.NumBatches()
	if b < 0 || b >= nb {
		if nb == 0 {
			return nil, 0, 0, errors.New("data: loader has no batches (fewer examples than one batch with DropLast, or none)")
		}
		return nil, 0, 0, fmt.Errorf("data: batch %d out of range [0, %d)", b, nb)
	}
	if l.opts.Shuffle {
		if l.permEpoch != epoch {
			permute(l.perm, streamKey(l.opts.Seed, tagShuffle, uint64(epoch)))
			l.permEpoch = epoch
		}
		order = l.perm
	}
	start = b * l.opts.Batch
	return order, start, min(l.opts.Batch, len(l.idx)-start), nil
}

// Rows returns every example of the given epoch, in batch order, as rows of
// Dim() values (a copy; for evaluation sets that fit in memory).
func (l *Loader) Rows(epoch int) ([][]float32, error) {
	buf := make([]float32, l.BatchSize()*l.Dim())
	x := make([][]float32, 0, l.Len())
	for b := range l.NumBatches() {
		n, err := l.Batch(epoch, b, buf)
		if err != nil {
			return nil, err
		}
		for i := range n {
			x = append(x, append([]float32(nil), buf[i*l.Dim():(i+1)*l.Dim()]...))
		}
	}
	return x, nil
}

package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/govae/govae/internal/kernels/cores"
)

// Shared packing of B. In data-parallel training every shard multiplies by
// its own copy of the same weights (gorgonia's tape machines must not share
// tensors), and packing a weight matrix for a product is the same work in
// each shard: about an eighth of a training step. A SharedPacks names groups
// of matrices that hold equal values, a weight and its replicas, and while
// it is open, Sgemm calls whose B is one of them (by its first element's
// address) use one packed copy of B per layout: the calls that arrive first
// share out its packing in panel units, and the others read the result.
// The packed copy is the one each call would have made (the same block
// sizes and panel layout), so results are bit-identical.
//
// The caller promises that between Open and Close the matrices of a group
// hold equal values and nothing writes them.

// SharedPacks is a set of groups of equal matrices; see the comment above.
type SharedPacks struct {
	open atomic.Bool
	mu   sync.Mutex
	keys []uintptr          // registered first-element addresses
	mats map[uintptr]member // the same, for Release
	// packs of each group, one per layout, created on first use
	packs [][]*sharedPack
}

// member is a registered matrix: its set, group and length.
type member struct {
	sp    *SharedPacks
	group int
	n     int
}

// packKey is what fixes a packed B: the operand's shape and layout and the
// kernel (whose nr and block sizes make the panels).
type packKey struct {
	bTrans    bool
	k, n, ldb int
	kern      *kernel
}

// sharedPack is one packed B, rebuilt after every Open.
type sharedPack struct {
	key        packKey
	src        problem   // the first product's, for its B (equal in the group)
	buf        []float32 // nPad*k floats, k blocks at pc*nPad (see compute)
	units      int       // packing units: perBlock per k block
	perBlock   int
	next, done atomic.Int64
}

// unitPanels is the number of nr-wide panels in one packing unit.
const unitPanels = 4

var (
	sharedIndex sync.Map // uintptr -> member
	sharedCount atomic.Int64
)

// NewSharedPacks returns an empty, closed set.
func NewSharedPacks() *SharedPacks {
	return &SharedPacks{mats: map[uintptr]member{}}
}

// Add registers mats as one group of matrices with equal values. Empty
// matrices and ones already registered are skipped.
func (sp *SharedPacks) Add(mats ...[]float32) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	g := len(sp.packs)
	sp.packs = append(sp.packs, nil)
	for _, m := range mats {
		if len(m) == 0 {
			continue
		}
		key := uintptr(unsafe.Pointer(&m[0]))
		if _, dup := sharedIndex.LoadOrStore(key, member{sp, g, len(m)}); dup {
			continue
		}
		sharedCount.Add(1)
		sp.mats[key] = member{sp, g, len(m)}
	}
}

// Release unregisters all of the set's matrices (closing it).
func (sp *SharedPacks) Release() {
	sp.open.Store(false)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for key := range sp.mats {
		sharedIndex.Delete(key)
		sharedCount.Add(-1)
	}
	clear(sp.mats)
	sp.packs = nil
}

// Open starts a period in which the groups' matrices do not change: the
// packed copies made before are stale and are made again on first use.
func (sp *SharedPacks) Open() {
	sp.mu.Lock()
	for _, g := range sp.packs {
		for _, pk := range g {
			pk.next.Store(0)
			pk.done.Store(0)
		}
	}
	sp.mu.Unlock()
	sp.open.Store(true)
}

// Close ends the period begun by Open: Sgemm packs B itself again.
func (sp *SharedPacks) Close() { sp.open.Store(false) }

// sharedB returns p's B packed, packing (its share of) it first, or nil if
// B is not a matrix of an open set.
func sharedB(p *problem) []float32 {
	v, ok := sharedIndex.Load(uintptr(unsafe.Pointer(&p.b[0])))
	if !ok {
		return nil
	}
	mb := v.(member)
	if !mb.sp.open.Load() {
		return nil
	}
	need := (p.k-1)*p.ldb + p.n // extent of B read by the product
	if p.bTrans {
		need = (p.n-1)*p.ldb + p.k
	}
	if need > mb.n {
		return nil
	}
	pk := mb.sp.pack(mb.group, packKey{p.bTrans, p.k, p.n, p.ldb, p.kern}, p)
	pk.fill()
	return pk.buf
}

// pack returns group g's packed B for key, creating it if needed.
func (sp *SharedPacks) pack(g int, key packKey, p *problem) *sharedPack {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for _, pk := range sp.packs[g] {
		if pk.key == key {
			return pk
		}
	}
	panels := p.nPad / p.kern.nr
	pk := &sharedPack{key: key, src: *p, buf: aligned(p.nPad * p.k), perBlock: (panels + unitPanels - 1) / unitPanels}
	pk.src.a, pk.src.c = nil, nil
	pk.units = pk.perBlock * ((p.k + p.kc - 1) / p.kc)
	sp.packs[g] = append(sp.packs[g], pk)
	return pk
}

// claim packs units no one has claimed yet, until none is left.
func (pk *sharedPack) claim() {
	p := &pk.src
	nr := p.kern.nr
	for {
		u := pk.next.Add(1) - 1
		if u >= int64(pk.units) {
			return
		}
		blk, part := int(u)/pk.perBlock, int(u)%pk.perBlock
		pc := blk * p.kc
		kb := min(p.kc, p.k-pc)
		j0 := part * unitPanels * nr
		j1 := min(j0+unitPanels*nr, p.n)
		p.packB(pk.buf[pc*p.nPad+j0*kb:], j0, j1-j0, pc, kb)
		pk.done.Add(1)
	}
}

// fill packs its share of pk and waits for the rest.
func (pk *sharedPack) fill() {
	units := int64(pk.units)
	if pk.done.Load() == units {
		return
	}
	pk.claim()
	for pk.done.Load() < units {
		runtime.Gosched()
	}
}

// Fill makes every packed copy the set has made before (the layouts seen
// since it was created), on all cores unless they are held (see package
// cores). Called after Open, it does the packing ahead of the products:
// left to the products, the goroutine that arrives first at each one
// packs most of it, and one that lags behind does not share the work.
func (sp *SharedPacks) Fill() {
	sp.mu.Lock()
	var all []*sharedPack
	for _, g := range sp.packs {
		all = append(all, g...)
	}
	sp.mu.Unlock()
	workers := 1
	if cores.Spare() {
		workers = runtime.GOMAXPROCS(0)
	}
	cores.Run(workers, func(int) {
		for _, pk := range all {
			pk.claim()
		}
	})
}

package amortized

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/chewxy/math32"
	"github.com/govae/govae/internal/kernels/cores"
	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// LogLikelihood estimates log p(x) of each row by importance sampling with
// the posterior as the proposal (Burda et al. 2015):
//
//	log p(x) ~ log (1/k) sum_i p(x, z_i) / q(z_i|x),   z_i ~ q(z|x).
//
// The estimate is a lower bound in expectation (the IWAE bound), tightens as
// k grows and is consistent as k -> infinity. Memory is bounded whatever k:
// samples are processed in chunks and combined by a streaming log-sum-exp.
// The work is spread over GOMAXPROCS goroutines; the result depends only on
// rng's state, not on the scheduling. Do not call it while training m.
func (m *Model) LogLikelihood(x [][]float32, k int, rng *rand.Rand) ([]float64, error) {
	ll, _, err := m.LogLikelihoodSE(x, k, rng)
	return ll, err
}

// LogLikelihoodSE is LogLikelihood that also returns each estimate's Monte
// Carlo standard error, by the delta method: sd(w) / (sqrt(k) mean(w)) over
// the k importance weights w. It is NaN for k = 1. With heavy-tailed
// weights (the usual case for a VAE's posterior as a proposal) it is too
// small, often by several times: see LogLikelihoodEstimate for an error
// from independent replicates.
func (m *Model) LogLikelihoodSE(x [][]float32, k int, rng *rand.Rand) (ll, se []float64, err error) {
	e, err := m.LogLikelihoodEstimate(x, k, 1, rng)
	if err != nil {
		return nil, nil, err
	}
	return e.LogPx, e.DeltaSE, nil
}

// DefaultReplicates is the usual number of replicate groups R of
// LogLikelihoodEstimate.
const DefaultReplicates = 10

// LLEstimate is LogLikelihoodEstimate's result, per row of x.
type LLEstimate struct {
	K, R int // importance samples per row; replicate groups
	// LogPx is log (1/k) sum_i w_i over all k weights: LogLikelihood's number.
	LogPx []float64
	// DeltaSE is the delta-method standard error sd(w) / (sqrt(k) mean(w));
	// NaN for k = 1.
	DeltaSE []float64
	// Replicates holds, per row, R independent estimates log (1/m) sum w
	// over disjoint groups of m = k/R of the same weights (sizes differ by
	// one when R does not divide k); nil when R < 2.
	Replicates [][]float64
	// ESS is the effective sample size of the weights, (sum w)^2 / sum w^2:
	// k for equal weights, 1 when one weight dominates.
	ESS []float64
}

// ReplicateSE is the standard error of the mean over rows of LogPx by the
// delete-a-group jackknife (Efron 1982) over the R replicate groups:
// sqrt(sum_n v_n) / N with
//
//	v_n = (R-1)/R sum_g (L_{n,-g} - mean_g L_{n,-g})^2,
//
// L_{n,-g} being row n's estimate from all samples outside group g. Unlike
// the delta method, which divides sd(w) by mean(w) of the same few samples
// and so cannot exceed about one nat however far a single large weight
// moves the estimate, the jackknife sees how much the estimate moves when
// the group holding that weight is left out. With heavy-tailed weights it
// tracks the spread between seeds (TestReplicateErrorMatchesSeedSpread);
// with light tails it agrees with the delta method. NaN when R < 2.
func (e *LLEstimate) ReplicateSE() float64 {
	if e.R < 2 || len(e.Replicates) == 0 {
		return math.NaN()
	}
	var v float64
	for _, reps := range e.Replicates {
		v += jackknifeVar(reps, e.K)
	}
	return math.Sqrt(v) / float64(len(e.Replicates))
}

// RowReplicateSE is ReplicateSE of row i's estimate alone.
func (e *LLEstimate) RowReplicateSE(i int) float64 {
	if e.R < 2 || len(e.Replicates) == 0 {
		return math.NaN()
	}
	return math.Sqrt(jackknifeVar(e.Replicates[i], e.K))
}

// jackknifeVar is the delete-a-group jackknife variance of log (1/k) sum w
// given the groups' estimates reps (group g holds the samples s with
// s*R/k == g).
func jackknifeVar(reps []float64, k int) float64 {
	R := len(reps)
	sizes := make([]float64, R)
	for s := range k {
		sizes[s*R/k]++
	}
	// Each leave-one-out estimate by its own log-sum-exp: a group that
	// outweighs the rest by more than exp's range still gives a finite one.
	loo := make([]float64, R)
	var mean float64
	for g := range R {
		mx := math.Inf(-1)
		for h, r := range reps {
			if h != g {
				mx = math.Max(mx, r)
			}
		}
		var sum float64
		for h, r := range reps {
			if h != g {
				sum += sizes[h] * math.Exp(r-mx)
			}
		}
		loo[g] = mx + math.Log(sum/(float64(k)-sizes[g]))
		mean += loo[g] / float64(R)
	}
	var ss float64
	for _, l := range loo {
		ss += (l - mean) * (l - mean)
	}
	return ss * float64(R-1) / float64(R)
}

// DeltaSEOfMean is the delta-method standard error of the mean over rows:
// sqrt(sum_n DeltaSE_n^2) / N (NaN for k = 1).
func (e *LLEstimate) DeltaSEOfMean() float64 {
	var v float64
	for _, s := range e.DeltaSE {
		v += s * s
	}
	return math.Sqrt(v) / float64(len(e.DeltaSE))
}

// MeanESS is the effective sample size averaged over rows.
func (e *LLEstimate) MeanESS() float64 {
	var s float64
	for _, v := range e.ESS {
		s += v
	}
	return s / float64(len(e.ESS))
}

// Append adds the rows of o (same K and R) after e's.
func (e *LLEstimate) Append(o *LLEstimate) {
	e.K, e.R = o.K, o.R
	e.LogPx = append(e.LogPx, o.LogPx...)
	e.DeltaSE = append(e.DeltaSE, o.DeltaSE...)
	e.ESS = append(e.ESS, o.ESS...)
	if o.Replicates != nil {
		e.Replicates = append(e.Replicates, o.Replicates...)
	}
}

// LogLikelihoodEstimate is LogLikelihood with three error measures per row
// (see LLEstimate): the delta-method error, R independent replicate
// estimates from disjoint groups of the k samples (R = 1: none; R is
// capped at k), and the effective sample size. The numbers in LogPx are
// those of LogLikelihood with the same rng state, whatever R.
func (m *Model) LogLikelihoodEstimate(x [][]float32, k, R int, rng *rand.Rand) (*LLEstimate, error) {
	if R < 1 {
		return nil, fmt.Errorf("amortized: LogLikelihood: %d replicate groups, want >= 1", R)
	}
	R = min(R, max(k, 1))
	ll, se, ess, reps, err := m.logLikelihood(x, k, R, rng)
	if err != nil {
		return nil, err
	}
	e := &LLEstimate{K: k, R: R, LogPx: ll, DeltaSE: se, ESS: ess}
	if R >= 2 {
		e.Replicates = reps
	}
	return e, nil
}

func (m *Model) logLikelihood(x [][]float32, k, R int, rng *rand.Rand) (ll, se, ess []float64, reps [][]float64, err error) {
	if k < 1 {
		return nil, nil, nil, nil, fmt.Errorf("amortized: LogLikelihood: k = %d importance samples, want >= 1", k)
	}
	if rng == nil {
		return nil, nil, nil, nil, errors.New("amortized: LogLikelihood: rng is nil")
	}
	flat, err := m.checkData(x)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	n, D, L := len(x), m.cfg.DataDim, m.noiseWidth()
	// The encoder runs once per row; its heads (all of q's parameters,
	// flow parameters and context included) are fed to the kindLogW graph
	// for every chunk of samples, which is far cheaper than rerunning the
	// encoder for each sample.
	encKind, lwKind := kindEncode, kindLogW
	if _, ok := m.family.(HeadPreparer); ok {
		encKind, lwKind = kindPrepHeads, kindLogWPrep
	}
	heads := m.logWHeads(lwKind)
	diag := m.diagLogW()
	if diag {
		lwKind = kindLogWZ
	}
	q, err := m.headsOf(encKind, heads, flat, n)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	// One seed per row: the noise of (row, sample) is addressable, so any
	// split of the work gives the same numbers.
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}

	// A unit of work is a block of whole rows, so each row's accumulator
	// has one owner.
	rowsPerUnit := max(1, evalChunk/k)
	size := min(rowsPerUnit, n) * k
	if k >= evalChunk {
		size = evalChunk
	}
	units := (n + rowsPerUnit - 1) / rowsPerUnit
	acc := make([]lseAcc, n)
	groups := make([]lseAcc, n*R)
	var next atomic.Int64
	copies, release, err := m.workerCopies(units)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	defer release()
	workers := len(copies)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The replica is this worker's alone until release; a graph an
			// earlier call kept packs the output weights again on its first
			// run (nets.Repack): they may have changed since.
			r, key := copies[w], graphKey{lwKind, size}
			g := r.graphs[key]
			if g != nil {
				for _, n := range g.g.AllNodes() {
					nets.Repack(n)
				}
			} else {
				var err error
				if g, err = m.buildGraphOn(r.params, lwKind, size, TrainOptions{}); err != nil {
					errs[w] = err
					return
				}
				r.graphs[key] = g
			}
			defer func() {
				if errs[w] != nil { // not kept in a state nobody checked
					g.close()
					delete(r.graphs, key)
				}
			}()
			buf := newLogWBuffers(size, D, L, heads, diag)
			for {
				u := int(next.Add(1) - 1)
				if u >= units {
					return
				}
				r0, r1 := u*rowsPerUnit, min((u+1)*rowsPerUnit, n)
				if err := buf.runUnit(g, flat, q, seeds, acc, groups, R, r0, r1, k); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, nil, err
	}
	ll, se, ess = make([]float64, n), make([]float64, n), make([]float64, n)
	reps = make([][]float64, n)
	for i := range acc {
		ll[i], se[i] = acc[i].result(k)
		ess[i] = acc[i].s1 * acc[i].s1 / acc[i].s2
		reps[i] = make([]float64, R)
		for g := range R {
			a := &groups[i*R+g]
			reps[i][g], _ = a.result(a.n)
		}
	}
	return ll, se, ess, reps, nil
}

// encodeHeads runs the encoder on n validated rows and returns each head's
// values, row-major, in the model's head order.
func (m *Model) encodeHeads(flat []float32, n int) ([][]float64, error) {
	return m.headsOf(kindEncode, m.qHeads(), flat, n)
}

// headsOf runs graphs of the kind (kindEncode, or kindPrepHeads for the
// prepared heads) on n validated rows and returns the heads' values,
// row-major, in the order of heads.
func (m *Model) headsOf(kind graphKind, heads []Head, flat []float32, n int) ([][]float64, error) {
	D := m.cfg.DataDim
	out := make([][]float64, len(heads))
	for h, hd := range heads {
		out[h] = make([]float64, n*hd.Width)
	}
	err := m.parChunks(kind, n, func(g *graph, start, rows int) error {
		setRows(g.input(inX), flat[start*D:(start+rows)*D])
		if err := g.run(); err != nil {
			return err
		}
		var buf []float64
		for h, hd := range heads {
			w := hd.Width
			buf = g.read(outHead+hd.Name, buf)
			copy(out[h][start*w:(start+rows)*w], buf[:rows*w])
		}
		return nil
	})
	return out, err
}

// logWHeads are the heads a graph of the kind (kindLogW or kindLogWPrep)
// takes as inputs, in order.
func (m *Model) logWHeads(kind graphKind) []Head {
	if kind == kindLogWPrep {
		return m.family.(HeadPreparer).PreparedHeads(m.cfg)
	}
	return m.qHeads()
}

// qHeads are the encoder's heads, in order.
func (m *Model) qHeads() []Head { return m.family.Heads(m.cfg) }

// headWidths are the widths of the encoder's heads, in order.
func (m *Model) headWidths() []int {
	var w []int
	for _, hd := range m.qHeads() {
		w = append(w, hd.Width)
	}
	return w
}

// diagLogW says log p(x)'s importance weights take the direct path: for a
// diagonal Gaussian q and the standard normal prior in float32, z, log
// q(z|x) and log p(z) are computed in Go (logWBuffers.sampleDiag), with
// exp(logvar/2) once per row instead of once per sample, and the graph
// (kindLogWZ) holds only the decoder and the likelihood. The float32
// operations and their order are those of the kindLogW graph's nodes, so
// the weights are the same to the bit.
func (m *Model) diagLogW() bool {
	if !diagDirect {
		return false
	}
	_, diag := m.family.(diagFamily)
	_, normal := m.prior.(standardNormal)
	return diag && normal && m.cfg.tensorDtype() == tensor.Float32
}

// diagDirect enables diagLogW's path (a variable for the tests).
var diagDirect = true

// logWBuffers are one worker's input buffers for a kindLogW graph (or
// kindLogWZ, see diagLogW).
type logWBuffers struct {
	x          []float32   // the rows when the graph's input is not float32
	q          [][]float64 // per head, size rows of its width
	ep         []float64
	item       []int // row of each filled item
	lw         []float64
	heads      []Head
	D, L, size int
	pcg        rand.PCG   // the noise stream of the current sample
	rng        *rand.Rand // reads pcg
	// slot holds the row whose data is in each row of the graph's input x
	// (-1: none), when the graph leaves it there (graph.xReadOnly): with
	// k >= evalChunk a chunk is one row repeated, and the next chunk
	// often the same.
	slot []int

	// The direct path (diagLogW).
	diag          bool
	cur           int       // the row whose mu, sigma and halfLV these are
	mu, sigma     []float32 // the current row's mean and exp(logvar/2)
	halfLV        float32   // sum(logvar)/2 of the current row
	logq, logp    []float32 // per sample of the chunk
	recon         []float64
	iMean, iLogvr int // the heads' indices
}

func newLogWBuffers(size, D, L int, heads []Head, diag bool) *logWBuffers {
	b := &logWBuffers{item: make([]int, 0, size), heads: heads, D: D, L: L, size: size,
		slot: make([]int, size), diag: diag, cur: -1}
	b.rng = rand.New(&b.pcg)
	for i := range b.slot {
		b.slot[i] = -1
	}
	if diag {
		b.mu, b.sigma = make([]float32, L), make([]float32, L)
		b.logq, b.logp = make([]float32, size), make([]float32, size)
		for h, hd := range heads {
			switch hd.Name {
			case "mean":
				b.iMean = h
			case "logvar":
				b.iLogvr = h
			}
		}
		return b
	}
	b.ep = make([]float64, size*L)
	for _, hd := range heads {
		b.q = append(b.q, make([]float64, size*hd.Width))
	}
	return b
}

// runUnit evaluates k weights for each of rows [r0, r1), in graph-sized
// chunks; q holds the encoder's heads of every row.
// groups holds R accumulators per row; sample s of a row goes to group
// s*R/k, so the groups are disjoint and their sizes differ by one at most.
func (b *logWBuffers) runUnit(g *graph, flat []float32, q [][]float64, seeds []uint64, acc, groups []lseAcc, R, r0, r1, k int) error {
	D, L := b.D, b.L
	total := (r1 - r0) * k
	var zs []float32
	if b.diag {
		zs = g.input(inZ).Value().Data().([]float32) // diagLogW: float32
	}
	for start := 0; start < total; start += b.size {
		// Each row is repeated k times: in float32 straight into the
		// graph's input, not through b.x (a copy of 3 KB per sample).
		xs, direct := g.input(inX).Value().Data().([]float32)
		if !direct || len(xs) < b.size*D {
			if b.x == nil {
				b.x = make([]float32, b.size*D)
			}
			xs, direct = b.x, false
		}
		kept := direct && g.xReadOnly
		b.item = b.item[:0]
		for t := start; t < min(start+b.size, total); t++ {
			row, s := r0+t/k, t%k
			i := len(b.item)
			if !kept || b.slot[i] != row {
				copy(xs[i*D:(i+1)*D], flat[row*D:(row+1)*D])
				b.slot[i] = row
			}
			b.pcg.Seed(seeds[row], uint64(s)) // as rand.NewPCG(seeds[row], s), without allocating
			if b.diag {
				b.sampleDiag(zs[i*L:(i+1)*L], i, row, q)
			} else {
				for h, hd := range b.heads {
					w := hd.Width
					copy(b.q[h][i*w:(i+1)*w], q[h][row*w:(row+1)*w])
				}
				for j := range L {
					b.ep[i*L+j] = b.rng.NormFloat64()
				}
			}
			b.item = append(b.item, row)
		}
		used := len(b.item)
		if direct {
			clear(xs[used*D:])
			for i := used; i < b.size; i++ {
				b.slot[i] = -1
			}
		} else {
			setRows(g.input(inX), b.x[:used*D])
		}
		if b.diag {
			clear(zs[used*L:])
		} else {
			for h, hd := range b.heads {
				setRows64(g.input(inHead+hd.Name), b.q[h][:used*hd.Width])
			}
			setRows64(g.input(inEps), b.ep[:used*L])
		}
		if err := g.run(); err != nil {
			return err
		}
		// A worker that never yields is preempted by the runtime every
		// 10 ms, by signals that mostly land in assembly (no safe point)
		// and are sent again: 4-5% of log p(x)'s CPU time in profiles.
		// Yielding between chunks (a few ms each) costs nothing.
		runtime.Gosched()
		if b.diag {
			// log w = (recon + log p) - log q, as the kindLogW graph's nodes.
			b.recon = g.read(outRecon, b.recon)
			b.lw = b.lw[:0]
			for i := range used {
				b.lw = append(b.lw, float64(float32(float32(b.recon[i])+b.logp[i])-b.logq[i]))
			}
		} else {
			b.lw = g.read(outLogW, b.lw)
		}
		for i, row := range b.item {
			acc[row].add(b.lw[i])
			s := (start + i) % k
			groups[row*R+s*R/k].add(b.lw[i])
		}
	}
	return nil
}

// sampleDiag draws sample i of row (its noise stream seeded) into z: z =
// mu + sigma eps, and log q(z|x) = log N(eps; 0, I) - sum(logvar)/2 and
// log p(z) = log N(z; 0, I) into b.logq[i] and b.logp[i], with the float32
// operations of the graph's nodes (diagGauss.sample, Builder.LogStdNormal)
// in their order; each explicit float32 conversion rounds, as the nodes
// do, where a fused multiply-add might not.
func (b *logWBuffers) sampleDiag(z []float32, i, row int, q [][]float64) {
	L := b.L
	if row != b.cur {
		mu, lv := q[b.iMean][row*L:(row+1)*L], q[b.iLogvr][row*L:(row+1)*L]
		var s float32
		for j := range L {
			l := float32(lv[j])
			b.mu[j] = float32(mu[j])
			b.sigma[j] = math32.Exp(float32(l * 0.5))
			s += l
		}
		b.halfLV = float32(s * 0.5)
		b.cur = row
	}
	var se, sz float32
	for j := range L {
		e := float32(b.rng.NormFloat64())
		v := b.mu[j] + float32(b.sigma[j]*e)
		z[j] = v
		se += float32(e * e)
		sz += float32(v * v)
	}
	c := float32(float64(L) * math.Log(2*math.Pi))
	b.logq[i] = float32(float32(se+c)*-0.5) - b.halfLV
	b.logp[i] = float32(float32(sz+c) * -0.5)
}

// lseAcc accumulates log-weights stably: with M the largest seen,
// s1 = sum exp(a - M) and s2 = sum exp(2(a - M)).
type lseAcc struct {
	m, s1, s2 float64
	n         int
}

func (a *lseAcc) add(v float64) {
	switch {
	case a.n == 0:
		a.m, a.s1, a.s2 = v, 1, 1
	case v > a.m:
		r := math.Exp(a.m - v)
		a.s1, a.s2, a.m = a.s1*r+1, a.s2*r*r+1, v
	default:
		e := math.Exp(v - a.m)
		a.s1 += e
		a.s2 += e * e
	}
	a.n++
}

// result is log((1/k) sum w) and its delta-method standard error.
func (a *lseAcc) result(k int) (ll, se float64) {
	ll = a.m + math.Log(a.s1/float64(k))
	if k < 2 {
		return ll, math.NaN()
	}
	kf := float64(k)
	mean := a.s1 / kf
	variance := math.Max(0, (a.s2-a.s1*a.s1/kf)/(kf-1))
	return ll, math.Sqrt(variance/kf) / mean
}

// workerCopies prepares parallel workers for units of work: one per core at
// most, each with its own weights (see buildGraphOn), set to the model's
// before any starts. With more than one worker the cores are held until
// release is called: the kernels inside the workers run serially (see
// internal/kernels/cores). release keeps the replicas, with the graphs the
// workers left in them, for the next call (m.spare, one per core at most):
// a fresh zeroed copy and graph per worker and the garbage collection they
// brought on were most of a log p(x) call's fixed cost (BENCHMARKS.md).
// Call release once the workers are done.
func (m *Model) workerCopies(units int) (copies []*replica, release func(), err error) {
	workers := max(1, min(runtime.GOMAXPROCS(0), units))
	copies = make([]*replica, workers)
	// Under the lock: another call may be compiling or running a graph on
	// m.params (gorgonia writes the tensors' engine field and may reshape
	// them in place).
	m.mu.Lock()
	defer m.mu.Unlock()
	for w := range copies {
		r := &replica{}
		if n := len(m.spare); n > 0 {
			r, m.spare = m.spare[n-1], m.spare[:n-1]
		}
		if err := r.refresh(m.params); err != nil {
			return nil, nil, err
		}
		copies[w] = r
	}
	hold := func() {}
	if workers > 1 {
		hold = cores.Hold()
	}
	release = func() {
		hold()
		m.mu.Lock()
		defer m.mu.Unlock()
		keep := max(0, min(len(copies), runtime.GOMAXPROCS(0)-len(m.spare)))
		m.spare = append(m.spare, copies[:keep]...)
		for _, r := range copies[keep:] {
			r.closeGraphs()
		}
	}
	return copies, release, nil
}

package amortized

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/govae/govae/internal/kernels/cores"
	"github.com/govae/govae/nets"
)

// Model is a trained or freshly initialized VAE. Its methods take and return
// plain slices; they are safe for concurrent use (calls are serialized).
// A call on more rows than one chunk (500) spreads the chunks over the
// cores, with the same results on any number of them.
type Model struct {
	cfg    Config
	params *nets.Params

	family  Family // q(z|x)
	prior   Prior  // p(z)
	lik     Likelihood
	encoder Net // x -> the family's heads
	decoder Net // z (or the prior's view of it) -> the likelihood's heads

	mu     sync.Mutex
	graphs map[graphKey]*graph
	// replicas are the weights and graphs of the second and later workers
	// of parChunks (graphs that run concurrently must not share tensors,
	// see buildGraphOn); their weights are refreshed at every call.
	replicas []*replica
	// spare are the weights and graphs of LogLikelihood's (and Local's)
	// workers, kept for the next call (workerCopies).
	spare []*replica
}

type replica struct {
	params *nets.Params
	graphs map[graphKey]*graph
}

// refresh sets r's weights to src's. A replica that is new, or no longer
// shaped like src (gorgonia may reshape a bound tensor in place), starts
// afresh, its graphs closed.
func (r *replica) refresh(src *nets.Params) error {
	if r.graphs == nil {
		r.graphs = map[graphKey]*graph{}
	}
	if r.params != nil && r.params.CopyFrom(src) == nil {
		return nil
	}
	r.closeGraphs()
	r.params = src.ZerosLike()
	if err := r.params.CopyFrom(src); err != nil {
		r.params = nil
		return err
	}
	return nil
}

// closeGraphs closes and forgets r's graphs.
func (r *replica) closeGraphs() {
	for k, g := range r.graphs {
		g.close()
		delete(r.graphs, k)
	}
}

type graphKey struct {
	kind  graphKind
	batch int
}

// evalChunk is the largest batch the evaluation graphs process at once:
// large enough for efficient matrix products, small enough to bound memory.
const evalChunk = 500

// New builds a model for cfg with weights drawn from a generator seeded by
// seed, except heads marked ZeroInit (fullcov's lower), which start at zero
// (so q starts as a diagonal Gaussian); their draws are still taken, so
// every other weight is what it would be without the reset.
func New(cfg Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	m.params.InitUniform(rand.New(rand.NewPCG(seed, streamInit)))
	zero := func(side string, heads []Head) {
		for _, head := range heads {
			for _, hd := range head.params() {
				if !hd.ZeroInit && !head.ZeroInit {
					continue
				}
				for _, p := range m.params.All() {
					if strings.HasPrefix(p.Name, side+"."+hd.Name+".") {
						p.Value.Zero()
					}
				}
			}
		}
	}
	zero("encoder", m.family.Heads(m.cfg))
	zero("decoder", m.lik.Heads(m.cfg))
	for _, part := range []any{m.family, m.lik, m.prior} {
		if in, ok := part.(Initializer); ok {
			in.Init(m.params, rand.New(rand.NewPCG(seed, streamPartInit)))
		}
	}
	m.initBayes()
	return m, nil
}

// newModel defines the network for cfg with zero weights.
func newModel(cfg Config) (*Model, error) {
	cfg, p, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	ps, err := nets.NewParams(cfg.tensorDtype())
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, params: ps, family: p.family, prior: p.prior, lik: p.lik, graphs: map[graphKey]*graph{}}
	nn, err := define(ps, cfg, p)
	if err != nil {
		return nil, err
	}
	m.encoder, m.decoder = nn[0], nn[1]
	return m, nil
}

// define registers every part's parameters in ps, in the order of the
// checkpoint's tensors: the encoder (trunk and the family's heads), the
// family's own, the decoder (trunk and the likelihood's heads), the
// likelihood's own, the prior's own. It returns the encoder and decoder.
func define(ps *nets.Params, c Config, p parts) ([2]Net, error) {
	var nn [2]Net
	fail := func(err error) ([2]Net, error) {
		return nn, fmt.Errorf("amortized: defining the network: %w", err)
	}
	var err error
	if nn[0], err = p.trunk.Encoder(ps, c, p.family.Heads(c)); err != nil {
		return fail(err)
	}
	if d, ok := p.family.(Definer); ok {
		if err := d.Define(ps, c); err != nil {
			return fail(err)
		}
	}
	in := c.Latent
	if v, ok := p.prior.(DecoderView); ok {
		in = v.DecoderWidth(c)
	}
	if nn[1], err = p.trunk.Decoder(ps, c, in, p.lik.Heads(c)); err != nil {
		return fail(err)
	}
	for _, part := range []any{p.lik, p.prior} {
		if d, ok := part.(Definer); ok {
			if err := d.Define(ps, c); err != nil {
				return fail(err)
			}
		}
	}
	if err := defineBayes(ps, c); err != nil {
		return fail(err)
	}
	return nn, nil
}

// noiseWidth is the standard-normal noise per sample q's Sample reads.
func (m *Model) noiseWidth() int {
	if nw, ok := m.family.(NoiseWidth); ok {
		return nw.NoiseWidth(m.cfg)
	}
	return m.cfg.Latent
}

// priorNoise is the noise per sample the prior's sampler reads.
func (m *Model) priorNoise() (normal, uniform int) {
	if pn, ok := m.prior.(PriorNoiseWidth); ok {
		return pn.SampleNoise(m.cfg)
	}
	return m.cfg.Latent, 0
}

// AnalyticKL reports whether the model's KL(q(z|x) || p(z)) has a closed
// form (registered for its family and prior); otherwise ELBO and training
// use the one-sample estimate log q(z|x) - log p(z).
func (m *Model) AnalyticKL() bool {
	_, ok := lookupKL(m.family, m.prior)
	return ok
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Params exposes the live parameter store (for checkpoints and
// optimizers); changing it is not synchronized with the model's methods.
func (m *Model) Params() *nets.Params { return m.params }

// LatentDim is the dimension of z.
func (m *Model) LatentDim() int { return m.cfg.Latent }

// DataDim is the width of x (784 for MNIST).
func (m *Model) DataDim() int { return m.cfg.DataDim }

// graphFor returns a cached graph; the caller holds m.mu.
func (m *Model) graphFor(kind graphKind, batch int) (*graph, error) {
	return m.cachedGraph(m.params, m.graphs, kind, batch)
}

// cachedGraph returns the graph of graphs for the kind and batch size,
// building it on ps when missing; the caller holds m.mu.
func (m *Model) cachedGraph(ps *nets.Params, graphs map[graphKey]*graph, kind graphKind, batch int) (*graph, error) {
	k := graphKey{kind, batch}
	if g, ok := graphs[k]; ok {
		return g, nil
	}
	// Odd batch sizes from many callers would otherwise grow the cache forever.
	if len(graphs) >= 8 {
		for k, g := range graphs {
			g.close()
			delete(graphs, k)
		}
	}
	g, err := m.buildGraphOn(ps, kind, batch, TrainOptions{})
	if err != nil {
		return nil, err
	}
	graphs[k] = g
	return g, nil
}

// chunks runs fn over [0, n) in pieces of at most evalChunk rows, each on a
// graph of the given kind sized min(n, evalChunk) (the last piece is padded).
func (m *Model) chunks(kind graphKind, n int, fn func(g *graph, start, rows int) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	size := min(n, evalChunk)
	g, err := m.graphFor(kind, size)
	if err != nil {
		return err
	}
	for start := 0; start < n; start += size {
		if err := fn(g, start, min(size, n-start)); err != nil {
			return err
		}
	}
	return nil
}

// parChunks is chunks with the pieces shared out among one worker per core
// (at most one per piece), as training's shards are: one graph runs its ops
// one at a time, so only parallel graphs put every core to work on the
// element-wise ops, not on the matrix products alone. Worker 0 runs on the
// model's weights and graphs, the others on replicas refreshed from them at
// every call. fn is called concurrently, each call on its own piece, and
// must touch only that piece's rows. Every piece runs on a graph of the same
// size with the same weights whichever worker takes it, and the kernels
// give the same numbers serially and in parallel (internal/kernels/cores),
// so the results do not depend on the number of workers.
func (m *Model) parChunks(kind graphKind, n int, fn func(g *graph, start, rows int) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	size := min(n, evalChunk)
	pieces := (n + size - 1) / size
	workers := max(1, min(runtime.GOMAXPROCS(0), pieces))
	graphs := make([]*graph, workers)
	for w := range graphs {
		var err error
		if graphs[w], err = m.workerGraph(w, kind, size); err != nil {
			return err
		}
	}
	if workers == 1 {
		for start := 0; start < n; start += size {
			if err := fn(graphs[0], start, min(size, n-start)); err != nil {
				return err
			}
		}
		return nil
	}
	release := cores.Hold()
	defer release()
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]error, workers)
	cores.Run(workers, func(w int) {
		for !failed.Load() {
			p := int(next.Add(1) - 1)
			if p >= pieces {
				return
			}
			start := p * size
			if err := fn(graphs[w], start, min(size, n-start)); err != nil {
				errs[w] = err
				failed.Store(true)
				return
			}
		}
	})
	return errors.Join(errs...)
}

// workerGraph is the graph of worker w of parChunks: the model's own for
// w = 0, else replica w's, whose weights it first sets to the model's. The
// caller holds m.mu.
func (m *Model) workerGraph(w int, kind graphKind, batch int) (*graph, error) {
	if w == 0 {
		return m.graphFor(kind, batch)
	}
	for len(m.replicas) < w {
		m.replicas = append(m.replicas, &replica{})
	}
	r := m.replicas[w-1]
	if err := r.refresh(m.params); err != nil {
		return nil, err
	}
	return m.cachedGraph(r.params, r.graphs, kind, batch)
}

// Encode returns a point summary of q(z|x) for each row of x: the mean for
// the Gaussian families (diag, fullcov), and for flows the flow applied to
// the base mean, f_K(...f_1(mu)) (see the package doc for why).
func (m *Model) Encode(x [][]float32) ([][]float32, error) {
	flat, err := m.checkData(x)
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(x))
	L, D := m.cfg.Latent, m.cfg.DataDim
	err = m.parChunks(kindEncode, len(x), func(g *graph, start, rows int) error {
		setRows(g.input(inX), flat[start*D:(start+rows)*D])
		if err := g.run(); err != nil {
			return err
		}
		g.readRows(outPoint, out[start:start+rows], L)
		return nil
	})
	return out, err
}

// Decode returns the mean of p(x|z) for each row of z: pixel probabilities
// for a Bernoulli model, pixel means for a Gaussian one.
func (m *Model) Decode(z [][]float32) ([][]float32, error) {
	flat, err := checkRows(z, m.cfg.Latent, "z", nil)
	if err != nil {
		return nil, err
	}
	return m.decodeFlat(flat, len(z))
}

func (m *Model) decodeFlat(z []float32, n int) ([][]float32, error) {
	return m.meansOf(kindDecode, n, func(g *graph, start, rows int) {
		L := m.cfg.Latent
		setRows(g.input(inZ), z[start*L:(start+rows)*L])
	})
}

// meansOf runs graphs of the kind over n rows in chunks (in parallel, see
// parChunks), after fill has set each chunk's inputs, and returns the mean
// of p(x|z) of every row.
func (m *Model) meansOf(kind graphKind, n int, fill func(g *graph, start, rows int)) ([][]float32, error) {
	out := make([][]float32, n)
	err := m.parChunks(kind, n, func(g *graph, start, rows int) error {
		fill(g, start, rows)
		if err := g.run(); err != nil {
			return err
		}
		g.readRows(outMean, out[start:start+rows], m.cfg.DataDim)
		return nil
	})
	return out, err
}

// MaxValues bounds what one call may allocate, in values: Sample's n
// images, Impute's rows times chains, LogLikelihood's rows times k are
// checked against it before anything is allocated.
const MaxValues = 1 << 31

// checkAlloc errs when rows of width values each exceed MaxValues.
func checkAlloc(method, arg string, rows, width int) error {
	if rows > 0 && width > 0 && rows > MaxValues/width {
		return fmt.Errorf("amortized: %s: %s asks for %d rows of %d values, more than the limit of %d values in one call", method, arg, rows, width, MaxValues)
	}
	return nil
}

// Sample draws n images from the model: z ~ p(z), returning the mean of
// p(x|z) for each (the usual way to show samples, free of pixel noise).
func (m *Model) Sample(n int, rng *rand.Rand) ([][]float32, error) {
	if n < 1 {
		return nil, fmt.Errorf("amortized: Sample: n = %d, want >= 1", n)
	}
	if rng == nil {
		return nil, errors.New("amortized: Sample: rng is nil")
	}
	normal, uniform := m.priorNoise()
	if err := checkAlloc("Sample", "n", n, max(normal+uniform, m.cfg.DataDim)); err != nil {
		return nil, err
	}
	// All the normal noise first, then the uniforms: for N(0, I) the draws
	// (rounded to float32) are what they were before priors were parts.
	eps := make([]float32, n*normal)
	for i := range eps {
		eps[i] = float32(rng.NormFloat64())
	}
	u := make([]float64, n*uniform)
	for i := range u {
		u[i] = rng.Float64()
	}
	return m.meansOf(kindSample, n, func(g *graph, start, rows int) {
		setRows(g.input(inEps), eps[start*normal:(start+rows)*normal])
		if uniform > 0 {
			setRows64(g.input(inU), u[start*uniform:(start+rows)*uniform])
		}
	})
}

// Reconstruct encodes each row, draws z ~ q(z|x) and returns the mean of p(x|z).
func (m *Model) Reconstruct(x [][]float32, rng *rand.Rand) ([][]float32, error) {
	out := make([][]float32, len(x))
	err := m.evalRowsKind(kindRecon, x, rng, func(g *graph, start, rows int) {
		g.readRows(outMean, out[start:start+rows], m.cfg.DataDim)
	})
	return out, err
}

// ELBO is the evidence lower bound of each row in nats:
// E_q[log p(x|z)] - KL(q(z|x) || p(z)), with the expectation estimated by one
// reparameterized draw and the KL in closed form (diag, fullcov) or, for
// flow posteriors, estimated at the same draw as log q(z|x) - log p(z).
func (m *Model) ELBO(x [][]float32, rng *rand.Rand) ([]float64, error) {
	out := make([]float64, len(x))
	err := m.evalRows(x, rng, func(g *graph, start, rows int) {
		rec, kl := g.read(outRecon, nil), g.read(outKL, nil)
		for r := 0; r < rows; r++ {
			out[start+r] = rec[r] - kl[r]
		}
	})
	return out, err
}

// evalRows validates x and runs the evaluation graph over it with noise from
// rng, calling collect after each chunk: concurrently (see parChunks), so
// collect must touch only the chunk's rows.
func (m *Model) evalRows(x [][]float32, rng *rand.Rand, collect func(g *graph, start, rows int)) error {
	return m.evalRowsKind(kindEval, x, rng, collect)
}

// evalRowsKind is evalRows on the graph kind (kindEval, or kindRecon for the mean alone).
func (m *Model) evalRowsKind(kind graphKind, x [][]float32, rng *rand.Rand, collect func(g *graph, start, rows int)) error {
	if rng == nil {
		return errors.New("amortized: rng is nil")
	}
	flat, err := m.checkData(x)
	if err != nil {
		return err
	}
	return m.evalFlatKind(kind, flat, len(x), rng, collect)
}

// evalFlat is evalRows on validated row-major data.
func (m *Model) evalFlat(flat []float32, n int, rng *rand.Rand, collect func(g *graph, start, rows int)) error {
	return m.evalFlatKind(kindEval, flat, n, rng, collect)
}

func (m *Model) evalFlatKind(kind graphKind, flat []float32, n int, rng *rand.Rand, collect func(g *graph, start, rows int)) error {
	L := m.noiseWidth()
	// All the noise first, row after row: the draws the chunks took in turn
	// when they ran one after another, whatever the chunks' order now.
	if err := checkAlloc("evaluation", "x", n, L); err != nil {
		return err
	}
	eps := make([]float64, n*L)
	for i := range eps {
		eps[i] = rng.NormFloat64()
	}
	return m.evalFlatEps(kind, flat, n, eps, collect)
}

// evalFlatEps is evalFlatKind with the noise given, n·noiseWidth values.
func (m *Model) evalFlatEps(kind graphKind, flat []float32, n int, eps []float64, collect func(g *graph, start, rows int)) error {
	D, L := m.cfg.DataDim, m.noiseWidth()
	return m.parChunks(kind, n, func(g *graph, start, rows int) error {
		setRows(g.input(inX), flat[start*D:(start+rows)*D])
		setRows64(g.input(inEps), eps[start*L:(start+rows)*L])
		if err := g.run(); err != nil {
			return err
		}
		collect(g, start, rows)
		return nil
	})
}

// checkData validates x as model input and flattens it.
func (m *Model) checkData(x [][]float32) ([]float32, error) {
	if r, ok := m.lik.(valueRange); ok {
		lo, hi := r.valueRange()
		return checkRowsIn(x, m.cfg.DataDim, "x", lo, hi, m.lik.CheckValue)
	}
	return checkRows(x, m.cfg.DataDim, "x", m.lik.CheckValue)
}

// valueRange is implemented by a Likelihood whose CheckValue accepts every
// value in [lo, hi] (finite bounds): rows of such values are accepted after
// two comparisons a value rather than a call.
type valueRange interface {
	valueRange() (lo, hi float32)
}

// checkRows flattens rows of the given width, rejecting ragged rows and
// non-finite values, and values check (if not nil) rejects.
func checkRows(x [][]float32, width int, name string, check func(float32) error) ([]float32, error) {
	if check == nil {
		return checkRowsIn(x, width, name, -math.MaxFloat32, math.MaxFloat32, nil)
	}
	return checkRowsIn(x, width, name, 1, 0, check) // an empty range: every value goes through check
}

// checkRowsIn is checkRows for a check that accepts every value in [lo, hi]:
// only rows with a value outside go through the tests value by value (which
// name the first bad one).
func checkRowsIn(x [][]float32, width int, name string, lo, hi float32, check func(float32) error) ([]float32, error) {
	if len(x) == 0 {
		return nil, fmt.Errorf("amortized: %s has no rows", name)
	}
	flat := make([]float32, 0, len(x)*width)
	for i, row := range x {
		if len(row) != width {
			return nil, fmt.Errorf("amortized: %s row %d has %d values, want %d", name, i, len(row), width)
		}
		if !allIn(row, lo, hi) {
			for j, v := range row {
				f := float64(v)
				if math.IsNaN(f) || math.IsInf(f, 0) {
					return nil, fmt.Errorf("amortized: %s[%d][%d] = %v, want a finite value", name, i, j, v)
				}
				if check != nil {
					if err := check(v); err != nil {
						return nil, fmt.Errorf("amortized: %s[%d][%d] = %v, %w", name, i, j, v, err)
					}
				}
			}
		}
		flat = append(flat, row...)
	}
	return flat, nil
}

// allIn reports whether every value is in [lo, hi] (false at a NaN).
func allIn(v []float32, lo, hi float32) bool {
	for _, f := range v {
		if !(f >= lo && f <= hi) {
			return false
		}
	}
	return true
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float32(f)
	}
	return out
}

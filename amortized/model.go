package amortized

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/govae/govae/flows"
	"github.com/govae/govae/nets"
)

// Model is a trained or freshly initialized VAE. Its methods take and return
// plain slices; they are safe for concurrent use (calls are serialized).
type Model struct {
	cfg    Config
	params *nets.Params

	post     posteriorSpec // cfg.Posterior parsed
	encTrunk nets.MLP
	heads    []nets.Linear // q(z|x)'s parameters from the trunk, in post.heads order
	iaf      []flows.IAF   // the IAF steps (family iaf)
	decTrunk nets.MLP
	decOut   nets.Linear // logits (Bernoulli) or pre-sigmoid mean (Gaussian)
	decVar   nets.Linear // Gaussian only: pre-softplus variance

	mu     sync.Mutex
	graphs map[graphKey]*graph
}

type graphKey struct {
	kind  graphKind
	batch int
}

// evalChunk is the largest batch the evaluation graphs process at once:
// large enough for efficient matrix products, small enough to bound memory.
const evalChunk = 500

// New builds a model for cfg with weights drawn from a generator seeded by
// seed, except fullcov's head lower, which starts at zero (so q starts as a
// diagonal Gaussian); its draws are still taken, so every other weight is
// what it would be without the reset.
func New(cfg Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	m.params.InitUniform(rand.New(rand.NewPCG(seed, streamInit)))
	for i, hd := range m.post.heads(m.cfg.Latent) {
		if hd.zeroInit {
			for _, name := range []string{m.heads[i].WeightName(), m.heads[i].BiasName()} {
				m.params.Get(name).Value.Zero()
			}
		}
	}
	return m, nil
}

// newModel defines the network for cfg with zero weights.
func newModel(cfg Config) (*Model, error) {
	cfg, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	ps, err := nets.NewParams(cfg.tensorDtype())
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, params: ps, graphs: map[graphKey]*graph{}}
	act := nets.Activation(cfg.Activation)
	D, L := cfg.DataDim, cfg.Latent
	errs := []error{}
	add := func(l nets.Linear, err error) nets.Linear { errs = append(errs, err); return l }
	m.encTrunk, err = nets.NewMLP(ps, "encoder", D, cfg.Hidden, act)
	errs = append(errs, err)
	h := m.encTrunk.Out(D)
	m.post = cfg.posterior()
	for _, hd := range m.post.heads(L) {
		m.heads = append(m.heads, add(nets.NewLinear(ps, "encoder."+hd.name, h, hd.width)))
	}
	if m.post.family == IAF {
		m.iaf, err = newIAFSteps(ps, m.post, L, act)
		errs = append(errs, err)
	}
	m.decTrunk, err = nets.NewMLP(ps, "decoder", L, cfg.DecoderHidden, act)
	errs = append(errs, err)
	h = m.decTrunk.Out(L)
	if cfg.Likelihood == Bernoulli {
		m.decOut = add(nets.NewLinear(ps, "decoder.logits", h, D))
	} else {
		m.decOut = add(nets.NewLinear(ps, "decoder.mean", h, D))
		m.decVar = add(nets.NewLinear(ps, "decoder.var", h, D))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("amortized: defining the network: %w", err)
	}
	return m, nil
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Params exposes the parameter store (for checkpoints and optimizers).
func (m *Model) Params() *nets.Params { return m.params }

// LatentDim is the dimension of z.
func (m *Model) LatentDim() int { return m.cfg.Latent }

// DataDim is the width of x (784 for MNIST).
func (m *Model) DataDim() int { return m.cfg.DataDim }

// graphFor returns a cached graph; the caller holds m.mu.
func (m *Model) graphFor(kind graphKind, batch int) (*graph, error) {
	k := graphKey{kind, batch}
	if g, ok := m.graphs[k]; ok {
		return g, nil
	}
	// Odd batch sizes from many callers would otherwise grow the cache forever.
	if len(m.graphs) >= 8 {
		for k, g := range m.graphs {
			g.close()
			delete(m.graphs, k)
		}
	}
	g, err := m.buildGraph(kind, batch, TrainOptions{})
	if err != nil {
		return nil, err
	}
	m.graphs[k] = g
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
	var buf []float64
	err = m.chunks(kindEncode, len(x), func(g *graph, start, rows int) error {
		setRows(g.x, flat[start*D:(start+rows)*D])
		if err := g.run(); err != nil {
			return err
		}
		buf = g.read(g.point, buf)
		for r := 0; r < rows; r++ {
			out[start+r] = toFloat32(buf[r*L : (r+1)*L])
		}
		return nil
	})
	return out, err
}

// Decode returns the mean of p(x|z) for each row of z: pixel probabilities
// for a Bernoulli model, pixel means for a Gaussian one.
func (m *Model) Decode(z [][]float32) ([][]float32, error) {
	flat, err := checkRows(z, m.cfg.Latent, "z", false)
	if err != nil {
		return nil, err
	}
	return m.decodeFlat(flat, len(z))
}

func (m *Model) decodeFlat(z []float32, n int) ([][]float32, error) {
	out := make([][]float32, n)
	L, D := m.cfg.Latent, m.cfg.DataDim
	var buf []float64
	err := m.chunks(kindDecode, n, func(g *graph, start, rows int) error {
		setRows(g.z, z[start*L:(start+rows)*L])
		if err := g.run(); err != nil {
			return err
		}
		buf = g.read(g.mean, buf)
		for r := 0; r < rows; r++ {
			out[start+r] = toFloat32(buf[r*D : (r+1)*D])
		}
		return nil
	})
	return out, err
}

// Sample draws n images from the model: z ~ N(0, I), returning the mean of
// p(x|z) for each (the usual way to show samples, free of pixel noise).
func (m *Model) Sample(n int, rng *rand.Rand) ([][]float32, error) {
	if n < 1 {
		return nil, fmt.Errorf("amortized: Sample: n = %d, want >= 1", n)
	}
	if rng == nil {
		return nil, errors.New("amortized: Sample: rng is nil")
	}
	z := make([]float32, n*m.cfg.Latent)
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	return m.decodeFlat(z, n)
}

// Reconstruct encodes each row, draws z ~ q(z|x) and returns the mean of p(x|z).
func (m *Model) Reconstruct(x [][]float32, rng *rand.Rand) ([][]float32, error) {
	out := make([][]float32, len(x))
	D := m.cfg.DataDim
	var buf []float64
	err := m.evalRows(x, rng, func(g *graph, start, rows int) {
		buf = g.read(g.mean, buf)
		for r := 0; r < rows; r++ {
			out[start+r] = toFloat32(buf[r*D : (r+1)*D])
		}
	})
	return out, err
}

// ELBO is the evidence lower bound of each row in nats:
// E_q[log p(x|z)] - KL(q(z|x) || p(z)), with the expectation estimated by one
// reparameterized draw and the KL in closed form (diag, fullcov) or, for
// flow posteriors, estimated at the same draw as log q(z|x) - log p(z).
func (m *Model) ELBO(x [][]float32, rng *rand.Rand) ([]float64, error) {
	out := make([]float64, len(x))
	var rec, kl []float64
	err := m.evalRows(x, rng, func(g *graph, start, rows int) {
		rec, kl = g.read(g.recon, rec), g.read(g.kl, kl)
		for r := 0; r < rows; r++ {
			out[start+r] = rec[r] - kl[r]
		}
	})
	return out, err
}

// evalRows validates x and runs the evaluation graph over it with noise from
// rng, calling collect after each chunk.
func (m *Model) evalRows(x [][]float32, rng *rand.Rand, collect func(g *graph, start, rows int)) error {
	if rng == nil {
		return errors.New("amortized: rng is nil")
	}
	flat, err := m.checkData(x)
	if err != nil {
		return err
	}
	return m.evalFlat(flat, len(x), rng, collect)
}

// evalFlat is evalRows on validated row-major data.
func (m *Model) evalFlat(flat []float32, n int, rng *rand.Rand, collect func(g *graph, start, rows int)) error {
	D, L := m.cfg.DataDim, m.cfg.Latent
	eps := make([]float64, min(n, evalChunk)*L)
	return m.chunks(kindEval, n, func(g *graph, start, rows int) error {
		setRows(g.x, flat[start*D:(start+rows)*D])
		e := eps[:rows*L]
		for i := range e {
			e[i] = rng.NormFloat64()
		}
		setRows64(g.eps, e)
		if err := g.run(); err != nil {
			return err
		}
		collect(g, start, rows)
		return nil
	})
}

// checkData validates x as model input and flattens it.
func (m *Model) checkData(x [][]float32) ([]float32, error) {
	return checkRows(x, m.cfg.DataDim, "x", m.cfg.Likelihood == Bernoulli)
}

// checkRows flattens rows of the given width, rejecting ragged rows and
// non-finite values, and values outside [0,1] when unit is set.
func checkRows(x [][]float32, width int, name string, unit bool) ([]float32, error) {
	if len(x) == 0 {
		return nil, fmt.Errorf("amortized: %s has no rows", name)
	}
	flat := make([]float32, 0, len(x)*width)
	for i, row := range x {
		if len(row) != width {
			return nil, fmt.Errorf("amortized: %s row %d has %d values, want %d", name, i, len(row), width)
		}
		for j, v := range row {
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("amortized: %s[%d][%d] = %v, want a finite value", name, i, j, v)
			}
			if unit && (v < 0 || v > 1) {
				return nil, fmt.Errorf("amortized: %s[%d][%d] = %v, want a value in [0,1] for a Bernoulli model", name, i, j, v)
			}
		}
		flat = append(flat, row...)
	}
	return flat, nil
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		out[i] = float32(f)
	}
	return out
}

package amortized

import (
	"math"
	"math/rand/v2"
	"testing"
)

// memBatches is an in-memory Batches with a seeded permutation per epoch.
type memBatches struct {
	x           []float32
	n, dim, bsz int
	seed        uint64
}

func (b *memBatches) Len() int        { return b.n }
func (b *memBatches) Dim() int        { return b.dim }
func (b *memBatches) BatchSize() int  { return b.bsz }
func (b *memBatches) NumBatches() int { return (b.n + b.bsz - 1) / b.bsz }
func (b *memBatches) Batch(epoch, i int, dst []float32) (int, error) {
	perm := rand.New(rand.NewPCG(b.seed, uint64(epoch))).Perm(b.n)
	rows := 0
	for k := i * b.bsz; k < min((i+1)*b.bsz, b.n); k++ {
		copy(dst[rows*b.dim:], b.x[perm[k]*b.dim:(perm[k]+1)*b.dim])
		rows++
	}
	return rows, nil
}

// synthetic makes binary "images": two prototypes with flipped pixels.
func synthetic(n, dim int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n*dim)
	for i := 0; i < n; i++ {
		proto := i % 2
		for j := 0; j < dim; j++ {
			on := (j < dim/2) == (proto == 0)
			if rng.Float64() < 0.1 {
				on = !on
			}
			if on {
				x[i*dim+j] = 1
			}
		}
	}
	return x
}

func rowsOf(flat []float32, dim int) [][]float32 {
	out := make([][]float32, len(flat)/dim)
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim]
	}
	return out
}

func smallConfig(dtype, lik string) Config {
	return Config{DataDim: 12, Hidden: []int{9, 7}, Latent: 3, Activation: "tanh", Likelihood: lik, Dtype: dtype}
}

func newSmall(t *testing.T, dtype, lik string, seed uint64) *Model {
	t.Helper()
	m, err := New(smallConfig(dtype, lik), seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ref is a plain-Go evaluation of the model, independent of the graphs.
type ref struct{ m *Model }

func (r ref) linear(name string, x []float64) []float64 {
	w, b := r.m.params.Get(name+".weight"), r.m.params.Get(name+".bias")
	in, out := w.Shape[0], w.Shape[1]
	y := make([]float64, out)
	for j := 0; j < out; j++ {
		s := at(b, j)
		for i := 0; i < in; i++ {
			s += x[i] * at(w, i*out+j)
		}
		y[j] = s
	}
	return y
}

func at(p interface{ Float64s() []float64 }, i int) float64 { return p.Float64s()[i] }

func (r ref) trunk(prefix string, n int, x []float64) []float64 {
	for i := 0; i < n; i++ {
		x = r.linear(prefix+"."+string(rune('0'+i)), x)
		for k := range x {
			x[k] = math.Tanh(x[k])
		}
	}
	return x
}

// elbo returns log p(x|z), KL and z for one row and noise eps.
func (r ref) elbo(x, eps []float64) (rec, kl float64) {
	cfg := r.m.cfg
	h := r.trunk("encoder", len(cfg.Hidden), x)
	mu, lv := r.linear("encoder.mean", h), r.linear("encoder.logvar", h)
	z := make([]float64, cfg.Latent)
	for j := range z {
		z[j] = mu[j] + math.Exp(lv[j]/2)*eps[j]
		kl += 0.5 * (mu[j]*mu[j] + math.Exp(lv[j]) - 1 - lv[j])
	}
	hd := r.trunk("decoder", len(cfg.DecoderHidden), z)
	if cfg.Likelihood == Bernoulli {
		l := r.linear("decoder.logits", hd)
		for d := range x {
			// log sigmoid(l) = -log(1+e^-l), written directly
			rec += x[d]*math.Log(1/(1+math.Exp(-l[d]))) + (1-x[d])*math.Log(1/(1+math.Exp(l[d])))
		}
		return rec, kl
	}
	mean, raw := r.linear("decoder.mean", hd), r.linear("decoder.var", hd)
	for d := range x {
		m := 1 / (1 + math.Exp(-mean[d]))
		v := math.Log1p(math.Exp(raw[d])) + cfg.GaussianMinVar
		rec += -0.5 * (math.Log(2*math.Pi*v) + (x[d]-m)*(x[d]-m)/v)
	}
	return rec, kl
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

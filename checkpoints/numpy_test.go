package checkpoints

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/testutil"
)

// TestNumPyEvaluatesCheckpointAsDocumented runs the NumPy code printed in
// docs/checkpoint-format.md on checkpoints written here, of every posterior
// family, and compares its point summaries (Encode), decoded images and
// ELBOs with the Go model's. It is the
// proof that the page alone suffices to use a checkpoint.
func TestNumPyEvaluatesCheckpointAsDocumented(t *testing.T) {
	python := testutil.PythonWith("numpy")
	if python == "" {
		t.Skip("no python3 with numpy ($GOVAE_PYTHON, python3, /usr/bin/python3; apt-get install python3-numpy); skipping the NumPy check of the format page")
	}
	// The page's reader: the python block that defines load (the conv
	// trunk's block is checked by TestNumPyConvAsDocumented).
	driver := pythonBlock(t, "load(") + `
import sys
req = json.load(sys.stdin)
cfg, w = load(req["path"])
x, eps, z = (np.array(req[k], dtype=np.float64) for k in ("x", "eps", "z"))
drawn = draw_decoder(cfg, w, np.random.default_rng(0))
assert set(drawn) == set(w) and all(drawn[n].shape == w[n].shape for n in w)
json.dump({"mu": point(cfg, w, x).tolist(), "decoded": decode(cfg, w, z).tolist(), "elbo": elbo(cfg, w, x, eps).tolist(),
           "global_kl": float(global_kl(cfg, w)),
           "logw": log_weight(cfg, w, x, eps).tolist(),
           "logpx": log_px(cfg, w, x, 3, np.random.default_rng(0)).tolist()}, sys.stdout)
`
	for _, tc := range []amortized.Config{
		{DataDim: 6, Hidden: []int{5, 4}, Latent: 3, Activation: "tanh"},
		{DataDim: 6, Hidden: []int{5}, DecoderHidden: []int{}, Latent: 2, Activation: "softplus", Likelihood: "gaussian", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{}, Latent: 2},
		// Every posterior family: the page's formulas for q's parameters,
		// z, log q and the KL, and the point summary.
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Posterior: "fullcov", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 1, Posterior: "fullcov"},
		{DataDim: 6, Hidden: []int{5, 4}, Latent: 3, Activation: "softplus", Posterior: "planar:3", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 2, Activation: "tanh", Posterior: "radial:2", Likelihood: "gaussian", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Posterior: "iaf:3:4", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{}, Latent: 2, Posterior: "iaf:2"},
		// A Bayesian decoder: the mean weights under the usual names, the
		// scales in decoder.*.rho, and the KL of the globals.
		{DataDim: 6, Hidden: []int{5}, Latent: 2, Activation: "tanh", DecoderPriorSigma: 0.5, Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 3, DecoderPriorSigma: 2},
		// Two stochastic layers: q(z2|z1) and p(z1|z2) with their widths
		// (the prior's not the mirror, or none), the decoder reading z1.
		amortized.TwoLayerConfig(amortized.Config{DataDim: 6, Hidden: []int{5}, Activation: "tanh", Dtype: "float64"}, 2, 1, []int{4, 3}),
		withPrior(amortized.TwoLayerConfig(amortized.Config{DataDim: 6, Hidden: []int{4}, Likelihood: "gaussian", Dtype: "float64"}, 1, 2, []int{3}), "twolayer:2,2"),
		amortized.TwoLayerConfig(amortized.Config{DataDim: 6, Hidden: []int{}}, 1, 1, nil),
		// ... and with a VampPrior p(z2).
		withPrior(amortized.TwoLayerConfig(amortized.Config{DataDim: 6, Hidden: []int{5}, Activation: "tanh", Dtype: "float64"}, 2, 1, []int{3}), "twolayer:3:vamp:4"),
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Posterior: "householder:3", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Posterior: "sylvester:2:2", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Posterior: "sylvester-householder:2:2", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Posterior: "sylvester-triangular:2"},
		{DataDim: 6, Hidden: []int{5}, Latent: 2, Activation: "tanh", Posterior: "mixture:3", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Posterior: "aux:2:4", Dtype: "float64"},
		// The learned priors: log p(z) in the Monte Carlo KL.
		{DataDim: 6, Hidden: []int{5}, Latent: 3, Activation: "tanh", Prior: "mog:3", Dtype: "float64"},
		{DataDim: 6, Hidden: []int{5}, Latent: 2, Prior: "vamp:4"},
		{DataDim: 6, Hidden: []int{5}, Latent: 2, Posterior: "planar:2", Prior: "mog:2"},
	} {
		m, err := amortized.New(tc, 9)
		if err != nil {
			t.Fatal(err)
		}
		// fullcov's lower head starts at zero (a diagonal q): give it
		// weights, so that the page's off-diagonal formulas are checked.
		for i, name := range []string{"encoder.lower.weight", "encoder.lower.bias"} {
			if p := m.Params().Get(name); p != nil {
				for j := range p.Float32s() {
					p.Float32s()[j] = 0.3 * float32(math.Sin(float64(7*j+i+1)))
				}
				for j := range p.Float64s() {
					p.Float64s()[j] = 0.3 * math.Sin(float64(7*j+i+1))
				}
			}
		}
		for _, p := range m.Params().All() { // scales of several sizes
			if strings.HasSuffix(p.Name, ".rho") {
				for j := range p.Float32s() {
					p.Float32s()[j] = float32(-3 + math.Sin(float64(j)))
				}
				for j := range p.Float64s() {
					p.Float64s()[j] = -3 + math.Sin(float64(j))
				}
			}
		}
		// The priors start at equal weights, unit scales and pseudo-inputs
		// inside [0, 1]: move them, so that the softmax and the clamp count.
		for name, f := range map[string]func(j int) float64{
			"prior.logits":    func(j int) float64 { return math.Sin(float64(3*j + 1)) },
			"prior.logscales": func(j int) float64 { return 0.4 * math.Sin(float64(5*j+2)) },
			"prior.pseudo":    func(j int) float64 { return 0.5 + 0.9*math.Sin(float64(7*j+3)) },
		} {
			if p := m.Params().Get(name); p != nil {
				for j := range p.Float32s() {
					p.Float32s()[j] = float32(f(j))
				}
				for j := range p.Float64s() {
					p.Float64s()[j] = f(j)
				}
			}
		}
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := Save(path, m, nil); err != nil {
			t.Fatal(err)
		}
		x := [][]float32{{0, 1, 1, 0, 0.5, 1}, {1, 1, 0, 0, 0, 0.25}}
		z := [][]float32{[]float32{0.5, -1, 2}[:tc.Latent], []float32{0, 0.3, -0.7}[:tc.Latent]}
		// Model.ELBO draws eps row by row from its rng; draw the same numbers.
		rng := rand.New(rand.NewPCG(4, 4))
		eps := make([][]float64, len(x))
		for i := range eps {
			eps[i] = make([]float64, noiseWidth(tc))
			for j := range eps[i] {
				eps[i][j] = rng.NormFloat64()
			}
		}
		req, _ := json.Marshal(map[string]any{"path": path, "x": x, "eps": eps, "z": z})
		cmd := exec.Command(python, "-c", driver)
		cmd.Stdin = bytes.NewReader(req)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s", err, out)
		}
		var py struct {
			Mu, Decoded [][]float64
			Elbo        []float64
			GlobalKL    float64 `json:"global_kl"`
			LogW, LogPx []float64
		}
		if err := json.Unmarshal(out, &py); err != nil {
			t.Fatalf("python output %q: %v", out, err)
		}
		mu, _ := m.Encode(x)
		dec, _ := m.Decode(z)
		el, _ := m.ELBO(x, rand.New(rand.NewPCG(4, 4)))
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-4*(1+math.Abs(b)) }
		if !near(m.GlobalKL(), py.GlobalKL) {
			t.Errorf("%+v: global KL Go %v, NumPy %v", tc, m.GlobalKL(), py.GlobalKL)
		}
		for i := range x {
			for j := range mu[i] {
				if !near(float64(mu[i][j]), py.Mu[i][j]) {
					t.Errorf("%+v: mean[%d][%d] Go %v, NumPy %v", tc, i, j, mu[i][j], py.Mu[i][j])
				}
			}
			for j := range dec[i] {
				if !near(float64(dec[i][j]), py.Decoded[i][j]) {
					t.Errorf("%+v: decoded[%d][%d] Go %v, NumPy %v", tc, i, j, dec[i][j], py.Decoded[i][j])
				}
			}
			// Without a closed-form KL the ELBO is the log weight at eps
			// (log_px log-mean-exps such weights: it must at least run);
			// not for a mixture, whose ELBO is sum_c pi_c log w_c and whose
			// weight is log sum_c pi_c w_c.
			if !m.AnalyticKL() && !strings.HasPrefix(tc.Posterior, "mixture") && !near(el[i], py.LogW[i]) {
				t.Errorf("%+v: log weight[%d] Go %v, NumPy %v", tc, i, el[i], py.LogW[i])
			}
			if math.IsNaN(py.LogPx[i]) || math.IsInf(py.LogPx[i], 0) {
				t.Errorf("%+v: NumPy log_px[%d] = %v", tc, i, py.LogPx[i])
			}
			if !near(el[i], py.Elbo[i]) {
				t.Errorf("%+v: ELBO[%d] Go %v, NumPy %v", tc, i, el[i], py.Elbo[i])
			}
		}
	}
}

func withPrior(c amortized.Config, prior string) amortized.Config {
	c.Prior = prior
	return c
}

// noiseWidth is the standard-normal noise per row that Model.ELBO draws
// for c (docs/checkpoint-format.md: C*L + 2 for mixture:C, L + A for aux:A:H).
func noiseWidth(c amortized.Config) int {
	var n, h int
	switch {
	case strings.HasPrefix(c.Posterior, "mixture:"):
		fmt.Sscanf(c.Posterior, "mixture:%d", &n)
		return n*c.Latent + 2
	case strings.HasPrefix(c.Posterior, "aux:"):
		fmt.Sscanf(c.Posterior, "aux:%d:%d", &n, &h)
		return c.Latent + n
	}
	return c.Latent
}

package checkpoints

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/testutil"
)

// pythonBlock returns the python block of docs/checkpoint-format.md that
// defines the function def (e.g. "load(").
func pythonBlock(t *testing.T, def string) string {
	t.Helper()
	page, err := os.ReadFile("../docs/checkpoint-format.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(page), "```python\n")[1:] {
		if b, _, ok := strings.Cut(block, "```"); ok && strings.Contains(b, "\ndef "+def) {
			return b
		}
	}
	t.Fatalf("docs/checkpoint-format.md has no python block defining %s", def)
	return ""
}

// TestNumPyConvAsDocumented runs the page's NumPy code for convolutional
// trunks and pixel likelihoods (with its reader, load) on small conv
// checkpoints written here and compares with the Go model: the encoder's
// means (conv_encoder_heads), the decoded means (sigmoid of the logits,
// or pixel_mean), and the ELBO at the same noise, whose reconstruction
// term is pixel_loglik (or the Bernoulli log-likelihood of the logits).
func TestNumPyConvAsDocumented(t *testing.T) {
	python := testutil.PythonWith("numpy")
	if python == "" {
		t.Skip("no python3 with numpy ($GOVAE_PYTHON, python3, /usr/bin/python3; apt-get install python3-numpy); skipping the NumPy check of the conv section")
	}
	driver := pythonBlock(t, "load(") + pythonBlock(t, "conv_encoder_heads(") + `
import sys
req = json.load(sys.stdin)
cfg, w = load(req["path"])
w = {n: a.astype(np.float64) for n, a in w.items()}
x, eps, z = (np.array(req[k], dtype=np.float64) for k in ("x", "eps", "z"))
lik, D = cfg.get("likelihood") or "bernoulli", x.shape[1]
def mean_of(params):
    if lik == "bernoulli":
        return sigmoid(params["logits"])
    return pixel_mean(lik, params["params"], D)
def loglik(x, params):
    if lik == "bernoulli":
        l = params["logits"]
        return (x * l - np.logaddexp(0, l)).sum(1)
    return pixel_loglik(lik, x, params["params"])
q = conv_encoder_heads(cfg, w, x)
mu, lv = q["mean"], q["logvar"]
zq = mu + np.exp(lv / 2) * eps
kl = 0.5 * (mu ** 2 + np.exp(lv) - 1 - lv).sum(1)
elbo = loglik(x, conv_decoder_heads(cfg, w, zq)) - kl
json.dump({"mu": mu.tolist(), "decoded": mean_of(conv_decoder_heads(cfg, w, z)).tolist(), "elbo": elbo.tolist()}, sys.stdout)
`
	for _, tc := range []struct {
		trunk, lik string
		C          int
	}{
		{"conv:3,4/k4/s2/p1/relu/dense:5", "", 1}, // the peer's kind, Bernoulli
		{"conv:3,4/k4/s2/p1/relu/dense:5;deconv:4,2/k4/s2/p1/relu", "logistic", 1},
		{"conv:2,4/k3/s2/p1/elu/gated/res1/dense:5", "logistic-mix:2", 3}, // output padding, gates, blocks, RGB
		{"conv:3/k4/s2/p1/tanh", "categorical", 1},
	} {
		D := tc.C * 8 * 8
		cfg := amortized.Config{DataDim: D, ImageRows: 8, ImageCols: 8, ImageChannels: tc.C, Latent: 2,
			Trunk: tc.trunk, Likelihood: tc.lik, Dtype: "float64"}
		m, err := amortized.New(cfg, 9)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.trunk, tc.lik, err)
		}
		path := filepath.Join(t.TempDir(), "m.safetensors")
		if err := Save(path, m, nil); err != nil {
			t.Fatal(err)
		}
		// 8-bit levels (binary for Bernoulli), the same for both sides.
		rng := rand.New(rand.NewPCG(2, 3))
		x := make([][]float32, 2)
		for i := range x {
			x[i] = make([]float32, D)
			for j := range x[i] {
				if tc.lik == "" {
					x[i][j] = float32(rng.IntN(2))
				} else {
					x[i][j] = float32(rng.IntN(256)) / 255
				}
			}
		}
		z := [][]float32{{0.5, -1}, {0, 0.3}}
		// Model.ELBO draws eps row by row from its rng; draw the same numbers.
		noise := rand.New(rand.NewPCG(4, 4))
		eps := make([][]float64, len(x))
		for i := range eps {
			eps[i] = []float64{noise.NormFloat64(), noise.NormFloat64()}
		}
		req, _ := json.Marshal(map[string]any{"path": path, "x": x, "eps": eps, "z": z})
		cmd := exec.Command(python, "-c", driver)
		cmd.Stdin = bytes.NewReader(req)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: python: %v\n%s", tc.trunk, tc.lik, err, out)
		}
		var py struct {
			Mu, Decoded [][]float64
			Elbo        []float64
		}
		if err := json.Unmarshal(out, &py); err != nil {
			t.Fatalf("python output %q: %v", out, err)
		}
		mu, err := m.Encode(x)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := m.Decode(z)
		if err != nil {
			t.Fatal(err)
		}
		el, err := m.ELBO(x, rand.New(rand.NewPCG(4, 4)))
		if err != nil {
			t.Fatal(err)
		}
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*(1+math.Abs(b)) }
		for i := range x {
			for j := range mu[i] {
				if !near(float64(mu[i][j]), py.Mu[i][j]) {
					t.Errorf("%s %s: mean[%d][%d] Go %v, NumPy %v", tc.trunk, tc.lik, i, j, mu[i][j], py.Mu[i][j])
				}
			}
			bad := 0
			for j := range dec[i] {
				if !near(float64(dec[i][j]), py.Decoded[i][j]) && bad < 3 {
					t.Errorf("%s %s: decoded[%d][%d] Go %v, NumPy %v", tc.trunk, tc.lik, i, j, dec[i][j], py.Decoded[i][j])
					bad++
				}
			}
			if !near(el[i], py.Elbo[i]) {
				t.Errorf("%s %s: ELBO[%d] Go %v, NumPy %v", tc.trunk, tc.lik, i, el[i], py.Elbo[i])
			}
		}
	}
}

package amortized

import (
	"encoding/json"
	"fmt"
	"github.com/govae/govae/internal/testutil"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// torchPeerInit builds the PyTorch peer's layers (../shared/bench/
// peer_convvae_torch.py, z = 32) with PyTorch's default initialization and
// prints, per parameter, the bound PyTorch's reset_parameters uses (from
// init._calculate_fan_in_and_fan_out of the layer's weight: kaiming_uniform
// with a = sqrt(5) gives the weight U(±1/sqrt(fan_in)), and the bias gets
// U(±1/sqrt(fan_in)) too) and the drawn values' mean, mean square and
// largest magnitude.
const torchPeerInit = `
import json, math, torch
import torch.nn as nn
torch.manual_seed(1)
layers = {
    "encoder.conv0": nn.Conv2d(1, 32, 4, 2, 1), "encoder.conv1": nn.Conv2d(32, 64, 4, 2, 1),
    "encoder.dense.0": nn.Linear(3136, 256), "encoder.mean": nn.Linear(256, 32), "encoder.logvar": nn.Linear(256, 32),
    "decoder.dense.0": nn.Linear(32, 256), "decoder.dense.1": nn.Linear(256, 3136),
    "decoder.deconv0": nn.ConvTranspose2d(64, 32, 4, 2, 1), "decoder.logits": nn.ConvTranspose2d(32, 1, 4, 2, 1),
}
out = {}
for name, l in layers.items():
    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(l.weight)
    for kind, p in (("weight", l.weight), ("bias", l.bias)):
        v = p.detach().double().flatten()
        out[name + "." + kind] = {"bound": 1 / math.sqrt(fan_in), "n": v.numel(), "mean": v.mean().item(),
                                  "meansq": (v * v).mean().item(), "max": v.abs().max().item()}
print(json.dumps(out))
`

// runTorch runs script with $GOVAE_PYTHON (else Debian's /usr/bin/python3)
// on a file holding input as JSON (its path the first argument; none when
// input is nil) and returns what it prints; it skips the test without torch.
func runTorch(t *testing.T, script string, input any) []byte {
	t.Helper()
	py := testutil.PythonWith("torch")
	if py == "" {
		t.Skip("needs a python3 with torch ($GOVAE_PYTHON, python3, /usr/bin/python3; apt-get install python3-torch)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "script.py")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{path}
	if input != nil {
		raw, err := json.Marshal(input)
		if err != nil {
			t.Fatal(err)
		}
		in := filepath.Join(dir, "input.json")
		if err := os.WriteFile(in, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, in)
	}
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python: %v\n%s", err, stderr)
	}
	return out
}

// TestConvPeerInitMatchesTorch checks -arch convpeer's initialization
// against PyTorch's for the peer's layers: the same uniform bound for
// every weight and bias (in particular a transposed convolution's fan-in,
// which PyTorch takes from its weight's second dimension, the output
// channels), and on both sides draws inside the bound whose mean and mean
// square agree with U(±bound) (0 and bound²/3) within 5 standard errors.
// It skips without Debian's python3-torch.
func TestConvPeerInitMatchesTorch(t *testing.T) {
	raw := runTorch(t, torchPeerInit, nil)
	type stats struct {
		Bound, Mean, MeanSq, Max float64
		N                        int
	}
	var torch map[string]stats
	if err := json.Unmarshal(raw, &torch); err != nil {
		t.Fatal(err)
	}
	m, err := New(mnistConv(ConvPeerTrunk), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Params().All()) != len(torch) {
		t.Fatalf("%d parameters, the peer has %d", len(m.Params().All()), len(torch))
	}
	// plausible reports whether draws with these moments can come from
	// U(±b): mean 0 (variance b²/3) and mean square b²/3 (variance 4b⁴/45).
	plausible := func(s stats, b float64) bool {
		if s.Max > b {
			return false
		}
		if s.N < 30 { // too few draws for the moments; the bound is checked
			return true
		}
		n := float64(s.N)
		return math.Abs(s.Mean) < 5*b/math.Sqrt(3*n) && math.Abs(s.MeanSq-b*b/3) < 5*math.Sqrt(4/45.)*b*b/math.Sqrt(n)
	}
	for _, p := range m.Params().All() {
		want, ok := torch[p.Name]
		if !ok {
			t.Errorf("%s: not a parameter of the peer", p.Name)
			continue
		}
		if want.N != p.Len() {
			t.Errorf("%s: %d values, the peer's has %d", p.Name, p.Len(), want.N)
		}
		b := 1 / math.Sqrt(float64(p.FanIn))
		if math.Abs(b-want.Bound) > 1e-12*want.Bound {
			t.Errorf("%s: bound 1/sqrt(%d) = %.6g, PyTorch's %.6g", p.Name, p.FanIn, b, want.Bound)
		}
		var got stats
		got.N = p.Len()
		for _, v := range p.Float32s() {
			x := float64(v)
			got.Mean += x / float64(got.N)
			got.MeanSq += x * x / float64(got.N)
			got.Max = math.Max(got.Max, math.Abs(x))
		}
		if !plausible(got, b) {
			t.Errorf("%s: mean %.3g, mean square %.4g, max |w| %.4g: not U(±%.4g) draws", p.Name, got.Mean, got.MeanSq, got.Max, b)
		}
		if !plausible(want, want.Bound) {
			t.Errorf("%s: PyTorch's mean %.3g, mean square %.4g, max |w| %.4g: not U(±%.4g) draws (the formula above is not PyTorch's)",
				p.Name, want.Mean, want.MeanSq, want.Max, want.Bound)
		}
	}
}

// torchPeerStep is the peer's loss on one batch (a smaller copy of its
// network, the same layer types), in float64, with the weights, images
// and noise given: the per-image negative ELBO (binary cross-entropy with
// logits summed over pixels plus the closed-form KL), z = mu + eps
// exp(logvar/2). It prints the loss and gradients divided by the batch
// size, since govae's loss is the batch mean where the peer's is the sum.
const torchPeerStep = `
import json, sys, torch
import torch.nn as nn
import torch.nn.functional as F
torch.set_default_dtype(torch.float64)
d = json.load(open(sys.argv[1]))
c1, c2, h, L = d["c1"], d["c2"], d["hidden"], d["latent"]
m = dict({
    "encoder.conv0": nn.Conv2d(1, c1, 4, 2, 1), "encoder.conv1": nn.Conv2d(c1, c2, 4, 2, 1),
    "encoder.dense.0": nn.Linear(c2 * 49, h), "encoder.mean": nn.Linear(h, L), "encoder.logvar": nn.Linear(h, L),
    "decoder.dense.0": nn.Linear(L, h), "decoder.dense.1": nn.Linear(h, c2 * 49),
    "decoder.deconv0": nn.ConvTranspose2d(c2, c1, 4, 2, 1), "decoder.logits": nn.ConvTranspose2d(c1, 1, 4, 2, 1),
})
with torch.no_grad():
    for name, v in d["params"].items():
        t = torch.tensor(v["data"], dtype=torch.float64).view(*v["shape"])
        key = name.replace(".weight", "").replace(".bias", "")
        p = getattr(m[key], name.rsplit(".", 1)[1])
        if isinstance(m[key], nn.Linear) and name.endswith(".weight"):
            t = t.t()  # govae stores a dense weight (in, out)
        p.copy_(t)
B = d["batch"]
x = torch.tensor(d["x"], dtype=torch.float64).view(B, 784)
eps = torch.tensor(d["eps"], dtype=torch.float64).view(B, L)
r = lambda k, v: F.relu(m[k](v))
hh = r("encoder.dense.0", r("encoder.conv1", r("encoder.conv0", x.view(-1, 1, 28, 28))).flatten(1))
mu, lv = m["encoder.mean"](hh), m["encoder.logvar"](hh)
z = mu + eps * torch.exp(0.5 * lv)
g = r("decoder.dense.1", r("decoder.dense.0", z)).view(-1, c2, 7, 7)
logits = m["decoder.logits"](r("decoder.deconv0", g)).flatten(1)
loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") - 0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
loss.backward()
out = {"loss": loss.item() / B}
for name in d["params"]:
    key = name.replace(".weight", "").replace(".bias", "")
    gr = getattr(m[key], name.rsplit(".", 1)[1]).grad
    if isinstance(m[key], nn.Linear) and name.endswith(".weight"):
        gr = gr.t()
    out[name] = (gr / B).flatten().tolist()
print(json.dumps(out))
`

// TestConvStepMatchesTorch compares the training loss and every gradient
// of a conv model (the peer's layer types at smaller widths) with
// PyTorch's on the same weights, binarized images and noise: the whole
// training graph, not only the kernels, computes what the peer's does,
// up to the peer's sum over the batch (govae's loss is the mean).
func TestConvStepMatchesTorch(t *testing.T) {
	const c1, c2, hidden, L, B = 4, 8, 16, 3, 6
	cfg := Config{DataDim: 784, ImageRows: 28, ImageCols: 28, Latent: L, Dtype: "float64",
		Trunk: fmt.Sprintf("conv:%d,%d/k4/s2/p1/relu/dense:%d;deconv:%d,%d/k4/s2/p1/relu/dense:%d", c1, c2, hidden, c2, c1, hidden)}
	m, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, B*784)
	for i := range x { // strokes-like: mostly 0, some 1
		if rng.Float64() < 0.2 {
			x[i] = 1
		}
	}
	tr, err := NewTrainer(m, B, TrainOptions{Epochs: 1, Shards: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	noise := rand.New(rand.NewPCG(7, 8))
	st, err := tr.gradients(x, B, 1, noise)
	if err != nil {
		t.Fatal(err)
	}
	// gradients draws the batch's noise first, row by row: the same draws.
	noise = rand.New(rand.NewPCG(7, 8))
	eps := make([]float64, B*L)
	for i := range eps {
		eps[i] = noise.NormFloat64()
	}
	in := map[string]any{"c1": c1, "c2": c2, "hidden": hidden, "latent": L, "batch": B, "x": x, "eps": eps}
	params := map[string]any{}
	for _, p := range m.Params().All() {
		params[p.Name] = map[string]any{"shape": p.Shape, "data": p.Float64s()}
	}
	in["params"] = params
	var want map[string]any
	if err := json.Unmarshal(runTorch(t, torchPeerStep, in), &want); err != nil {
		t.Fatal(err)
	}
	if l := want["loss"].(float64); math.Abs(st.Loss-l) > 1e-9*math.Abs(l) {
		t.Errorf("loss %.12g, PyTorch's %.12g", st.Loss, l)
	}
	for i, g := range tr.batchGrads() {
		p := m.Params().All()[i]
		got := tensorValues(g, nil)
		w, ok := want[p.Name].([]any)
		if !ok || len(w) != len(got) {
			t.Fatalf("%s: PyTorch gave %d gradient values, want %d", p.Name, len(w), len(got))
		}
		var scale, worst float64
		for j := range got {
			scale = math.Max(scale, math.Abs(w[j].(float64)))
			worst = math.Max(worst, math.Abs(got[j]-w[j].(float64)))
		}
		if scale == 0 || worst > 1e-9*scale {
			t.Errorf("%s: gradient differs from PyTorch's by up to %.3g (largest |g| %.3g)", p.Name, worst, scale)
		}
	}
}

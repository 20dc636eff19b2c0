package amortized

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"testing"
)

// goldenWeights are SHA-256 hashes of the weights after a few training
// steps, recorded on the code before the parts redesign (commit c289433):
// the redesign had to keep the same seed giving the same weights, bit for bit.
// The planar and radial rows were re-recorded once after: flows' fused step
// ops compute a step in float64 and round once, which changes the last bits
// (flows/fused.go; its tests hold the fused ops to the node-by-node maths).
// They were re-recorded a second time when the flow steps' heads became one
// product (Head.Parts, nets.DenseHeads): the encoder's gradient w.r.t. its
// last hidden layer is now one product over all heads' columns instead of a
// sum of per-head products, which rounds differently; the weights at
// initialization and the forward values are unchanged bit for bit. The iaf
// rows were re-recorded when the IAF gate became one fused op (flows'
// iafGate): its forward values are the old ones bit for bit, but its
// backward pass computes in float64 and rounds once, where the node-by-node
// gate rounded every intermediate gradient to float32 (flows' IAF tests hold
// it to the Jacobian and finite-difference gradients). They were re-recorded
// again when the gate's backward pass began to reuse forward's σ and 1 - σ
// (in float32 models their float32 values, where it recomputed them in
// float64) instead of 5 exponentials per element; the IAF steps becoming one
// fused op (flows' iafChainOp) changed nothing more: its forward values are
// the nodes' bit for bit, and so are its gradients but for the order in
// which the steps' context gradients are summed (2 terms here: commutative).
// A third time when the float32 gate's forward pass took simd's float32
// exponential and log1p in place of float64 ones rounded (a few ulps; flows'
// TestIAFGateFloat32MatchesFloat64 holds it to the float64 gate).
// The aux row was recorded on main at 0a847c1, before aux's hidden layers
// became nets.AddReLU nodes (the same values).
// GOVAE_PRINT_GOLDEN=1 prints the current hashes (with -v).
var goldenWeights = []struct {
	name string
	cfg  Config
	opts TrainOptions
	hash string
}{
	{"diag", Config{Posterior: "diag"}, TrainOptions{}, "0699c7392f58e27e3384a9dfec287fb57bbee130889b60fa67959d478e2d76b0"},
	{"fullcov", Config{Posterior: "fullcov"}, TrainOptions{}, "e1a0d7a2d878fb182db31fe40593ff62575536d1852c622547b822d37bc57fe1"},
	{"planar", Config{Posterior: "planar:2"}, TrainOptions{}, "b97844ad3f047ce35c030de9b16f854735849644bd50066159f3baf5110de7c7"},
	{"radial", Config{Posterior: "radial:2"}, TrainOptions{}, "dacf6fc5779297c684b68be2457a579b26bb5d09c317762fe04852bbb0777c69"},
	{"iaf", Config{Posterior: "iaf:2"}, TrainOptions{}, "3c949685002ad486797b5287faa37d6e450f17ebde1e73ee471449e8d11820b9"},
	{"iwae-k5", Config{Posterior: "diag"}, TrainOptions{Objective: ObjectiveIWAE, K: 5}, "6d4feef32bd41b55e38606a0b3aa6ec08e9af9e4e0a58a5f93ede44228c6fb6c"},
	{"elbo-k3-planar", Config{Posterior: "planar:1"}, TrainOptions{K: 3}, "692d7c4da0e7344465c9589dfd2c306fb80807c51dfa75b11fec1536ec2b4fb8"},
	{"score", Config{Posterior: "fullcov"}, TrainOptions{Estimator: EstimatorScore}, "4cbad801bbc4755540b8ac079e86a1cf81d733a618ed13a96d4fa19506cc023f"},
	{"freebits", Config{Posterior: "diag"}, TrainOptions{FreeBits: 0.2}, "cf0473535abaa24c9297f124686563b65dff4033907f1d7ac26122040e9305a8"},
	{"gaussian-f64", Config{Posterior: "diag", Likelihood: Gaussian, Dtype: "float64"}, TrainOptions{}, "150bedc8b2d380304e1662b9bc4ee7e09e62161e97721377ed3e29152e22e526"},
	{"aux", Config{Posterior: "aux:4"}, TrainOptions{}, "c69c25d045918967e404f3c979a0cfd4015cad173546f8504c92ed3ab37a00d8"},
	{"iwae-k5-iaf", Config{Posterior: "iaf:1"}, TrainOptions{Objective: ObjectiveIWAE, K: 5}, "13b24ba972ab6ed301f7ae47017eb194ebae348519fb85655e307527417f0663"},
}

func weightHash(m *Model) string {
	h := sha256.New()
	var b [8]byte
	for _, p := range m.params.All() {
		h.Write([]byte(p.Name))
		if v := p.Float32s(); v != nil {
			for _, f := range v {
				binary.LittleEndian.PutUint32(b[:4], math.Float32bits(f))
				h.Write(b[:4])
			}
		} else {
			for _, f := range p.Float64s() {
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(f))
				h.Write(b[:])
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestGoldenWeights(t *testing.T) {
	const D, batch, steps = 64, 64, 4
	x := synthetic(batch*steps, D, 3)
	for _, tc := range goldenWeights {
		cfg := tc.cfg
		cfg.DataDim, cfg.Hidden, cfg.Latent = D, []int{16}, 4
		m, err := New(cfg, 11)
		if err != nil {
			t.Fatal(err)
		}
		opts := tc.opts
		opts.Epochs, opts.Seed = 1, 5
		tr, err := NewTrainer(m, batch, opts, nil)
		if err != nil {
			t.Fatal(tc.name, err)
		}
		for s := range steps {
			if _, err := tr.Step(x[s*batch*D:(s+1)*batch*D], batch, 0.5+0.1*float64(s)); err != nil {
				t.Fatal(tc.name, err)
			}
		}
		tr.Close()
		got := weightHash(m)
		if os.Getenv("GOVAE_PRINT_GOLDEN") != "" {
			t.Logf("{%q, ..., %q},", tc.name, got)
		}
		if tc.hash != "" && got != tc.hash {
			t.Errorf("%s: weights after %d steps hash to %s, want %s (same seed, same weights)", tc.name, steps, got, tc.hash)
		}
	}
}

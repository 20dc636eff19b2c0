package amortized

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func mnistConv(trunk string) Config {
	return Config{DataDim: 784, ImageRows: 28, ImageCols: 28, Latent: 32, Trunk: trunk}
}

func TestConvTrunkParse(t *testing.T) {
	c, err := mnistConv("conv:32,64/dense:256").Normalize()
	if err != nil {
		t.Fatal(err)
	}
	// The mirror of the peer's encoder is the peer's decoder.
	if c.Trunk != ConvPeerTrunk {
		t.Errorf("canonical trunk %q, want %q", c.Trunk, ConvPeerTrunk)
	}
	if c2, err := mnistConv(c.Trunk).Normalize(); err != nil || c2.Trunk != c.Trunk {
		t.Errorf("re-parse: %q, %v", c2.Trunk, err)
	}
	for trunk, frag := range map[string]string{
		"conv:32,64;conv:64,32":          "encoder spec",
		"conv:32/x9":                     "conv:32/x9",
		"conv:32,64,64,64,64,64/dense:8": "too small",
	} {
		if _, err := mnistConv(trunk).Normalize(); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("%s: error %v, want one containing %q", trunk, err, frag)
		}
	}
	if _, err := (Config{DataDim: 784, Latent: 2, Trunk: "conv:8"}).Normalize(); err == nil || !strings.Contains(err.Error(), "needs images") {
		t.Errorf("no image shape: %v", err)
	}
}

// TestConvPeerParams checks the names, shapes and count of the peer
// architecture's tensors against the PyTorch model's layers.
func TestConvPeerParams(t *testing.T) {
	m, err := New(mnistConv(ConvPeerTrunk), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"encoder.conv0.weight": {32, 1, 4, 4}, "encoder.conv0.bias": {32},
		"encoder.conv1.weight": {64, 32, 4, 4}, "encoder.conv1.bias": {64},
		"encoder.dense.0.weight": {3136, 256}, "encoder.dense.0.bias": {256},
		"encoder.mean.weight": {256, 32}, "encoder.logvar.weight": {256, 32},
		"decoder.dense.0.weight": {32, 256}, "decoder.dense.1.weight": {256, 3136},
		"decoder.deconv0.weight": {64, 32, 4, 4}, "decoder.deconv0.bias": {32},
		"decoder.logits.weight": {32, 1, 4, 4}, "decoder.logits.bias": {1},
	}
	got := map[string][]int{}
	total := 0
	for _, p := range m.Params().All() {
		got[p.Name] = p.Shape
		n := 1
		for _, d := range p.Shape {
			n *= d
		}
		total += n
	}
	for name, shape := range want {
		if !slices.Equal(got[name], shape) {
			t.Errorf("%s: shape %v, want %v", name, got[name], shape)
		}
	}
	// torch: conv 32·16+32, 64·32·16+64, linear 3136·256+256, 2·(256·32+32);
	// decoder linear 32·256+256, 256·3136+3136, deconv 64·32·16+32, 32·16+1.
	peer := 544 + 32832 + 803072 + 2*8224 + 8448 + 805952 + 32800 + 513
	if total != peer {
		t.Errorf("%d parameters, want the peer's %d", total, peer)
	}
	if n, err := m.Config().NumParams(); err != nil || n != int64(peer) {
		t.Errorf("NumParams %d, %v; want %d", n, err, peer)
	}
}

// levels makes n images of C x 8 x 8 with 8-bit values: smooth ramps
// whose direction depends on the image, plus noise.
func levels(n, C int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n*C*64)
	for i := range n {
		for c := range C {
			for y := range 8 {
				for xx := range 8 {
					v := 32*(y*(i%2)+xx*(1-i%2)) + 20*c + rng.IntN(16)
					x[i*C*64+c*64+y*8+xx] = float32(min(v, 255)) / 255
				}
			}
		}
	}
	return x
}

// TestConvTrainsPixelLikelihoods trains a small conv model for each pixel
// likelihood on grey and RGB 8x8 images: the ELBO rises, Decode gives means
// in [0,1], Impute keeps the observed values bit for bit, Sample runs.
func TestConvTrainsPixelLikelihoods(t *testing.T) {
	for _, tc := range []struct {
		lik string
		C   int
	}{{"logistic", 1}, {"logistic-mix:2", 3}, {"logistic-rgb:2", 3}, {"categorical", 1}, {"bernoulli", 3}} {
		t.Run(tc.lik, func(t *testing.T) {
			D := tc.C * 64
			cfg := Config{DataDim: D, ImageRows: 8, ImageCols: 8, ImageChannels: tc.C, Latent: 3, Likelihood: tc.lik,
				Trunk: "conv:4,8/k3/s2/p1/elu/dense:16"}
			m, err := New(cfg, 2)
			if err != nil {
				t.Fatal(err)
			}
			x := levels(32, tc.C, 1)
			if tc.lik == "bernoulli" {
				for i := range x {
					x[i] = float32(math.Round(float64(x[i])))
				}
			}
			rng := rand.New(rand.NewPCG(4, 5))
			mean := func() float64 {
				e, err := m.ELBO(rowsOf(x, D), rng)
				if err != nil {
					t.Fatal(err)
				}
				s := 0.0
				for _, v := range e {
					s += v
				}
				return s / float64(len(e))
			}
			before := mean()
			tr, err := NewTrainer(m, 16, TrainOptions{Epochs: 1, Seed: 1, LR: 1e-2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for s := range 40 {
				if _, err := tr.Step(x[(s%2)*16*D:(s%2+1)*16*D], 16, 1); err != nil {
					t.Fatal(err)
				}
			}
			after := mean()
			if !(after > before+0.1*math.Abs(before)) {
				t.Errorf("ELBO %v -> %v after 40 steps, want a clear rise", before, after)
			}
			rec, err := m.Reconstruct(rowsOf(x[:2*D], D), rng)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range rec[0] {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("mean %v outside [0,1]", v)
				}
			}
			obs := make([][]bool, 2)
			for i := range obs {
				obs[i] = make([]bool, D)
				for j := range D {
					obs[i][j] = (j/8)%8 < 4 // the top half of every channel
				}
			}
			imp, err := m.Impute(rowsOf(x[:2*D], D), obs, ImputeOptions{Iters: 3}, rng)
			if err != nil {
				t.Fatal(err)
			}
			for i := range imp {
				for j, seen := range obs[i] {
					if seen && imp[i][j] != x[i*D+j] {
						t.Fatalf("imputation changed observed value %d of row %d", j, i)
					}
				}
			}
			if _, err := m.Sample(3, rng); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConvLikelihoodRejectsOffGrid: observed values a pixel likelihood
// cannot have are refused with the likelihood's message.
func TestConvLikelihoodRejectsOffGrid(t *testing.T) {
	m, err := New(Config{DataDim: 64, ImageRows: 8, ImageCols: 8, Latent: 2, Likelihood: "logistic", Trunk: "conv:4/dense:8"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := levels(1, 1, 1)
	x[5] = 0.5
	_, err = m.ELBO(rowsOf(x, 64), rand.New(rand.NewPCG(1, 1)))
	if err == nil || !strings.Contains(err.Error(), "8-bit level") {
		t.Errorf("error %v, want one about 8-bit levels", err)
	}
}

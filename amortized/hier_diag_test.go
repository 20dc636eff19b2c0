package amortized

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/govae/govae/data"
)

// TestTwoLayerTrainingDiagnostics is a diagnostic, not a check: with
// GOVAE_TWOLAYER_DIAG=steps it trains the Burda two-layer model (or with
// GOVAE_TWOLAYER_WHICH=one the one-layer 784-100-100-[100], onemc the same
// with the one-sample KL, twoN the two-layer model with p(z1|z2) and
// q(z2|z1) held at N(0, I)) on the full MNIST and prints, every
// GOVAE_TWOLAYER_EVERY steps, on 500 test images: ELBO, log p(x|z1), the
// per-layer KL estimates, the active units of z1 and the mean log-variances.
// GOVAE_TWOLAYER_WARMUP=N raises the KL weight over N steps;
// GOVAE_TWOLAYER_INIT=burda|glorot|bias starts from Burda et al.'s
// initialization, its Glorot weights only, or its output bias only.
func TestTwoLayerTrainingDiagnostics(t *testing.T) {
	steps, _ := strconv.Atoi(os.Getenv("GOVAE_TWOLAYER_DIAG"))
	if steps == 0 {
		t.Skip("GOVAE_TWOLAYER_DIAG=steps runs it")
	}
	dir, err := data.GoMNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load("mnist", data.LoadOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	tr, te := ds.Train.Images, ds.Test.Images
	D := tr.Dim()
	rng := rand.New(rand.NewPCG(5, 5))
	test := make([][]float64, 500)
	for i := range test {
		test[i] = make([]float64, D)
		for d, p := range te.Image(i) {
			if float64(p)/255 > rng.Float64() {
				test[i][d] = 1
			}
		}
	}
	every, _ := strconv.Atoi(os.Getenv("GOVAE_TWOLAYER_EVERY"))
	if every == 0 {
		every = 50
	}
	warm, _ := strconv.Atoi(os.Getenv("GOVAE_TWOLAYER_WARMUP")) // steps of KL warm-up
	which := os.Getenv("GOVAE_TWOLAYER_WHICH")
	base := Config{DataDim: D, Hidden: []int{100, 100}, Activation: "tanh"}
	var c Config
	switch which {
	case "one", "onemc":
		c = base
		c.Latent = 100
		if which == "onemc" { // the one-sample KL instead of the closed form
			key := [2]string{"diag", "normal"}
			registry.Lock()
			e, ok := registry.kls[key]
			if !ok {
				registry.Unlock()
				t.Fatal("no diag/normal KL")
			}
			delete(registry.kls, key)
			registry.Unlock()
			defer func() { registry.Lock(); registry.kls[key] = e; registry.Unlock() }()
		}
	default:
		c = TwoLayerConfig(base, 100, 50, []int{50, 50})
	}
	m, err := New(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	trn, err := NewTrainer(m, 128, TrainOptions{AdamEps: 1e-4, Seed: 1, Epochs: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer trn.Close()
	// twoN: p(z1|z2) and q(z2|z1) held at N(0, I), which makes the model
	// the one-layer one with the one-sample KL.
	fix := func() {
		if which != "twoN" {
			return
		}
		for _, p := range m.params.All() {
			for _, pre := range []string{"prior.z1.mean.", "prior.z1.logvar.", "encoder.z2.mean.", "encoder.z2.logvar."} {
				if strings.HasPrefix(p.Name, pre) {
					p.Value.Zero()
				}
			}
		}
	}
	if v := os.Getenv("GOVAE_TWOLAYER_INIT"); v != "" {
		burdaInit(m, tr, v)
	}
	fix()
	x := make([]float32, 128*D)
	brng := rand.New(rand.NewPCG(7, 7))
	for s := 0; s <= steps; s++ {
		if s%every == 0 {
			fmt.Println(diagStats(m, test, s))
		}
		for i := range 128 {
			img := tr.Image(brng.IntN(tr.N))
			for d, p := range img {
				x[i*D+d] = 0
				if float32(p)/255 > brng.Float32() {
					x[i*D+d] = 1
				}
			}
		}
		beta := 1.0
		if warm > 0 {
			beta = math.Min(1, float64(s)/float64(warm))
		}
		if _, err := trn.Step(x, 128, beta); err != nil {
			t.Fatal(err)
		}
		fix()
	}
}

// dref is ref for either dtype.
type dref struct {
	m *Model
	w map[string][]float64
}

func (r dref) get(name string) []float64 {
	if v, ok := r.w[name]; ok {
		return v
	}
	p := r.m.params.Get(name)
	var v []float64
	if p.Value.Dtype().Name() == "float32" {
		for _, f := range p.Float32s() {
			v = append(v, float64(f))
		}
	} else {
		v = append(v, p.Float64s()...)
	}
	r.w[name] = v
	return v
}

func (r dref) linear(name string, x []float64) []float64 {
	w, b := r.get(name+".weight"), r.get(name+".bias")
	out := len(b)
	y := append([]float64(nil), b...)
	for i, xi := range x {
		row := w[i*out : (i+1)*out]
		for j := range y {
			y[j] += xi * row[j]
		}
	}
	return y
}

func (r dref) mlp(prefix string, n int, x []float64) []float64 {
	for i := 0; i < n; i++ {
		x = r.linear(prefix+"."+strconv.Itoa(i), x)
		for k := range x {
			x[k] = math.Tanh(x[k])
		}
	}
	return x
}

func diagStats(m *Model, test [][]float64, step int) string {
	r := dref{m, map[string][]float64{}}
	c := m.cfg
	layers := m.LatentLayers()
	l1 := layers[0]
	rng := rand.New(rand.NewPCG(9, 9))
	var rec, kl1, kl2, lv1s, lvps, lv2s, dmu float64
	mus := make([][]float64, len(test))
	for i, x := range test {
		h := r.mlp("encoder", len(c.Hidden), x)
		mu1, lv1 := r.linear("encoder.mean", h), r.linear("encoder.logvar", h)
		mus[i] = mu1
		z1 := make([]float64, l1)
		for j := range z1 {
			z1[j] = mu1[j] + math.Exp(lv1[j]/2)*rng.NormFloat64()
			lv1s += lv1[j]
		}
		l := r.linear("decoder.logits", r.mlp("decoder", len(c.DecoderHidden), append([]float64(nil), z1...)))
		for d := range x {
			rec += x[d]*-math.Log1p(math.Exp(-l[d])) + (1-x[d])*-math.Log1p(math.Exp(l[d]))
		}
		if len(layers) == 1 {
			for j := range mu1 {
				kl1 += 0.5 * (mu1[j]*mu1[j] + math.Exp(lv1[j]) - 1 - lv1[j])
			}
			continue
		}
		f := m.family.(*twoLayerFamily)
		p := m.prior.(*twoLayerPrior)
		hq := r.mlp("encoder.z2", len(f.hidden), append([]float64(nil), z1...))
		mu2, lv2 := r.linear("encoder.z2.mean", hq), r.linear("encoder.z2.logvar", hq)
		z2 := make([]float64, len(mu2))
		for j := range z2 {
			z2[j] = mu2[j] + math.Exp(lv2[j]/2)*rng.NormFloat64()
			lv2s += lv2[j]
		}
		hp := r.mlp("prior.z1", len(p.hidden), append([]float64(nil), z2...))
		mup, lvp := r.linear("prior.z1.mean", hp), r.linear("prior.z1.logvar", hp)
		for j := range mup {
			lvps += lvp[j]
			dmu += math.Abs(mu1[j] - mup[j])
		}
		kl1 += logNormal(z1, mu1, lv1) - logNormal(z1, mup, lvp)
		kl2 += logNormal(z2, mu2, lv2) - logNormal(z2, make([]float64, len(z2)), make([]float64, len(z2)))
	}
	n := float64(len(test))
	au := 0
	for j := 0; j < l1; j++ {
		var s, ss float64
		for _, mu := range mus {
			s += mu[j]
			ss += mu[j] * mu[j]
		}
		if ss/n-(s/n)*(s/n) > 0.01 {
			au++
		}
	}
	return fmt.Sprintf("step %5d: ELBO %8.2f recon %8.2f KL1 %7.2f KL2 %6.2f AU1 %3d mean lv q1 %6.2f p1 %6.2f q2 %6.2f |mu1-mup| %.3f",
		step, (rec-kl1-kl2)/n, rec/n, kl1/n, kl2/n, au, lv1s/n/float64(l1), lvps/n/float64(l1), lv2s/n/50, dmu/n/float64(l1))
}

// burdaInit is the initialization of Burda et al.'s code: Glorot uniform
// weights, zero biases, and the decoder's output bias at the logit of the
// training images' mean.
func burdaInit(m *Model, tr *data.Images, which string) {
	rng := rand.New(rand.NewPCG(11, 11))
	D := tr.Dim()
	mean := make([]float64, D)
	for i := range tr.N {
		for d, p := range tr.Image(i) {
			mean[d] += float64(p) / 255 / float64(tr.N)
		}
	}
	for _, p := range m.params.All() {
		v := p.Float32s()
		if which == "bias" && p.Name != "decoder.logits.bias" {
			continue
		}
		if which == "glorot" && p.Name == "decoder.logits.bias" {
			continue
		}
		if strings.HasSuffix(p.Name, ".bias") {
			for i := range v {
				v[i] = 0
			}
			if p.Name == "decoder.logits.bias" {
				for d := range v {
					q := math.Min(math.Max(mean[d], 1e-3), 1-1e-3)
					v[d] = float32(math.Log(q / (1 - q)))
				}
			}
			continue
		}
		in, out := p.Shape[0], p.Shape[1]
		scale := math.Sqrt(6 / float64(in+out))
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * scale)
		}
	}
}

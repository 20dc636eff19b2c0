package amortized

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/govae/govae/nets"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// runPixel evaluates log p(x|params) and the mean through the likelihood's
// graph nodes.
func runPixel(t *testing.T, l Likelihood, x, par []float64, B, D, W int) (lp, mean []float64) {
	t.Helper()
	g := G.NewGraph()
	xn := G.NewMatrix(g, tensor.Float64, G.WithShape(B, D), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(B, D), tensor.WithBacking(x))))
	pn := G.NewMatrix(g, tensor.Float64, G.WithShape(B, W), G.WithName("p"), G.WithValue(tensor.New(tensor.WithShape(B, W), tensor.WithBacking(par))))
	d := l.Bind(nil, HeadValues{"params": pn})
	lpn, mn := d.LogProb(xn), d.Mean()
	var lv, mv G.Value
	G.Read(lpn, &lv)
	G.Read(mn, &mv)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	return append([]float64(nil), lv.Data().([]float64)...), append([]float64(nil), mv.Data().([]float64)...)
}

func parsedLik(t *testing.T, s string, c Config) Likelihood {
	t.Helper()
	l, err := parseLikelihood(s, c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPixelLikelihoodsDirect checks log p and the mean of every pixel
// likelihood against the 256 probabilities of each value summed directly
// (nets' PMFs), at values exactly on the grid and slightly off it (the
// graph rounds x to the nearest level).
func TestPixelLikelihoodsDirect(t *testing.T) {
	const B, D = 3, 5
	c := Config{DataDim: D, Latent: 2}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		pmf  func(par []float64, j int, p []float64)
		P    int
	}{
		{"logistic", func(par []float64, j int, p []float64) { nets.LogisticPMF(par[j], par[D+j], p) }, 2},
		{"logistic-mix:3", func(par []float64, j int, p []float64) {
			var l, m, s [3]float64
			for k := range 3 {
				l[k], m[k], s[k] = par[k*D+j], par[(3+k)*D+j], par[(6+k)*D+j]
			}
			nets.LogisticMixPMF(l[:], m[:], s[:], p)
		}, 9},
		{"categorical", func(par []float64, j int, p []float64) {
			l := make([]float64, 256)
			for v := range l {
				l[v] = par[v*D+j]
			}
			nets.CategoricalPMF(l, p)
		}, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := parsedLik(t, tc.name, c)
			W := l.Heads(c)[0].Width
			if W != tc.P*D {
				t.Fatalf("head width %d, want %d", W, tc.P*D)
			}
			par := make([]float64, B*W)
			for i := range par {
				par[i] = rng.NormFloat64() * 0.7
			}
			x := make([]float64, B*D)
			lv := make([]int, B*D)
			for i := range x {
				lv[i] = rng.IntN(256)
				if i%4 == 0 {
					lv[i] = []int{0, 255}[i%8/4]
				}
				// Off the grid by less than half a level: rounded back.
				x[i] = (float64(lv[i]) + 0.3*(rng.Float64()-0.5)) / 255
			}
			lp, mean := runPixel(t, l, x, par, B, D, W)
			p := make([]float64, 256)
			for r := range B {
				want := 0.0
				for j := range D {
					tc.pmf(par[r*W:(r+1)*W], j, p)
					want += math.Log(p[lv[r*D+j]])
					m := 0.0
					for v, pv := range p {
						m += float64(v) * pv / 255
					}
					if math.Abs(mean[r*D+j]-m) > 1e-9 {
						t.Errorf("row %d value %d: mean %v, want %v", r, j, mean[r*D+j], m)
					}
				}
				if math.Abs(lp[r]-want) > 1e-8*math.Max(1, math.Abs(want)) {
					t.Errorf("row %d: log p %v, want %v", r, lp[r], want)
				}
			}
		})
	}
}

func TestPixelLikelihoodParsing(t *testing.T) {
	grey := Config{DataDim: 12, ImageRows: 2, ImageCols: 2, ImageChannels: 3, Latent: 2}
	for s, want := range map[string]string{"logistic": "logistic", "logistic-mix:5": "logistic-mix:5", "categorical": "categorical", "logistic-rgb:2": "logistic-rgb:2"} {
		if got := parsedLik(t, s, grey).String(); got != want {
			t.Errorf("%s: canonical %q, want %q", s, got, want)
		}
	}
	if w := parsedLik(t, "logistic-rgb:2", grey).Heads(grey)[0].Width; w != 10*2*4 {
		t.Errorf("logistic-rgb:2 head width %d, want %d", w, 80)
	}
	for s, frag := range map[string]string{
		"logistic:2":       "takes no parameters",
		"logistic-mix":     "number of components",
		"logistic-mix:0":   "from 1 to 256",
		"logistic-mix:x":   "from 1 to 256",
		"logistic-mix:257": "from 1 to 256",
		"categorical:3":    "takes no parameters",
	} {
		if _, err := parseLikelihood(s, grey); err == nil || !strings.Contains(err.Error(), frag) {
			t.Errorf("%s: error %v, want one containing %q", s, err, frag)
		}
	}
	one := Config{DataDim: 4, ImageRows: 2, ImageCols: 2, Latent: 2}
	if _, err := parseLikelihood("logistic-rgb:2", one); err == nil || !strings.Contains(err.Error(), "3 channels") {
		t.Errorf("logistic-rgb on grey images: error %v", err)
	}
	l := parsedLik(t, "logistic", one)
	for _, v := range []float32{0, 1, 17.0 / 255, 254.0 / 255} {
		if err := l.CheckValue(v); err != nil {
			t.Errorf("CheckValue(%v) = %v", v, err)
		}
	}
	for _, v := range []float32{-1.0 / 255, 1 + 1.0/255, 0.5, 0.1} {
		if err := l.CheckValue(v); err == nil {
			t.Errorf("CheckValue(%v) = nil, want an error", v)
		}
	}
	if l.Preprocess() != PreprocessGrey {
		t.Errorf("Preprocess %q, want grey", l.Preprocess())
	}
}

func TestBitsPerDim(t *testing.T) {
	// A uniform 8-bit image costs D log 256 nats: 8 bits per dimension.
	if got := BitsPerDim(-784*math.Log(256), 784); math.Abs(got-8) > 1e-12 {
		t.Errorf("BitsPerDim = %v, want 8", got)
	}
}

package amortized

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomMask hides each pixel with probability 1/2, keeping at least one
// hidden and one shown pixel per row.
func randomMask(n, dim int, seed uint64) [][]bool {
	rng := rand.New(rand.NewPCG(seed, 5))
	obs := make([][]bool, n)
	for i := range obs {
		obs[i] = make([]bool, dim)
		for j := range obs[i] {
			obs[i][j] = rng.IntN(2) == 0
		}
		obs[i][0], obs[i][1] = true, false
	}
	return obs
}

func TestImputeKeepsObservedPixelsExactly(t *testing.T) {
	for _, opts := range []ImputeOptions{{}, {Mean: true, Iters: 3}, {Chains: 3, Iters: 4}} {
		m := newSmall(t, "float32", Bernoulli, 1)
		x := rowsOf(synthetic(9, 12, 2), 12)
		for _, row := range x {
			row[5] = 0.3 // grey levels must survive too, not only 0 and 1
		}
		obs := randomMask(9, 12, 3)
		for i := range x {
			for j := range x[i] {
				if !obs[i][j] {
					x[i][j] = float32(math.NaN()) // never read
				}
			}
		}
		out, err := m.Impute(x, obs, opts, rand.New(rand.NewPCG(4, 4)))
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		for i := range x {
			for j := range x[i] {
				got := out[i][j]
				switch {
				case obs[i][j] && math.Float32bits(got) != math.Float32bits(x[i][j]):
					t.Fatalf("%+v: observed pixel [%d][%d] = %v, was %v", opts, i, j, got, x[i][j])
				case !obs[i][j] && !(got >= 0 && got <= 1):
					t.Fatalf("%+v: imputed pixel [%d][%d] = %v, want a probability", opts, i, j, got)
				}
			}
		}
		out[0][0] = 7 // the result must not share memory with x, nor rows with each other
		if x[0][0] == 7 || out[1][0] == 7 {
			t.Fatalf("%+v: the result aliases its input", opts)
		}
	}
}

// TestImputeSweepIsEncodeSampleDecode checks one sweep against the public
// methods it is made of: with Mean, Decode(Encode(x0)); with draws,
// Reconstruct(x0) with the same noise; x0 is x with its missing pixels at 0.5.
func TestImputeSweepIsEncodeSampleDecode(t *testing.T) {
	for _, post := range families {
		t.Run(post, func(t *testing.T) { checkImputeSweep(t, newFamily(t, post, "float64", Bernoulli, 2)) })
	}
}

func checkImputeSweep(t *testing.T, m *Model) {
	x := rowsOf(synthetic(6, 12, 3), 12)
	obs := randomMask(6, 12, 4)
	x0 := make([][]float32, len(x))
	for i := range x {
		x0[i] = append([]float32(nil), x[i]...)
		for j := range x0[i] {
			if !obs[i][j] {
				x0[i][j] = 0.5
			}
		}
	}
	z, err := m.Encode(x0)
	if err != nil {
		t.Fatal(err)
	}
	wantMean, err := m.Decode(z)
	if err != nil {
		t.Fatal(err)
	}
	wantDraw, err := m.Reconstruct(x0, rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts ImputeOptions
		want [][]float32
	}{{ImputeOptions{Iters: 1, Mean: true}, wantMean}, {ImputeOptions{Iters: 1}, wantDraw}} {
		got, err := m.Impute(x, obs, tc.opts, rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range x {
			for j := range x[i] {
				if !obs[i][j] && math.Abs(float64(got[i][j]-tc.want[i][j])) > 1e-6 {
					t.Fatalf("Mean=%v: pixel [%d][%d] = %v, want %v", tc.opts.Mean, i, j, got[i][j], tc.want[i][j])
				}
			}
		}
	}
}

func TestImputeOptionsDefaultsAndDeterminism(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 3)
	x := rowsOf(synthetic(5, 12, 4), 12)
	obs := randomMask(5, 12, 5)
	run := func(opts ImputeOptions, seed uint64) [][]float32 {
		t.Helper()
		var rng *rand.Rand
		if seed > 0 {
			rng = rand.New(rand.NewPCG(seed, seed))
		}
		out, err := m.Impute(x, obs, opts, rng)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := func(a, b [][]float32) bool {
		for i := range a {
			for j := range a[i] {
				if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
					return false
				}
			}
		}
		return true
	}
	if !same(run(ImputeOptions{}, 1), run(ImputeOptions{Iters: DefaultImputeIters, Chains: 1}, 1)) {
		t.Error("the zero ImputeOptions differ from Iters = DefaultImputeIters, Chains = 1")
	}
	if same(run(ImputeOptions{}, 1), run(ImputeOptions{}, 2)) {
		t.Error("draws with different seeds gave the same imputation")
	}
	if !same(run(ImputeOptions{Mean: true}, 0), run(ImputeOptions{Mean: true}, 0)) {
		t.Error("Mean imputation is not deterministic")
	}
}

// TestImputeChainsAverageIndependentChains checks that Chains = k averages
// k chains that are exactly those of k copies of each row imputed alone.
func TestImputeChainsAverageIndependentChains(t *testing.T) {
	const k = 3
	m := newSmall(t, "float32", Bernoulli, 4)
	x := rowsOf(synthetic(4, 12, 5), 12)
	obs := randomMask(4, 12, 6)
	var xk [][]float32
	var obsk [][]bool
	for i := range x {
		for range k {
			xk, obsk = append(xk, x[i]), append(obsk, obs[i])
		}
	}
	got, err := m.Impute(x, obs, ImputeOptions{Chains: k, Iters: 5}, rand.New(rand.NewPCG(6, 6)))
	if err != nil {
		t.Fatal(err)
	}
	single, err := m.Impute(xk, obsk, ImputeOptions{Iters: 5}, rand.New(rand.NewPCG(6, 6)))
	if err != nil {
		t.Fatal(err)
	}
	spread := 0.0
	for i := range x {
		for j := range x[i] {
			var s float64
			for c := range k {
				s += float64(single[i*k+c][j])
			}
			want := float32(s / k)
			if obs[i][j] {
				want = x[i][j]
			}
			if got[i][j] != want {
				t.Fatalf("pixel [%d][%d] = %v, want the mean of the chains %v", i, j, got[i][j], want)
			}
			spread = max(spread, math.Abs(float64(single[i*k][j]-single[i*k+1][j])))
		}
	}
	if spread < 1e-3 {
		t.Fatal("the chains agree everywhere: they are not independent")
	}
}

// TestImputeBeatsPixelMeans trains a small model on two prototypes, one
// with the first half of the pixels on and one with the second, and hides
// the second half. The shown half says which prototype an image is, so a
// model that has learned them fills the rest in far better than the
// per-pixel training mean (about 0.5 everywhere, squared error 0.25; the
// best possible, with 10% of pixels flipped, is 0.09).
func TestImputeBeatsPixelMeans(t *testing.T) {
	const dim = 12
	m := newSmall(t, "float32", Bernoulli, 3)
	train := synthetic(400, dim, 1)
	tr, err := NewTrainer(m, 32, TrainOptions{Epochs: 30, Seed: 3, LR: 1e-2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Fit(context.Background(), &memBatches{x: train, n: 400, dim: dim, bsz: 32, seed: 3}, nil, Hooks{}); err != nil {
		t.Fatal(err)
	}
	pixelMean := make([]float64, dim)
	for i, v := range train {
		pixelMean[i%dim] += float64(v) / 400
	}
	x := rowsOf(synthetic(200, dim, 9), dim)
	obs := make([][]bool, len(x))
	for i := range obs {
		obs[i] = make([]bool, dim)
		for j := range dim / 2 {
			obs[i][j] = true
		}
	}
	var base float64
	for i := range x {
		for j := dim / 2; j < dim; j++ {
			base += math.Pow(pixelMean[j]-float64(x[i][j]), 2)
		}
	}
	base /= float64(len(x) * dim / 2)
	for _, opts := range []ImputeOptions{{}, {Mean: true}, {Chains: 8, Iters: 20}} {
		out, err := m.Impute(x, obs, opts, rand.New(rand.NewPCG(7, 7)))
		if err != nil {
			t.Fatal(err)
		}
		var mse float64
		for i := range x {
			for j := dim / 2; j < dim; j++ {
				mse += math.Pow(float64(out[i][j]-x[i][j]), 2)
			}
		}
		mse /= float64(len(x) * dim / 2)
		t.Logf("%+v: squared error %.4f, per-pixel mean %.4f", opts, mse, base)
		if !(mse < 0.6*base) || base < 0.2 {
			t.Errorf("%+v: squared error on hidden pixels %.4f, per-pixel-mean baseline %.4f: want well below", opts, mse, base)
		}
	}
}

func TestImputeBadInput(t *testing.T) {
	m := newSmall(t, "float32", Bernoulli, 1)
	g := newSmall(t, "float32", Gaussian, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	row := func(v float32) []float32 {
		r := make([]float32, 12)
		r[3] = v
		return r
	}
	all := func(seen bool) []bool {
		o := make([]bool, 12)
		for j := range o {
			o[j] = seen
		}
		return o
	}
	hide3 := all(true)
	hide3[3] = false
	for _, tc := range []struct {
		name string
		m    *Model
		x    [][]float32
		obs  [][]bool
		opts ImputeOptions
		rng  *rand.Rand
		want string
	}{
		{"no rows", m, nil, nil, ImputeOptions{}, rng, "x has no rows"},
		{"row counts", m, [][]float32{row(0)}, [][]bool{all(true), all(true)}, ImputeOptions{}, rng, "x has 1 rows but observed has 2"},
		{"x width", m, [][]float32{make([]float32, 11)}, [][]bool{all(true)}, ImputeOptions{}, rng, "x row 0 has 11 values, want 12"},
		{"observed width", m, [][]float32{row(0)}, [][]bool{make([]bool, 13)}, ImputeOptions{}, rng, "observed row 0 has 13 values, want 12"},
		{"NaN observed", m, [][]float32{row(float32(math.NaN()))}, [][]bool{all(true)}, ImputeOptions{}, rng, "observed x[0][3] = NaN"},
		{"Inf observed, Gaussian", g, [][]float32{row(float32(math.Inf(1)))}, [][]bool{all(true)}, ImputeOptions{}, rng, "want a finite value"},
		{"outside [0,1]", m, [][]float32{row(1.5)}, [][]bool{all(true)}, ImputeOptions{}, rng, "want a value in [0,1] for a Bernoulli model"},
		{"negative iters", m, [][]float32{row(0)}, [][]bool{all(true)}, ImputeOptions{Iters: -1}, rng, "Iters = -1"},
		{"negative chains", m, [][]float32{row(0)}, [][]bool{all(true)}, ImputeOptions{Chains: -2}, rng, "Chains = -2"},
		{"chains with mean", m, [][]float32{row(0)}, [][]bool{all(true)}, ImputeOptions{Chains: 2, Mean: true}, rng, "would be identical"},
		{"nil rng", m, [][]float32{row(0)}, [][]bool{all(true)}, ImputeOptions{}, nil, "rng is nil"},
	} {
		_, err := tc.m.Impute(tc.x, tc.obs, tc.opts, tc.rng)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	// Hidden pixels are never checked: out of range or NaN is fine there,
	// and a Gaussian model takes any finite observed value.
	for _, tc := range []struct {
		m *Model
		v float32
	}{{m, 1.5}, {m, float32(math.NaN())}, {g, -3}} {
		obs := hide3
		if tc.m == g {
			obs = all(true)
		}
		if _, err := tc.m.Impute([][]float32{row(tc.v)}, [][]bool{obs}, ImputeOptions{Iters: 1}, rng); err != nil {
			t.Errorf("value %v (hidden for Bernoulli, shown for Gaussian): %v", tc.v, err)
		}
	}
}

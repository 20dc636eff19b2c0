package vi

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAdjustedRandAndMatching(t *testing.T) {
	a := []int{0, 0, 1, 1, 2, 2}
	if v := AdjustedRand(a, []int{5, 5, 3, 3, 9, 9}); math.Abs(v-1) > 1e-12 {
		t.Errorf("relabeled partition: ARI %v, want 1", v)
	}
	// Hubert & Arabie's example value by hand: a = {0,0,1,1}, b = {0,1,0,1}: ARI = -0.5.
	if v := AdjustedRand([]int{0, 0, 1, 1}, []int{0, 1, 0, 1}); math.Abs(v+0.5) > 1e-12 {
		t.Errorf("ARI %v, want -0.5", v)
	}
	if v := MatchedAccuracy(a, []int{1, 1, 2, 2, 0, 0}); v != 1 {
		t.Errorf("matched accuracy %v, want 1", v)
	}
	// labels {0,0,0,1}, clusters {0,1,1,1}: either matching gets 2 of 4.
	if v := MatchedAccuracy([]int{0, 0, 0, 1}, []int{0, 1, 1, 1}); v != 0.5 {
		t.Errorf("matched accuracy %v, want 0.5", v)
	}
	// labels {0,0,1,1,1}, clusters {1,1,0,0,2}: 1->0, 0->1 gets 4 of 5.
	if v := MatchedAccuracy([]int{0, 0, 1, 1, 1}, []int{1, 1, 0, 0, 2}); v != 0.8 {
		t.Errorf("matched accuracy %v, want 0.8", v)
	}
	// Hungarian against brute force on random 5x5 costs.
	rng := rand.New(rand.NewPCG(1, 1))
	for rep := 0; rep < 20; rep++ {
		c := make([][]float64, 5)
		for i := range c {
			c[i] = make([]float64, 5)
			for j := range c[i] {
				c[i][j] = rng.Float64()
			}
		}
		got, err := Hungarian(c)
		if err != nil {
			t.Fatal(err)
		}
		var gs float64
		for i, j := range got {
			gs += c[i][j]
		}
		best := math.Inf(1)
		var perm func(k int, used []bool, s float64)
		perm = func(k int, used []bool, s float64) {
			if k == 5 {
				best = math.Min(best, s)
				return
			}
			for j := 0; j < 5; j++ {
				if !used[j] {
					used[j] = true
					perm(k+1, used, s+c[k][j])
					used[j] = false
				}
			}
		}
		perm(0, make([]bool, 5), 0)
		if math.Abs(gs-best) > 1e-12 {
			t.Fatalf("Hungarian cost %v, brute force %v", gs, best)
		}
	}
}

// The sampler's draws have the mixture's mean and covariance.
func TestGMMSampleMoments(t *testing.T) {
	x, _ := blobs(3000, [][]float64{{0, 0}, {6, 2}}, 1, 11)
	g, err := FitGMM(t.Context(), x, GMMOptions{K: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	w := g.Weights()
	want := make([]float64, 2)
	for k := 0; k < 2; k++ {
		for j := range want {
			want[j] += w[k] * g.M[k][j]
		}
	}
	// E[zz^T] = sum_k w_k (C_k + m_k m_k^T)
	var wantSecond [2][2]float64
	for k := 0; k < 2; k++ {
		c := g.Covariance(k)
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				wantSecond[i][j] += w[k] * (c.At(i, j) + g.M[k][i]*g.M[k][j])
			}
		}
	}
	s := g.Sample(200000, rand.New(rand.NewPCG(2, 2)))
	var m [2]float64
	var sec [2][2]float64
	for _, z := range s {
		for i := 0; i < 2; i++ {
			m[i] += z[i] / float64(len(s))
			for j := 0; j < 2; j++ {
				sec[i][j] += z[i] * z[j] / float64(len(s))
			}
		}
	}
	for i := 0; i < 2; i++ {
		if math.Abs(m[i]-want[i]) > 0.03 {
			t.Errorf("mean %d: %.4f, want %.4f", i, m[i], want[i])
		}
		for j := 0; j < 2; j++ {
			if math.Abs(sec[i][j]-wantSecond[i][j]) > 0.02*math.Max(1, math.Abs(wantSecond[i][j])) {
				t.Errorf("second moment %d,%d: %.4f, want %.4f", i, j, sec[i][j], wantSecond[i][j])
			}
		}
	}
}

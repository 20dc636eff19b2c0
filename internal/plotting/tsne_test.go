package plotting

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
)

// clusters draws k Gaussian clusters of m points in d dimensions, centres
// 10 standard deviations apart, and returns the points and labels.
func clusters(k, m, d int, seed uint64) ([][]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var pts [][]float32
	var labels []int
	for c := range k {
		centre := make([]float64, d)
		for j := range centre {
			centre[j] = 10 * rng.NormFloat64()
		}
		for range m {
			p := make([]float32, d)
			for j := range p {
				p[j] = float32(centre[j] + rng.NormFloat64())
			}
			pts = append(pts, p)
			labels = append(labels, c)
		}
	}
	return pts, labels
}

func TestConditionalPHitsPerplexity(t *testing.T) {
	pts, _ := clusters(3, 40, 5, 3)
	n := len(pts)
	for _, perp := range []float64{2, 5, 30, 80} {
		for _, i := range []int{0, 17, n - 1} {
			d2 := make([]float64, n)
			for j := range n {
				for k := range pts[i] {
					e := float64(pts[i][k] - pts[j][k])
					d2[j] += e * e
				}
			}
			// The distribution must be exp(-β d2) normalized for some β:
			// log p_j - log p_k = -β (d2_j - d2_k).
			dist := slices.Clone(d2)
			p := conditionalP(d2, i, perp)
			var h, sum float64
			for j, v := range p {
				if j == i {
					if v != 0 {
						t.Fatalf("p_%d|%d = %g, want 0", i, i, v)
					}
					continue
				}
				sum += v
				if v > 0 {
					h -= v * math.Log(v)
				}
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("perplexity %g row %d sums to %g", perp, i, sum)
			}
			if math.Abs(h-math.Log(perp)) > 1e-4 {
				t.Errorf("perplexity %g row %d: entropy %.6f, want log(perp) = %.6f", perp, i, h, math.Log(perp))
			}
			a, b := (i+1)%n, (i+2)%n
			beta := -(math.Log(p[a]) - math.Log(p[b])) / (dist[a] - dist[b])
			c := (i + 3) % n
			if got := math.Log(p[a]) - math.Log(p[c]); math.Abs(got+beta*(dist[a]-dist[c])) > 1e-6*math.Max(1, math.Abs(got)) {
				t.Errorf("perplexity %g row %d: not a Gaussian kernel of the distances", perp, i)
			}
		}
	}
}

// TestGradientMatchesFiniteDifferences checks the analytic gradient
// against central differences of the cost it returns.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	pts, _ := clusters(2, 6, 3, 4)
	P, err := jointP(context.Background(), pts, 4)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	n := len(pts)
	y0 := make([]float64, 2*n)
	for i := range y0 {
		y0[i] = rng.NormFloat64()
	}
	for _, ex := range []float64{1, 4} {
		cost := func(v []float64) float64 {
			y := make([][2]float64, n)
			for i := range y {
				y[i] = [2]float64{v[2*i], v[2*i+1]}
			}
			return gradient(P, y, ex, make([][2]float64, n), true)
		}
		num := fd.Gradient(nil, cost, y0, &fd.Settings{Formula: fd.Central, Step: 1e-5})
		y := make([][2]float64, n)
		for i := range y {
			y[i] = [2]float64{y0[2*i], y0[2*i+1]}
		}
		g := make([][2]float64, n)
		gradient(P, y, ex, g, false)
		for i := range n {
			for k := range 2 {
				if d := math.Abs(g[i][k] - num[2*i+k]); d > 1e-6*math.Max(1, math.Abs(num[2*i+k])) {
					t.Errorf("ex %g: dC/dy[%d][%d] = %g, finite differences %g", ex, i, k, g[i][k], num[2*i+k])
				}
			}
		}
	}
	// At ex = 1 the cost is KL(P || Q), computed directly here.
	y := [][2]float64{}
	for i := range n {
		y = append(y, [2]float64{y0[2*i], y0[2*i+1]})
	}
	var Z float64
	for i := range n {
		for j := range n {
			if i != j {
				Z += 1 / (1 + sq(y[i][0]-y[j][0]) + sq(y[i][1]-y[j][1]))
			}
		}
	}
	var kl float64
	for i := range n {
		for j := range n {
			if p := float64(P[i*n+j]); i != j && p > 0 {
				q := 1 / (1 + sq(y[i][0]-y[j][0]) + sq(y[i][1]-y[j][1])) / Z
				kl += p * math.Log(p/q)
			}
		}
	}
	if got := gradient(P, y, 1, make([][2]float64, n), true); math.Abs(got-kl) > 1e-6 /* P is float32: Σp = 1 to 1e-7 */ {
		t.Errorf("cost %g, KL(P||Q) %g", got, kl)
	}
}

func sq(v float64) float64 { return v * v }

// knnAgreement is the fraction of points whose k nearest map neighbours
// mostly share their label.
func knnAgreement(y [][2]float64, labels []int, k int) float64 {
	agree := 0
	for i := range y {
		idx := make([]int, 0, len(y)-1)
		for j := range y {
			if j != i {
				idx = append(idx, j)
			}
		}
		d := func(j int) float64 { return sq(y[i][0]-y[j][0]) + sq(y[i][1]-y[j][1]) }
		sort.Slice(idx, func(a, b int) bool { return d(idx[a]) < d(idx[b]) })
		same := 0
		for _, j := range idx[:k] {
			if labels[j] == labels[i] {
				same++
			}
		}
		if 2*same > k {
			agree++
		}
	}
	return float64(agree) / float64(len(y))
}

func TestTSNESeparatesClustersReproducibly(t *testing.T) {
	pts, labels := clusters(5, 60, 10, 6)
	ts := TSNE{Perplexity: 20, Iters: 400, Seed: 7}
	var kls []float64
	ts.Progress = func(_ int, kl float64) { kls = append(kls, kl) }
	y, err := ts.Embed(context.Background(), pts)
	if err != nil {
		t.Fatal(err)
	}
	if a := knnAgreement(y, labels, 10); a < 0.95 {
		t.Errorf("10-NN label agreement %.3f in the map, want > 0.95", a)
	}
	// Past early exaggeration the cost (then KL(P||Q)) goes down.
	if last, mid := kls[len(kls)-1], kls[2]; !(last < mid) {
		t.Errorf("KL %g at the end, %g at step 100; want a decrease (%v)", last, mid, kls)
	}
	ts.Progress = nil
	again, err := ts.Embed(context.Background(), pts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(y, again) {
		t.Error("same seed, different map")
	}
	ts.Seed = 8
	other, err := ts.Embed(context.Background(), pts)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(y, other) {
		t.Error("another seed gave the same map")
	}
	// The uninformative control: shuffled labels do not agree.
	shuffled := slices.Clone(labels)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if a := knnAgreement(y, shuffled, 10); a > 0.5 {
		t.Errorf("agreement with shuffled labels %.3f; the measure cannot tell", a)
	}
}

func TestTSNECancelAndBadInput(t *testing.T) {
	pts, _ := clusters(2, 30, 3, 9)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (TSNE{}).Embed(ctx, pts); err != context.Canceled {
		t.Errorf("cancelled: err = %v", err)
	}
	for _, tc := range []struct {
		ts   TSNE
		pts  [][]float32
		want string
	}{
		{TSNE{}, pts[:2], "at least 3"},
		{TSNE{Perplexity: 100}, pts, "perplexity 100"},
		{TSNE{Iters: -1}, pts, "want >= 0"},
		{TSNE{Perplexity: 2}, append(slices.Clone(pts[:5]), []float32{1}), "point 5 has 1"},
		{TSNE{Perplexity: 2}, append(slices.Clone(pts[:5]), []float32{float32(math.NaN()), 0, 0}), "not finite"},
	} {
		if _, err := tc.ts.Embed(context.Background(), tc.pts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// BenchmarkTSNEStep times one gradient step of t-SNE on 2000 points, exact
// and Barnes-Hut (a 1000-step map costs about 1000 of these).
func BenchmarkTSNEStep(b *testing.B) {
	pts, _ := clusters(10, 200, 20, 11)
	P, err := jointP(context.Background(), pts, 30)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	y := make([][2]float64, len(pts))
	for i := range y {
		y[i] = [2]float64{30 * rng.NormFloat64(), 30 * rng.NormFloat64()} // the spread of a finished map
	}
	g := make([][2]float64, len(pts))
	b.Run("exact", func(b *testing.B) {
		for range b.N {
			gradient(P, y, 1, g, false)
		}
	})
	sp, err := sparseJointP(context.Background(), pts, 30)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("barnes-hut-0.5", func(b *testing.B) {
		for range b.N {
			bhGradient(sp, y, 1, 0.5, g, false)
		}
	})
}

// TestBarnesHutApproximatesExactGradient compares the Barnes-Hut gradient
// with the exact one on the same (sparse) affinities: exact at theta 0,
// close at theta 0.5.
func TestBarnesHutApproximatesExactGradient(t *testing.T) {
	pts, _ := clusters(4, 50, 5, 12)
	n := len(pts)
	sp, err := sparseJointP(context.Background(), pts, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The same affinities as a dense matrix, for the exact gradient.
	dense := make([]float32, n*n)
	var sum float64
	for i := range n {
		for q := sp.row[i]; q < sp.row[i+1]; q++ {
			j := int(sp.col[q])
			dense[i*n+j] = float32(sp.val[q])
			sum += sp.val[q]
			if i == j {
				t.Fatalf("p_%d%d in the sparse rows", i, i)
			}
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("sparse p sums to %g, want 1", sum)
	}
	for i := range n { // symmetric
		for j := range n {
			if dense[i*n+j] != dense[j*n+i] {
				t.Fatalf("p_%d,%d = %g but p_%d,%d = %g", i, j, dense[i*n+j], j, i, dense[j*n+i])
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 3))
	y := make([][2]float64, n)
	for i := range y {
		y[i] = [2]float64{5 * rng.NormFloat64(), 5 * rng.NormFloat64()}
	}
	y[7] = y[3] // coincident points
	exact := make([][2]float64, n)
	gradient(dense, y, 1, exact, false)
	for _, tc := range []struct{ theta, tol float64 }{{0, 1e-5}, {0.5, 0.05}} {
		bh := make([][2]float64, n)
		bhGradient(sp, y, 1, tc.theta, bh, false)
		var num, den float64
		for i := range n {
			for k := range 2 {
				num += sq(bh[i][k] - exact[i][k])
				den += sq(exact[i][k])
			}
		}
		if rel := math.Sqrt(num / den); rel > tc.tol {
			t.Errorf("theta %g: relative error of the gradient %.2g, want < %g", tc.theta, rel, tc.tol)
		} else {
			t.Logf("theta %g: relative error of the gradient %.2g", tc.theta, rel)
		}
	}
}

func TestBarnesHutSeparatesClusters(t *testing.T) {
	pts, labels := clusters(5, 80, 10, 13)
	ts := TSNE{Perplexity: 20, Iters: 400, Seed: 7, Theta: 0.5}
	y, err := ts.Embed(context.Background(), pts)
	if err != nil {
		t.Fatal(err)
	}
	if a := knnAgreement(y, labels, 10); a < 0.95 {
		t.Errorf("10-NN label agreement %.3f in the Barnes-Hut map, want > 0.95", a)
	}
	again, err := ts.Embed(context.Background(), pts)
	if err != nil || !slices.Equal(y, again) {
		t.Errorf("same seed, different Barnes-Hut map (%v)", err)
	}
	if _, err := (TSNE{Theta: 1.5}).Embed(context.Background(), pts); err == nil || !strings.Contains(err.Error(), "theta") {
		t.Errorf("theta 1.5: err = %v", err)
	}
}

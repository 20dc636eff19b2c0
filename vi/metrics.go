package vi

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// AdjustedRand is the adjusted Rand index of two labelings (Hubert & Arabie
// 1985): 1 for identical partitions up to relabeling, about 0 for chance.
func AdjustedRand(a, b []int) float64 {
	if len(a) != len(b) || len(a) < 2 {
		return math.NaN()
	}
	type pair struct{ i, j int }
	nij := map[pair]int{}
	ai, bj := map[int]int{}, map[int]int{}
	for k := range a {
		nij[pair{a[k], b[k]}]++
		ai[a[k]]++
		bj[b[k]]++
	}
	c2 := func(n int) float64 { return float64(n) * float64(n-1) / 2 }
	var sij, sa, sb float64
	for _, v := range nij {
		sij += c2(v)
	}
	for _, v := range ai {
		sa += c2(v)
	}
	for _, v := range bj {
		sb += c2(v)
	}
	exp := sa * sb / c2(len(a))
	mx := (sa + sb) / 2
	if mx == exp {
		return 1
	}
	return (sij - exp) / (mx - exp)
}

// Hungarian solves the assignment problem: it returns, for each row of the
// n x m cost matrix (n <= m), the column that minimizes the total cost
// (Kuhn-Munkres with potentials, O(n^2 m)).
func Hungarian(cost [][]float64) ([]int, error) {
	n := len(cost)
	if n == 0 {
		return nil, nil
	}
	m := len(cost[0])
	if m < n {
		return nil, fmt.Errorf("vi: Hungarian: %d rows, %d columns; want rows <= columns", n, m)
	}
	u, v := make([]float64, n+1), make([]float64, m+1)
	p, way := make([]int, m+1), make([]int, m+1)
	for i := 1; i <= n; i++ {
		if len(cost[i-1]) != m {
			return nil, fmt.Errorf("vi: Hungarian: row %d has %d columns, want %d", i-1, len(cost[i-1]), m)
		}
		p[0] = i
		j0 := 0
		minv := make([]float64, m+1)
		used := make([]bool, m+1)
		for j := range minv {
			minv[j] = math.Inf(1)
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], math.Inf(1), 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := cost[i0-1][j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	ans := make([]int, n)
	for j := 1; j <= m; j++ {
		if p[j] > 0 {
			ans[p[j]-1] = j - 1
		}
	}
	return ans, nil
}

// MatchedAccuracy is the fraction of points whose cluster, mapped to a class
// by the one-to-one matching that maximizes agreement (Hungarian), equals
// their label. Clusters beyond the number of classes match nothing.
func MatchedAccuracy(labels, clusters []int) float64 {
	nl, nc := 0, 0
	for i := range labels {
		nl = max(nl, labels[i]+1)
		nc = max(nc, clusters[i]+1)
	}
	size := max(nl, nc)
	cost := make([][]float64, size)
	for i := range cost {
		cost[i] = make([]float64, size)
	}
	for i := range labels {
		cost[clusters[i]][labels[i]]--
	}
	match, err := Hungarian(cost)
	if err != nil {
		return math.NaN()
	}
	var hit float64
	for c, l := range match {
		hit -= cost[c][l]
	}
	return hit / float64(len(labels))
}

// KMeans runs Lloyd's algorithm from k-means++ seeds and returns the centers
// and assignments; it stops when no assignment changes or after maxIter.
func KMeans(x [][]float64, k, maxIter int, rng *rand.Rand) ([][]float64, []int, error) {
	if k < 1 || k > len(x) {
		return nil, nil, fmt.Errorf("vi: k-means with k = %d on %d points", k, len(x))
	}
	d := len(x[0])
	c := kmeansPP(x, k, rng)
	assign := make([]int, len(x))
	for i := range assign {
		assign[i] = -1
	}
	for it := 0; it < maxIter; it++ {
		changed := false
		for i, p := range x {
			best, arg := math.Inf(1), 0
			for j := range c {
				if s := sqDist(p, c[j]); s < best {
					best, arg = s, j
				}
			}
			if assign[i] != arg {
				assign[i], changed = arg, true
			}
		}
		if !changed {
			break
		}
		cnt := make([]int, k)
		for j := range c {
			c[j] = make([]float64, d)
		}
		for i, p := range x {
			cnt[assign[i]]++
			for t, v := range p {
				c[assign[i]][t] += v
			}
		}
		for j := range c {
			if cnt[j] == 0 { // an empty cluster restarts at a random point
				copy(c[j], x[rng.IntN(len(x))])
				continue
			}
			for t := range c[j] {
				c[j][t] /= float64(cnt[j])
			}
		}
	}
	return c, assign, nil
}

func sqDist(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

func kmeansPP(x [][]float64, k int, rng *rand.Rand) [][]float64 {
	c := [][]float64{append([]float64(nil), x[rng.IntN(len(x))]...)}
	dist := make([]float64, len(x))
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	for len(c) < k {
		var tot float64
		for i, p := range x {
			dist[i] = math.Min(dist[i], sqDist(p, c[len(c)-1]))
			tot += dist[i]
		}
		j := rng.IntN(len(x))
		if tot > 0 {
			u := rng.Float64() * tot
			for j = 0; j < len(x)-1; j++ {
				u -= dist[j]
				if u <= 0 {
					break
				}
			}
		}
		c = append(c, append([]float64(nil), x[j]...))
	}
	return c
}

package plotting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// TSNE holds the settings of exact t-SNE (van der Maaten & Hinton 2008).
// The zero value of a field means the paper's setting.
type TSNE struct {
	Perplexity   float64 // effective number of neighbours; 0 means 30
	Iters        int     // gradient steps; 0 means 1000
	LearningRate float64 // 0 means 100
	Seed         uint64  // of the initial map points
	// Theta > 0 selects Barnes-Hut t-SNE (van der Maaten 2014): affinities
	// over the 3*perplexity nearest neighbours only, and the repulsion of a
	// quadtree cell whose side is below Theta times its distance taken at
	// its centre of mass; O(n log n) per step. 0 is exact t-SNE.
	Theta float64
	// Progress, when set, is called every 50 iterations after early
	// exaggeration (and at the last) with the iteration number and
	// KL(P || Q) at it; during exaggeration the cost is not a KL (P sums
	// to 4) and is not reported.
	Progress func(iter int, kl float64)
}

// MaxTSNEPoints bounds the points of t-SNE: exact affinities take 4 n²
// bytes (400 MB at the bound) and every step n² work; Barnes-Hut's
// neighbour search is n² once.
const MaxTSNEPoints = 10000

// Paper schedule: p_ij exaggerated 4 times for the first 50 steps, momentum
// 0.5 for the first 250 steps and 0.8 after, the adaptive gains of Jacobs
// (1988) with a floor of 0.01, initial points N(0, 1e-4 I).
const (
	exaggeration      = 4
	exaggerationIters = 50
	momentumSwitch    = 250
	minGain           = 0.01
)

// Embed maps points (n x d) to two dimensions by minimizing
// KL(P || Q) over the map points y, where P holds the input affinities
// p_ij = (p_j|i + p_i|j) / 2n, p_j|i ∝ exp(-β_i |x_i - x_j|²) with β_i set
// so that the entropy of p_·|i is log(perplexity), and Q the Student-t
// affinities q_ij ∝ (1 + |y_i - y_j|²)^-1. The result depends only on the
// points and the settings (the work is split over cores by rows, each
// summed in a fixed order). It returns ctx's error if ctx ends first.
func (t TSNE) Embed(ctx context.Context, points [][]float32) ([][2]float64, error) {
	n := len(points)
	perp := orDefault(t.Perplexity, 30)
	switch {
	case n < 3:
		return nil, fmt.Errorf("t-SNE: %d points, want at least 3", n)
	case n > MaxTSNEPoints:
		return nil, fmt.Errorf("t-SNE: %d points, at most %d (exact t-SNE needs n² memory and time)", n, MaxTSNEPoints)
	case !(perp >= 1) || perp > float64(n-1):
		return nil, fmt.Errorf("t-SNE: perplexity %g, want 1 to %d (the number of other points)", perp, n-1)
	case !(t.Theta >= 0) || t.Theta > 1:
		return nil, fmt.Errorf("t-SNE: theta %g, want 0 (exact) to 1", t.Theta)
	case t.Iters < 0 || t.LearningRate < 0 || math.IsNaN(t.LearningRate):
		return nil, fmt.Errorf("t-SNE: iterations %d and learning rate %g, want >= 0", t.Iters, t.LearningRate)
	}
	d := len(points[0])
	for i, p := range points {
		if len(p) != d {
			return nil, fmt.Errorf("t-SNE: point %d has %d coordinates, want %d", i, len(p), d)
		}
		for _, v := range p {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("t-SNE: point %d is not finite", i)
			}
		}
	}
	var P []float32
	var sp *sparseP
	var err error
	if t.Theta > 0 {
		sp, err = sparseJointP(ctx, points, perp)
	} else {
		P, err = jointP(ctx, points, perp)
	}
	if err != nil {
		return nil, err
	}
	iters := t.Iters
	if iters == 0 {
		iters = 1000
	}
	eta := orDefault(t.LearningRate, 100)
	rng := rand.New(rand.NewPCG(t.Seed, 0x74736e65))
	y := make([][2]float64, n)
	for i := range y {
		y[i] = [2]float64{1e-2 * rng.NormFloat64(), 1e-2 * rng.NormFloat64()}
	}
	vel := make([][2]float64, n)
	gains := make([][2]float64, n)
	for i := range gains {
		gains[i] = [2]float64{1, 1}
	}
	grad := make([][2]float64, n)
	for it := range iters {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ex := 1.0
		if it < exaggerationIters {
			ex = exaggeration
		}
		mom := 0.5
		if it >= momentumSwitch {
			mom = 0.8
		}
		report := t.Progress != nil && ex == 1 && (it%50 == 0 || it == iters-1)
		var kl float64 // the cost costs as much as the gradient: only when reported
		if sp != nil {
			kl = bhGradient(sp, y, ex, t.Theta, grad, report)
		} else {
			kl = gradient(P, y, ex, grad, report)
		}
		if report {
			t.Progress(it, kl)
		}
		for i := range y {
			for k := range 2 {
				// Jacobs' gains: grow where the gradient keeps its sign
				// against the velocity, shrink where it flips.
				if (grad[i][k] > 0) != (vel[i][k] > 0) {
					gains[i][k] += 0.2
				} else {
					gains[i][k] = max(gains[i][k]*0.8, minGain)
				}
				vel[i][k] = mom*vel[i][k] - eta*gains[i][k]*grad[i][k]
				y[i][k] += vel[i][k]
			}
		}
		// Keep the map centred; the cost is translation invariant.
		var c [2]float64
		for i := range y {
			c[0] += y[i][0]
			c[1] += y[i][1]
		}
		for i := range y {
			y[i][0] -= c[0] / float64(n)
			y[i][1] -= c[1] / float64(n)
		}
	}
	for i := range y {
		if math.IsNaN(y[i][0]) || math.IsNaN(y[i][1]) {
			return nil, errors.New("t-SNE diverged; try a smaller learning rate")
		}
	}
	return y, nil
}

// jointP returns the symmetric affinities p_ij as an n x n row-major matrix.
func jointP(ctx context.Context, points [][]float32, perp float64) ([]float32, error) {
	n := len(points)
	P := make([]float32, n*n) // p_j|i first, symmetrized in place: one n x n matrix
	err := parallelRows(ctx, n, func(i int, d2 []float64) {
		for j := range n {
			var s float64
			for k, v := range points[i] {
				e := float64(v) - float64(points[j][k])
				s += e * e
			}
			d2[j] = s
		}
		for j, v := range conditionalP(d2, i, perp) {
			P[i*n+j] = float32(v)
		}
	})
	if err != nil {
		return nil, err
	}
	for i := range n {
		for j := i; j < n; j++ {
			v := (P[i*n+j] + P[j*n+i]) / float32(2*n)
			P[i*n+j], P[j*n+i] = v, v
		}
	}
	return P, nil
}

// conditionalP returns p_j|i = exp(-β d2_j) / Σ_{k≠i} exp(-β d2_k) (0 at
// j = i), with β found by bisection so that the entropy -Σ p log p is
// log(perp) within 1e-5 nats. d2 is overwritten.
func conditionalP(d2 []float64, i int, perp float64) []float64 {
	target := math.Log(perp)
	// Shift by the nearest distance so that exp never underflows to all
	// zeros; the shift cancels in the normalization.
	nearest := math.Inf(1)
	for j, v := range d2 {
		if j != i {
			nearest = min(nearest, v)
		}
	}
	p := make([]float64, len(d2))
	beta, lo, hi := 1.0, 0.0, math.Inf(1)
	for range 200 {
		var sum, dot float64
		for j, v := range d2 {
			if j == i {
				p[j] = 0
				continue
			}
			p[j] = math.Exp(-beta * (v - nearest))
			sum += p[j]
			dot += p[j] * (v - nearest)
		}
		// H = log Σ + β E[d2 - nearest].
		h := math.Log(sum) + beta*dot/sum
		for j := range p {
			p[j] /= sum
		}
		if math.Abs(h-target) < 1e-5 {
			break
		}
		if h > target { // too flat: sharpen
			lo = beta
			if math.IsInf(hi, 1) {
				beta *= 2
			} else {
				beta = (beta + hi) / 2
			}
		} else {
			hi = beta
			beta = (beta + lo) / 2
		}
	}
	return p
}

// gradient writes dC/dy_i = 4 Σ_j (ex p_ij - q_ij)(1 + |y_i - y_j|²)^-1 (y_i - y_j)
// into grad and returns the cost it is the gradient of,
// C = Σ ex p_ij log(ex p_ij) - Σ ex p_ij log w_ij + log Z, which is
// KL(P || Q) for ex = 1 (during early exaggeration, ex > 1, Q is still
// normalized but P is not).
// With w_ij = (1 + |y_i - y_j|²)^-1 and Z = Σ w, each row needs only
// Σ_j w_ij, Σ_j p_ij w_ij (y_i - y_j) and Σ_j w_ij² (y_i - y_j), in one pass.
func gradient(P []float32, y [][2]float64, ex float64, grad [][2]float64, wantCost bool) float64 {
	n := len(y)
	zRow := make([]float64, n)
	a := make([][2]float64, n)
	b := make([][2]float64, n)
	_ = parallelRows(context.Background(), n, func(i int, _ []float64) {
		yi := y[i]
		var z, a0, a1, b0, b1 float64
		row := P[i*n : (i+1)*n]
		for j := range n {
			if j == i {
				continue
			}
			d0, d1 := yi[0]-y[j][0], yi[1]-y[j][1]
			w := 1 / (1 + d0*d0 + d1*d1)
			z += w
			pw := float64(row[j]) * w
			a0 += pw * d0
			a1 += pw * d1
			ww := w * w
			b0 += ww * d0
			b1 += ww * d1
		}
		zRow[i], a[i], b[i] = z, [2]float64{a0, a1}, [2]float64{b0, b1}
	})
	var Z float64
	for _, z := range zRow {
		Z += z
	}
	for i := range grad {
		grad[i][0] = 4 * (ex*a[i][0] - b[i][0]/Z)
		grad[i][1] = 4 * (ex*a[i][1] - b[i][1]/Z)
	}
	if !wantCost {
		return math.NaN()
	}
	// The cost, for progress and tests: Σ p log p - Σ p log w + log Z (Σ p = 1).
	var c float64
	for i := range n {
		for j := range n {
			p := ex * float64(P[i*n+j])
			if j == i || p == 0 {
				continue
			}
			d0, d1 := y[i][0]-y[j][0], y[i][1]-y[j][1]
			c += p * (math.Log(p) + math.Log(1+d0*d0+d1*d1))
		}
	}
	return c + math.Log(Z)
}

// parallelRows calls f for rows 0..n-1 over the cores, each worker with a
// scratch slice of n float64s. It stops early, returning ctx's error, when
// ctx ends.
func parallelRows(ctx context.Context, n int, f func(i int, scratch []float64)) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := make([]float64, n)
			for i := range next {
				if i%64 == 0 && ctx.Err() != nil {
					return
				}
				f(i, scratch)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

package main

// vigmm: the two halves joined. A VAE is trained on Fashion-MNIST; the
// variational Bayesian GMM of package vi (Bishop 2006, 10.2) is fitted to
// the posterior means of its training images, and used
//
//   (a) to cluster the test set without labels: accuracy under the best
//       one-to-one matching of clusters to classes (Hungarian) and the
//       adjusted Rand index, beside k-means on the same codes;
//   (b) as a post-hoc sampler for generation, z ~ the fitted mixture
//       (pythae's GMM sampler, Chadebec et al. 2022), against z ~ N(0, I):
//       the Fréchet distance between generated and test images in the
//       space of the test images' top principal components (PCA-FD; not
//       the Inception FID, which needs a network this project does not ship),
//       with decode(encode(x)) of the test images as the floor any latent
//       sampler can reach with this decoder.
//
// It also times SVI (Hoffman et al. 2013) against full-batch CAVI on the
// same codes: computation seconds until the ELBO comes within 1, 0.1 and
// 0.01 nats per code of CAVI's final value.
//
// The VAE is reached through its public API only (Encode, Decode).
//
// Full run: all 60,000 training images, 10 epochs, reference network
// (784-400-20-400-784), 10,000 test images, K = 10 (and 20 with pruning), 3 seeds,
// at most 150 CAVI sweeps; SVI with batches of 1,000 for 2,000 steps.
// Quick run: 1,000 training images, 1 epoch, 500 test images, 2 seeds.

import (
	"context"
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"math"
	"math/rand/v2"
	"path/filepath"

	"sort"
	"strings"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/imgrid"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/vi"
	"gonum.org/v1/gonum/mat"
)

type vigmmSize struct {
	TrainImages, Epochs, TestImages int
	K, Seeds                        int
	MaxIter                         int // CAVI sweeps at most
	SVIBatch, SVISteps, SVIEvery    int
	Samples                         int // generated images per sampler for the PCA-FD
	PCA                             int // principal components of the PCA-FD
}

var (
	vigmmFull  = vigmmSize{TrainImages: 60000, Epochs: 10, TestImages: 10000, K: 10, Seeds: 3, MaxIter: 150, SVIBatch: 1000, SVISteps: 2000, SVIEvery: 40, Samples: 10000, PCA: 50}
	vigmmQuick = vigmmSize{TrainImages: 1000, Epochs: 1, TestImages: 500, K: 10, Seeds: 2, MaxIter: 40, SVIBatch: 100, SVISteps: 60, SVIEvery: 10, Samples: 500, PCA: 20}
)

func init() {
	register(experiment{
		name:    "vigmm",
		summary: "a variational Bayesian GMM on a VAE's latent codes: clustering without labels (vs k-means) and post-hoc sampling (vs the prior); SVI vs CAVI time",
		run:     runVIGMM,
	})
}

// encodeAll returns the posterior means of x as float64, in chunks.
func encodeAll(m *amortized.Model, x [][]float32) ([][]float64, error) {
	out := make([][]float64, 0, len(x))
	for i := 0; i < len(x); i += 1000 {
		z, err := m.Encode(x[i:min(i+1000, len(x))])
		if err != nil {
			return nil, err
		}
		for _, r := range z {
			v := make([]float64, len(r))
			for j, f := range r {
				v[j] = float64(f)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func decodeAll(m *amortized.Model, z [][]float64) ([][]float32, error) {
	var out [][]float32
	for i := 0; i < len(z); i += 1000 {
		chunk := z[i:min(i+1000, len(z))]
		zz := make([][]float32, len(chunk))
		for k, r := range chunk {
			zz[k] = make([]float32, len(r))
			for j, v := range r {
				zz[k][j] = float32(v)
			}
		}
		x, err := m.Decode(zz)
		if err != nil {
			return nil, err
		}
		out = append(out, x...)
	}
	return out, nil
}

type clusterScore struct {
	name        string
	k           string
	active, acc []float64
	ari         []float64
}

func meanSD(v []float64) string {
	if len(v) < 2 {
		return f3(mean(v))
	}
	m := mean(v)
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return fmt.Sprintf("%.3f ± %.3f", m, math.Sqrt(s/float64(len(v)-1)))
}

func runVIGMM(ctx context.Context, e *env) (string, error) {
	sz := vigmmFull
	if e.Quick {
		sz = vigmmQuick
	}
	const name = "fashion-mnist"
	ds, err := loadDataset(e, name, sz.TrainImages, sz.TestImages)
	if err != nil {
		return "", err
	}
	raw, err := data.Load(name, data.LoadOptions{Dir: e.Data, Offline: true})
	if err != nil {
		return "", err
	}
	labels := make([]int, sz.TestImages)
	for i := range labels {
		labels[i] = int(raw.Test.Labels[i])
	}
	tr, err := trainModel(ctx, e, "vigmm: vae", ds, modelConfig(ds, "diag"), amortized.TrainOptions{Epochs: sz.Epochs}, e.Seed, amortized.Hooks{})
	if err != nil {
		return "", err
	}
	if tr.Diverged != nil {
		return "", fmt.Errorf("the VAE diverged: %v", tr.Diverged)
	}
	m := tr.Model
	// training images binarized once, as the test images are
	trainL, err := data.NewLoader(ds.Train, ds.TrainIdx, data.LoaderOptions{Batch: 500, Seed: runinfo.EvalBinarizeSeed, Binarize: ds.Bin})
	if err != nil {
		return "", err
	}
	trainX, err := trainL.Rows(0)
	if err != nil {
		return "", err
	}
	zTrain, err := encodeAll(m, trainX)
	if err != nil {
		return "", err
	}
	zTest, err := encodeAll(m, ds.TestX)
	if err != nil {
		return "", err
	}
	e.Logf("vigmm: %d training and %d test codes of dimension %d", len(zTrain), len(zTest), len(zTrain[0]))

	// (a) clustering
	gmm10 := &clusterScore{name: "VBGMM (CAVI), alpha0 = 1", k: fmt.Sprint(sz.K)}
	gmmPrune := &clusterScore{name: "VBGMM (CAVI), alpha0 = 0.001", k: fmt.Sprint(2 * sz.K)}
	km := &clusterScore{name: "k-means (Lloyd, k-means++ seeds)", k: fmt.Sprint(sz.K)}
	var sampler *vi.GMM
	var caviTrace vi.Trace
	for s := 0; s < sz.Seeds; s++ {
		seed := e.Seed + uint64(s)
		for _, c := range []struct {
			score  *clusterScore
			k      int
			alpha0 float64
		}{{gmm10, sz.K, 1}, {gmmPrune, 2 * sz.K, 1e-3}} {
			start := time.Now()
			var tr vi.Trace
			g, err := vi.FitGMM(ctx, zTrain, vi.GMMOptions{K: c.k, Alpha0: c.alpha0, Seed: seed, MaxIter: sz.MaxIter, Tol: 1e-8,
				Progress: func(it int, elbo float64) {
					tr.Step = append(tr.Step, it+1)
					tr.ELBO = append(tr.ELBO, elbo)
					tr.Seconds = append(tr.Seconds, time.Since(start).Seconds())
				}})
			if err != nil {
				return "", err
			}
			pred, err := g.Predict(zTest)
			if err != nil {
				return "", err
			}
			c.score.active = append(c.score.active, float64(len(g.Active())))
			c.score.acc = append(c.score.acc, vi.MatchedAccuracy(labels, pred))
			c.score.ari = append(c.score.ari, vi.AdjustedRand(labels, pred))
			if s == 0 && c.score == gmm10 {
				sampler, caviTrace = g, tr
			}
			e.Logf("vigmm: seed %d: %s K=%d: %d sweeps in %.1fs, %d active, accuracy %.3f", s, c.score.name, c.k, g.Iters, time.Since(start).Seconds(), len(g.Active()), c.score.acc[len(c.score.acc)-1])
		}
		cent, _, err := vi.KMeans(zTrain, sz.K, 300, rand.New(rand.NewPCG(seed, 5)))
		if err != nil {
			return "", err
		}
		pred := make([]int, len(zTest))
		for i, z := range zTest {
			best := math.Inf(1)
			for k, c := range cent {
				var d float64
				for j := range z {
					d += (z[j] - c[j]) * (z[j] - c[j])
				}
				if d < best {
					best, pred[i] = d, k
				}
			}
		}
		km.active = append(km.active, float64(sz.K))
		km.acc = append(km.acc, vi.MatchedAccuracy(labels, pred))
		km.ari = append(km.ari, vi.AdjustedRand(labels, pred))
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}

	// SVI against CAVI, same prior and seed as the sampler's fit
	_, sviTrace, err := vi.FitGMMSVI(ctx, zTrain, vi.GMMOptions{K: sz.K, Alpha0: 1, Seed: e.Seed},
		vi.SVIOptions{Batch: sz.SVIBatch, Steps: sz.SVISteps, EvalEvery: sz.SVIEvery, Seed: e.Seed})
	if err != nil {
		return "", err
	}
	n := float64(len(zTrain))
	final := caviTrace.ELBO[len(caviTrace.ELBO)-1]
	tols := []float64{1, 0.1, 0.01}
	// reach is the first trace point within tol nats per code of CAVI's final ELBO.
	reach := func(t vi.Trace, tol float64) (float64, int, bool) {
		for i, v := range t.ELBO {
			if v >= final-tol*n {
				return t.Seconds[i], t.Step[i], true
			}
		}
		return t.Seconds[len(t.Seconds)-1], t.Step[len(t.Step)-1], false
	}

	// (b) sampling
	rng := rand.New(rand.NewPCG(e.Seed, 77))
	zg := sampler.Sample(sz.Samples, rng)
	zp := make([][]float64, sz.Samples)
	for i := range zp {
		zp[i] = make([]float64, len(zTrain[0]))
		for j := range zp[i] {
			zp[i][j] = rng.NormFloat64()
		}
	}
	xg, err := decodeAll(m, zg)
	if err != nil {
		return "", err
	}
	xp, err := decodeAll(m, zp)
	if err != nil {
		return "", err
	}
	xr, err := decodeAll(m, zTest)
	if err != nil {
		return "", err
	}
	gray := make([][]float64, sz.TestImages)
	for i := range gray {
		px := raw.Test.Images.Image(i)
		gray[i] = make([]float64, len(px))
		for j, v := range px {
			gray[i][j] = float64(v) / 255
		}
	}
	pca, err := newPCA(gray, sz.PCA)
	if err != nil {
		return "", err
	}
	ref := pca.project64(gray)
	fdPrior, err := frechet(ref, pca.project32(xp))
	if err != nil {
		return "", err
	}
	fdGMM, err := frechet(ref, pca.project32(xg))
	if err != nil {
		return "", err
	}
	fdRec, err := frechet(ref, pca.project32(xr))
	if err != nil {
		return "", err
	}
	// the split-half floor: two halves of the test set against each other
	half := len(ref) / 2
	fdHalf, err := frechet(ref[:half], ref[half:])
	if err != nil {
		return "", err
	}

	// figures
	grid := imgrid.Grid{Rows: ds.Train.Rows, Cols: ds.Train.Cols, Columns: 10, Pad: 2, Scale: 2, Background: 96}
	nShow := min(100, sz.Samples)
	if err := grid.WritePNG(filepath.Join(e.Out, "samples-prior.png"), xp[:nShow]); err != nil {
		return "", err
	}
	if err := grid.WritePNG(filepath.Join(e.Out, "samples-gmm.png"), xg[:nShow]); err != nil {
		return "", err
	}
	// component means decoded, by weight
	w := sampler.Weights()
	order := make([]int, sampler.K)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return w[order[a]] > w[order[b]] })
	var means [][]float64
	for _, k := range order {
		means = append(means, sampler.M[k])
	}
	xm, err := decodeAll(m, means)
	if err != nil {
		return "", err
	}
	if err := grid.WritePNG(filepath.Join(e.Out, "components.png"), xm); err != nil {
		return "", err
	}
	perCode := func(t vi.Trace) ([]float64, []float64) {
		x, y := make([]float64, len(t.ELBO)), make([]float64, len(t.ELBO))
		for i := range t.ELBO {
			x[i], y[i] = t.Seconds[i], t.ELBO[i]/n
		}
		return x, y
	}
	cx, cy := perCode(caviTrace)
	sx, sy := perCode(*sviTrace)
	fig, err := writeFigure(e, "svi-cavi.png", "ELBO per code against computation seconds, CAVI and SVI",
		plotting.Panel{Title: "VBGMM on the latent codes", XLabel: "seconds of computation", YLabel: "ELBO per code (nats)",
			Series: []plotting.Series{series("CAVI (full batch)", cx, cy), series(fmt.Sprintf("SVI (batch %d)", sz.SVIBatch), sx, sy)}})
	if err != nil {
		return "", err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "VAE: reference network (784-400-%d-400-784, ReLU, Bernoulli, diagonal Gaussian q), %s, Adam %g, batch %d; final test ELBO %.2f nats. "+
		"Codes: posterior means (Model.Encode) of the %s training images and %s test images, binarized once.\n\n",
		len(zTrain[0]), plural(sz.Epochs, "epoch"), learnRate, batchSize, tr.Curve[len(tr.Curve)-1].TestELBO, commas(sz.TrainImages), commas(sz.TestImages))
	b.WriteString("## (a) Clustering the test set without labels\n\n")
	fmt.Fprintf(&b, "Fitted on the training codes, applied to the test codes; mean ± sd over %d seeds. Accuracy: the best one-to-one matching of clusters to the 10 classes (Hungarian); "+
		"clusters beyond 10 match no class and count as errors.\n\n", sz.Seeds)
	t := newTable("method", "K", "active components", "test accuracy", "adjusted Rand index")
	for _, c := range []*clusterScore{gmm10, gmmPrune, km} {
		t.add(c.name, c.k, meanSD(c.active), meanSD(c.acc), meanSD(c.ari))
	}
	b.WriteString(t.String())
	b.WriteString("\nDecoded means of the K = " + fmt.Sprint(sz.K) + " VBGMM components (first seed), heaviest first:\n\n![decoded component means](components.png)\n\n")
	b.WriteString("## (b) Post-hoc sampling\n\n")
	fmt.Fprintf(&b, "%s images per sampler (decoder means), against the %s gray-level test images, in the space of their top %d principal components (PCA-FD, lower is better).\n\n",
		commas(sz.Samples), commas(sz.TestImages), sz.PCA)
	t = newTable("z from", "PCA-FD")
	t.add("prior N(0, I)", f2(fdPrior))
	t.add(fmt.Sprintf("VBGMM, K = %d (plug-in weights, means and covariances)", sz.K), f2(fdGMM))
	t.add("q(z|x) means of the test images (reconstructions: the decoder's floor)", f2(fdRec))
	t.add("half of the test set against the other half (sampling noise)", f2(fdHalf))
	b.WriteString(t.String())
	b.WriteString("\nPrior samples:\n\n![samples with z from the prior](samples-prior.png)\n\nVBGMM samples:\n\n![samples with z from the VBGMM](samples-gmm.png)\n\n")
	b.WriteString("## SVI against full-batch CAVI\n\n")
	fmt.Fprintf(&b, "K = %d, alpha0 = 1, the same initialization; SVI: batch %d, rho_t = (t + 1)^-0.7, full-data ELBO every %d steps (not timed). "+
		"Seconds of computation until the ELBO comes within a tolerance of CAVI's final value (%.3f nats per code; CAVI stopped after %d sweeps).\n\n",
		sz.K, sz.SVIBatch, sz.SVIEvery, final/n, len(caviTrace.ELBO))
	t = newTable("tolerance (nats per code)", "CAVI: seconds (sweeps)", fmt.Sprintf("SVI, batch %d: seconds (steps)", sz.SVIBatch), "SVI time / CAVI time")
	var ratios []string
	for _, tol := range tols {
		cs, ci, cok := reach(caviTrace, tol)
		ss, si, sok := reach(*sviTrace, tol)
		cell := func(ok bool, s float64, it int) string {
			if ok {
				return fmt.Sprintf("%s (%d)", secs(s), it)
			}
			return fmt.Sprintf("not reached in %s (%d)", secs(s), it)
		}
		ratio := "-"
		if cok && sok {
			ratio = f2(ss / cs)
			ratios = append(ratios, fmt.Sprintf("%g: %.2f", tol, ss/cs))
		}
		t.add(f2(tol), cell(cok, cs, ci), cell(sok, ss, si), ratio)
	}
	b.WriteString(t.String())
	fmt.Fprintf(&b, "\nFinal ELBO per code: CAVI %.3f, SVI %.3f.\n", cy[len(cy)-1], sy[len(sy)-1])
	b.WriteString("\n" + fig + "\n")
	b.WriteString("## Reading the results\n\n")
	b.WriteString(vigmmReading(gmm10, km, fdPrior, fdGMM, ratios))
	b.WriteString("\n\nPapers: Bishop (2006), section 10.2 (VBGMM); Hoffman, Blei, Wang & Paisley (2013) (SVI); " +
		"Chadebec, Vincent & Allassonnière (2022), pythae (the GMM sampler); Heusel et al. (2017) (the Fréchet distance); Kuhn (1955) (Hungarian matching).\n")
	return b.String(), nil
}

func vigmmReading(gmm, km *clusterScore, fdPrior, fdGMM float64, ratios []string) string {
	var parts []string
	d := mean(gmm.acc) - mean(km.acc)
	switch {
	case d > 0.01:
		parts = append(parts, fmt.Sprintf("The VBGMM (full covariances, soft assignments) clusters the test codes better than k-means, by %.1f points of matched accuracy.", 100*d))
	case d < -0.01:
		parts = append(parts, fmt.Sprintf("k-means clusters the test codes better than the VBGMM, by %.1f points of matched accuracy.", -100*d))
	default:
		parts = append(parts, "The VBGMM and k-means cluster the test codes about equally well.")
	}
	if fdGMM < fdPrior {
		parts = append(parts, fmt.Sprintf("Sampling z from the mixture instead of the prior lowers the PCA-FD from %.2f to %.2f: the prior puts mass where the aggregate posterior has none, and the decoder has never seen codes there.", fdPrior, fdGMM))
	} else {
		parts = append(parts, fmt.Sprintf("Here the mixture does not beat the prior (PCA-FD %.2f against %.2f).", fdGMM, fdPrior))
	}
	if len(ratios) > 0 {
		parts = append(parts, "SVI's time over CAVI's, by tolerance in nats per code, "+strings.Join(ratios, ", ")+
			" (below 1: SVI first). SVI's step size decays, so it gets near the optimum quickly and the last hundredths of a nat slowly; where it never reaches a tolerance its noise floor lies above it.")
	} else {
		parts = append(parts, "SVI reached none of the tolerances that CAVI reached within its steps.")
	}
	return strings.Join(parts, " ")
}

// pca projects onto the top components of a reference set.
type pca struct {
	mean []float64
	vecs *mat.Dense // D x k
}

func newPCA(x [][]float64, k int) (*pca, error) {
	n, d := len(x), len(x[0])
	if k > d || k > n-1 {
		return nil, fmt.Errorf("PCA with %d components of %d points in %d dimensions", k, n, d)
	}
	p := &pca{mean: make([]float64, d)}
	for _, r := range x {
		for j, v := range r {
			p.mean[j] += v / float64(n)
		}
	}
	// at most 5,000 points for the covariance
	step := max(1, n/5000)
	var rows [][]float64
	for i := 0; i < n; i += step {
		rows = append(rows, x[i])
	}
	c := mat.NewDense(len(rows), d, nil)
	for i, r := range rows {
		for j, v := range r {
			c.Set(i, j, v-p.mean[j])
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(len(rows)-1), c.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return nil, fmt.Errorf("PCA: eigendecomposition failed")
	}
	var v mat.Dense
	eig.VectorsTo(&v) // ascending eigenvalues
	p.vecs = mat.NewDense(d, k, nil)
	for j := 0; j < k; j++ {
		for i := 0; i < d; i++ {
			p.vecs.Set(i, j, v.At(i, d-1-j))
		}
	}
	return p, nil
}

func (p *pca) project64(x [][]float64) [][]float64 {
	out := make([][]float64, len(x))
	k := p.vecs.RawMatrix().Cols
	for i, r := range x {
		out[i] = make([]float64, k)
		for j := 0; j < k; j++ {
			var s float64
			for t, v := range r {
				s += (v - p.mean[t]) * p.vecs.At(t, j)
			}
			out[i][j] = s
		}
	}
	return out
}

func (p *pca) project32(x [][]float32) [][]float64 {
	y := make([][]float64, len(x))
	for i, r := range x {
		y[i] = make([]float64, len(r))
		for j, v := range r {
			y[i][j] = float64(v)
		}
	}
	return p.project64(y)
}

// frechet is |m1 - m2|^2 + tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2), the
// Fréchet distance between Gaussians fitted to two sets of points.
func frechet(a, b [][]float64) (float64, error) {
	ma, ca := meanCovRows(a)
	mb, cb := meanCovRows(b)
	var d2 float64
	for i := range ma {
		d2 += (ma[i] - mb[i]) * (ma[i] - mb[i])
	}
	sa, err := sqrtSym(ca)
	if err != nil {
		return 0, err
	}
	var t1, t2 mat.Dense
	t1.Mul(sa, cb)
	t2.Mul(&t1, sa)
	k := len(ma)
	prod := mat.NewSymDense(k, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			prod.SetSym(i, j, (t2.At(i, j)+t2.At(j, i))/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(prod, false) {
		return 0, fmt.Errorf("Fréchet distance: eigendecomposition failed")
	}
	var tr float64
	for _, v := range eig.Values(nil) {
		tr += math.Sqrt(math.Max(v, 0))
	}
	return d2 + mat.Trace(ca) + mat.Trace(cb) - 2*tr, nil
}

func meanCovRows(x [][]float64) ([]float64, *mat.SymDense) {
	n, d := len(x), len(x[0])
	m := make([]float64, d)
	for _, r := range x {
		for j, v := range r {
			m[j] += v / float64(n)
		}
	}
	c := mat.NewDense(n, d, nil)
	for i, r := range x {
		for j, v := range r {
			c.Set(i, j, v-m[j])
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(n-1), c.T())
	return m, &cov
}

func sqrtSym(c *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(c, true) {
		return nil, fmt.Errorf("matrix square root: eigendecomposition failed")
	}
	vals := eig.Values(nil)
	var v mat.Dense
	eig.VectorsTo(&v)
	k := len(vals)
	out := mat.NewDense(k, k, nil)
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			var s float64
			for l := 0; l < k; l++ {
				s += v.At(i, l) * math.Sqrt(math.Max(vals[l], 0)) * v.At(j, l)
			}
			out.Set(i, j, s)
		}
	}
	return out, nil
}

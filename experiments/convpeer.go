package main

// convpeer: does govae's -arch convpeer reach the PyTorch conv peer's test
// ELBO after 10 epochs, within 0.5 nats, over training seeds?
//
// Each seed s trains ours exactly as `train -arch convpeer -epochs 10 -val 0
// -seed s` does (z = 32, Adam 1e-3, batch 128, dynamic binarization, the
// test ELBO after every epoch on all test images with cmd/train's fixed
// binarization and noise) and the peer (../shared/bench/peer_convvae_torch.py
// --epochs 10 --threads 1 --seed s) on the same image folder. Short runs sit
// on a plateau near -200 nats (KL near 0) and leave it at a seed-dependent
// epoch, so one seed per side says little: the seeds' spread is the noise
// the comparison has to beat. Reported: per-side mean ± SE and median/IQR of
// the final test ELBO, the difference of means with Welch's SE and a 90%
// interval, the TOST verdict for a margin of ±0.5 nats (Schuirmann 1987:
// equivalent at the 5% level iff the 90% interval lies inside the margin),
// and the seeds per side such a test would need.
//
// The two sides run at the same time, each on one core: the peer runs its
// seeds back to back in a subprocess, ours in this process with GOMAXPROCS
// one less than the cores until the peer is done, then all of them (the
// numbers do not depend on GOMAXPROCS). Speed is not measured here.
// Without Python and torch only ours runs and the README says why.
//
// Full run: seeds 1-10, 10 epochs on the data root's MNIST (the 10,000-image
// subset); about 5 CPU-minutes per seed for ours and 2 for the peer on a
// quiet machine. No log p(x): the quick run timed k = 1000 at 0.87 s per test
// image for ours and 0.38 s for the peer (load 7), so 200 images would add
// about half of each seed's time, and the seeds are what the question needs.
// -budget bounds the whole run's wall time: the seeds still running when it
// ends are stopped and left out. Quick run: 2 seeds, 1 epoch, ours
// on 300 training images and 1,000 test images (the peer always uses the
// whole folder), log p(x) with k = 1000 on 5 test images to time it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/run/evalrun"
	"github.com/govae/govae/internal/run/runinfo"
	"github.com/govae/govae/internal/torchpeer"
)

type convPeerSize struct {
	Seeds       int
	Epochs      int
	TrainImages int // ours: the first TrainImages training images (0: all)
	TestImages  int // ours: the first TestImages test images (0: all); the peer uses all
	IWAEK       int // log p(x) with k = IWAEK on the first IWAEN test images (0: none)
	IWAEN       int
}

var (
	convPeerFull  = convPeerSize{Seeds: 10, Epochs: 10}
	convPeerQuick = convPeerSize{Seeds: 2, Epochs: 1, TrainImages: 300, TestImages: 1000, IWAEK: 1000, IWAEN: 5}
)

const (
	cpMargin   = 0.5    // the equivalence margin in nats
	cpPlateau  = -180.0 // a run has left the plateau once its test ELBO is above this
	cpLatent   = 32     // -arch convpeer's z, as the peer's
	cpEarly    = 5      // "left the plateau early": by this epoch
	cpPeerName = "peer_convvae_torch.py"
)

func init() {
	register(experiment{
		name:    "convpeer",
		summary: "govae's -arch convpeer against the PyTorch conv peer over training seeds: test ELBO after 10 epochs, Welch interval and a ±0.5-nat equivalence test",
		run:     runConvPeer,
	})
}

// cpRun is one side's training run for one seed.
type cpRun struct {
	Side    string
	Seed    uint64
	Curve   []float64 // test ELBO after each epoch
	KL      float64   // ours: the final test KL; NaN for the peer
	Active  int       // ours: active units of q on the test images
	Rebin   float64   // ours: final test ELBO on another binarization of the test images
	LogPx   float64   // NaN: not measured
	LogPxS  float64   // its seconds
	Seconds float64
	Load    float64 // the machine's 1-minute load average at its end
	Err     string  // why the run failed, "" if it did not
}

func (r *cpRun) ok() bool { return r.Err == "" && len(r.Curve) > 0 }

func (r *cpRun) final() float64 { return r.Curve[len(r.Curve)-1] }

// late is the mean test ELBO of the last three epochs (8-10 of 10).
func (r *cpRun) late() float64 { return mean(r.Curve[max(0, len(r.Curve)-3):]) }

// left is the first epoch with a test ELBO above cpPlateau, 0 if none.
func (r *cpRun) left() int {
	for i, v := range r.Curve {
		if v > cpPlateau {
			return i + 1
		}
	}
	return 0
}

// cpPeer says how to run the peer, or why it cannot be.
type cpPeer struct{ python, script, why string }

func findConvPeer(dir string) cpPeer {
	py := torchpeer.Python("torch")
	if py == "" {
		return cpPeer{why: "no Python that can import torch ($GOVAE_PYTHON, python3, /usr/bin/python3; Debian: apt-get install python3-torch)"}
	}
	script, err := torchpeer.FindScript(cpPeerName)
	if err != nil {
		return cpPeer{why: err.Error()}
	}
	for _, f := range []string{"train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return cpPeer{why: fmt.Sprintf("the peer reads %s, which %s lacks", f, dir)}
		}
	}
	return cpPeer{python: py, script: script}
}

func runConvPeer(ctx context.Context, e *env) (string, error) {
	sz := convPeerFull
	if e.Quick {
		sz = convPeerQuick
	}
	ds, err := loadDataset(e, "mnist", sz.TrainImages, sz.TestImages)
	if err != nil {
		return "", err
	}
	// Another binarization of the same test images: how much the draw moves
	// a mean test ELBO (the peer binarizes with its own generator).
	rebin, err := data.NewLoader(ds.TestSet, seq(len(ds.TestX)), data.LoaderOptions{Batch: 1000, Seed: runinfo.EvalBinarizeSeed + 1, Binarize: data.BinarizeStatic})
	if err != nil {
		return "", err
	}
	peer := findConvPeer(ds.Dir)
	if peer.why != "" {
		e.Logf("convpeer: the peer is skipped: %s", peer.why)
	}
	log, err := os.Create(filepath.Join(e.Out, "runs.jsonl"))
	if err != nil {
		return "", err
	}
	defer log.Close()
	var mu sync.Mutex
	record := func(r cpRun) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(r.record())
		log.Write(append(b, '\n'))
	}

	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The budget stops the seeds still running when it ends; they are left
	// out. (Predicting a seed's time fails on a shared machine: a seed run
	// while others load it can take many times the next one.)
	if e.Budget > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, e.Budget)
		defer stop()
	}
	procs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(procs)
	var ours, theirs []cpRun
	var wg sync.WaitGroup
	if peer.why == "" {
		runtime.GOMAXPROCS(max(1, procs-1)) // one core for the peer
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer runtime.GOMAXPROCS(procs) // ours gets every core once the peer is done
			for s := range uint64(sz.Seeds) {
				r := peerRun(ctx, e, peer, ds.Dir, sz, e.Seed+s)
				if ctx.Err() != nil {
					return
				}
				r.Load = loadAverage()
				record(r)
				mu.Lock()
				theirs = append(theirs, r)
				mu.Unlock()
			}
		}()
	}
	for s := range uint64(sz.Seeds) {
		r, err := oursRun(ctx, e, ds, rebin, sz, e.Seed+s)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			cancel(err)
			break
		}
		r.Load = loadAverage()
		record(r)
		ours = append(ours, r)
	}
	wg.Wait()
	if parent.Err() != nil {
		return "", parent.Err()
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return "", err
	}
	if len(ours) < sz.Seeds || (peer.why == "" && len(theirs) < sz.Seeds) {
		e.Logf("convpeer: the budget %v allowed %d seeds of ours and %d of the peer's", e.Budget, len(ours), len(theirs))
	}
	return convPeerReport(e, sz, len(ds.TestX), peer, ours, theirs)
}

// oursRun trains and evaluates ours for one seed, as cmd/train would.
func oursRun(ctx context.Context, e *env, ds *dataset, rebin *data.Loader, sz convPeerSize, seed uint64) (cpRun, error) {
	label := fmt.Sprintf("convpeer: govae seed %d", seed)
	r := cpRun{Side: "govae", Seed: seed, LogPx: math.NaN()}
	t0 := time.Now()
	cfg := convConfig(ds, amortized.ConvPeerTrunk, "diag", amortized.Bernoulli, cpLatent)
	var final amortized.Stats
	hooks := amortized.Hooks{AfterEpoch: func(t *amortized.Trainer, es amortized.EpochStats) error {
		st, err := t.Model().Evaluate(ds.Test, runinfo.TestNoise(seed))
		if err != nil {
			return err
		}
		final = st
		r.Curve = append(r.Curve, st.ELBO)
		e.Logf("%s: epoch %d/%d: test ELBO %.2f (KL %.2f)", label, es.Epoch, sz.Epochs, st.ELBO, st.KL)
		return nil
	}}
	tr, err := trainModelVal(ctx, e, label, ds, nil, cfg, amortized.TrainOptions{Epochs: sz.Epochs}, seed, hooks)
	if err != nil {
		return r, fmt.Errorf("%s: %w", label, err)
	}
	if tr.Diverged != nil {
		r.Err = tr.Diverged.Error()
		return r, nil
	}
	m := tr.Model
	r.KL = final.KL
	if r.Active, err = evalrun.ActiveUnits(m, ds.TestX); err != nil {
		return r, err
	}
	r.Rebin = math.NaN()
	if seed == e.Seed { // once is enough to see how much the draw matters
		st, err := m.Evaluate(rebin, runinfo.TestNoise(seed))
		if err != nil {
			return r, err
		}
		r.Rebin = st.ELBO
	}
	if sz.IWAEK > 0 {
		t1 := time.Now()
		ll, err := logLikelihood(ctx, m, ds.TestX[:sz.IWAEN], sz.IWAEK, rand.New(rand.NewPCG(seed, 0x6c6f6770)))
		if err != nil {
			return r, err
		}
		r.LogPx, r.LogPxS = mean(ll.LogPx), time.Since(t1).Seconds()
	}
	r.Seconds = time.Since(t0).Seconds()
	e.Logf("%s: final test ELBO %.2f, KL %.2f, %d active units, %.0fs", label, r.final(), r.KL, r.Active, r.Seconds)
	return r, nil
}

// peerRun runs the peer for one seed; a failure is recorded in the run.
func peerRun(ctx context.Context, e *env, p cpPeer, dir string, sz convPeerSize, seed uint64) cpRun {
	label := fmt.Sprintf("convpeer: peer seed %d", seed)
	r := cpRun{Side: "peer", Seed: seed, KL: math.NaN(), Active: -1, Rebin: math.NaN(), LogPx: math.NaN()}
	args := []string{"--data", dir, "--epochs", fmt.Sprint(sz.Epochs), "--threads", "1", "--seed", fmt.Sprint(seed)}
	if sz.IWAEK > 0 {
		args = append(args, "--iwae-k", fmt.Sprint(sz.IWAEK), "--iwae-n", fmt.Sprint(sz.IWAEN))
	}
	t0 := time.Now()
	res, err := torchpeer.Run(ctx, p.python, p.script, args, func(res *torchpeer.Result) {
		if res.LogPx == nil {
			ep := res.Epochs[len(res.Epochs)-1]
			e.Logf("%s: epoch %d/%d: test ELBO %.2f", label, ep.Epoch, sz.Epochs, ep.TestELBO)
		}
	})
	r.Seconds = time.Since(t0).Seconds()
	if err != nil {
		r.Err = err.Error()
		if ctx.Err() == nil {
			e.Logf("%s: %v", label, err)
		}
		return r
	}
	for _, ep := range res.Epochs {
		r.Curve = append(r.Curve, ep.TestELBO)
	}
	if len(r.Curve) != sz.Epochs {
		r.Err = fmt.Sprintf("printed %d epochs, want %d", len(r.Curve), sz.Epochs)
	}
	if res.LogPx != nil {
		r.LogPx, r.LogPxS = res.LogPx.LogPx, res.LogPx.EvalSeconds
	}
	e.Logf("%s: final test ELBO %.2f, %.0fs", label, r.Curve[len(r.Curve)-1], r.Seconds)
	return r
}

// record is r for runs.jsonl, with null for what was not measured (JSON
// has no NaN).
func (r cpRun) record() map[string]any {
	return map[string]any{"side": r.Side, "seed": r.Seed, "test_elbo": r.Curve, "kl": nullNaN(r.KL), "active_units": r.Active,
		"rebinarized_elbo": nullNaN(r.Rebin), "log_px": nullNaN(r.LogPx), "log_px_seconds": r.LogPxS, "seconds": r.Seconds, "load": nullNaN(r.Load), "error": r.Err}
}

func nullNaN(v float64) any {
	if math.IsNaN(v) {
		return nil
	}
	return v
}

// cpSummary is one side's sample of a measure.
type cpSummary struct {
	N              int
	Mean, SD, SE   float64
	Median, Q1, Q3 float64
}

func summarize(v []float64) cpSummary {
	s := cpSummary{N: len(v), Mean: math.NaN(), SD: math.NaN(), SE: math.NaN(), Median: math.NaN(), Q1: math.NaN(), Q3: math.NaN()}
	if len(v) == 0 {
		return s
	}
	s.Mean = mean(v)
	if len(v) > 1 {
		s.SE = stdErr(v)
		s.SD = s.SE * math.Sqrt(float64(len(v)))
	}
	sorted := slices.Sorted(slices.Values(v))
	s.Q1, s.Median, s.Q3 = quantile7(sorted, 0.25), quantile7(sorted, 0.5), quantile7(sorted, 0.75)
	return s
}

// quantile7 is the p-quantile of sorted values by linear interpolation
// between order statistics (Hyndman and Fan's type 7, R's default).
func quantile7(sorted []float64, p float64) float64 {
	h := p * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// welch is the difference of means a - b, its standard error and the
// Welch-Satterthwaite degrees of freedom.
func welch(a, b cpSummary) (diff, se, df float64) {
	va, vb := a.SD*a.SD/float64(a.N), b.SD*b.SD/float64(b.N)
	se = math.Sqrt(va + vb)
	df = (va + vb) * (va + vb) / (va*va/float64(a.N-1) + vb*vb/float64(b.N-1))
	return a.Mean - b.Mean, se, df
}

// tQuantile is Student's t quantile with df degrees of freedom.
func tQuantile(p, df float64) float64 { return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p) }

// tostSeeds is the seeds per side a TOST at the 5% level with margin m needs
// for 80% power when the true difference is 0 and each side's seed-to-seed
// standard deviation is sd: n = 2 sd² (z_0.95 + z_0.90)² / m² (normal
// approximation; Chow, Shao and Wang 2008, ch. 3.2).
func tostSeeds(sd, m float64) int {
	z := distuv.UnitNormal.Quantile(0.95) + distuv.UnitNormal.Quantile(0.90)
	return int(math.Ceil(2 * sd * sd * z * z / (m * m)))
}

// cpMeasure is one way of scoring a run, compared over the seeds.
type cpMeasure struct {
	name  string
	value func(r *cpRun) float64
	keep  func(r *cpRun) bool
}

// cpCompare is a measure's comparison between the sides.
type cpCompare struct {
	m                    cpMeasure
	ours, theirs         cpSummary
	diff, se, df, lo, hi float64
	equivalent, done     bool
}

func compare(m cpMeasure, ours, theirs []cpRun) cpCompare {
	pick := func(rs []cpRun) []float64 {
		var v []float64
		for i := range rs {
			if rs[i].ok() && (m.keep == nil || m.keep(&rs[i])) {
				v = append(v, m.value(&rs[i]))
			}
		}
		return v
	}
	c := cpCompare{m: m, ours: summarize(pick(ours)), theirs: summarize(pick(theirs))}
	c.diff, c.se, c.df, c.lo, c.hi = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if c.ours.N >= 2 && c.theirs.N >= 2 && c.ours.SD+c.theirs.SD > 0 {
		c.done = true
		c.diff, c.se, c.df = welch(c.ours, c.theirs)
		t := tQuantile(0.95, c.df)
		c.lo, c.hi = c.diff-t*c.se, c.diff+t*c.se
		c.equivalent = c.lo > -cpMargin && c.hi < cpMargin
	}
	return c
}

func convPeerReport(e *env, sz convPeerSize, nTest int, peer cpPeer, ours, theirs []cpRun) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Ours: the model and training of `go run ./cmd/train -arch convpeer -epochs %d -val 0 -data-dir %s -seed s` "+
		"(4x4 stride-2 convolutions with 32 and 64 channels, a 256-unit dense layer, z = %d, the mirror decoder; Bernoulli, Adam 1e-3, batch %d, "+
		"dynamic binarization), with the test ELBO after each epoch on %s test images as cmd/train reports it (one draw of z per image). "+
		"The peer: `%s --data %s --epochs %d --threads 1 --seed s`, the same architecture in PyTorch; its test ELBO is on its own fixed "+
		"binarization of the same images. Seeds %d to %d; the seed sets initialization, data order and noise on each side, so seed s of ours and of "+
		"the peer are unrelated draws: the sides are compared as two samples, not as pairs.\n\n",
		sz.Epochs, ds0(e), cpLatent, batchSize, cpTestPhrase(nTest), cpPeerName, ds0(e), sz.Epochs, e.Seed, e.Seed+uint64(sz.Seeds)-1)
	if peer.why != "" {
		fmt.Fprintf(&b, "**The peer was skipped: %s.** Only ours ran.\n\n", peer.why)
	}
	if len(ours) < sz.Seeds || (peer.why == "" && len(theirs) < sz.Seeds) {
		fmt.Fprintf(&b, "**The time budget (%v) let %d of the %d seeds finish for ours and %d for the peer; the runs it stopped are left out.**\n\n", e.Budget, len(ours), sz.Seeds, len(theirs))
	}
	if e.Quick {
		fmt.Fprintf(&b, "Quick run: ours trains on the first %s images, the peer on the whole folder.\n\n", commas(sz.TrainImages))
	}

	// Per-seed table.
	bySeed := map[uint64][2]*cpRun{}
	var seeds []uint64
	for _, side := range [][]cpRun{ours, theirs} {
		for i := range side {
			r := &side[i]
			p, seen := bySeed[r.Seed]
			if !seen {
				seeds = append(seeds, r.Seed)
			}
			if r.Side == "govae" {
				p[0] = r
			} else {
				p[1] = r
			}
			bySeed[r.Seed] = p
		}
	}
	slices.Sort(seeds)
	head := []string{"seed", "govae test ELBO", "govae left plateau", "govae KL", "govae active units"}
	if sz.IWAEK > 0 {
		head = append(head, fmt.Sprintf("govae log p(x), k = %d", sz.IWAEK))
	}
	head = append(head, "peer test ELBO", "peer left plateau")
	if sz.IWAEK > 0 {
		head = append(head, fmt.Sprintf("peer log p(x), k = %d", sz.IWAEK))
	}
	t := newTable(head...)
	var failed []string
	for _, s := range seeds {
		p := bySeed[s]
		row := []string{fmt.Sprint(s)}
		side := func(r *cpRun, ours bool) {
			n := 2
			if ours {
				n = 4
			}
			if sz.IWAEK > 0 {
				n++
			}
			if r == nil || !r.ok() {
				if r != nil {
					failed = append(failed, fmt.Sprintf("%s seed %d: %s", r.Side, r.Seed, r.Err))
				}
				for range n {
					row = append(row, "–")
				}
				return
			}
			row = append(row, f2(r.final()), leftCell(r))
			if ours {
				row = append(row, f2(r.KL), fmt.Sprintf("%d / %d", r.Active, cpLatent))
			}
			if sz.IWAEK > 0 {
				row = append(row, f2(r.LogPx))
			}
		}
		side(p[0], true)
		side(p[1], false)
		t.add(row...)
	}
	fmt.Fprintf(&b, "## Per seed\n\nTest ELBO after epoch %d (nats per image, higher is better); \"left plateau\": the first epoch with a test ELBO above %.0f "+
		"(– : never).", sz.Epochs, cpPlateau)
	if sz.IWAEK > 0 {
		fmt.Fprintf(&b, " log p(x): importance-sampled with k = %d on the first %d test images.", sz.IWAEK, sz.IWAEN)
	}
	b.WriteString("\n\n" + t.String() + "\n")
	for _, f := range failed {
		fmt.Fprintf(&b, "- failed: %s\n", f)
	}

	// The comparisons.
	measures := []cpMeasure{
		{name: fmt.Sprintf("test ELBO after epoch %d, all runs", sz.Epochs), value: (*cpRun).final},
		{name: fmt.Sprintf("mean test ELBO of epochs %d-%d, all runs", max(1, sz.Epochs-2), sz.Epochs), value: (*cpRun).late},
		{name: fmt.Sprintf("test ELBO after epoch %d, runs that left the plateau by epoch %d", sz.Epochs, cpEarly), value: (*cpRun).final,
			keep: func(r *cpRun) bool { l := r.left(); return l > 0 && l <= cpEarly }},
	}
	var cs []cpCompare
	ct := newTable("measure", "govae n", "govae mean ± SE", "govae median [IQR]", "peer n", "peer mean ± SE", "peer median [IQR]",
		"govae − peer ± Welch SE", "df", "90% interval", fmt.Sprintf("within ±%.1f (TOST, 5%%)", cpMargin))
	for _, m := range measures {
		c := compare(m, ours, theirs)
		cs = append(cs, c)
		verdict := "–"
		if c.done {
			verdict = "no"
			if c.equivalent {
				verdict = "yes"
			}
		}
		ct.add(m.name, fmt.Sprint(c.ours.N), pmCell(c.ours.Mean, c.ours.SE), iqrCell(c.ours), fmt.Sprint(c.theirs.N), pmCell(c.theirs.Mean, c.theirs.SE), iqrCell(c.theirs),
			pmCell(c.diff, c.se), f1(c.df), intervalCell(c.lo, c.hi), verdict)
	}
	fmt.Fprintf(&b, "## The sides compared\n\nMeans over seeds ± their standard error; median with the quartiles (type 7). The difference of means has Welch's "+
		"standard error and degrees of freedom; the 90%% interval is mean ± t(0.95, df) SE. Two one-sided tests at the 5%% level conclude that the "+
		"difference lies within ±%.1f nats exactly when that interval lies inside (−%.1f, %.1f).\n\n%s\n", cpMargin, cpMargin, cpMargin, ct.String())

	// Figure.
	var all, tail []plotting.Series
	from := max(1, sz.Epochs/2)
	for _, side := range [][]cpRun{ours, theirs} {
		for i := range side {
			r := &side[i]
			if !r.ok() {
				continue
			}
			name := "govae"
			if r.Side == "peer" {
				name = "PyTorch peer"
			}
			var x []float64
			for j := range r.Curve {
				x = append(x, float64(j+1))
			}
			all = append(all, series(name, x, r.Curve))
			tail = append(tail, series(name, x[from-1:], r.Curve[from-1:]))
		}
	}
	if len(all) > 0 {
		fig, err := writeFigure(e, "curves.png", "test ELBO after each epoch, every seed, both sides",
			plotting.Panel{Title: "test ELBO after each epoch (one line per seed)", XLabel: "epoch", YLabel: "test ELBO (nats)", Series: all},
			plotting.Panel{Title: fmt.Sprintf("the same from epoch %d", from), XLabel: "epoch", YLabel: "test ELBO (nats)", Series: tail})
		if err != nil {
			return "", err
		}
		b.WriteString(fig + "\n")
	}

	writeReading(&b, convPeerReading(e, sz, peer, ours, theirs, cs))
	return b.String(), nil
}

func cpTestPhrase(n int) string {
	if n == 10000 {
		return "all 10,000"
	}
	return "the first " + commas(n)
}

// ds0 is the data folder as the commands name it.
func ds0(e *env) string {
	if e.Data == "" {
		return "(the default search)"
	}
	return filepath.Join(e.Data, "mnist")
}

func leftCell(r *cpRun) string {
	if l := r.left(); l > 0 {
		return fmt.Sprint(l)
	}
	return "–"
}

func pmCell(v, se float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if math.IsNaN(se) {
		return f2(v)
	}
	return fmt.Sprintf("%.2f ± %.2f", v, se)
}

func iqrCell(s cpSummary) string {
	if s.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f [%.2f, %.2f]", s.Median, s.Q1, s.Q3)
}

func intervalCell(lo, hi float64) string {
	if math.IsNaN(lo) {
		return "–"
	}
	return fmt.Sprintf("[%.2f, %.2f]", lo, hi)
}

// convPeerReading states the outcome from the numbers.
func convPeerReading(e *env, sz convPeerSize, peer cpPeer, ours, theirs []cpRun, cs []cpCompare) []string {
	var out []string
	if peer.why != "" {
		out = append(out, "Without the peer there is no comparison; the table of ours stands alone.")
	}
	c := cs[0]
	if c.done {
		verdict := fmt.Sprintf("The 90%% interval [%.2f, %.2f] lies inside ±%.1f nats: the two implementations reach the same test ELBO within %.1f nats "+
			"(TOST at the 5%% level).", c.lo, c.hi, cpMargin, cpMargin)
		if !c.equivalent {
			verdict = fmt.Sprintf("The 90%% interval [%.2f, %.2f] does not lie inside ±%.1f nats, so equivalence within %.1f nats cannot be concluded "+
				"from %d and %d seeds", c.lo, c.hi, cpMargin, cpMargin, c.ours.N, c.theirs.N)
			if c.lo > 0 || c.hi < 0 {
				verdict += "; the interval excludes 0, so at this level the sides differ."
			} else {
				verdict += "; it includes 0, so no difference is shown either: the seeds' spread is too large for the question."
			}
		}
		sd := math.Sqrt((c.ours.SD*c.ours.SD + c.theirs.SD*c.theirs.SD) / 2)
		out = append(out, fmt.Sprintf("**After %s**, ours averages %.2f ± %.2f and the peer %.2f ± %.2f nats over %d and %d seeds "+
			"(medians %.2f and %.2f): govae − peer = %s ± %.2f nats. %s The seed-to-seed standard deviation is %.2f nats for ours and %.2f for the peer; "+
			"with a common %.2f, a ±%.1f-nat equivalence test with 80%% power (true difference 0) needs about %s seeds per side.",
			plural(sz.Epochs, "epoch"), c.ours.Mean, c.ours.SE, c.theirs.Mean, c.theirs.SE, c.ours.N, c.theirs.N, c.ours.Median, c.theirs.Median,
			signed(c.diff), c.se, verdict, c.ours.SD, c.theirs.SD, sd, cpMargin, commas(tostSeeds(sd, cpMargin))))
		var parts []string
		for _, o := range cs[1:] {
			if !o.done {
				parts = append(parts, fmt.Sprintf("%s: too few runs (%d and %d)", o.m.name, o.ours.N, o.theirs.N))
				continue
			}
			osd := math.Sqrt((o.ours.SD*o.ours.SD + o.theirs.SD*o.theirs.SD) / 2)
			parts = append(parts, fmt.Sprintf("%s: standard deviations %.2f and %.2f, govae − peer %s, 90%% interval [%.2f, %.2f] (%s seeds per side for ±%.1f)",
				o.m.name, o.ours.SD, o.theirs.SD, signed(o.diff), o.lo, o.hi, commas(tostSeeds(osd, cpMargin)), cpMargin))
		}
		out = append(out, "Other ways of scoring the runs, to see whether the spread shrinks: "+strings.Join(parts, "; ")+".")
	}
	// The plateau.
	leftBy := func(rs []cpRun) string {
		var ls []string
		never := 0
		for i := range rs {
			if !rs[i].ok() {
				continue
			}
			if l := rs[i].left(); l > 0 {
				ls = append(ls, fmt.Sprint(l))
			} else {
				never++
			}
		}
		s := strings.Join(ls, ", ")
		switch {
		case never > 0 && s == "":
			s = fmt.Sprintf("never (%d runs)", never)
		case never > 0:
			s += fmt.Sprintf(" (%d never)", never)
		}
		return s
	}
	p := fmt.Sprintf("**The plateau**: the epochs at which the runs' test ELBO first rose above %.0f were %s for ours", cpPlateau, leftBy(ours))
	if len(theirs) > 0 {
		p += " and " + leftBy(theirs) + " for the peer"
	}
	out = append(out, p+". Where a run leaves it decides most of its epoch-10 value: a later exit leaves fewer epochs of progress.")
	// Binarization and noise.
	var d []float64
	for i := range ours {
		if ours[i].ok() && !math.IsNaN(ours[i].Rebin) {
			d = append(d, math.Abs(ours[i].Rebin-ours[i].final()))
		}
	}
	if len(d) > 0 {
		out = append(out, fmt.Sprintf("**Test binarization**: the peer's test images are its own fixed draw. Ours evaluated on a second draw "+
			"(binarization seed %d instead of %d) moves seed %d's final test ELBO by %.3f nats (this includes another draw of z).", runinfo.EvalBinarizeSeed+1, runinfo.EvalBinarizeSeed, e.Seed, mean(d)))
	}
	var lo, lp []float64
	for _, rs := range [][]cpRun{ours, theirs} {
		for i := range rs {
			if rs[i].ok() && !math.IsNaN(rs[i].LogPx) && rs[i].LogPxS > 0 {
				if rs[i].Side == "govae" {
					lo = append(lo, rs[i].LogPxS/float64(sz.IWAEN))
				} else {
					lp = append(lp, rs[i].LogPxS/float64(sz.IWAEN))
				}
			}
		}
	}
	if len(lo) > 0 {
		s := fmt.Sprintf("**log p(x) cost**: k = %d took %.3f s per test image for ours", sz.IWAEK, mean(lo))
		if len(lp) > 0 {
			s += fmt.Sprintf(" and %.3f s for the peer", mean(lp))
		}
		out = append(out, s+" (one core each).")
	}
	var loads []float64
	for _, rs := range [][]cpRun{ours, theirs} {
		for i := range rs {
			if !math.IsNaN(rs[i].Load) {
				loads = append(loads, rs[i].Load)
			}
		}
	}
	if len(loads) > 0 {
		out = append(out, fmt.Sprintf("The machine is shared: the 1-minute load average at the end of each seed's run was %.1f to %.1f "+
			"(this experiment alone keeps it near 2). Speed plays no part in the comparison.", slices.Min(loads), slices.Max(loads)))
	}
	return out
}

package main

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/data"
	"github.com/govae/govae/internal/run/runinfo"
	"github.com/govae/govae/internal/run/trainrun"
	"github.com/govae/govae/nets"
)

// TestBurdaModelInit: the burda rows start from the paper's initialization
// (yburda/iwae): weights uniform on ±sqrt(6/(in+out)) (logvar heads ±2x,
// their sigma = exp(.)), biases zero, the decoder's output bias the logit of
// the mean training image, clipped to [0.001, 0.999].
func TestBurdaModelInit(t *testing.T) {
	// 4 images of 2x3 pixels; pixel d's mean grey level is known.
	pix := []uint8{
		0, 255, 255, 0, 51, 255,
		0, 255, 0, 0, 102, 255,
		0, 255, 255, 0, 153, 255,
		0, 255, 0, 255, 204, 255,
	}
	want := []float64{0.001, 0.999, 0.5, 0.25, 0.5, 0.999}
	ds := &dataset{Train: &data.Images{N: 4, Channels: 1, Rows: 2, Cols: 3, Pix: pix}, TrainIdx: []int{0, 1, 2, 3}}
	for _, two := range []bool{false, true} {
		cfg := burdaConfig(ds)
		if two {
			cfg = burdaTwoLayerConfig(ds)
		}
		m, err := burdaModel(ds, cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		sawLogvar := false
		for _, p := range m.Params().All() {
			v := p.Float32s()
			switch {
			case p.Name == "decoder.logits.bias":
				for d, q := range want {
					if l := math.Log(q / (1 - q)); math.Abs(float64(v[d])-l) > 1e-5 {
						t.Errorf("two layers %v: output bias[%d] = %v, want logit(%v) = %v", two, d, v[d], q, l)
					}
				}
			case len(p.Shape) == 1:
				for i, x := range v {
					if x != 0 {
						t.Errorf("two layers %v: %s[%d] = %v, want 0", two, p.Name, i, x)
						break
					}
				}
			default:
				bound := math.Sqrt(6 / float64(p.Shape[0]+p.Shape[1]))
				if strings.HasSuffix(p.Name, ".logvar.weight") {
					bound *= 2
					sawLogvar = true
				}
				// uniform on ±bound: inside it, and the largest |w| near it
				big := 0.0
				for _, x := range v {
					big = math.Max(big, math.Abs(float64(x)))
				}
				if big > bound || (len(v) >= 50 && big < 0.8*bound) {
					t.Errorf("two layers %v: %s: max |w| %.4f, want uniform on ±%.4f", two, p.Name, big, bound)
				}
			}
		}
		if !sawLogvar {
			t.Errorf("two layers %v: no logvar head", two)
		}
	}
}

// TestBurdaRowWanted: -rows picks a row by its exact name before falling
// back to a substring ("two layers, IWAE, k = 5" must not run k = 50).
func TestBurdaRowWanted(t *testing.T) {
	for _, tc := range []struct {
		sel  string
		want int
	}{{"", 6}, {"two layers", 3}, {"two layers, IWAE, k = 5", 1}, {"IWAE, k = 5", 1}, {"k = 50", 2}, {"nothing", 0}} {
		n := 0
		for _, r := range burdaRows {
			if burdaRowWanted(r.name, tc.sel) {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("-rows %q keeps %d rows, want %d", tc.sel, n, tc.want)
		}
	}
}

// burdaEnv is a quick burda run of the one-layer VAE row through stages
// 0..2 (13 epochs) into out, as revision rev.
func burdaEnv(root, out, rev string, log *strings.Builder) *env {
	stages := 2
	return &env{Quick: true, Out: out, Data: root, Seed: 1, Rows: "VAE (k = 1)", Stages: &stages, Rev: rev, Log: log}
}

// TestBurdaResumeIsExact: a row interrupted (context cancel) mid-epoch, at
// a stage's end and mid-stage, and continued each time from its
// checkpoint, ends with the same weights, Adam moments, curve and test
// numbers, bit for bit, as the row run straight through; a rerun of the
// finished row trains nothing; a checkpoint of another revision is refused
// unless -any-revision.
func TestBurdaResumeIsExact(t *testing.T) {
	root := dataRoot(t)
	t.Setenv("GOVAE_OFFLINE", "1")
	t.Cleanup(func() { burdaAfterStep = nil })
	file := burdaFileName("VAE (k = 1)")

	var log strings.Builder
	straight := t.TempDir()
	if _, err := runBurda(context.Background(), burdaEnv(root, straight, "rev-a", &log)); err != nil {
		t.Fatal(err)
	}
	wantM, wantSt, wantRun, err := loadBurdaRow(filepath.Join(straight, burdaCheckpointDir, file))
	if err != nil || wantRun == nil {
		t.Fatalf("no checkpoint after the straight run: %v", err)
	}

	// 4 steps an epoch; epochs 1..4 are stages 0 and 1, 5..13 stage 2.
	resumed := t.TempDir()
	for _, stop := range []int64{6, 16, 21} {
		ctx, cancel := context.WithCancel(context.Background())
		burdaAfterStep = func(tr *amortized.Trainer) {
			if tr.State().Step == stop {
				cancel()
			}
		}
		_, err := runBurda(ctx, burdaEnv(root, resumed, "rev-a", &log))
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled after step %d: err %v, want context.Canceled", stop, err)
		}
		_, st, _, err := loadBurdaRow(filepath.Join(resumed, burdaCheckpointDir, file))
		if err != nil || st == nil || st.Step != stop {
			t.Fatalf("cancelled after step %d: the checkpoint is %+v (%v), want that step", stop, st, err)
		}
	}
	burdaAfterStep = nil
	body, err := runBurda(context.Background(), burdaEnv(root, resumed, "rev-a", &log))
	if err != nil {
		t.Fatal(err)
	}
	m, st, run, err := loadBurdaRow(filepath.Join(resumed, burdaCheckpointDir, file))
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != wantSt.Epoch || st.Step != wantSt.Step || len(run.Segments) != 4 {
		t.Errorf("resumed: epoch %d step %d in %d segments, want epoch %d step %d in 4", st.Epoch, st.Step, len(run.Segments), wantSt.Epoch, wantSt.Step)
	}
	for _, pair := range [][2]*nets.Params{{m.Params(), wantM.Params()}, {st.AdamM, wantSt.AdamM}, {st.AdamV, wantSt.AdamV}} {
		want := pair[1].All()
		for i, p := range pair[0].All() {
			if !slices.Equal(p.Float32s(), want[i].Float32s()) {
				t.Errorf("resumed: %s differs from the straight run's", p.Name)
			}
		}
	}
	if !slices.Equal(run.Curve, wantRun.Curve) {
		t.Errorf("resumed curve %v, straight %v", run.Curve, wantRun.Curve)
	}
	got, want := run.Result.Evaluation, wantRun.Result.Evaluation
	if got.LogPx != want.LogPx || got.LogPxSE != want.LogPxSE || got.ELBO != want.ELBO || got.ActiveUnits != want.ActiveUnits {
		t.Errorf("resumed: log p(x) %v ± %v, ELBO %v, %d active; straight: %v ± %v, %v, %d",
			got.LogPx, got.LogPxSE, got.ELBO, got.ActiveUnits, want.LogPx, want.LogPxSE, want.ELBO, want.ActiveUnits)
	}
	if !strings.Contains(body, "**resumed**: trained in 4 segments") {
		t.Errorf("the report does not say the row was resumed:\n%s", body)
	}

	// A rerun reports the finished row from its checkpoint.
	log.Reset()
	again, err := runBurda(context.Background(), burdaEnv(root, resumed, "rev-a", &log))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "epoch 1/") || !strings.Contains(log.String(), "done earlier") {
		t.Errorf("a rerun of a finished row trained or evaluated again:\n%s", log.String())
	}
	if tableOf(again) != tableOf(body) {
		t.Errorf("a rerun reports\n%s\nwant\n%s", tableOf(again), tableOf(body))
	}

	// Another revision's checkpoint is refused, unless -any-revision.
	e := burdaEnv(root, resumed, "rev-b", &log)
	if _, err := runBurda(context.Background(), e); err == nil || !strings.Contains(err.Error(), "revision rev-a") {
		t.Errorf("revision rev-b continued rev-a's checkpoint: err %v", err)
	}
	e.AnyRevision = true
	if _, err := runBurda(context.Background(), e); err != nil {
		t.Errorf("-any-revision: %v", err)
	}
	// Other settings (a seed) are refused whatever the revision.
	e.Seed = 2
	if _, err := runBurda(context.Background(), e); err == nil || !strings.Contains(err.Error(), "other settings") {
		t.Errorf("seed 2 continued seed 1's checkpoint: err %v", err)
	}
}

// TestBurdaStagesFlag: -stages takes the paper's stages 0..7 (or -1).
func TestBurdaStagesFlag(t *testing.T) {
	for _, v := range []string{"8", "-2"} {
		var stdout, stderr strings.Builder
		if code := realMain([]string{"-run", "burda", "-stages", v}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "-stages "+v) {
			t.Errorf("-stages %s: exit %d, stderr %q; want 2 and the flag named", v, code, stderr.String())
		}
	}
}

// tableOf is the results table of a burda report.
func tableOf(body string) string {
	i := strings.Index(body, "| model")
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "\n\n")
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

// TestBurdaCheckpointsAreLocked: a second process on the same -out is
// refused while the first holds its checkpoints.
func TestBurdaCheckpointsAreLocked(t *testing.T) {
	var log strings.Builder
	e := &env{Out: t.TempDir(), Log: &log}
	first, err := openBurdaCheckpoints(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openBurdaCheckpoints(e); !errors.Is(err, trainrun.ErrLocked) && !strings.Contains(log.String(), "locks") {
		t.Errorf("a second open of a locked checkpoints folder: err %v", err)
	}
	first.release()
	second, err := openBurdaCheckpoints(e)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	second.release()
}

// TestBurdaCheckpointIsRecognized: a row's checkpoint, as saveBurdaRow
// writes it, is one runinfo.ExperimentOf names (cmd/inspect then says how
// to continue it, and cmd/train -resume refuses it).
func TestBurdaCheckpointIsRecognized(t *testing.T) {
	m, err := amortized.New(amortized.Config{DataDim: 4, Hidden: []int{3}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := amortized.TrainState{Epoch: 1, Step: 2, AdamM: m.Params().ZerosLike(), AdamV: m.Params().ZerosLike()}
	path := filepath.Join(t.TempDir(), burdaFileName("VAE (k = 1)"))
	if err := saveBurdaRow(path, m, st, &burdaRun{Settings: burdaSettings{Row: "VAE (k = 1)"}}, nil); err != nil {
		t.Fatal(err)
	}
	in, err := checkpoints.ReadInfo(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := runinfo.ExperimentOf(in.State); got != "burda" {
		t.Errorf("ExperimentOf a burda row's checkpoint = %q, want burda", got)
	}
}

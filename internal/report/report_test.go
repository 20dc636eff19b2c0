package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/imgrid"
)

// fakeRun writes a run directory as cmd/train leaves it: a checkpoint,
// metrics with epoch and step lines, pictures, the command, and eval.json.
func fakeRun(t *testing.T, withEval bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run-a")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := amortized.New(amortized.Config{DataDim: 64, ImageRows: 8, ImageCols: 8, Hidden: []int{16}, Latent: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.Save(filepath.Join(dir, "model.safetensors"), m, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for e := 1; e <= 3; e++ {
		for s := 1; s <= 4; s++ {
			step := int64((e-1)*4 + s)
			fmt.Fprintf(&buf, `{"kind":"step","epoch":%d,"step":%d,"elbo":%g,"recon":%g,"kl":3,"beta":1,"loss":%g}`+"\n", e, step, -100+float64(step), -97+float64(step), 100-float64(step))
		}
		v := -95 + float64(e)
		line := Epoch{Epoch: e, Step: int64(4 * e), TrainELBO: -100 + float64(e), Recon: -97 + float64(e), KL: 3, ValELBO: &v, ValRecon: &v, ValKL: &v, TestELBO: v, TestRecon: v, TestKL: 3, Best: true}
		b, _ := json.Marshal(line)
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	imgs := make([][]float32, 16)
	for i := range imgs {
		imgs[i] = make([]float32, 64)
		imgs[i][i*3] = 1
	}
	g := imgrid.Grid{Rows: 8, Cols: 8, Columns: 8, Pad: 2, Scale: 2}
	for _, name := range []string{"samples-e002.png", "samples-e003.png", "recon-e003.png"} {
		if err := g.WritePNG(filepath.Join(dir, name), imgs); err != nil {
			t.Fatal(err)
		}
	}
	cmd := "go run ./cmd/train -epochs 3 -out 'runs/a b' -latent 2\n"
	if err := os.WriteFile(filepath.Join(dir, CommandFile), []byte(cmd), 0o644); err != nil {
		t.Fatal(err)
	}
	if withEval {
		ev := `{"checkpoint":"best.safetensors","k":1000,"log_px":-90.5,"log_px_stderr":0.12,"elbo":-95.1,"detail":{"x":1}}`
		if err := os.WriteFile(filepath.Join(dir, EvalFile), []byte(ev), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWriteIsSelfContained(t *testing.T) {
	dir := fakeRun(t, true)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	for _, want := range []string{
		"Run run-a",
		"go run ./cmd/train -epochs 3 -out &#39;runs/a b&#39; -latent 2", // the command, escaped
		"latent dimension</td><td>2",
		`<span class="k">k</span> <span class="v">1000</span>`, "log_px_stderr", // the evaluation with its k and error
		"Samples from the prior after epoch 3", "after epoch 3",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	if strings.Contains(html, "detail") {
		t.Error("a nested eval field was shown as a cell")
	}
	for _, bad := range []string{"<script", "http://", "https://", "src=\"/", "src=\"file"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q; want a page with no script and no outside resource", bad)
		}
	}
	if n := len(regexp.MustCompile(`<img[^>]+src="data:image/png;base64,`).FindAllString(html, -1)); n != 3 {
		t.Errorf("%d inline images, want 3 (curves, samples, reconstructions)", n)
	}
	// Nothing else was left in the run directory.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind %s", e.Name())
		}
	}
	// Without eval.json the page says how to make one.
	os.Remove(filepath.Join(dir, EvalFile))
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, IndexFile))
	if !strings.Contains(string(b), "No eval.json") {
		t.Error("no note about the missing evaluation")
	}
}

func TestWriteErrors(t *testing.T) {
	dir := fakeRun(t, false)
	os.WriteFile(filepath.Join(dir, EvalFile), []byte("[1, 2]"), 0o644)
	if err := Write(dir); err == nil || !strings.Contains(err.Error(), "eval.json") {
		t.Errorf("bad eval.json: err = %v", err)
	}
	os.Remove(filepath.Join(dir, "model.safetensors"))
	if err := Write(dir); err == nil || !strings.Contains(err.Error(), "best.safetensors") {
		t.Errorf("no checkpoint: err = %v", err)
	}
	if err := Write(t.TempDir()); err == nil || !strings.Contains(err.Error(), "metrics.jsonl") {
		t.Errorf("empty dir: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, IndexFile)); err == nil {
		t.Error("a failed report wrote index.html")
	}
}

func TestReadMetricsStepsAndEpochs(t *testing.T) {
	dir := fakeRun(t, false)
	m, err := ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "run-a" || len(m.Epochs) != 3 || len(m.Steps) != 12 || !m.HasVal() {
		t.Fatalf("name %q, %d epochs, %d steps", m.Name, len(m.Epochs), len(m.Steps))
	}
	// Step 6 is half way through epoch 2 (steps 5-8): x = 1.5.
	s := stepSeries(m, func(s Step) float64 { return s.ELBO })
	if s.X[5] != 1.5 || s.Y[5] != -94 || !s.Thin {
		t.Errorf("step 6 at (%g, %g), want (1.5, -94)", s.X[5], s.Y[5])
	}
	ps := Curves([]Metrics{m, m})
	if got := ps.Panels[0].Series[0].Name; got != "run-a (validation)" || len(ps.Panels[0].Series) != 2 {
		t.Errorf("two runs: series %q ..., %d series, want one held-out curve per run", got, len(ps.Panels[0].Series))
	}
	bad := filepath.Join(t.TempDir(), "m.jsonl")
	os.WriteFile(bad, []byte(`{"kind":"batch","epoch":1,"step":1,"elbo":1}`+"\n"), 0o644)
	if _, err := ReadMetrics(bad); err == nil || !strings.Contains(err.Error(), "line 1: kind") {
		t.Errorf("unknown kind: err = %v", err)
	}
}

// chromium finds Debian's chromium (or another Chrome) binary.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestRendersInChromium opens the page in headless Chromium with a small
// script appended (to a copy: the page itself has none) that writes, once
// loaded, how many images failed to load and whether the page is wider
// than the window.
func TestRendersInChromium(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium binary found (apt-get install chromium); the report is not checked in a browser")
	}
	dir := fakeRun(t, true)
	if err := Write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	const probe = `<script>window.addEventListener("load", function () {
  var imgs = Array.from(document.images), bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  var d = document.documentElement;
  var p = document.createElement("p"); p.id = "probe";
  p.textContent = "images=" + imgs.length + " broken=" + bad + " scrollWidth=" + d.scrollWidth + " clientWidth=" + d.clientWidth;
  document.body.appendChild(p);
});</script></body>`
	page := strings.Replace(string(b), "</body>", probe, 1)
	for _, width := range []int{1280, 800} {
		probed := filepath.Join(dir, fmt.Sprintf("probe-%d.html", width))
		if err := os.WriteFile(probed, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir="+t.TempDir(), fmt.Sprintf("--window-size=%d,900", width), "--virtual-time-budget=5000",
			"--dump-dom", "file://"+probed).Output()
		cancel()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		m := regexp.MustCompile(`images=(\d+) broken=(\d+) scrollWidth=(\d+) clientWidth=(\d+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("width %d: the probe did not run; DOM:\n%.2000s", width, out)
		}
		var n, broken, sw, cw int
		fmt.Sscan(string(m[1]), &n)
		fmt.Sscan(string(m[2]), &broken)
		fmt.Sscan(string(m[3]), &sw)
		fmt.Sscan(string(m[4]), &cw)
		t.Logf("width %d: %s", width, m[0])
		if n != 3 || broken != 0 {
			t.Errorf("width %d: %d images, %d not loaded; want 3, all loaded", width, n, broken)
		}
		if sw > cw {
			t.Errorf("width %d: the page is %d px wide in a %d px window: it overflows", width, sw, cw)
		}
	}
}

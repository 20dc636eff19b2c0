package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/govae/govae/checkpoints"
	"github.com/govae/govae/internal/atomicfile"
)

// File names the report reads and writes in a run directory.
const (
	IndexFile   = "index.html"
	CommandFile = "command.txt" // the command lines that made the run, one per line (cmd/train writes it)
	EvalFile    = "eval.json"   // cmd/eval's JSON, when the user saved it there
)

// Write writes dir/index.html atomically: a self-contained page (images
// inline as data: URIs, no script, no network) with the run's configuration
// and data, its training curves, the latest samples and reconstructions,
// the evaluation in eval.json if present, and the command that made the run.
// It needs metrics.jsonl and a checkpoint (model.safetensors or
// best.safetensors); everything else is shown when present.
func Write(dir string) error {
	page, err := build(dir)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, IndexFile), buf.Bytes(), 0o644)
}

type row struct{ Key, Value string }

type picture struct {
	Caption string
	Src     template.URL
}

type page struct {
	Name       string
	Generated  string
	Command    []string
	Config     []row
	Training   []row
	Curves     template.URL
	Pictures   []picture
	Eval       [][]row
	EvalSource string
	Epochs     []Epoch
	HasVal     bool
}

func build(dir string) (*page, error) {
	p := &page{Name: filepath.Base(filepath.Clean(dir)), Generated: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if abs, err := filepath.Abs(dir); err == nil {
		p.Name = filepath.Base(abs)
	}
	m, err := ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	p.Epochs, p.HasVal = m.Epochs, m.HasVal()

	ckpt := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(ckpt); err != nil {
		ckpt = filepath.Join(dir, "best.safetensors")
	}
	version, cfg, st, err := checkpoints.Inspect(ckpt)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	hidden := func(h []int) string {
		s := make([]string, len(h))
		for i, v := range h {
			s[i] = fmt.Sprint(v)
		}
		return strings.Join(s, ", ")
	}
	dec := cfg.DecoderHidden
	if dec == nil {
		dec = slices.Clone(cfg.Hidden)
		slices.Reverse(dec)
	}
	p.Config = []row{
		{"checkpoint", fmt.Sprintf("%s (format version %d)", filepath.Base(ckpt), version)},
		{"data", fmt.Sprintf("%d values per image (%dx%d)", cfg.DataDim, cfg.ImageRows, cfg.ImageCols)},
		{"encoder hidden", hidden(cfg.Hidden)},
		{"decoder hidden", hidden(dec)},
		{"latent dimension", fmt.Sprint(cfg.Latent)},
		{"activation", or(cfg.Activation, "relu")},
		{"likelihood p(x|z)", or(cfg.Likelihood, "bernoulli")},
		{"posterior q(z|x)", or(cfg.Posterior, "diag")},
		{"dtype", or(cfg.Dtype, "float32")},
	}
	if st != nil {
		var run map[string]any
		_ = json.Unmarshal(st.Run, &run)
		keys := make([]string, 0, len(run))
		for k := range run {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := fmt.Sprint(run[k])
			if v == "" {
				v = "–" // such as data_dir when the default search found the data
			}
			p.Training = append(p.Training, row{strings.ReplaceAll(k, "_", " "), v})
		}
		o := st.Options
		p.Training = append(p.Training,
			row{"objective", fmt.Sprintf("%s, k = %d, %s gradients", o.Objective, o.K, o.Estimator)},
			row{"optimizer", fmt.Sprintf("Adam, learning rate %g", o.LR)},
			row{"epochs", fmt.Sprintf("%d of %d (step %d)", st.Epoch, o.Epochs, st.Step)},
		)
		if o.WarmupEpochs > 0 || o.FreeBits > 0 {
			p.Training = append(p.Training, row{"KL warm-up, free bits", fmt.Sprintf("%g epochs, %g nats", o.WarmupEpochs, o.FreeBits)})
		}
		if st.BestEpoch > 0 {
			p.Training = append(p.Training, row{"best validation ELBO", fmt.Sprintf("%.3f nats per image at epoch %d", st.BestValELBO, st.BestEpoch)})
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, CommandFile)); err == nil {
		for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				p.Command = append(p.Command, l)
			}
		}
	}

	// Curves, rendered to a temporary file in the run directory (plotting
	// writes files atomically) and inlined.
	tmp, err := os.CreateTemp(dir, ".report-curves-*.png")
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := Curves([]Metrics{m}).WritePNG(tmp.Name(), 1); err != nil {
		return nil, fmt.Errorf("report: curves: %w", err)
	}
	if p.Curves, err = dataURI(tmp.Name()); err != nil {
		return nil, err
	}
	for _, pic := range []struct{ glob, caption string }{
		{"samples-e*.png", "Samples from the prior after epoch %s (the same z every epoch)"},
		{"recon-e*.png", "Test images above their reconstructions after epoch %s"},
	} {
		files, _ := filepath.Glob(filepath.Join(dir, pic.glob))
		if len(files) == 0 {
			continue
		}
		sort.Strings(files) // epochs are zero-padded
		last := files[len(files)-1]
		uri, err := dataURI(last)
		if err != nil {
			return nil, err
		}
		epoch := strings.TrimLeft(strings.TrimSuffix(filepath.Base(last)[strings.Index(filepath.Base(last), "-e")+2:], ".png"), "0")
		p.Pictures = append(p.Pictures, picture{fmt.Sprintf(pic.caption, epoch), uri})
	}
	if b, err := os.ReadFile(filepath.Join(dir, EvalFile)); err == nil {
		p.EvalSource = EvalFile
		if p.Eval, err = evalRows(b); err != nil {
			return nil, fmt.Errorf("report: %s: %w", filepath.Join(dir, EvalFile), err)
		}
	}
	return p, nil
}

// evalRows turns cmd/eval's JSON (an object, or an array of them) into
// rows of its scalar fields, k and the error among them, in the file's
// order of keys.
func evalRows(b []byte) ([][]row, error) {
	var objs []json.RawMessage
	if err := json.Unmarshal(b, &objs); err != nil {
		objs = []json.RawMessage{b}
	}
	var out [][]row
	for _, o := range objs {
		dec := json.NewDecoder(bytes.NewReader(o))
		dec.UseNumber()
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return nil, fmt.Errorf("want a JSON object or an array of objects, as cmd/eval -json writes")
		}
		var rows []row
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, err
			}
			switch n := v.(type) {
			case map[string]any, []any:
				continue // nested detail: not a table cell
			case json.Number:
				if f, err := n.Float64(); err == nil && strings.ContainsAny(string(n), ".eE") {
					v = fmt.Sprintf("%.6g", f) // six significant digits, not float64's seventeen
				}
			}
			rows = append(rows, row{fmt.Sprint(k), fmt.Sprint(v)})
		}
		out = append(out, rows)
	}
	return out, nil
}

func dataURI(path string) (template.URL, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b)), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f3": func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"fp": func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%.3f", *v)
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>govae run {{.Name}}</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; color: #222; margin: 0 auto; padding: 1em 1.5em; max-width: 72em; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
pre { background: #f4f4f4; padding: 0.6em 0.8em; white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 0.4em 0; }
td, th { padding: 0.15em 0.8em 0.15em 0; text-align: left; vertical-align: top; }
th { border-bottom: 1px solid #ccc; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.cols { display: flex; flex-wrap: wrap; gap: 0 3em; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 0.6em 0; }
img { max-width: 100%; height: auto; }
img.pixels { image-rendering: pixelated; }
figcaption { color: #555; font-size: 0.92em; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(19em, 1fr)); gap: 0.15em 2em; margin: 0.4em 0 1em; }
.kv div { overflow-wrap: anywhere; }
.kv .k { color: #555; display: inline-block; min-width: 8.5em; }
.kv .v { font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>Run {{.Name}}</h1>
<p class="sub">Written {{.Generated}} by govae (cmd/train after each epoch, or cmd/sample report). ELBO and its terms are in nats per image; higher ELBO is better.</p>

<h2>Command</h2>
{{if .Command}}<pre>{{range .Command}}{{.}}
{{end}}</pre>{{else}}<p>Not recorded (runs started before command.txt existed).</p>{{end}}

<h2>Configuration and data</h2>
<div class="cols">
<table>{{range .Config}}<tr><td>{{.Key}}</td><td>{{.Value}}</td></tr>{{end}}</table>
{{if .Training}}<table>{{range .Training}}<tr><td>{{.Key}}</td><td>{{.Value}}</td></tr>{{end}}</table>{{end}}
</div>

<h2>Training curves</h2>
<figure><img src="{{.Curves}}" alt="ELBO, reconstruction and KL per epoch"></figure>
<div class="scroll"><table>
<tr><th class="n">epoch</th><th class="n">step</th><th class="n">train ELBO</th><th class="n">recon</th><th class="n">KL</th><th class="n">{{if .HasVal}}validation{{else}}(no validation){{end}}</th><th class="n">test ELBO</th><th class="n">images/s</th><th class="n">seconds</th></tr>
{{range .Epochs}}<tr><td class="n">{{.Epoch}}{{if .Best}} ★{{end}}</td><td class="n">{{.Step}}</td><td class="n">{{f3 .TrainELBO}}</td><td class="n">{{f3 .Recon}}</td><td class="n">{{f3 .KL}}</td><td class="n">{{fp .ValELBO}}</td><td class="n">{{f3 .TestELBO}}</td><td class="n">{{printf "%.0f" .ImagesPerSec}}</td><td class="n">{{printf "%.1f" .Seconds}}</td></tr>
{{end}}</table></div>

<h2>Latest pictures</h2>
{{range .Pictures}}<figure><img class="pixels" src="{{.Src}}" alt="{{.Caption}}"><figcaption>{{.Caption}}</figcaption></figure>
{{else}}<p>No pictures (the model's data are not images).</p>{{end}}

<h2>Evaluation</h2>
{{if .Eval}}<p>From {{.EvalSource}} (cmd/eval; k is the number of importance samples of the log p(x) estimate).</p>
{{range .Eval}}<div class="kv">{{range .}}<div><span class="k">{{.Key}}</span> <span class="v">{{.Value}}</span></div>{{end}}</div>{{end}}
{{else}}<p>No eval.json in the run directory. To add one: <code>go run ./cmd/eval -ckpt RUN/best.safetensors -json RUN/eval.json</code>, then <code>go run ./cmd/sample report -run RUN</code>.</p>{{end}}
</body>
</html>
`))

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/trainrun"
)

type latentOptions struct {
	model      modelFlags
	output     outputFlags
	n          int
	method     string // pca or tsne
	perplexity float64
	iters      int
	seed       uint64
}

// displayName is how a dataset is named in titles.
func displayName(dataset string) string {
	switch dataset {
	case "mnist":
		return "MNIST"
	case "fashion-mnist":
		return "Fashion-MNIST"
	}
	return dataset
}

// classNames are the names of datasets' labels; labels of other datasets
// are shown as numbers.
var classNames = map[string][]string{
	"fashion-mnist": {"T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"},
}

func latent(o latentOptions, stdout, stderr io.Writer) error {
	src, err := openSource(o.model, stderr)
	if err != nil {
		return err
	}
	L := src.m.LatentDim()
	if L < 2 {
		return fmt.Errorf("the model has %d latent dimension; the plot needs at least 2", L)
	}
	if err := src.checkRange(0, o.n, fmt.Sprintf("-n %d", o.n)); err != nil {
		return err
	}
	x, labels, err := src.testImages(indexRange(0, o.n))
	if err != nil {
		return err
	}
	z, err := src.m.Encode(x)
	if err != nil {
		return err
	}
	s := plotting.Scatter{
		Title:  fmt.Sprintf("Posterior means of %d %s test images", o.n, displayName(src.ds.Name)),
		XLabel: "z1",
		YLabel: "z2",
		X:      make([]float64, o.n),
		Y:      make([]float64, o.n),
		Group:  make([]int, o.n),
	}
	plane := plotting.Plane{Dirs: [2][]float64{unit(L, 0), unit(L, 1)}}
	if L > 2 {
		if plane, err = plotting.PrincipalPlane(z); err != nil {
			return err
		}
		s.Title = fmt.Sprintf("Posterior means of %d %s test images,\nprojected on their top two principal components (of %d dimensions)", o.n, displayName(src.ds.Name), L)
		s.XLabel = fmt.Sprintf("PC1 (%.1f%% of variance)", 100*plane.Explained[0])
		s.YLabel = fmt.Sprintf("PC2 (%.1f%% of variance)", 100*plane.Explained[1])
	}
	maxLabel := int(slices.Max(labels))
	if maxLabel >= len(plotting.Palette) {
		return fmt.Errorf("test label %d: the plot tells at most %d labels apart", maxLabel, len(plotting.Palette))
	}
	for i := range z {
		s.X[i], s.Y[i] = plane.Project(z[i])
		s.Group[i] = int(labels[i])
	}
	if o.method == "tsne" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ts := plotting.TSNE{Perplexity: o.perplexity, Iters: o.iters, Seed: o.seed}
		start := time.Now()
		ts.Progress = func(it int, kl float64) {
			fmt.Fprintf(stderr, "t-SNE step %d/%d: KL %.4f, %.0fs\n", it, o.iters, kl, time.Since(start).Seconds())
		}
		y, err := ts.Embed(ctx, z)
		if err != nil {
			return err
		}
		for i := range y {
			s.X[i], s.Y[i] = y[i][0], y[i][1]
		}
		s.Title = fmt.Sprintf("t-SNE map of the posterior means of %d %s test images\n(%d dimensions; perplexity %g, %d steps, seed %d)", o.n, displayName(src.ds.Name), L, o.perplexity, o.iters, o.seed)
		s.XLabel, s.YLabel = "t-SNE 1", "t-SNE 2"
	}
	names := classNames[src.ds.Name]
	for k := 0; k <= maxLabel; k++ {
		if k < len(names) {
			s.Names = append(s.Names, names[k])
		} else {
			s.Names = append(s.Names, strconv.Itoa(k))
		}
	}
	if err := s.WritePNG(o.output.out, o.output.scale); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %s against %s for %d test images of %s, coloured by label\n",
		o.output.out, s.YLabel, s.XLabel, o.n, src.ds.Name)
	return nil
}

// unit is the j-th standard basis vector of dimension n.
func unit(n, j int) []float64 {
	v := make([]float64, n)
	v[j] = 1
	return v
}

type curvesOptions struct {
	metrics string
	output  outputFlags
}

func curves(o curvesOptions, stdout io.Writer) error {
	lines, err := readMetrics(o.metrics)
	if err != nil {
		return err
	}
	heldOut := "validation"
	if lines[0].ValELBO == nil {
		heldOut = "test (no validation set)"
	}
	series := func(name string, f func(m trainrun.Metrics) float64) plotting.Series {
		s := plotting.Series{Name: name}
		for _, m := range lines {
			s.X = append(s.X, float64(m.Epoch))
			s.Y = append(s.Y, f(m))
		}
		return s
	}
	val := lines[0].ValELBO != nil
	held := func(v *float64, test float64) float64 {
		if val {
			return *v
		}
		return test
	}
	panels := plotting.Panels{Panels: []plotting.Panel{
		{Title: "ELBO", XLabel: "epoch", YLabel: "nats per image", Series: []plotting.Series{
			series("train", func(m trainrun.Metrics) float64 { return m.TrainELBO }),
			series(heldOut, func(m trainrun.Metrics) float64 { return held(m.ValELBO, m.TestELBO) }),
		}},
		{Title: "Reconstruction E_q[log p(x|z)]", XLabel: "epoch", YLabel: "nats per image", Series: []plotting.Series{
			series("train", func(m trainrun.Metrics) float64 { return m.Recon }),
			series(heldOut, func(m trainrun.Metrics) float64 { return held(m.ValRecon, m.TestRecon) }),
		}},
		{Title: "KL(q(z|x) || p(z))", XLabel: "epoch", YLabel: "nats per image", Series: []plotting.Series{
			series("train", func(m trainrun.Metrics) float64 { return m.KL }),
			series(heldOut, func(m trainrun.Metrics) float64 { return held(m.ValKL, m.TestKL) }),
		}},
	}}
	if err := panels.WritePNG(o.output.out, o.output.scale); err != nil {
		return err
	}
	last := lines[len(lines)-1]
	epochs := "epochs"
	if len(lines) == 1 {
		epochs = "epoch"
	}
	fmt.Fprintf(stdout, "wrote %s: ELBO, reconstruction and KL over %d %s (train and %s); last epoch %d: train ELBO %.2f, %s ELBO %.2f\n",
		o.output.out, len(lines), epochs, heldOut, last.Epoch, last.TrainELBO, heldOut, held(last.ValELBO, last.TestELBO))
	return nil
}

// readMetrics reads a metrics.jsonl written by internal/trainrun: one JSON
// object per epoch. Every line must have the fields the plot needs, and the
// held-out terms must be there on all lines or none; a later line for an
// epoch replaces an earlier one, and lines are sorted by epoch.
func readMetrics(path string) ([]trainrun.Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-metrics: %w", err)
	}
	defer f.Close()
	notMetrics := func(line int, why string) error {
		return fmt.Errorf("-metrics %s: line %d: %s; want a metrics.jsonl from cmd/train (one JSON object per epoch with epoch, train_elbo, recon, kl, ...)", path, line, why)
	}
	required := []string{"epoch", "train_elbo", "recon", "kl", "val_elbo", "test_elbo", "test_recon", "test_kl"}
	byEpoch := map[int]trainrun.Metrics{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line, withVal := 0, -1
	for sc.Scan() {
		line++
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &fields); err != nil {
			return nil, notMetrics(line, "not a JSON object")
		}
		for _, k := range required {
			if _, ok := fields[k]; !ok {
				return nil, notMetrics(line, fmt.Sprintf("no %q field", k))
			}
		}
		var m trainrun.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, notMetrics(line, err.Error())
		}
		if m.Epoch < 1 {
			return nil, notMetrics(line, fmt.Sprintf("epoch %d", m.Epoch))
		}
		hasVal := m.ValELBO != nil && m.ValRecon != nil && m.ValKL != nil
		if withVal >= 0 && hasVal != (withVal == 1) {
			return nil, notMetrics(line, "validation terms on some lines only")
		}
		withVal = 0
		if hasVal {
			withVal = 1
		}
		byEpoch[m.Epoch] = m
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-metrics %s: %w", path, err)
	}
	if len(byEpoch) == 0 {
		return nil, errors.New("-metrics " + path + ": no epochs; want a metrics.jsonl from cmd/train")
	}
	out := make([]trainrun.Metrics, 0, len(byEpoch))
	for _, m := range byEpoch {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b trainrun.Metrics) int { return a.Epoch - b.Epoch })
	return out, nil
}

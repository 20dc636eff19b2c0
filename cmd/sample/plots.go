package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govae/govae/internal/plotting"
	"github.com/govae/govae/internal/report"
)

type latentOptions struct {
	model      modelFlags
	output     outputFlags
	n          int
	method     string // pca or tsne
	perplexity float64
	theta      float64
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
		ts := plotting.TSNE{Perplexity: o.perplexity, Iters: o.iters, Seed: o.seed, Theta: o.theta}
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
		how := "exact"
		if o.theta > 0 {
			how = fmt.Sprintf("Barnes-Hut θ = %g", o.theta)
		}
		s.Title = fmt.Sprintf("t-SNE map of the posterior means of %d %s test images\n(%d dimensions; %s, perplexity %g, %d steps, seed %d)", o.n, displayName(src.ds.Name), L, how, o.perplexity, o.iters, o.seed)
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
	var runs []report.Metrics
	for _, path := range strings.Split(o.metrics, ",") {
		m, err := report.ReadMetrics(strings.TrimSpace(path))
		if err != nil {
			return fmt.Errorf("-metrics: %w", err)
		}
		runs = append(runs, m)
	}
	if len(runs) > 1 {
		seen := map[string]int{}
		for i := range runs {
			if seen[runs[i].Name]++; seen[runs[i].Name] > 1 {
				runs[i].Name += fmt.Sprintf(" #%d", seen[runs[i].Name])
			}
		}
	}
	if err := report.Curves(runs).WritePNG(o.output.out, o.output.scale); err != nil {
		return err
	}
	for _, r := range runs {
		last := r.Epochs[len(r.Epochs)-1]
		held := "validation"
		v := last.TestELBO
		if last.ValELBO != nil {
			v = *last.ValELBO
		} else {
			held = "test (no validation set)"
		}
		epochs := "epochs"
		if len(r.Epochs) == 1 {
			epochs = "epoch"
		}
		steps := ""
		if len(r.Steps) > 0 {
			steps = fmt.Sprintf(" and %d per-step lines", len(r.Steps))
		}
		fmt.Fprintf(stdout, "wrote %s: %s: ELBO, reconstruction and KL over %d %s%s (train and %s); last epoch %d: train ELBO %.2f, %s ELBO %.2f\n",
			o.output.out, r.Name, len(r.Epochs), epochs, steps, held, last.Epoch, last.TrainELBO, held, v)
	}
	return nil
}

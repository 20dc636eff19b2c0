package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/imgrid"
)

type imputeOptions struct {
	model                         modelFlags
	output                        outputFlags
	mask                          mask
	mean                          bool
	iters, chains, first, n, eval int
	columns                       int
	seed                          uint64
}

func impute(o imputeOptions, stdout, stderr io.Writer) error {
	src, g, err := openWithGrid(o.model, o.output.scale, 0, stderr)
	if err != nil {
		return err
	}
	src.needTrain = true // trainMean: one load for both splits
	x, err := src.testRange(o.first, o.eval, fmt.Sprintf("-first %d -eval %d", o.first, o.eval))
	if err != nil {
		return err
	}
	baseline, err := src.trainMean()
	if err != nil {
		return err
	}
	c := src.m.Config()
	maskRng := rand.New(rand.NewPCG(o.seed, 1))
	observed := make([][]bool, len(x))
	for i := range observed {
		observed[i] = o.mask.observed(c.ImageRows, c.ImageCols, maskRng)
	}
	hiddenTotal := 0
	for _, seen := range observed {
		for _, v := range seen {
			if !v {
				hiddenTotal++
			}
		}
	}
	if hiddenTotal == 0 {
		return usagef("-mask %s hides no pixel of the model's %dx%d images; nothing to impute", o.mask, c.ImageRows, c.ImageCols)
	}
	opts := amortized.ImputeOptions{Iters: o.iters, Mean: o.mean, Chains: o.chains}
	// A hidden pixel hides all its channels: the model sees values.
	obsValues := make([][]bool, len(observed))
	for i, seen := range observed {
		obsValues[i] = overChannels(seen, c.Shape().Channels)
	}
	out, err := imputeInSlices(ctx, src.m, x, obsValues, opts, rand.New(rand.NewPCG(o.seed, 0)))
	if err != nil {
		return err
	}
	var sqModel, sqBase float64
	hidden := 0
	for i := range x {
		for j, seen := range obsValues[i] {
			if seen {
				continue
			}
			dm, db := float64(out[i][j]-x[i][j]), float64(baseline[j]-x[i][j])
			sqModel += dm * dm
			sqBase += db * db
			hidden++
		}
	}

	method := fmt.Sprintf("z drawn from q(z|x), %d sweeps", o.iters)
	if o.mean {
		method = fmt.Sprintf("z the mean of q(z|x), %d sweeps", o.iters)
	}
	if o.chains > 1 {
		method += fmt.Sprintf(", average of %d chains", o.chains)
	}
	fig := imgrid.Figure{Grid: g, Title: fmt.Sprintf("Imputation of the %s (hidden pixels in blue)\n%s", o.mask, method)}
	for _, r := range chunk(o.n, o.columns) {
		hidden := make([][]bool, 0, r[1]-r[0])
		for k := r[0]; k < r[1]; k++ {
			h := make([]bool, len(observed[k]))
			for p, seen := range observed[k] {
				h[p] = !seen
			}
			hidden = append(hidden, h)
		}
		fig.Blocks = append(fig.Blocks, imgrid.Block{Rows: []imgrid.Row{
			{Label: "original", Images: x[r[0]:r[1]]},
			{Label: "masked", Images: x[r[0]:r[1]], Hidden: hidden},
			{Label: "imputed", Images: out[r[0]:r[1]]},
		}})
	}
	if err := fig.WritePNG(o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: test images %d to %d of %s with the %s hidden; rows: original, masked, imputed (%s)\n",
		o.output.out, o.first, o.first+o.n-1, src.ds.Name, o.mask, method)
	what := "pixels"
	if ch := c.Shape().Channels; ch > 1 {
		what = fmt.Sprintf("values (%d channels a pixel)", ch)
	}
	fmt.Fprintf(stdout, "mean squared error on the %d hidden %s of %d test images: %.5f imputed, %.5f with each value's training-set mean\n",
		hidden, what, len(x), sqModel/float64(hidden), sqBase/float64(hidden))
	return nil
}

// imputeSweeps is about the number of row-sweeps (rows x chains x iters)
// per call of Model.Impute: 2,000 rows at the default 50 sweeps, four of
// Impute's chunks of 500 for as many cores (a slice of one chunk ran on one
// core), a few seconds on the reference model with 2 cores.
const imputeSweeps = 100000

// imputeInSlices runs Model.Impute on slices of rows, checking ctx between
// them (amortized.Impute takes no context); a cancellation during a slice
// returns at once and leaves the slice to finish in the background while
// the process exits. The noise comes from rng slice after slice, so the
// result depends on the seed and on this fixed slicing only.
func imputeInSlices(ctx context.Context, m *amortized.Model, x [][]float32, observed [][]bool, opts amortized.ImputeOptions, rng *rand.Rand) ([][]float32, error) {
	step := max(1, imputeSweeps/(max(opts.Chains, 1)*max(opts.Iters, 1)))
	type result struct {
		out [][]float32
		err error
	}
	var out [][]float32
	for i := 0; i < len(x); i += step {
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
		j := min(i+step, len(x))
		done := make(chan result, 1)
		go func() {
			o, err := m.Impute(x[i:j], observed[i:j], opts, rng)
			done <- result{o, err}
		}()
		select {
		case r := <-done:
			if r.err != nil {
				return nil, r.err
			}
			out = append(out, r.out...)
		case <-ctx.Done():
			return nil, errInterrupted
		}
	}
	return out, nil
}

// mask names the pixels to hide.
type mask struct {
	region   string  // top, bottom, left, right, center or random
	fraction float64 // of pixels hidden, for random
}

func parseMask(s string) (mask, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	switch name {
	case "top", "bottom", "left", "right", "center":
		if !hasArg {
			return mask{region: name}, nil
		}
	case "random":
		f, err := strconv.ParseFloat(arg, 64)
		if !hasArg || err != nil || !(f > 0 && f < 1) {
			return mask{}, usagef("-mask %q: want random:F with a fraction 0 < F < 1 of the pixels to hide, such as random:0.5", s)
		}
		return mask{region: name, fraction: f}, nil
	}
	return mask{}, usagef("-mask %q: want top, bottom, left, right, center or random:F", s)
}

func (mk mask) String() string {
	switch mk.region {
	case "center":
		return "centred square of half the side"
	case "random":
		return fmt.Sprintf("random %g%% of the pixels", 100*mk.fraction)
	}
	return mk.region + " half"
}

// observed returns, for a rows x cols image, true where a pixel is shown.
// Halves of an odd size hide the smaller part; a random mask hides exactly
// round(fraction * pixels) of them, at least one and never all, chosen anew
// for each image.
func (mk mask) observed(rows, cols int, rng *rand.Rand) []bool {
	seen := make([]bool, rows*cols)
	if mk.region == "random" {
		for j := range seen {
			seen[j] = true
		}
		k := min(max(int(mk.fraction*float64(len(seen))+0.5), 1), len(seen)-1)
		for _, j := range rng.Perm(len(seen))[:k] {
			seen[j] = false
		}
		return seen
	}
	side, top, left := rows/2, (rows-rows/2)/2, (cols-cols/2)/2
	for r := range rows {
		for c := range cols {
			var hidden bool
			switch mk.region {
			case "top":
				hidden = r < rows/2
			case "bottom":
				hidden = r >= rows-rows/2
			case "left":
				hidden = c < cols/2
			case "right":
				hidden = c >= cols-cols/2
			case "center":
				hidden = r >= top && r < top+side && c >= left && c < left+cols/2
			}
			seen[r*cols+c] = !hidden
		}
	}
	return seen
}

// overChannels repeats a per-pixel mask over the channel planes of a CHW row.
func overChannels(seen []bool, channels int) []bool {
	out := make([]bool, 0, len(seen)*channels)
	for range channels {
		out = append(out, seen...)
	}
	return out
}

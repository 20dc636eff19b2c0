package main

import (
	"fmt"
	"io"

	"github.com/govae/govae/amortized"
	"github.com/govae/govae/internal/imgrid"
)

// generateWeightDraws shows the spread of a Bayesian decoder's weights: the
// images of the same z decoded with the mean weights (first row, imgs) and
// under each of o.weightDraws draws theta ~ q(theta) (one row each); what
// changes down a column is the decoder's uncertainty, not z.
func generateWeightDraws(o generateOptions, m *amortized.Model, g imgrid.Grid, z, imgs [][]float32, stdout io.Writer) error {
	if !m.BayesDecoder() {
		return usagef("-weight-draws %d: the decoder of %s is not Bayesian (trained without -bayes-decoder); its weights are fixed", o.weightDraws, o.model.ckpt)
	}
	if o.n*(o.weightDraws+1) > maxImages {
		return usagef("-n %d with -weight-draws %d: %d images, want at most %d", o.n, o.weightDraws, o.n*(o.weightDraws+1), maxImages)
	}
	wd, err := m.NewWeightDraws(o.seed)
	if err != nil {
		return err
	}
	fig := imgrid.Figure{Grid: g, Title: fmt.Sprintf("%d z ~ N(0, %g² I) (seed %d), each column one z:\nmean decoder weights, then %d draws of the weights from q", o.n, o.temperature, o.seed, o.weightDraws)}
	blk := imgrid.Block{Rows: []imgrid.Row{{Label: "mean", Images: imgs}}}
	for s := range o.weightDraws {
		d, err := wd.Next().Decode(z)
		if err != nil {
			return err
		}
		blk.Rows = append(blk.Rows, imgrid.Row{Label: fmt.Sprintf("draw %d", s+1), Images: d})
	}
	fig.Blocks = []imgrid.Block{blk}
	if err := fig.WritePNG(o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d images decoded from z ~ N(0, %g^2 I), seed %d, with the mean decoder weights and %d weight draws\n", o.output.out, o.n, o.temperature, o.seed, o.weightDraws)
	return nil
}

package main

// The post-hoc sampler of `generate -sampler gmm`: a variational Bayesian
// Gaussian mixture (package vi; Bishop 2006, 10.2) fitted to the posterior
// means of training images replaces the prior as the source of z, as
// pythae's GMM sampler does (Chadebec et al. 2022). Kept in its own file:
// main.go only registers the flags and branches here.

import (
	"context"
	"flag"
	"fmt"
	"github.com/govae/govae/internal/run/runinfo"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"

	"github.com/govae/govae/data"
	"github.com/govae/govae/vi"
)

type samplerFlags struct {
	sampler string
	k       int
	fitN    int
	alpha0  float64
}

func (s *samplerFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&s.sampler, "sampler", "prior", "where z comes from: prior (z ~ p(z): N(0, T^2 I) for the normal prior), or gmm (a variational Bayesian Gaussian mixture fitted to the\nposterior means of -gmm-n training images; -temperature scales each component's spread)")
	fs.IntVar(&s.k, "gmm-k", 10, "with -sampler gmm: mixture components (an upper bound: surplus ones are emptied)")
	fs.IntVar(&s.fitN, "gmm-n", 10000, "with -sampler gmm: training images whose codes the mixture is fitted to (the first n)")
	fs.Float64Var(&s.alpha0, "gmm-alpha0", 1, "with -sampler gmm: Dirichlet concentration of the weights (small values prune more)")
}

func (s *samplerFlags) check() error {
	switch s.sampler {
	case "prior":
		return nil
	case "gmm":
	default:
		return usagef("-sampler %q: want prior or gmm", s.sampler)
	}
	if s.k < 1 || s.k > 1000 {
		return usagef("-gmm-k %d: want 1 to 1000", s.k)
	}
	if s.fitN < s.k || s.fitN > 10_000_000 {
		return usagef("-gmm-n %d: want at least -gmm-k (%d) and at most 10000000", s.fitN, s.k)
	}
	if !(s.alpha0 > 0) || math.IsInf(s.alpha0, 0) {
		return usagef("-gmm-alpha0 %g: want a finite value > 0", s.alpha0)
	}
	return nil
}

// generateGMM is generate with z drawn from the fitted mixture:
// z = m_k + T L_k eps, k ~ E[pi], L_k L_k^T = E[Lambda_k]^-1.
func generateGMM(o generateOptions, s samplerFlags, stdout, stderr io.Writer) error {
	src, g, err := openWithGrid(o.model, o.output.scale, o.columns, stderr)
	if err != nil {
		return err
	}
	ds, err := src.trainSet()
	if err != nil {
		return err
	}
	if s.fitN > ds.Train.Images.N {
		return usagef("-gmm-n %d: the training set of %s has %d images", s.fitN, ds.Name, ds.Train.Images.N)
	}
	idx := indexRange(0, s.fitN)
	l, err := data.NewLoader(ds.Train.Images, idx, data.LoaderOptions{Batch: min(1000, s.fitN), Seed: runinfo.EvalBinarizeSeed, Binarize: src.binarization()})
	if err != nil {
		return err
	}
	x, err := l.Rows(0)
	if err != nil {
		return err
	}
	codes := make([][]float64, 0, len(x))
	for i := 0; i < len(x); i += 1000 {
		z, err := src.m.Encode(x[i:min(i+1000, len(x))])
		if err != nil {
			return err
		}
		for _, r := range z {
			v := make([]float64, len(r))
			for j, f := range r {
				v[j] = float64(f)
			}
			codes = append(codes, v)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	gm, err := vi.FitGMM(ctx, codes, vi.GMMOptions{K: s.k, Alpha0: s.alpha0, Seed: o.seed})
	if err != nil {
		return fmt.Errorf("fitting the mixture: %w", err)
	}
	rng := rand.New(rand.NewPCG(o.seed, 1))
	z := make([][]float32, o.n)
	for i, d := range gm.SampleTemperature(o.n, o.temperature, rng) {
		z[i] = make([]float32, len(d))
		for j, v := range d {
			z[i][j] = float32(v)
		}
	}
	imgs, err := src.m.Decode(z)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("%d images decoded from z ~ a VBGMM fitted to %d training codes (%d of %d components), temperature %g, seed %d",
		o.n, s.fitN, len(gm.Active()), gm.K, o.temperature, o.seed)
	if err := writeSampleFigure(g, imgs, title, o.output.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d images decoded from z drawn from a VBGMM (%d of %d components active, ELBO %.1f after %d sweeps) fitted to the codes of %d %s training images, temperature %g, seed %d\n",
		o.output.out, o.n, len(gm.Active()), gm.K, gm.ELBO[len(gm.ELBO)-1], gm.Iters, s.fitN, ds.Name, o.temperature, o.seed)
	return nil
}

package amortized

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// Config is everything needed to rebuild a model's network; it is stored in
// checkpoints as JSON. The zero value of an optional field means the default
// given in its comment.
type Config struct {
	DataDim   int `json:"data_dim"`             // width of x; required
	ImageRows int `json:"image_rows,omitempty"` // x as an image, for pictures; 0 = not an image
	ImageCols int `json:"image_cols,omitempty"`
	// ImageChannels is the number of channels of an image; 0 means 1.
	ImageChannels int `json:"image_channels,omitempty"`

	// Hidden are the encoder's hidden widths, input side first.
	Hidden []int `json:"hidden"`
	// DecoderHidden are the decoder's hidden widths, latent side first;
	// nil means Hidden reversed (the usual mirror image).
	DecoderHidden []int  `json:"decoder_hidden"`
	Latent        int    `json:"latent"`     // dimension of z; required
	Activation    string `json:"activation"` // relu (default), tanh, softplus

	// Likelihood is p(x|z): bernoulli (default) or gaussian, or any
	// registered likelihood (RegisterLikelihood).
	Likelihood string `json:"likelihood"`
	// GaussianMinVar is the floor added to the decoder's variance; 0 means 1e-3.
	GaussianMinVar float64 `json:"gaussian_min_var,omitempty"`

	// Posterior is q(z|x)'s family: diag (default), fullcov, planar:K,
	// radial:K, iaf:K or iaf:K:H (see the package doc), or any registered
	// family (RegisterFamily). Normalize writes the family's canonical form
	// ("iaf:K" becomes "iaf:K:H" with the default H).
	Posterior string `json:"posterior"`
	// Prior is p(z): normal, N(0, I) (the default), or any registered prior.
	// Omitted from JSON when it is the default, so files read the same by
	// older programs.
	Prior string `json:"prior,omitempty"`
	// Trunk makes the encoder and decoder bodies: mlp (the default) or any
	// registered trunk. Omitted from JSON when it is the default.
	Trunk string `json:"trunk,omitempty"`
	Dtype string `json:"dtype"` // float32 (default) or float64

	// DecoderPriorSigma > 0 makes the decoder Bayesian (see bayes.go): each
	// decoder parameter gets a diagonal Gaussian q(beta) against the prior
	// N(0, DecoderPriorSigma^2). 0: point-estimate weights (the default).
	DecoderPriorSigma float64 `json:"decoder_prior_sigma,omitempty"`
}

// ReferenceConfig is the architecture everyone quotes: 784-400-20-400-784,
// ReLU, Bernoulli, diagonal Gaussian posterior.
func ReferenceConfig() Config {
	return Config{DataDim: 784, ImageRows: 28, ImageCols: 28, Hidden: []int{400}, Latent: 20}
}

// Normalize returns c with defaults filled in, or an error naming the first
// invalid field.
func (c Config) Normalize() (Config, error) {
	c, _, err := c.normalize()
	return c, err
}

// parts are a configuration's parsed parts.
type parts struct {
	family Family
	prior  Prior
	lik    Likelihood
	trunk  Trunk
}

// normalize is Normalize that also returns the parsed parts.
func (c Config) normalize() (Config, parts, error) {
	var p parts
	c.Hidden = slices.Clone(c.Hidden)
	if c.DecoderHidden == nil {
		c.DecoderHidden = slices.Clone(c.Hidden)
		slices.Reverse(c.DecoderHidden)
	} else {
		c.DecoderHidden = slices.Clone(c.DecoderHidden)
	}
	if c.Activation == "" {
		c.Activation = string(nets.ReLU)
	}
	if c.Likelihood == "" {
		c.Likelihood = Bernoulli
	}
	if c.Likelihood == Gaussian && c.GaussianMinVar == 0 {
		c.GaussianMinVar = 1e-3
	}
	if c.Posterior == "" {
		c.Posterior = Diagonal
	}
	if c.Dtype == "" {
		c.Dtype = "float32"
	}
	channels := max(c.ImageChannels, 1)
	switch {
	case c.DataDim <= 0:
		return c, p, fmt.Errorf("amortized: config: data_dim %d, want > 0", c.DataDim)
	case c.Latent <= 0:
		return c, p, fmt.Errorf("amortized: config: latent %d, want > 0", c.Latent)
	case c.ImageRows < 0 || c.ImageCols < 0 || c.ImageChannels < 0 || c.ImageRows > math.MaxInt32 || c.ImageCols > math.MaxInt32 || channels > math.MaxInt32 ||
		(c.ImageRows*c.ImageCols != 0 && (c.DataDim%(c.ImageRows*c.ImageCols) != 0 || c.DataDim/(c.ImageRows*c.ImageCols) != channels)):
		return c, p, fmt.Errorf("amortized: config: image %dx%dx%d does not match data_dim %d", c.ImageRows, c.ImageCols, channels, c.DataDim)
	case c.GaussianMinVar < 0:
		return c, p, fmt.Errorf("amortized: config: gaussian_min_var %g, want >= 0", c.GaussianMinVar)
	case !(c.DecoderPriorSigma >= 0) || math.IsInf(c.DecoderPriorSigma, 0):
		return c, p, fmt.Errorf("amortized: config: decoder_prior_sigma %g, want a finite value >= 0 (0: no Bayesian decoder)", c.DecoderPriorSigma)
	case c.Dtype != "float32" && c.Dtype != "float64":
		return c, p, fmt.Errorf("amortized: config: dtype %q, want float32 or float64", c.Dtype)
	}
	if _, err := nets.ParseActivation(c.Activation); err != nil {
		return c, p, fmt.Errorf("amortized: config: %w", err)
	}
	for _, h := range append(slices.Clone(c.Hidden), c.DecoderHidden...) {
		if h <= 0 {
			return c, p, fmt.Errorf("amortized: config: hidden width %d, want > 0", h)
		}
	}
	var err error
	if p.lik, err = parseLikelihood(c.Likelihood, c); err != nil {
		return c, p, fmt.Errorf("amortized: config: %w", err)
	}
	c.Likelihood = p.lik.String()
	if p.family, err = parseFamily(c.Posterior, c); err != nil {
		return c, p, fmt.Errorf("amortized: config: %w", err)
	}
	c.Posterior = p.family.String()
	prior := c.Prior
	if prior == "" {
		prior = StandardNormal
	}
	if p.prior, err = parsePrior(prior, c); err != nil {
		return c, p, fmt.Errorf("amortized: config: %w", err)
	}
	if c.Prior = p.prior.String(); c.Prior == StandardNormal {
		c.Prior = ""
	}
	trunk := c.Trunk
	if trunk == "" {
		trunk = MLPTrunk
	}
	if p.trunk, err = parseTrunk(trunk, c); err != nil {
		return c, p, fmt.Errorf("amortized: config: %w", err)
	}
	if c.Trunk = p.trunk.String(); c.Trunk == MLPTrunk {
		c.Trunk = ""
	}
	return c, p, nil
}

// Shape is the image shape of x (zero rows and columns if x is not an image).
func (c Config) Shape() Shape {
	return Shape{Rows: c.ImageRows, Cols: c.ImageCols, Channels: max(c.ImageChannels, 1)}
}

func (c Config) tensorDtype() tensor.Dtype {
	if c.Dtype == "float64" {
		return tensor.Float64
	}
	return tensor.Float32
}

// NumParams is the number of scalars in the network c describes, found by
// defining the model into a counting store (nothing is allocated for the
// weights). It errs when the count does not fit in an int64, so that a
// configuration read from a file can be checked before anything is
// allocated for it.
func (c Config) NumParams() (int64, error) {
	c, p, err := c.normalize()
	if err != nil {
		return 0, err
	}
	ps, err := nets.NewCounter(c.tensorDtype(), math.MaxInt64)
	if err != nil {
		return 0, err
	}
	if _, err := define(ps, c, p); err != nil {
		if errors.Is(err, nets.ErrTooMany) {
			return 0, fmt.Errorf("amortized: config: the network has more than 2^63 parameters")
		}
		return 0, err
	}
	return int64(ps.Count()), nil
}

// Preprocess is the pixel preprocessing c's likelihood wants: binarization
// (Bernoulli) or grey levels (Gaussian). An unknown likelihood gets
// binarization, the default's.
func (c Config) Preprocess() Preprocessing {
	name := c.Likelihood
	if name == "" {
		name = Bernoulli
	}
	l, err := parseLikelihood(name, c)
	if err != nil {
		return PreprocessBinarize
	}
	return l.Preprocess()
}

package amortized

import (
	"fmt"
	"math"
	"slices"

	"github.com/govae/govae/nets"
	"gorgonia.org/tensor"
)

// Likelihood names of p(x|z).
const (
	Bernoulli = "bernoulli"
	Gaussian  = "gaussian"
)

// Config is everything needed to rebuild a model's network; it is stored in
// checkpoints as JSON. The zero value of an optional field means the default
// given in its comment.
type Config struct {
	DataDim   int `json:"data_dim"`             // width of x; required
	ImageRows int `json:"image_rows,omitempty"` // x as an image, for pictures; 0 = not an image
	ImageCols int `json:"image_cols,omitempty"`

	// Hidden are the encoder's hidden widths, input side first.
	Hidden []int `json:"hidden"`
	// DecoderHidden are the decoder's hidden widths, latent side first;
	// nil means Hidden reversed (the usual mirror image).
	DecoderHidden []int  `json:"decoder_hidden"`
	Latent        int    `json:"latent"`     // dimension of z; required
	Activation    string `json:"activation"` // relu (default), tanh, softplus

	Likelihood string `json:"likelihood"` // bernoulli (default) or gaussian
	// GaussianMinVar is the floor added to the decoder's variance; 0 means 1e-3.
	GaussianMinVar float64 `json:"gaussian_min_var,omitempty"`

	// Posterior is q(z|x)'s family: diag (default), fullcov, planar:K,
	// radial:K, iaf:K or iaf:K:H (see the package doc). Normalize writes
	// "iaf:K" as "iaf:K:H" with the default H.
	Posterior string `json:"posterior"`
	Dtype     string `json:"dtype"` // float32 (default) or float64
}

// ReferenceConfig is the architecture everyone quotes: 784-400-20-400-784,
// ReLU, Bernoulli, diagonal Gaussian posterior.
func ReferenceConfig() Config {
	return Config{DataDim: 784, ImageRows: 28, ImageCols: 28, Hidden: []int{400}, Latent: 20}
}

// Normalize returns c with defaults filled in, or an error naming the first
// invalid field.
func (c Config) Normalize() (Config, error) {
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
	switch {
	case c.DataDim <= 0:
		return c, fmt.Errorf("amortized: config: data_dim %d, want > 0", c.DataDim)
	case c.Latent <= 0:
		return c, fmt.Errorf("amortized: config: latent %d, want > 0", c.Latent)
	case c.ImageRows < 0 || c.ImageCols < 0 || (c.ImageRows*c.ImageCols != 0 && c.ImageRows*c.ImageCols != c.DataDim):
		return c, fmt.Errorf("amortized: config: image %dx%d does not match data_dim %d", c.ImageRows, c.ImageCols, c.DataDim)
	case c.Likelihood != Bernoulli && c.Likelihood != Gaussian:
		return c, fmt.Errorf("amortized: config: likelihood %q, want bernoulli or gaussian", c.Likelihood)
	case c.GaussianMinVar < 0:
		return c, fmt.Errorf("amortized: config: gaussian_min_var %g, want >= 0", c.GaussianMinVar)
	case c.Dtype != "float32" && c.Dtype != "float64":
		return c, fmt.Errorf("amortized: config: dtype %q, want float32 or float64", c.Dtype)
	}
	if _, err := nets.ParseActivation(c.Activation); err != nil {
		return c, fmt.Errorf("amortized: config: %w", err)
	}
	p, err := parsePosterior(c.Posterior, c.Latent)
	if err != nil {
		return c, fmt.Errorf("amortized: config: %w", err)
	}
	c.Posterior = p.String()
	for _, h := range append(slices.Clone(c.Hidden), c.DecoderHidden...) {
		if h <= 0 {
			return c, fmt.Errorf("amortized: config: hidden width %d, want > 0", h)
		}
	}
	return c, nil
}

// posterior is the parsed Posterior of a normalized configuration.
func (c Config) posterior() posteriorSpec {
	p, err := parsePosterior(c.Posterior, c.Latent)
	if err != nil {
		panic(err) // Normalize accepted it
	}
	return p
}

func (c Config) tensorDtype() tensor.Dtype {
	if c.Dtype == "float64" {
		return tensor.Float64
	}
	return tensor.Float32
}

// NumParams is the number of scalars in the network c describes. It errs
// when the count does not fit in an int64, so that a configuration read from
// a file can be checked before anything is allocated for it.
func (c Config) NumParams() (int64, error) {
	c, err := c.Normalize()
	if err != nil {
		return 0, err
	}
	var total int64
	overflow := false
	dense := func(in, out int) { // weights and biases of one layer
		if in < 0 || out < 0 || in == math.MaxInt64 { // a width that overflowed
			overflow = true
			return
		}
		n, ok := mulInt64(int64(in)+1, int64(out))
		if !ok || total > math.MaxInt64-n {
			overflow = true
			return
		}
		total += n
	}
	stack := func(in int, widths []int) int {
		for _, w := range widths {
			dense(in, w)
			in = w
		}
		return in
	}
	h := stack(c.DataDim, c.Hidden)
	post := c.posterior()
	if post.family == FullCov && c.Latent > math.MaxInt32 {
		// L(L-1)/2 entries of L per example would overflow below.
		return 0, fmt.Errorf("amortized: config: the network has more than 2^63 parameters")
	}
	for _, hd := range post.heads(c.Latent) {
		dense(h, hd.width)
	}
	if post.family == IAF {
		for range post.steps {
			iafParams(c.Latent, post.hidden, dense)
		}
	}
	h = stack(c.Latent, c.DecoderHidden)
	dense(h, c.DataDim)
	if c.Likelihood == Gaussian {
		dense(h, c.DataDim)
	}
	if overflow {
		return 0, fmt.Errorf("amortized: config: the network has more than 2^63 parameters")
	}
	return total, nil
}

func mulInt64(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt64/b {
		return 0, false
	}
	return a * b, true
}

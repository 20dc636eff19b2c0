package amortized

import (
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"github.com/govae/govae/nets"
)

// A model is four parts, each a value of one of the interfaces below,
// created by a parser registered under the name that configurations, flags
// and checkpoints use (see registry.go):
//
//	Config.Posterior  -> Family      q(z|x): encoder heads, z and log q(z|x), a point summary
//	Config.Prior      -> Prior       p(z): log p(z), sampling, its own parameters
//	Config.Likelihood -> Likelihood  p(x|z): decoder heads, log p(x|z), the mean, input checks
//	Config.Trunk      -> Trunk       the encoder and decoder bodies (MLP today)
//
// One builder (terms.go) composes them into the terms recon = log p(x|z),
// log q(z|x), log p(z) and KL(q||p) that every graph uses.
//
// Parts build gorgonia nodes through a [*Builder]. Construction errors are
// bugs in a part, not bad user data: a part reports them with [Must] or
// [Builder.Fail], and the graph's constructor returns them as an error.
// A part's parser validates everything a user can get wrong.

// Head is one named output block of the encoder (a posterior family's
// parameters per example) or of the decoder (a likelihood's parameters per
// example). The MLP trunk makes each a linear map of its last hidden layer,
// with parameters <side>.<Name>.weight and <side>.<Name>.bias.
type Head struct {
	Name  string
	Width int // values per row
	// ZeroInit starts the head's parameters at zero, so its output is 0 for
	// every input ([New] still takes their random draws, so that every other
	// weight is what it would be without the reset).
	ZeroInit bool
	// Parts, when set, keep the head's parameters as blocks of columns:
	// part p is a linear map of its own, <side>.<p.Name>.weight/.bias, p.Width
	// columns wide (the widths sum to Width; a part's ZeroInit applies to
	// it). Parameter order, checkpoints and initialization see the parts;
	// graphs see one head, the parts' values side by side in order,
	// computed as one matrix product (nets.DenseHeads). A family whose
	// per-step parameters are many small heads (planar, radial) packs them
	// this way and keeps the checkpoint names of separate heads.
	Parts []Head
}

// params are the heads whose parameters the trunk defines: hd itself, or
// its parts.
func (hd Head) params() []Head {
	if len(hd.Parts) > 0 {
		return hd.Parts
	}
	return []Head{hd}
}

// HeadValues are the values of heads in one graph, one row per example (or
// per sample), by head name.
type HeadValues map[string]*G.Node

// Definer is implemented by a part that owns parameters besides the heads
// (IAF's autoregressive networks, a learned prior's means, a reverse model).
// Define registers them in ps, under a prefix of the part's own ("encoder.",
// "decoder.", "prior."); it is called once per model, in the order trunk
// encoder, family, trunk decoder, likelihood, prior. ps may be a counting
// store ([nets.Params.Counting]): then nothing is allocated and Define must
// not read the values.
type Definer interface {
	Define(ps *nets.Params, c Config) error
}

// Initializer is implemented by a part whose own parameters (Definer) start
// otherwise than [New]'s uniform draws (a mixture prior's means, a
// VampPrior's pseudo-inputs). New calls Init after those draws, with a
// random stream of its own, so that every other weight is unchanged.
type Initializer interface {
	Init(ps *nets.Params, rng *rand.Rand)
}

// Family is a posterior family of q(z|x), parsed from Config.Posterior. The
// value a parser returns belongs to one model (Define may keep state in it).
type Family interface {
	// String is the canonical form stored in configurations ("iaf:2:41").
	String() string
	// Heads are the encoder heads q needs, in parameter order.
	Heads(c Config) []Head
	// Bind is q(z|x) in one graph, from the heads' values per row.
	Bind(b *Builder, in QInput) Posterior
}

// HeadPreparer is implemented by a Family whose Bind first maps some heads,
// row by row, through work that depends on nothing else (the Sylvester
// flows' Q). LogLikelihood then does that work once per row of x, in the
// encoder's graph, and feeds the result to the graph of the k importance
// samples instead of redoing it for every sample.
type HeadPreparer interface {
	// PreparedHeads are the heads BindPrepared takes, in order.
	PreparedHeads(c Config) []Head
	// PrepareHeads maps the encoder's heads to the PreparedHeads.
	PrepareHeads(b *Builder, heads HeadValues) HeadValues
	// BindPrepared is Bind on prepared heads: the same posterior.
	BindPrepared(b *Builder, in QInput) Posterior
}

// QInput is what a family's q(z|x) is built from in one graph.
type QInput struct {
	Heads HeadValues // the encoder's heads, one row per example or sample
	// X is the data, one row per row of Heads (for a family whose q needs x
	// beyond the heads, such as a reverse model r(a|z,x)). Nil in graphs that
	// have no data (none today).
	X *G.Node
}

// Posterior is q(z|x) bound in one graph.
type Posterior interface {
	// Sample maps standard-normal noise eps (one row per row of the heads,
	// NoiseWidth wide) to z ~ q(z|x) (Latent wide) by the reparameterization
	// trick, and returns log q(z|x) per row at it. A family with auxiliary
	// variables a returns log q(a,z|x) - log r(a|z,x) as log q: the bound of
	// Agakov & Barber (2004) then needs nothing else.
	Sample(eps *G.Node) (z, logq *G.Node)
	// Point is a point summary of q(z|x) per row (what Model.Encode returns).
	Point() *G.Node
}

// Stratified is implemented by a Posterior whose expectations are
// estimated by stratified sampling over C strata (a mixture's components:
// Roeder et al. 2017; Morningstar et al. 2021, "Automatic differentiation
// variational inference with mixtures"). Strata maps one noise row (as for
// Sample) to C draws z, one per stratum: row r*C + c of z is stratum c of
// row r, drawn by reparameterization from the stratum's own distribution
// q_c; logq is log q(z|x) of the whole posterior at each, and logWeight is
// log pi_c(x), the stratum's probability (sum_c pi_c = 1), differentiable.
// The terms then use E_q[f] = sum_c pi_c E_{q_c}[f] for every expectation
// (recon, log q, log p, KL), log sum_c pi_c w_c as the importance weight of
// a row (IWAE becomes SIWAE; log p(x) stays unbiased in p), and Sample only
// for a single z per row (Reconstruct, Impute).
type Stratified interface {
	Strata(eps *G.Node) (z, logq, logWeight *G.Node, c int)
}

// Invertible is implemented by a Posterior that has log q(z|x) at a given
// z (the map from noise to z inverts in closed form), which the
// score-function estimator needs. Its Family implements [InvertibleFamily].
type Invertible interface {
	LogQAt(z *G.Node) *G.Node
}

// InvertibleFamily says, before any graph is built, whether the family's
// posteriors implement [Invertible].
type InvertibleFamily interface {
	Invertible() bool
}

// NoiseWidth is implemented by a family that consumes more standard-normal
// noise per row than the latent dimension (auxiliary variables, mixtures).
type NoiseWidth interface {
	NoiseWidth(c Config) int
}

// Prior is p(z), parsed from Config.Prior. A prior with parameters
// implements [Definer]; one that needs the encoder (a VampPrior's
// pseudo-inputs) reaches it through [Builder.Encode].
type Prior interface {
	String() string
	Bind(b *Builder) BoundPrior
}

// BoundPrior is p(z) in one graph.
type BoundPrior interface {
	// LogP is log p(z) per row.
	LogP(z *G.Node) *G.Node
	// Sample maps noise to z ~ p(z), one row per row of the noise.
	Sample(noise PriorNoise) *G.Node
}

// PriorNoise is the noise a prior's sampler reads: Normal is standard
// normal, Uniform uniform on [0,1) (nil when the prior asks for none).
type PriorNoise struct{ Normal, Uniform *G.Node }

// PriorNoiseWidth is implemented by a prior whose sampler reads other noise
// than Latent standard normals per row (a mixture's component choice).
type PriorNoiseWidth interface {
	SampleNoise(c Config) (normal, uniform int)
}

// DecoderView is implemented by a prior that decides which part of z the
// decoder reads (a two-layer model p(z2) p(z1|z2) p(x|z1) decodes z1 only).
// Without it the decoder reads all of z.
type DecoderView interface {
	DecoderWidth(c Config) int
	DecoderInput(b *Builder, z *G.Node) *G.Node
}

// KL is a closed-form KL(q(z|x) || p(z)) for a pair (family, prior),
// registered with [RegisterKL]. It returns the KL per row, and, when the
// pair's KL is a sum over latent dimensions, per row and dimension (nil
// otherwise): free bits (Kingma et al. 2016) need the latter.
type KL func(b *Builder, q Posterior, p BoundPrior) (perRow, perDim *G.Node)

// Likelihood is p(x|z), parsed from Config.Likelihood.
type Likelihood interface {
	String() string
	// Heads are the decoder heads p(x|z) needs, in parameter order.
	Heads(c Config) []Head
	// Bind is p(x|z) in one graph, from the heads' values per row.
	Bind(b *Builder, heads HeadValues) Decoded
	// CheckValue says what is wrong with an observed value v of x (nil if
	// nothing), such as "want a value in [0,1] for a Bernoulli model".
	// Values are already known to be finite.
	CheckValue(v float32) error
	// Preprocess is the preprocessing of pixels the likelihood wants.
	Preprocess() Preprocessing
}

// Preprocessing is what the data side does to pixels for a likelihood.
type Preprocessing string

const (
	// PreprocessBinarize: pixels become 0 or 1 (dynamic or static binarization).
	PreprocessBinarize Preprocessing = "binarize"
	// PreprocessGrey: grey levels in [0,1].
	PreprocessGrey Preprocessing = "grey"
)

// Decoded is p(x|z) bound in one graph.
type Decoded interface {
	// LogProb is log p(x|z) per row, summed over x's values.
	LogProb(x *G.Node) *G.Node
	// Mean is the mean of p(x|z) per row (what Model.Decode returns).
	Mean() *G.Node
}

// Trunk makes the encoder's and decoder's bodies, parsed from Config.Trunk.
type Trunk interface {
	String() string
	// Encoder defines the network from x (rows of c.DataDim, an image of
	// c.Shape()) to the given heads, parameters under "encoder.".
	Encoder(ps *nets.Params, c Config, heads []Head) (Net, error)
	// Decoder defines the network from the decoder's input (width in) to the
	// given heads, parameters under "decoder.".
	Decoder(ps *nets.Params, c Config, in int, heads []Head) (Net, error)
}

// Net is a trunk's network with its heads.
type Net interface {
	// Forward computes every head from in, one row per row of in. data says
	// in is data (no gradient needed with respect to it).
	Forward(b *Builder, in *G.Node, data bool) HeadValues
}

// Shape is an image's shape; Channels is 1 for grey images.
type Shape struct{ Rows, Cols, Channels int }

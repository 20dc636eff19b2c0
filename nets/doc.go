// Package nets holds the neural-network building blocks of the project on top
// of gorgonia: a named parameter store, dense (linear) layers, multi-layer
// perceptrons and their activations. It knows nothing about VAEs.
//
// # Parameters
//
// A [Params] owns every trainable tensor of a model under a stable, dotted
// name ("encoder.0.weight"). Those names are the tensor names in checkpoints,
// so they never change between releases. The tensors are the single copy of
// the weights: [Params.Bind] creates nodes in any number of gorgonia graphs
// (a training graph, evaluation graphs of other batch sizes) that all read
// the same memory, so an optimizer that updates the tensors in place updates
// every graph at once.
//
// # Layers
//
// A [Linear] layer computes y = x W + b for a batch x of shape (B, in), with
// W of shape (in, out) and b of shape (out). Note W is stored input-major, the
// transpose of PyTorch's nn.Linear.weight, so y = x @ W + b in NumPy.
//
// An [MLP] is a stack of Linear layers, each followed by the activation; it
// is the "trunk" of an encoder or decoder and the heads on top of it are
// plain Linear layers. An MLP with no layers is the identity.
//
// Activations: relu max(0, x); elu x for x > 0 else e^x - 1 (Clevert et
// al. 2016); tanh; softplus log(1 + e^x), computed as max(x, 0) +
// log1p(e^-|x|), finite for every x. Fused ops write the gradient in terms
// of the output y: relu 1[y > 0], elu 1 for y > 0 else y + 1, tanh 1 - y²,
// softplus 1 - e^-y.
//
// # Fused operations and the matrix product
//
// Layers are single gorgonia ops ([Dense]: act(x W + b) in one pass; its
// gradient ops compute dW = x^T dA, db = column sums of dA and, unless x is
// data, dx = dA W^T), and [BernoulliLogLik] computes
// sum_j x_j l_j - softplus(l_j) per row with gradient x - sigmoid(l). Their
// float32 paths use internal/kernels/simd: AVX2 kernels with float32 exp and log1p
// accurate to a few ulps, and branch-free ReLU and its gradient. Each fused
// op node keeps its output tensor from one run to the next (the tape
// machine's Reset drops its registers, so it would otherwise allocate and
// zero every output, weight gradients included, on every step).
//
// # Side effect of importing: gorgonia's BLAS
//
// Importing this package (amortized, checkpoints and every command do)
// installs internal/kernels/gemm's float32 matrix product (AVX-512 or AVX2 assembly
// on amd64, pure Go elsewhere) as gorgonia's and tensor's BLAS for the whole
// process, from an init function calling [UseFastBLAS]: gorgonia has one
// global BLAS, and a VAE trains several times slower on gonum's pure-Go
// Sgemm. A program that uses gorgonia for other graphs and wants another
// BLAS installs it with gorgonia.Use after its imports; the fused ops use
// whichever is installed, and [UseFastBLAS] puts ours back ([UsingFastBLAS]
// tells which is in place).
//
// [DenseHeads] is several linear heads x [W_1 ... W_n] + [b_1 ... b_n] as
// one [Dense] on weights put side by side by [ConcatCols] (whose gradient
// hands each input its block), so heads keep their own parameters but cost
// one product each way. [AddReLU] is max(a + c, 0) in one node each way.
// A [MaskedLinear]'s W ⊙ M is one op each way (G ⊙ M backward).
// [GroupHeads] and [DenseHead] make heads of one input a [HeadGroup]: one
// forward product (GroupHeads), and one node for the input's gradient
// where gorgonia would sum a product per head, with gorgonia's values bit
// for bit. [Reparam], [LogQEps] and [LogNormalAt] are a Gaussian sampler's
// mu + e^{lv/2} ⊙ eps and its log-densities, one node each way where
// gorgonia's element ops take tens, rounded as those ops round.
//
// # Masked layers (MADE)
//
// A [MaskedLinear] computes y = x (W * M) + b with a fixed 0/1 mask M built
// from unit degrees: hidden unit k may see input i only if deg(k) >= deg(i),
// and an output of degree d only units of degree < d (strict). A [MADE]
// (Germain et al. 2015) stacks such layers so that output i depends only on
// inputs that come before i in its order (optionally reversed), which makes
// its Jacobian strictly lower-triangular in that order: the building block of
// inverse autoregressive flows (Kingma et al. 2016). Masks are rebuilt from
// the layer sizes and the order, so checkpoints store only W and b.
//
// # Convolutions
//
// Images travel as (B, C·H·W) matrices, NCHW per row (channel-major, then
// row, then column), as everywhere else in the project. [Conv2D] is
//
//	y[b,o,i,j] = act(bias[o] + Σ_{c,kh,kw} W[o,c,kh,kw] x[b,c,i·s-p+kh, j·s-p+kw])
//
// with zero padding (PyTorch's Conv2d; output size (H + 2p - k)/s + 1),
// and its transposed form, the adjoint of that linear map (PyTorch's
// ConvTranspose2d, weight (InC, OutC, k, k), output size (H-1)s - 2p + k +
// output_padding, one per axis): ⟨conv(x), y⟩ = ⟨x, convT(y)⟩. Both are
// lowered to one GEMM over the whole batch through im2col (Chellapilla et al. 2006): the
// (C·k², B·H'·W') matrix of patches X̂, so that conv is Wm X̂ with Wm the
// (OutC, C·k²) weight matrix, and convT(x) = col2im(Wmᵀ x̂) where col2im
// adds every patch column back to its pixels (the adjoint of im2col).
// Backward of a convolution: dWm = dŶ X̂ᵀ, dX̂ = Wmᵀ dŶ then dx = col2im(dX̂),
// db = Σ over images and positions; of a transposed one: dWm = x̂ im2col(dy)ᵀ,
// dx = Wm im2col(dy). The GEMMs are internal/kernels/gemm's; im2col and col2im are
// gathers through precomputed position pairs, parallel over rows. The
// activation is fused into the output pass. Default initialization
// matches PyTorch: U(±1/sqrt(fan_in)) with fan_in = C·k² for a
// convolution and OutC·k² for a transposed one (torch reads dimension 1
// of the weight).
//
// Speed (go test -bench 'ConvPeerStep|ConvLayers' ./nets): one training
// step of the peer's architecture at batch 128 (forward, backward, Adam;
// no data loading) against the peer's training epoch on the 10,000-image
// MNIST subset (--threads 1), alternating, 5 rounds, on this 2-vCPU
// machine while other jobs kept the load average at 7-20: the peer
// 149-447 images/s; ours on 2 cores 1.31-1.65 times the peer (median
// 1.43), on 1 core (-cpu 1) 1.02-1.20 times (median 1.13). Absolute
// numbers swing with the load (the peer printed 847 images/s in a quieter
// moment); only the ratios mean something. The GEMMs take about half of
// the step, im2col and col2im about a quarter. The peer encoder's two
// convolutions (forward and backward) ran 1.5-2.4 times faster with
// Conv2D than with gorgonia's Conv2d on the same GEMM (3 alternating
// runs); gorgonia has no transposed convolution.
//
// # Convolutional trunks
//
// [ConvSpec] is read from strings such as "conv:32,64/k4/s2/p1/relu/dense:256"
// (encoder: strided convolutions, then dense layers) and
// "deconv:64,32/dense:256" (decoder: dense layers, a dense layer to the
// first C0 x h0 x w0 feature map, transposed convolutions; the last one is
// the likelihood's head, [ConvDecoder.NewHead], with P·C output channels).
// h0, w0 and the output paddings are solved backwards from the image size
// so that the decoder ends exactly at it (h = (h' + 2p - k - op)/s + 1,
// with an output padding op per axis). [ConvEncoderNet] and [ConvDecoderNet] add named
// heads (dense on the encoder's features; transposed convolutions with
// Width/(H·W) channels on the decoder's, rows laid out [P][C][H][W]).
// Options: gated replaces act(W x + b) by (W1 x + b1) ⊙ σ(W2 x + b2) (gated
// convolutions, van den Berg et al. 2018, one layer with 2C channels then
// [Gate]); resN adds N residual blocks h + W_b act(W_a h) (3x3, stride 1;
// He et al. 2016) after each stage. Parameter names: <name>.conv<i>,
// <name>.deconv<i>, <name>.conv<i>.res<j>.a/.b, <name>.dense.<i> (an MLP's),
// each with .weight and .bias. [ConvPeerEncoder] and [ConvPeerDecoder]
// are the architecture of ../shared/bench/peer_convvae_torch.py.
//
// # Pixel likelihoods
//
// [PixelLogLik] computes log p(x|params) per row in nats for 8-bit images
// given as v/255 (bits per dimension: -log p / (D ln 2)). Parameters for a
// (B, D) batch are (B, P·D), P blocks of D columns (block p holds
// parameter p of every pixel), the layout of a convolutional head with
// P·C channels. The gradient is computed with log p in the forward pass
// (the same transcendentals) and scaled by the incoming gradient.
//
// Discretized logistic (Salimans et al. 2017; Kingma et al. 2016's IAF
// models): level v has the bin [x - 1/255, x + 1/255] around
// x = 2v/255 - 1 in [-1, 1], the edge bins extend to ±∞. With
// a = e^-s (x - μ + 1/255), b = e^-s (x - μ - 1/255):
//
//	log P(0)   = log σ(a)         = -softplus(-a)
//	log P(255) = log(1 - σ(b))    = -softplus(b)
//	log P(v)   = log(σ(a) - σ(b)) = -softplus(-a) - softplus(b) + log(-expm1(-(a-b)))
//
// exact in both tails (no difference of nearly equal CDFs, unlike the
// textbook form and PixelCNN++'s pdf fallback). The log-scale s is clamped
// to [-7, 100] (PixelCNN++'s lower bound; gradient zero outside).
// Mixture of K (per pixel and channel): log Σ_k softmax(π)_k P_k(v) by
// log-sum-exp; gradients: r_k - softmax(π)_k for the logits, r_k times the
// component's for the others, r the responsibilities. The RGB mixture is
// PixelCNN++'s (their eq. 3): one mixture over the joint colour with means
// μ_g + tanh(α) r and μ_b + tanh(β) r + tanh(γ) g; 10K parameters per pixel.
// Categorical: log softmax over 256 logits per pixel, gradient onehot -
// softmax. [LogisticPMF], [LogisticMixPMF] and [CategoricalPMF] give the
// 256 probabilities for sampling and means.
//
// # Initialization
//
// [InitUniform] draws every weight and bias from U(-1/sqrt(in), 1/sqrt(in)),
// the bound PyTorch's nn.Linear uses by default (kaiming_uniform with a=sqrt(5)
// gives exactly that bound), so that models start where the PyTorch peer's do.
// Draws come from a caller-seeded math/rand/v2 source: same seed, same weights.
package nets

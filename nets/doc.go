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
// Activations: relu max(0, x); tanh; softplus log(1 + e^x), computed as
// max(x, 0) + log1p(e^-|x|), finite for every x.
//
// # Fused operations and the matrix product
//
// Layers are single gorgonia ops ([Dense]: act(x W + b) in one pass; its
// gradient ops compute dW = x^T dA, db = column sums of dA and, unless x is
// data, dx = dA W^T), and [BernoulliLogLik] computes
// sum_j x_j l_j - softplus(l_j) per row with gradient x - sigmoid(l). Their
// float32 paths use internal/simd: AVX2 kernels with float32 exp and log1p
// accurate to a few ulps, and branch-free ReLU and its gradient. Each fused
// op node keeps its output tensor from one run to the next (the tape
// machine's Reset drops its registers, so it would otherwise allocate and
// zero every output, weight gradients included, on every step). Importing
// this package installs internal/gemm's float32 matrix product (AVX-512 or
// AVX2 assembly on amd64, pure Go elsewhere) as gorgonia's and tensor's BLAS;
// a program may install another with gorgonia.Use after that, and the fused
// ops use whichever is installed.
//
// [DenseHeads] is several linear heads x [W_1 ... W_n] + [b_1 ... b_n] as
// one [Dense] on weights put side by side by [ConcatCols] (whose gradient
// hands each input its block), so heads keep their own parameters but cost
// one product each way. [AddReLU] is max(a + c, 0) in one node each way.
// A [MaskedLinear]'s W ⊙ M is one op each way (G ⊙ M backward).
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
// # Initialization
//
// [InitUniform] draws every weight and bias from U(-1/sqrt(in), 1/sqrt(in)),
// the bound PyTorch's nn.Linear uses by default (kaiming_uniform with a=sqrt(5)
// gives exactly that bound), so that models start where the PyTorch peer's do.
// Draws come from a caller-seeded math/rand/v2 source: same seed, same weights.
package nets

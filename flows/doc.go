// Package flows holds normalizing flows: invertible maps f with tractable
// log-determinants, built as gorgonia graph nodes and applied row-wise to a
// batch of latent vectors z of shape (B, L). It knows nothing about encoders
// or data: every parameter is a node supplied by the caller, one row per
// example (amortized flows, as in van den Berg et al. 2018), so the same
// code serves per-example parameters from an encoder and, by tiling, global
// ones.
//
// Papers: Rezende & Mohamed (2015), Variational Inference with Normalizing
// Flows; Kingma et al. (2016), Improved Variational Inference with Inverse
// Autoregressive Flow; Tomczak & Welling (2016), Improving Variational
// Auto-Encoders using Householder Flow; van den Berg, Hasenclever, Tomczak
// & Welling (2018), Sylvester Normalizing Flows for Variational Inference;
// Björck & Bowie (1971), An iterative algorithm for computing the best
// estimate of an orthogonal matrix.
//
// # Change of variables
//
// If z_0 ~ q_0 and z_K = f_K(...f_1(z_0)), then
//
//	log q_K(z_K) = log q_0(z_0) - sum_k log|det J_k(z_{k-1})|
//
// where J_k = df_k/dz is the Jacobian of step k at its input. Each
// [Flow.Forward] returns f(z) together with log|det J(z)| per row, so a
// caller computes log q_K by subtracting the returned log-determinant from
// log q_0 of the input.
//
// # Composition
//
// [Compose](f_1, ..., f_K) runs the steps in order and sums their
// log-determinants (det of a product is the product of dets); Compose() is
// the identity with log-determinant 0.
//
// # Flows
//
// [Planar] (Rezende & Mohamed 2015):
//
//	f(z) = z + û tanh(w·z + b),  log|det| = log|1 + (1 - tanh²(w·z + b)) w·û|
//
// with û = u + (-1 + softplus(w·u) - w·u) w/|w|², so w·û > -1 (invertible)
// for any raw u, w.
//
// [Radial] (Rezende & Mohamed 2015):
//
//	f(z) = z + β(z - z0)/(α + r),  r = |z - z0|
//	log|det| = (L-1) log(1 + β/(α+r)) + log(1 + βα/(α+r)²)
//
// with α = softplus(raw_α) > 0 and β = -α + softplus(raw_β) ≥ -α
// (invertible) for any raw values.
//
// Neither flow has an inverse in closed form, and this package offers none.
//
// [Householder] (Tomczak & Welling 2016), a reflection per row:
//
//	f(z) = (I - 2 v vᵀ/|v|²) z,  log|det| = 0
//
// invertible (its own inverse) for v ≠ 0 and volume-preserving: on a
// diagonal Gaussian base, K steps give N(Uμ, U diag(σ²) Uᵀ) with U = H_K ⋯ H_1.
// The paper chains the vectors, v_k = W_k v_{k-1} + c_k from v_1 given by
// the encoder; [HouseholderChain] owns those maps.
//
// [Sylvester] (van den Berg, Hasenclever, Tomczak & Welling 2018):
//
//	f(z) = z + Q R tanh(R̃ Qᵀ z + b)
//	log|det| = Σ_i log|1 + R̃_ii R_ii tanh'((R̃ Qᵀ z + b)_i)|
//
// with Q (L×M, M ≤ L) orthonormal columns and R, R̃ (M×M) upper triangular;
// Sylvester's determinant identity det(I_L + A B) = det(I_M + B A) and the
// triangular R̃ R give the sum of M logs. Invertible when R_ii R̃_ii > -1,
// guaranteed by R_ii = tanh(ρ_i), R̃_ii = tanh(ρ̃_i). Q is: the
// orthogonal polar factor of an amortized L×M matrix, computed by Björck's
// iteration Q ← Q(I + (I - QᵀQ)/2) as in the paper's code
// ([NewOrthogonalSylvester]); a product of H Householder reflections
// ([NewHouseholderSylvester]); or the identity / reversal permutation,
// alternating between steps ([NewTriangularSylvester]).
//
// # Fused ops
//
// Planar, radial, Householder and Sylvester steps are each written once for
// one row, forward and backward by hand in float64, and run as one gorgonia
// op per composition: [Compose] chains consecutive steps of these kinds into
// a single node forward and a single node backward (plus nodes that split
// the packed output and gradients), instead of 25-75 elementwise nodes per
// step. The forward pass keeps every step's input (and its intermediates,
// for planar and Sylvester steps) per row, so the backward pass does not
// recompute them.
//
// Packed stacks ([NewPlanarStack], [NewRadialStack],
// [NewTriangularSylvesterStack], [NewOrthogonalSylvesterStack],
// [NewHouseholderSylvesterStack]) take K steps' raw parameters side by side
// in one matrix (one encoder head of K times the step's width instead of
// 2-4 heads per step), with the same maths as the single steps. The node-by-node planar and radial
// compositions remain in the tests as references; BenchmarkFlow compares
// them.
//
// An [IAF] step's gate (σ, 1 - σ, f(z) and Σ log σ from the MADE's [m, s])
// is one fused node each way too; its forward pass rounds in the graph's
// dtype exactly as the node-by-node gate did, its backward is in float64
// from forward's σ and 1 - σ. [Compose] makes a run of IAF steps with one
// ReLU hidden layer and one context h (the VAE families' steps) a single
// node each way for the MADEs, context maps and gates of all of them, with
// the node-by-node steps' forward values bit for bit.
//
// [IAF] (Kingma et al. 2016), unlike the two above, owns its parameters: a
// MADE (Germain et al. 2015) registered in a [nets.Params], bound to a graph
// with [IAF.Bind] and an optional context h (the encoder's output):
//
//	[m, s] = MADE(z, h),  σ = sigmoid(s + 2)
//	f(z) = σ ⊙ z + (1 - σ) ⊙ m,  log|det| = Σ_j log σ_j
//
// The Jacobian is triangular in the step's variable order with diagonal
// σ ∈ (0, 1), so f is invertible for any weights; the inverse takes D
// sequential passes and is not offered. Stacked steps alternate the order.
//
// # Numerics
//
// Where a determinant can reach 0 at the boundary of the invertibility
// constraint, 1e-8 is added inside the log (as Pyro does), so
// log-determinants and their gradients stay finite; see each type.
// Softplus is computed as gorgonia's float64 softplus, which returns x
// above 16, within e^-16 of log(1 + e^x), and the fused backward passes
// differentiate that function (1 above 16); the constraints hold exactly
// all the same, and the log-determinants are those of the map actually
// computed. The fused ops compute in float64 also in float32 graphs and
// round the results once.
package flows

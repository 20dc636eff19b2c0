// Package flows holds normalizing flows: invertible maps f with tractable
// log-determinants, built as gorgonia graph nodes and applied row-wise to a
// batch of latent vectors z of shape (B, L). It knows nothing about encoders
// or data: every parameter is a node supplied by the caller, one row per
// example (amortized flows, as in van den Berg et al. 2018), so the same
// code serves per-example parameters from an encoder and, by tiling, global
// ones.
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
// Softplus is gorgonia's, which returns x above 16 (float64) or 14
// (float32), within e^-16 or e^-14 of log(1 + e^x); the constraints hold
// exactly all the same, and the log-determinants are those of the map
// actually computed.
package flows

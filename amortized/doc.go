// Package amortized is the variational autoencoder: an encoder network that
// maps each x to the parameters of q(z|x) (amortized inference), a decoder
// network giving p(x|z), a prior p(z) (the standard normal N(0, I) by
// default), the objectives, Adam, the training loop, and the public [Model]
// API that callers use with plain slices.
//
// # Parts
//
// A model is composed of four parts, each a small interface (parts.go) with
// one file per implementation, created by a parser registered under the name
// that configurations, flags and checkpoints use (as Pyro's transforms and
// torch.distributions are built):
//
//	kind        Config field  interface   built-ins (file)
//	family      Posterior     [Family]      diag (family_diag.go), fullcov (family_fullcov.go),
//	                                      planar:K (family_planar.go), radial:K (family_radial.go),
//	                                      iaf:K[:H] (family_iaf.go), householder:K (family_householder.go),
//	                                      sylvester:K[:M], sylvester-householder:K:H,
//	                                      sylvester-triangular:K (family_sylvester.go),
//	                                      mixture:C (family_mixture.go), aux:A[:H] (family_aux.go),
//	                                      twolayer:L2:W,... (hier.go; with the prior twolayer)
//	prior       Prior         [Prior]       normal (prior_normal.go), mog:K (prior_mog.go),
//	                                      vamp:K[:data] (prior_vamp.go),
//	                                      twolayer[:W,...] (hier.go; with the posterior twolayer)
//	likelihood  Likelihood    [Likelihood]  bernoulli (lik_bernoulli.go), gaussian (lik_gaussian.go),
//	                                      logistic, logistic-mix:K, logistic-rgb:K (lik_logistic.go),
//	                                      categorical (lik_categorical.go); 8-bit levels (lik_pixel.go)
//	trunk       Trunk         [Trunk]       mlp (trunk_mlp.go), conv:SPEC[;deconv:SPEC] (trunk_conv.go)
//
// The conv trunk (nets.ConvSpec: strided convolutions, ReLU/ELU, gated
// convolutions of van den Berg et al. 2018, residual blocks; transposed
// convolutions in the decoder) stores both specs in Config.Trunk, e.g. the
// PyTorch peer's ConvPeerTrunk; a decoder head of P·D values is a
// transposed convolution with P·C channels, laid out [P][C][H][W]. The
// pixel likelihoods (nets.PixelLogLik) read x = v/255 on the grid of 256
// levels (CheckValue refuses other values; LogProb rounds to the nearest
// level so that imputation may feed means back): the discretized logistic
// and its mixture per value (Salimans et al. 2017), PixelCNN++'s mixture
// over a pixel's colour (3 channels), and a 256-way categorical. Their
// bounds also read in bits per dimension, -log p / (D ln 2) ([BitsPerDim]).
// Their mean (Decode) is E[v]/255 from the 256 probabilities of each value,
// which costs 256 terms per value: evaluation graphs leave the mean out
// (only Reconstruct and Impute build it).
//
// A family gives the encoder heads it needs and, bound in a graph to their
// values, z with log q(z|x) from noise and a point summary; optionally
// log q at a given z ([Invertible], for the score estimator). A prior gives
// log p(z), a sampler and its own parameters ([Definer]). A closed-form
// KL(q || p) is registered per pair (family, prior) with [RegisterKL],
// optionally per latent dimension (free bits); a pair without one uses the
// Monte Carlo estimate log q(z|x) - log p(z) at the sample, and
// [Model.AnalyticKL] says which. A posterior that implements [Stratified]
// (a mixture) draws one z per stratum and row with per-stratum weights
// pi_c: the terms then weight every expectation by pi_c and use
// log sum_c pi_c w_c as the importance weight (see terms.go); a family with
// auxiliary variables returns log q(a,z|x) - log r(a|z,x) as log q and
// needs nothing else. A likelihood gives the decoder heads,
// log p(x|z), the mean, input validation and the preprocessing it wants. A
// trunk makes the encoder and decoder bodies with their heads.
//
// One builder (terms.go) turns the parts into the terms recon = log p(x|z),
// log q(z|x), log p(z), KL and log w = recon + log p - log q that every graph
// uses: training (ELBO or IWAE, pathwise or score, free bits, k samples),
// evaluation, encoding, decoding, sampling from the prior, importance
// weights for log p(x), local optimization and imputation. Parameters are
// counted by defining the model into a counting store
// (nets.NewCounter), so [Config.NumParams] needs no second derivation
// and allocates nothing. A part registered from another package (its init
// function) works with every command built with that package, the
// checkpoint (which stores the part's canonical string) and
// checkpoints.Load; see Example_userDefinedFamily. Adding a part of any kind
// touches its own file, its test and a line of the table above.
//
// # Model
//
// Encoder: h = MLP(x), then linear heads on h (parameters
// encoder.<head>.weight and .bias), whose outputs are q(z|x)'s parameters
// for this x: mu = h W_mean + b_mean, and the family's other heads below.
// Every draw of z is a deterministic map of standard-normal noise eps
// (the reparameterization trick: Kingma & Welling 2014; Rezende et al.
// 2014), with eps fed into the graph as an input, so every draw comes from a
// seeded stream and any batch size works.
//
// # Posterior families
//
// Config.Posterior chooses q(z|x); L is the latent dimension and
// log N(eps) = sum_j log N(eps_j; 0, 1).
//
// "diag", the default: q(z|x) = N(mu, diag(exp(lv))), heads mean and logvar,
//
//	z = mu + exp(lv/2) * eps,   log q(z|x) = log N(eps) - sum_j lv_j/2
//	KL = 1/2 sum_j (mu_j^2 + exp(lv_j) - 1 - lv_j)
//
// "fullcov": q(z|x) = N(mu, Sigma) with Sigma = C C^T for the Cholesky
// factor C = (I + N) diag(sigma), sigma = exp(lv/2), N strictly
// lower-triangular (the full-covariance posterior of Kingma & Welling 2014,
// appendix, as compared by Cremer, Li & Duvenaud 2018). Heads: mean (L),
// logvar (L, as for "diag") and, for L > 1, lower (L(L-1)/2: the entries
// n_ij of N, i > j, row by row at column i(i-1)/2 + j). So C_jj = sigma_j > 0
// for any weights and C_ij = n_ij sigma_j below the diagonal: Sigma = (I + N)
// diag(exp(lv)) (I + N)^T is the LDL^T form, the same family as the linear
// IAF step of Kingma et al. (2016). With u = sigma * eps,
//
//	z = mu + u + N u,   log q(z|x) = log N(eps) - sum_j lv_j/2   (log|det C|)
//	KL = 1/2 (tr(C C^T) + |mu|^2 - L - sum_j lv_j),
//	tr(C C^T) = sum_ij C_ij^2 = sum_j exp(lv_j) (1 + sum_{i>j} n_ij^2)
//
// so z_i = mu_i + u_i + sum_{j<i} n_ij u_j regresses each dimension's noise
// on the earlier dimensions' scaled noise. With N = 0 this is "diag" exactly,
// computed by the same operations, and New starts the lower head at zero
// (weights and bias), so training starts from the diagonal family. An
// off-diagonal entry is relative to sigma_j, not in absolute units (an
// absolute C_ij injects noise of its own size into z_i however small sigma_i
// is). On the reference model (MNIST; validation ELBO of 2,000 test images)
// this form was 1.7 nats behind "diag" after 8 epochs (mean of 3 seeds,
// 0.1 to 2.6) and 0.4 ahead after 30 (one seed); the absolute form (heads
// log C_jj and C_ij) was 8.3 behind after 8, and starting the lower head at
// random draws rather than zero costs about 3 nats after 8.
//
// "planar:K" and "radial:K": K normalizing flows (Rezende & Mohamed 2015) on
// a diagonal base q0 = N(mu, diag(exp(lv))) as above, z_0 = mu + exp(lv/2) eps,
// z_K = f_K(...f_1(z_0)), with every step's parameters produced by the
// encoder per example (amortized), as in the reference code of Sylvester
// flows (van den Berg et al. 2018): heads flow.k.u (L), flow.k.w (L),
// flow.k.b (1) for planar step k = 0..K-1; flow.k.z0 (L), flow.k.alpha (1),
// flow.k.beta (1) for radial (package flows gives the steps, their
// invertibility constraints and log-determinants). By the change of variables
//
//	log q_K(z_K|x) = log q0(z_0|x) - sum_k log|det df_k/dz_{k-1}|
//
// "iaf:K" and "iaf:K:H": K inverse autoregressive flow steps (Kingma et al.
// 2016) on the same diagonal base; step k is a MADE (Germain et al. 2015)
// L -> H -> 2L with hidden width H (default [DefaultIAFHidden], 2L + 1)
// giving m and s, with sigma = sigmoid(s + 2), f(z) = sigma z + (1 - sigma) m
// and log|det| = sum_j log sigma_j. Its weights are global (parameters
// encoder.iaf.k.made.*); the per-example part is the context: a head
// "context" of width H whose value enters every step's first MADE layer
// through a linear map (encoder.iaf.k.context.*). Successive steps reverse
// the variable order. The same change of variables gives log q_K.
//
// Flows have no closed-form KL. Their KL term is the Monte Carlo estimate at
// the sampled z_K (Rezende & Mohamed 2015, eq. 15),
//
//	KL ~ log q0(z_0|x) - sum_k log|det df_k/dz_{k-1}| - log p(z_K),
//
// so their ELBO is
//
//	E[log p(x|z_K) + log p(z_K) - log q0(z_0|x) + sum_k log|det df_k/dz_{k-1}|]
//
// estimated with the same draws, and the reported ELBO is recon - that KL.
//
// "householder:K" (Tomczak & Welling 2016): z = H_K ... H_1 z_0 on the
// diagonal base, H_k = I - 2 v_k v_k^T/|v_k|^2 (log|det| = 0), v_1 from a
// head hh.v1 (L), v_k = W_k v_{k-1} + c_k (parameters
// encoder.householder.k.weight (L x L) and .bias, k = 2..K). q is
// N(U mu, U diag(exp(lv)) U^T), U = H_K ... H_1: log q at a given z is
// diag's at z_0 = H_1 ... H_K z (score estimator), and KL(q || N(0, I)) is
// diag's summed over dimensions (rotation invariant; closed form, no free
// bits). Point: U mu.
//
// "sylvester:K[:M]", "sylvester-householder:K:H", "sylvester-triangular:K"
// (van den Berg et al. 2018): K steps z + Q R tanh(R~ Q^T z + b) on the
// diagonal base, log|det| = sum_i log|1 + R~_ii R_ii tanh'(.)_i| (+1e-8
// inside the log), every parameter per example: head flow.p (K(M^2 + 3M):
// per step D (M x M, row-major; R's strict upper triangle from D's, R~'s
// from D's strict lower one transposed), rho, rho~ (R_ii = tanh(rho_i),
// R~_ii = tanh(rho~_i)) and b); Q the orthogonal polar factor of a raw
// L x M matrix (head flow.q, K L M, Björck's iteration; M = L when
// omitted), a product of H reflections (head flow.v, K H L; M = L), or the
// identity / reversal permutation on alternate steps (M = L). Monte Carlo
// KL, no score estimator; point f_K(...f_1(mu)). log p(x) computes Q once
// per image (head flow.Q, K L M) and shares it among the k samples.
//
// "mixture:C": q(z|x) = sum_c pi_c N(mu_c, diag exp(lv_c)), pi =
// softmax(mix.logits) (C, zero at the start), heads mix.mean and
// mix.logvar (C L, component c at columns [cL, (c+1)L)). Stratified
// estimator (Roeder et al. 2017; Morningstar et al. 2021; [Stratified]):
// one z_c = mu_c + exp(lv_c/2) eps_c per component and
//
//	ELBO = sum_c pi_c [log p(x|z_c) + log p(z_c) - log q(z_c|x)],
//	log q(z|x) = logsumexp_c (log pi_c + log N(z; mu_c, exp(lv_c))),
//	log w = log sum_c pi_c p(x, z_c)/q(z_c|x)   (IWAE over k: SIWAE)
//
// unbiased for the ELBO, its gradient w.r.t. pi through the weights and
// w.r.t. mu_c, lv_c by reparameterization; E[sum_c pi_c w_c] = p(x), so
// log p(x) by importance sampling uses the same weights. Noise per row:
// C L normals and two, e1 and e2, that choose the component of the single
// z that Reconstruct and Impute need (u = exp(-(e1^2+e2^2)/2) is uniform;
// the first c with u < pi_1 + ... + pi_c). Point: sum_c pi_c mu_c. No
// score estimator, no free bits.
//
// "aux:A[:H]" (Agakov & Barber 2004; Maaløe et al. 2016; Ranganath et al.
// 2016): an auxiliary a (A wide) with q(a|x) = N(aux.mean, exp(aux.logvar)),
// q(z|a,x) a Gaussian whose mean and log-variance are mean, logvar plus a
// one-hidden-layer network of a (context head aux.qctx), and a reverse
// model r(a|z,x) (network of z, context head aux.rctx); parameters
// encoder.aux.{q,r}.{hidden,mean,logvar}.*, hidden width H (default 2(L+A)).
// The family's log q is log q(a|x) + log q(z|a,x) - log r(a|z,x), so
//
//	ELBO = E[log p(x,z) + log r(a|z,x) - log q(a|x) - log q(z|a,x)]
//	     = ELBO(q(z|x)) - E[KL(q(a|z,x) || r(a|z,x))]  (tight when r is exact)
//
// and log p(x) is importance sampling over (a, z) with weight
// p(x,z) r(a|z,x) / q(a,z|x), consistent because its mean is p(x). Noise per
// row: L (z) then A (a). Point: q(z|a,x)'s mean at a = aux.mean. No score
// estimator, no free bits.
//
// [Model.Encode]'s point summary of q(z|x) is the mean mu for diag and
// fullcov (there also the mode). A flow posterior's mean has no closed
// form, and averaging draws would make Encode random; the summary is
// instead the flow applied to the base mean, f_K(...f_1(mu)): z_K at
// eps = 0, a deterministic point of high density that the decoder was
// trained on, and what Impute with Mean and a mean reconstruction decode.
// It is neither q_K's mean nor necessarily its mode.
//
// # Two stochastic layers
//
// The posterior "twolayer:L2:W,..." and the prior "twolayer[:W,...]" (hier.go,
// [TwoLayer], [TwoLayerConfig]) make the model of Burda et al. (2015,
// section 5) with z = [z1, z2], L = L1 + L2, z1 next to x:
//
//	q(z1, z2 | x) = N(z1; mu1(x), e^lv1(x)) N(z2; mu2(z1), e^lv2(z1))
//	p(x, z1, z2)  = p(x|z1) N(z1; m(z2), e^v(z2)) N(z2; 0, I)
//
// mu1, lv1 are the encoder's heads; mu2, lv2 an MLP z1 -> W... ->
// (L2, L2) of the family (encoder.z2.*); m, v an MLP z2 -> W... -> (L1, L1)
// of the prior (prior.z1.*; its widths default to the posterior's
// reversed); the decoder reads z1 only. With eps = [eps1, eps2],
// z1 = mu1 + e^(lv1/2) eps1, z2 = mu2(z1) + e^(lv2/2) eps2, and
//
//	log q(z|x) = log N(eps) - sum lv1/2 - sum lv2/2
//	log p(z)   = log N(z2; 0, I) + log N(z1; m(z2), e^v(z2))
//	log w      = log p(x|z1) + log p(z) - log q(z|x)
//
// so the ELBO, IWAE, log p(x) and the score estimator need nothing else
// (the KL is the Monte Carlo estimate log q - log p). Encode is
// [mu1, mu2(mu1)]; Sample draws z2 = n2, z1 = m(z2) + e^(v(z2)/2) n1 and
// decodes z1; Decode of a given z reads its z1. [Model.LatentLayers] gives
// [L1, L2]. Burda et al.'s 784-100-100-[100]-50-50-[50] is
// TwoLayerConfig(Config{Hidden: [100, 100], Activation: tanh, ...}, 100,
// 50, [50, 50]). Top-down inference (the Ladder VAE) is not built: it would
// be another family whose q(z1|x, z2) shares p(z1|z2)'s network.
//
// # Priors
//
// Config.Prior chooses p(z). "normal" (the default) is N(0, I), with the
// closed-form KLs of diag and fullcov. The learned priors have parameters
// named prior.* (after every other tensor) and no closed-form KL with any
// family: the KL is the one-sample estimate log q(z|x) - log p(z), and
// Model.AnalyticKL, the training log and the eval report say so. Every
// log-sum-exp is max-shifted. Sampling (Model.Sample, the per-epoch
// pictures, cmd/sample generate) draws z ~ p(z) from Latent normals and one
// uniform per row (the component, by inverse CDF on the cumulative weights).
//
//	mog:K    p(z) = sum_k pi_k N(z; m_k, diag(s_k^2)), pi = softmax(logits):
//	         a learned mixture (TFP's VAE example); prior.logits (K),
//	         prior.means (K x L), prior.logscales (K x L); starts at equal
//	         weights, unit scales and means drawn from N(0, I)
//	vamp:K   p(z) = (1/K) sum_k q(z | u_k), the VampPrior of Tomczak &
//	         Welling (2018): the encoder and family at K learned
//	         pseudo-inputs u = clamp(prior.pseudo, 0, 1) (K x D); W starts at
//	         N(0.05, 0.01^2) draws, or ("vamp:K:data") at K training images;
//	         K = 500 in the paper; the family must have LogQAt (diag in
//	         closed form by matrix products, fullcov by tiling; flows are
//	         refused); sampling picks k uniformly and draws z ~ q(z|u_k)
//
// The Gaussian mixture log-density expands the quadratic form,
// sum_j (z_j - m_kj)^2 / v_kj = z^2 . (1/v_k) - 2 z . (m_k/v_k) + sum_j m_kj^2/v_kj,
// into two N x K matrix products, so no N x K x L tensor is formed.
//
// Decoder: g = MLP'(z) and, per pixel d,
//
//	Bernoulli: l = g W + b (logits), log p(x|z) = sum_d x_d l_d - softplus(l_d)
//	Gaussian:  m = sigmoid(g W_m + b_m), s2 = softplus(g W_s + b_s) + s2_min,
//	           log p(x|z) = -1/2 sum_d [log(2 pi s2_d) + (x_d - m_d)^2 / s2_d]
//
// The Bernoulli form never takes log(sigmoid(l)), so it is finite for any
// logit; x may be any value in [0,1] (binarized pixels give a true
// log-likelihood; grey levels give the usual cross-entropy). The Gaussian
// variance floor s2_min (default 1e-3) keeps the density bounded on pixels
// that are always 0. [Model.Decode] returns sigmoid(l) or m.
//
// # Objective
//
// Per example, in nats, summed over pixels and latent dimensions:
//
//	ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))
//
// with the KL of the posterior family (above). The expectation is estimated
// with one reparameterized draw. Training minimizes the batch mean of
//
//	-log p(x|z) + beta * sum_j max(lambda, mean_batch KL_j)
//
// where beta is the KL warm-up weight, rising linearly with the step from 0
// to 1 over TrainOptions.WarmupEpochs (Bowman et al. 2016, Sønderby et al.
// 2016), and lambda is the free-bits floor of Kingma et al. (2016) applied
// per latent dimension to the batch-mean KL. beta is the warm-up's weight
// times TrainOptions.KLWeight (-beta; the beta-VAE of Higgins et al. 2017,
// default 1). With beta = 1 and lambda = 0 this is exactly -ELBO. Reported
// ELBOs always use beta = 1 and lambda = 0; a model trained with another
// weight is compared with others by log p(x) only as a bound-based estimate
// of a model not trained for it (the train and eval reports say so).
//
// The capacity objective of Burgess et al. (2018), TrainOptions.Capacity*
// (-capacity C_max:steps:gamma), minimizes instead
//
//	-log p(x|z) + gamma |mean_batch KL - C(t)|,   C(t) = C_max min(1, t/steps)
//
// (gamma times the warm-up's weight). It acts on the batch-mean KL, so the
// batch stays in one shard; it excludes free bits, KLWeight != 1 and "iwae".
// Warm-up weighs any family's KL term. Free bits need a KL per latent
// dimension, which only "diag" has (a full covariance couples the
// dimensions; a flow's KL is one sampled number per example), so other
// families refuse them ([TrainOptions.NormalizeFor]).
//
// With K > 1 samples per example (TrainOptions.K) the ELBO's reconstruction
// term is averaged over the K draws. The importance-weighted bound of Burda,
// Grosse & Salakhutdinov (2015), objective "iwae", is
//
//	L_K(x) = E[ log (1/K) sum_k w_k ],   w_k = p(x|z_k) p(z_k) / q(z_k|x),
//
// computed with a stable log-sum-exp inside the graph (the row maximum is
// subtracted before exponentiating; gorgonia's own LogSumExp is not used).
// L_1 is the ELBO with a sampled KL, L_K increases with K and tends to
// log p(x). Warm-up and free bits act on the ELBO's KL term and are refused
// with "iwae". For every family log q is the density of the final z, with
// the flows' log-determinants: log w = log p(x|z_K) + log p(z_K) -
// log q0(z_0|x) + sum_k log|det df_k/dz_{k-1}|. With several samples per
// example (TrainOptions.K > 1) each example's head values (flow parameters
// and context included) are repeated once per sample, and a flow's sampled
// KL is averaged over the samples like the reconstruction term.
//
// # Gradient estimators
//
// "pathwise" differentiates through the map from eps to z, such as
// z = mu + sigma * eps (the reparameterization trick). "score" is the score-function (REINFORCE,
// likelihood-ratio) estimator for the encoder's gradient of the expected
// log-likelihood,
//
//	grad_phi E_q[log p(x|z)] = E_q[(log p(x|z) - b) grad_phi log q(z|x)],
//
// with b a moving average of log p(x|z) over previous steps (decay
// TrainOptions.BaselineDecay, bias-corrected; it never uses the current
// draws, so the estimator stays unbiased). The KL term keeps its exact
// analytic gradient and the decoder its pathwise one, so the two estimators
// differ only where the comparison of Kucukelbir et al. (2017) looks. z is
// sampled outside the training graph and the surrogate
// (log p(x|z) - b) log q(z|x) carries the gradient. [GradientVariance]
// measures either estimator's variance on a fixed model and batch.
//
// The surrogate needs log q(z|x) at a given z as a function of the encoder's
// outputs: for "diag" at eps = (z - mu) exp(-lv/2); for "fullcov" at
// eps = u exp(-lv/2) with u solving (I + N) u = z - mu, by forward
// substitution in the graph (L-1 sweeps of u <- z - mu - N u, exact because
// N is nilpotent; the unit diagonal needs no division); for "householder"
// at diag's eps of z_0 = H_1 ... H_K z. Planar, radial and Sylvester flows
// have no closed-form inverse and an IAF's inverse costs L sequential MADE
// passes, so those families refuse the score estimator, as do the mixture
// (its terms are stratified over components) and the auxiliary posterior
// (log q(z|x) itself is an integral over a).
//
// # Log-likelihood
//
// [Model.LogLikelihood] estimates log p(x) by importance sampling with q as
// the proposal, log (1/k) sum_i w_i, with log w as for IWAE above. The
// encoder runs once per image; its head values (every family's parameters
// of q, flow parameters and IAF context included) are then fed to the
// sampling graph for each chunk of samples, so the cost per sample is the
// flow and the decoder, not the encoder; a family's per-image work on its
// heads ([HeadPreparer]: the Sylvester flows' Q) is done there too, once
// per image rather than once per sample. Chunks are combined by a streaming
// log-sum-exp (bounded memory for any k, k = 5000 included), on all cores,
// with the noise of (image, sample) drawn from its own stream so results do
// not depend on scheduling. [Model.LogLikelihoodSE] adds the delta-method
// Monte Carlo standard error sd(w) / (sqrt(k) mean(w)).
//
// The delta method is too small when the weights are heavy-tailed, as they
// are with q as the proposal: on a 2-epoch MNIST model the spread between
// seeds was 1.5 to 4 times larger. [Model.LogLikelihoodEstimate] splits the
// k samples into R disjoint replicate groups (DefaultReplicates = 10) and
// gives [LLEstimate.ReplicateSE], the delete-a-group jackknife (Efron 1982)
// of the k-sample estimate, v = (R-1)/R sum_g (L_-g - mean L_-g)^2 with
// L_-g the estimate without group g; it sees a single large weight move
// the estimate, which sd(w)/mean(w) of the same samples cannot (in
// TestReplicateErrorMatchesSeedSpread: seed spread 0.149, jackknife 0.161,
// delta method 0.074). The main estimate still uses all k samples; each
// replicate alone (k/R samples) is a looser, more biased bound and is
// reported only for its spread. It also gives the effective sample size
// (sum w)^2 / sum w^2 of each image's weights (Kong 1992): far below k
// means a few weights carry the estimate.
//
// # Imputation
//
// [Model.Impute] fills missing pixels by the iterated conditional sampling
// of Rezende, Mohamed & Wierstra (2014): start the missing pixels at 0.5,
// then repeatedly draw z ~ q(z|x) (or take Encode's point summary), decode,
// and replace only the missing pixels by E[x|z]. Observed pixels come back
// exactly as given. Averaging several chains estimates E[x_missing | x_observed].
//
// A last partial batch is weighted by its own size (the loss is the mean over
// its real rows): the graph has a fixed batch size, padding rows get weight 0.
// [TrainOptions.SumLoss] multiplies the gradient by the rows instead (the sum
// over the batch, PyTorch's reduction="sum"), as the peers train.
//
// # Optimization
//
// [Adam] follows PyTorch's update (epsilon added to the bias-corrected
// sqrt(v)); float32 moments are flushed to zero below 1e-30. It is the one
// optimizer of the project: the trainer steps the parameter store,
// [Model.LocalELBO] and the flows2d experiment step float64 slices with
// [Adam.StepFloat64s], through the same element kernel. A step whose
// loss or gradient is NaN or infinite changes nothing and stops training
// with a [NonFiniteError] naming the epoch and step. Gradients are read from
// the gradient nodes G.Grad returns, not accumulated into dual values, so
// nothing needs zeroing between steps (a build-time check makes sure no
// other node reads a gradient node, which could overwrite it in place).
//
// # Data-parallel shards
//
// Each batch of B rows is cut into S contiguous shards
// (TrainOptions.Shards; by default 2 when B >= 64, else 1), each with its
// own training graph on its own copy of the weights, run on its own core.
// The loss is sum_i w_i l_i with w_i = 1/rows on real rows and 0 on padding,
// so the batch's loss and gradient are exactly the sums over shards of
// theirs, with the same noise: only the order of floating-point additions
// changes. Adam sums the shards' gradients chunk by chunk as it reads them
// and copies the new weights into the replicas. Each shard bounds its
// gradients by MaxFloat/S in magnitude, so the sum is finite whenever every
// shard passes, and the check happens before anything changes. Free bits
// (a floor on each dimension's batch-mean KL, nonlinear in the batch) and
// the score estimator (whose samples come from a separate graph) keep the
// batch in one graph. S depends on the options and B only, never on the
// machine, so results are the same on any number of cores.
//
// # Global latent variables: a Bayesian decoder
//
// With Config.DecoderPriorSigma = sigma_p > 0 the decoder's parameters
// theta (every decoder weight and bias, the likelihood's heads included)
// are global latent variables (Kingma & Welling 2014, appendix F; Blundell,
// Cornebise, Kavukcuoglu & Wierstra, Weight Uncertainty in Neural Networks,
// 2015), beside the local, amortized z:
//
//	p(theta) = prod_j N(theta_j; 0, sigma_p^2)
//	q(theta) = prod_j N(theta_j; mu_j, s_j^2),   s_j = softplus(rho_j)
//	ELBO(D) = sum_i E_q(theta)[ELBO_i(theta)] - KL(q(theta) || p(theta))
//	KL      = sum_j log(sigma_p/s_j) + (s_j^2 + mu_j^2)/(2 sigma_p^2) - 1/2
//
// mu_j is stored under the parameter's own name (so Decode, Sample,
// Reconstruct and Impute, and any reader of the checkpoint, use the
// posterior-mean weights) and rho_j under "<name>.rho", defined after every
// other parameter; rho starts at softplus^-1(1e-3). Training maximizes the
// per-example objective ELBO_i(theta) - KL/N, N the training-set size
// ([Trainer.SetDataSize]; Fit passes the training set's length), so one
// epoch's terms add up to the data set's ELBO; warm-up's beta weighs this
// KL too. Each step draws theta = mu + s * eps_theta with eps_theta from
// PCG streams of a key drawn from the step's noise stream (one stream per
// 32k-element chunk, so the draw does not depend on the cores), writes theta
// into the weights the graph reads (and the shards' copies), and after the
// backward pass turns dL/dtheta = g into
//
//	dL/dmu  = g + beta mu / (sigma_p^2 N)
//	dL/drho = g eps sigmoid(rho) + beta (s/sigma_p^2 - 1/s) sigmoid(rho) / N
//
// in plain loops over the weights (no per-element graph ops; the scales
// have no node in the graph's gradient). The means are restored before
// Adam updates mu and rho. [StepStats.GlobalKL] is KL/N of the step.
//
// Evaluation integrates the globals by Monte Carlo over S draws theta_s ~
// q ([Model.NewWeightDraws] gives a copy of the model whose weights each
// Next redraws): [Model.ELBODraws] is the mean over draws of the local
// ELBO (one z per draw); [Model.LogLikelihoodDraws] is
// log (1/S) sum_s phat(x|theta_s), phat the k-sample importance estimate,
// averaged in log space by a shifted log-mean-exp. That estimates
// log E_q(theta)[p(x|theta)], the likelihood under the posterior
// predictive over weights, a stochastic lower bound in expectation; the
// whole model's per-example ELBO further subtracts [Model.GlobalKL] / N.
// [LogMeanExpSE] gives the delta-method error over draws.
//
// # Reproducibility
//
// Every random draw comes from a PCG stream of the run's seed: weights
// (stream "init"), the noise of step s (its own stream, so a resumed run
// draws exactly what an uninterrupted one would), and validation noise. Data
// order and binarization are the caller's, through [Batches], which must
// return the same batch for the same (epoch, index). Hence the same seed
// gives the same weights bit for bit, and training 2 epochs equals training
// 1, saving, and resuming for 1.
//
// Graph outputs are read through gorgonia's Read op: the tape machine reuses
// buffers in place, so an intermediate node's value can be overwritten
// before a run ends.
//
// References: Kingma & Welling, Auto-Encoding Variational Bayes (2014);
// Rezende & Mohamed, Variational Inference with Normalizing Flows (2015);
// van den Berg, Hasenclever, Tomczak & Welling, Sylvester Normalizing Flows
// for Variational Inference (2018); Cremer, Li & Duvenaud, Inference
// Suboptimality in Variational Autoencoders (2018); Germain, Gregor, Murray
// & Larochelle, MADE (2015);
// Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders (2015);
// Kucukelbir et al., Automatic Differentiation Variational Inference (2017);
// Rainforth et al., Tighter Variational Bounds are Not Necessarily Better (2018);
// Rezende, Mohamed & Wierstra, Stochastic Backpropagation (2014); Kingma et
// al., Improved Variational Inference with Inverse Autoregressive Flow (2016);
// Kingma & Ba, Adam (2015); Blei, Kucukelbir & McAuliffe, Variational
// Inference: A Review for Statisticians (2017); Blundell, Cornebise,
// Kavukcuoglu & Wierstra, Weight Uncertainty in Neural Networks (2015).
package amortized

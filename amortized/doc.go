// Package amortized is the variational autoencoder: an encoder network that
// maps each x to the parameters of q(z|x) (amortized inference), a decoder
// network giving p(x|z), the standard-normal prior p(z) = N(0, I), the
// objective, Adam, the training loop, and the public [Model] API that
// callers use with plain slices.
//
// # Model
//
// Encoder: h = MLP(x); mu = h W_mu + b_mu; lv = h W_lv + b_lv (log-variance).
// Posterior (family "diag"): q(z|x) = N(mu, diag(exp(lv))), sampled by the
// reparameterization trick (Kingma & Welling 2014; Rezende et al. 2014)
//
//	z = mu + exp(lv/2) * eps,   eps ~ N(0, I),
//
// with eps fed into the graph as an input, so every draw comes from a seeded
// stream and any batch size works. [Model.Encode] returns mu, the posterior
// mean, as the point summary.
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
//	KL      = 1/2 sum_j (mu_j^2 + exp(lv_j) - 1 - lv_j)      (closed form)
//
// The expectation is estimated with one reparameterized draw. Training
// minimizes the batch mean of
//
//	-log p(x|z) + beta * sum_j max(lambda, mean_batch KL_j)
//
// where beta is the KL warm-up weight, rising linearly with the step from 0
// to 1 over TrainOptions.WarmupEpochs (Bowman et al. 2016, Sønderby et al.
// 2016), and lambda is the free-bits floor of Kingma et al. (2016) applied
// per latent dimension to the batch-mean KL. With beta = 1 and lambda = 0
// this is exactly -ELBO. Reported ELBOs always use beta = 1 and lambda = 0.
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
// with "iwae".
//
// # Gradient estimators
//
// "pathwise" differentiates through z = mu + sigma * eps (the
// reparameterization trick). "score" is the score-function (REINFORCE,
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
// # Log-likelihood
//
// [Model.LogLikelihood] estimates log p(x) by importance sampling with q as
// the proposal, log (1/k) sum_i w_i, in chunks combined by a streaming
// log-sum-exp (bounded memory for any k, k = 5000 included), on all cores,
// with the noise of (image, sample) drawn from its own stream so results do
// not depend on scheduling. [Model.LogLikelihoodSE] adds the delta-method
// Monte Carlo standard error sd(w) / (sqrt(k) mean(w)).
//
// # Imputation
//
// [Model.Impute] fills missing pixels by the iterated conditional sampling
// of Rezende, Mohamed & Wierstra (2014): start the missing pixels at 0.5,
// then repeatedly draw z ~ q(z|x) (or take its mean), decode, and replace
// only the missing pixels by E[x|z]. Observed pixels come back exactly as
// given. Averaging several chains estimates E[x_missing | x_observed].
//
// A last partial batch is weighted by its own size (the loss is the mean over
// its real rows): the graph has a fixed batch size, padding rows get weight 0.
//
// # Optimization
//
// [Adam] follows PyTorch's update (epsilon added to the bias-corrected
// sqrt(v)); gradients are zeroed after every step because gorgonia's tape
// machine adds into them; float32 moments are flushed to zero below 1e-30.
// A step whose loss or gradient is NaN or infinite changes nothing and stops
// training with a [NonFiniteError] naming the epoch and step.
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
// Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders (2015);
// Kucukelbir et al., Automatic Differentiation Variational Inference (2017);
// Rainforth et al., Tighter Variational Bounds are Not Necessarily Better (2018);
// Rezende, Mohamed & Wierstra, Stochastic Backpropagation (2014); Kingma et
// al., Improved Variational Inference with Inverse Autoregressive Flow (2016);
// Kingma & Ba, Adam (2015); Blei, Kucukelbir & McAuliffe, Variational
// Inference: A Review for Statisticians (2017).
package amortized

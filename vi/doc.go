// Package vi is variational inference without an encoder: the path the
// documents this project follows take to the VAE, for classical Bayesian
// models. Nothing here imports amortized/.
//
// # CAVI for conditionally conjugate models
//
// Coordinate-ascent VI sets each mean-field factor to
// q*(z_j) ∝ exp(E_{-j}[log p(z_j | z_-j, x)]) in turn; every update raises
// the ELBO, L(q) = E_q[log p(x, z)] - E_q[log q(z)], which the tests check
// at every iteration.
//
//   - FitMixture: Blei, Kucukelbir & McAuliffe (2017), section 2.1:
//     mu_k ~ N(0, sigma^2), c_i ~ Cat(1/K), x_i | c_i, mu ~ N(mu_{c_i}, 1),
//     q(mu_k) = N(m_k, s_k^2), q(c_i) = Cat(phi_i):
//     phi_ik ∝ exp(m_k x_i - (s_k^2 + m_k^2)/2),
//     m_k = sum_i phi_ik x_i / (1/sigma^2 + sum_i phi_ik), s_k^2 = 1/(1/sigma^2 + sum_i phi_ik).
//     The sweep never stores phi (10^6 x K doubles): it accumulates
//     sum_i phi_ik, sum_i phi_ik x_i and sum_ik phi_ik log phi_ik, from which
//     the ELBO follows exactly.
//   - FitGMM: the variational Bayesian Gaussian mixture of Bishop (2006),
//     section 10.2: pi ~ Dir(alpha0), (mu_k, Lambda_k) ~
//     N(mu | m0, (beta0 Lambda)^-1) W(Lambda | W0, nu0); updates 10.46-10.66 in
//     the natural form W_k^-1 = W0^-1 + beta0 m0 m0^T + sum_n r_nk x_n x_n^T -
//     beta_k m_k m_k^T; the ELBO is 10.70-10.77, checked against a Monte Carlo
//     average over q. A small alpha0 (default 1e-3) empties surplus
//     components (E[pi_k] -> 0): Active lists the rest.
//   - FitBLR: Bayesian linear regression (Bishop 10.3) with the noise
//     precision unknown too: t ~ N(Phi w, 1/beta), w ~ N(0, I/alpha),
//     alpha ~ Gam(a0, b0), beta ~ Gam(c0, d0), q(w) q(alpha) q(beta):
//     S^-1 = E[alpha] I + E[beta] Phi^T Phi, m = E[beta] S Phi^T t,
//     q(alpha) = Gam(a0 + M/2, b0 + E[w^T w]/2),
//     q(beta) = Gam(c0 + N/2, d0 + E|t - Phi w|^2/2). With both precisions
//     known q(w) is the exact posterior and the ELBO is log p(t) (tested).
//   - FitFactor: the Bayesian factor model x_n = W z_n + e_n, z_n ~ N(0, I),
//     e_n ~ N(0, diag(psi)^-1), rows of W ~ N(0, I/alpha), psi_d ~ Gam(a0, b0),
//     with q(z_n) q(w_d) q(psi_d) Gaussian, Gaussian, Gamma.
//   - FitLogistic: Bayesian logistic regression made conditionally
//     conjugate by the local bound of Jaakkola & Jordan (2000),
//     log sigma(s) >= log sigma(xi) + (s - xi)/2 - lambda(xi)(s^2 - xi^2),
//     lambda(xi) = tanh(xi/2)/(4 xi): S^-1 = alpha I + 2 sum_n lambda(xi_n) x_n x_n^T,
//     m = S sum_n (y_n - 1/2) x_n, xi_n^2 = x_n^T (S + m m^T) x_n (Bishop 10.6).
//     The bound's curvature 2 lambda(xi) exceeds sigma'(s) away from 0, so
//     its q(w) is narrower than the posterior (ADVI and SVGD show it).
//
// # SVI
//
// Stochastic VI (Hoffman, Blei, Wang & Paisley 2013) on a mini-batch B:
// the local factors are optimized for B, the intermediate global natural
// parameter lambda_hat is what CAVI would give if the data were B repeated
// N/|B| times, and lambda <- (1 - rho_t) lambda + rho_t lambda_hat, the
// natural-gradient step, with rho_t = (t + tau)^-kappa, 0.5 < kappa <= 1
// (Robbins-Monro). For the mixtures the natural parameters are affine in
// the expected sufficient statistics, so the step interpolates the sums;
// for logistic regression it interpolates (S^-1, S^-1 m) with xi from the
// batch (FitMixtureSVI, FitGMMSVI, FitLogisticSVI).
//
// # ADVI
//
// Automatic differentiation VI (Kucukelbir, Tran, Ranganath, Gelman & Blei
// 2017) for any Model: a log density over constrained parameters theta,
// written as a gorgonia expression (NewGraphDensity; gorgonia's symbolic
// gradient) or a Go function (FuncDensity), with the support of each
// block (Transform): log for positive, logit for an interval,
// stick-breaking for the simplex, each with log|det J|. q is Gaussian in
// the unconstrained zeta = T^-1(theta), mean-field or full-rank
// (zeta = mu + L eps), fitted by the pathwise gradient of
// E_q[log p(T(zeta)) + log|det J(zeta)|] + H[q] with the paper's
// step-size sequence rho_k = eta k^(-1/2+1e-16)/(1 + sqrt(s_k)),
// s_k = 0.1 g_k^2 + 0.9 s_{k-1}; the returned q averages the iterates of
// the last quarter of the steps (Polyak-Ruppert). Models provided:
// LogisticModel, BNNModel (one tanh hidden layer), SVModel (AR(1)
// log-volatility: y_t ~ N(0, e^{h_t}), h_t = mu + phi (h_{t-1} - mu) + sigma eta_t).
// On the SV model a mean-field q underestimates the persistence phi badly
// (independent q(h_t) cannot hold the coupling of neighbouring volatilities);
// see SVModel. A full-rank q does not cure it in reach: on 200 returns
// simulated with phi = 0.97, sigma = 0.3 (20,000 steps, seeds 1 and 2) it
// ends at phi 0.49-0.57, sigma 1.17-1.27, its ELBO 5-8 nats above the
// mean-field one's (phi 0.23, sigma 1.31); on 1,000 returns (5 x 10^5
// entries of L) it diverges at the default eta = 0.1, and at eta = 0.01
// after 30,000 steps it is still unconverged (phi 0.73-0.74 +- 0.15, ELBO
// -20 and -40 against 83 and 81 for mean-field, whose phi is 0.37-0.40).
//
// # SVGD
//
// Stein variational gradient descent (Liu & Wang 2016) moves particles in
// the same unconstrained space along
// phi(x) = 1/n sum_j [k(x_j, x) grad log p(x_j) + grad_{x_j} k(x_j, x)],
// RBF kernel with the median bandwidth, AdaGrad steps as in the authors' code.
//
// # Gradient estimators
//
// ELBOGradient estimates the ELBO's gradient in (mu, omega) of a mean-field
// Gaussian by the pathwise estimator (E[g], E[g eps sigma] + 1), the score
// function E[grad log q (log p - log q)] (Williams 1992, Ranganath, Gerrish
// & Blei 2014), and the score function with the control variate grad log q,
// its coefficient a_d = Cov(f_d, h_d)/Var(h_d) taken from an independent
// pilot batch (so the estimator stays unbiased). CompareEstimators records
// each one's total variance per iteration along an ADVI run.
//
// # Speed
//
// FitMixture's sweep (mixsums_amd64.s, AVX2 and FMA) takes four points at a
// time, one per lane, through the K logits, their max and argmax, exp, the
// normalization and the sums, all in float64: exp(d) for d >= -600 by
// d = n ln2 + r, |r| <= ln2/2, and the Taylor series of exp(r) to r^12/12!
// (largest error against math.Exp 4.7e-16 relative, TestMixSumsAVX2Exp).
// The data is cut into fixed blocks of 16,384 points whose sums are added
// in block order, so a fit is the same to the bit for any number of workers
// (TestMixtureWorkersIdentical). On 10^6 points with K = 10 one CAVI
// iteration costs 0.027 CPU-seconds on the 2-core AMD EPYC (Zen 4) of
// BENCHMARKS.md, against 0.136 for the scalar sweep before (medians of 9
// alternating runs at load average 20: 13.5 iterations per second against
// 2.8; 64-85 with the machine free); command and table in BENCHMARKS.md.
// Without AVX2 and FMA, or with
// -tags purego, a scalar loop runs at about 0.11 CPU-seconds per iteration.
//
// In FitGMM and FitGMMSVI 80% of the time is the quadratic forms
// |L_k^T (x - m_k)|^2 of the E-step (K D(D+1)/2 multiply-adds per point) and
// 14% the sums r x x^T; SVI reaches CAVI's ELBO to within 1 and 0.1 nats per
// point sooner than CAVI, to within 0.01 not (its noise floor at batch
// 1,000): BenchmarkGMMSVIvsCAVI and experiments/results/vigmm.
//
// # Also
//
// ReadCSV (errors name row and column), AdjustedRand, Hungarian,
// MatchedAccuracy and KMeans for evaluating clusterings.
package vi

// Package plotting draws the project's plots with gonum/plot and writes them
// as PNG files: a scatter of labelled points with a legend beside the axes
// (latent spaces), and panels of curves that share a legend (training
// curves, per-step values as a thin line). It also maps points of more than
// two dimensions to the plane: by principal component analysis (the fast
// default), or by exact t-SNE (van der Maaten & Hinton 2008):
//
//	p_j|i = exp(-β_i |x_i - x_j|²) / Σ_k≠i exp(-β_i |x_i - x_k|²),  β_i by bisection so that
//	        H(p_·|i) = log(perplexity);   p_ij = (p_j|i + p_i|j) / 2n
//	q_ij  = (1 + |y_i - y_j|²)^-1 / Σ_k≠l (1 + |y_k - y_l|²)^-1
//	C     = KL(P || Q),  ∂C/∂y_i = 4 Σ_j (p_ij - q_ij)(1 + |y_i - y_j|²)^-1 (y_i - y_j)
//
// minimized by gradient descent with the paper's schedule: P exaggerated 4
// times for 50 steps, momentum 0.5 then 0.8 after 250 steps, learning rate
// 100, Jacobs' (1988) adaptive gains, y initialized N(0, 1e-4 I) from a seed.
// Each step is O(n²) (split over cores by rows, so results do not depend on
// scheduling), hence MaxTSNEPoints. Barnes-Hut t-SNE (van der Maaten 2014;
// TSNE.Theta > 0) keeps p_ij over each point's 3*perplexity nearest
// neighbours only and sums the repulsion Σ_j w_ij² (y_i - y_j) and Z = Σ w
// over a quadtree, taking a cell at its centre of mass when its side is
// below θ times its distance: O(n log n) per step. The gradient is tested
// against finite differences, Barnes-Hut's against the exact one (equal at
// θ = 0), and the perplexity calibration against its entropy target.
//
// Sizes are in inches at 96 dots per inch times a scale factor, so a larger
// scale enlarges text, lines and points alike. Files are written atomically:
// the plot is rendered in memory first, and any error leaves no file.
package plotting

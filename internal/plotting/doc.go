// Package plotting draws the project's plots with gonum/plot and writes them
// as PNG files: a scatter of labelled points with a legend beside the axes
// (latent spaces), and panels of curves that share a legend (training
// curves). It also finds the plane in which to show points of more than
// two dimensions, by principal component analysis.
//
// Sizes are in inches at 96 dots per inch times a scale factor, so a larger
// scale enlarges text, lines and points alike. Files are written atomically:
// the plot is rendered in memory first, and any error leaves no file.
package plotting

// Package imgrid lays out equally sized gray images (MNIST digits, samples
// from the decoder, test images beside their reconstructions) as one PNG, so
// the output of a run can be judged at a glance.
//
// Pixel values are float32 in [0,1] (0 black, 1 white), the range the decoder
// produces. Values outside it are clamped rather than rejected, because an
// untrained or diverging model still deserves a picture; NaN is drawn as
// mid-gray (128) so that it stands out from both strokes and background.
package imgrid

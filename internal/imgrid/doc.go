// Package imgrid lays out equally sized images (MNIST digits, samples from
// the decoder, test images beside their reconstructions) as one PNG, so the
// output of a run can be judged at a glance.
//
// Pixel values are float32 in [0,1] (0 black, 1 white), the range the decoder
// produces. An image has 1 channel (grey) or 3 (RGB, channel-major: the
// Rows*Cols red values, then green, then blue, as the data packages store
// them). Values outside [0,1] are clamped rather than rejected, because an
// untrained or diverging model still deserves a picture; NaN is drawn as
// mid-grey (128) so that it stands out from both strokes and background.
//
// Shown pixels are never resampled: each becomes an integer Scale x Scale
// square of exactly round(255 v). Grid draws bare cells; Figure adds what
// makes a saved picture explain itself (a title, row labels, tick labels
// under the columns, axis titles) in Liberation Sans, the font gonum/plot
// uses, at fixed pixel sizes (17 px titles, 14 px labels) readable at 100%
// zoom whatever the scale. Pixels a picture hides (impute's masked row) are
// drawn in HiddenColor, a blue no grey level matches.
package imgrid

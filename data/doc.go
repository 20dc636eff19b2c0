// Package data reads, finds, downloads, binarizes and batches MNIST-format
// image data for the VAE trainer. It depends on no other part of the project.
//
// # IDX format
//
// An IDX file is a big-endian header followed by uint8 data. Images have
// magic 0x00000803 and three uint32 dimensions N, rows, cols, then N*rows*cols
// pixels, image after image, row-major (0 is background). Labels have magic
// 0x00000801 and one dimension N, then N labels. A file may be
// gzip-compressed; the reader decides from the first two bytes (1f 8b), not
// from the name. A wrong magic, truncated data, trailing bytes or dimensions
// that overflow are reported as a *FormatError that names the file and says
// what was found and what was wanted; a truncation also matches
// errors.Is(err, io.ErrUnexpectedEOF). Memory follows the bytes that actually
// arrive, so a header that claims billions of images costs nothing.
//
// # Finding a dataset
//
// Load knows "mnist" and "fashion-mnist"; any other name needs an explicit
// folder. A folder holds a dataset when it has train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte,
// each raw or with .gz (the "train-images.idx3-ubyte" spelling works too).
// The first folder holding all four wins, searched in this order:
//
//  1. LoadOptions.Dir (the -data-dir flag), then Dir/<name>;
//  2. $GOVAE_DATA/<name>;
//  3. the user cache, os.UserCacheDir()/govae/<name> (LoadOptions.CacheDir
//     replaces os.UserCacheDir()/govae);
//  4. /usr/share/datasets/<name>, where Debian's dataset-fashion-mnist
//     installs the four .gz files.
//
// Files found on disk are used as they are, since subsets and custom data
// are legitimate. Otherwise the missing files are downloaded into the user
// cache from the dataset's published mirrors in order ($GOVAE_MIRRORS,
// comma-separated base URLs, or LoadOptions.Mirrors replace them). While a
// file streams to a temporary name its decompressed content is checked
// against the upstream SHA-256, and only a complete, verified file is renamed
// into place, so the cache never holds a partial or wrong file. With
// LoadOptions.Offline or GOVAE_OFFLINE=1 nothing is downloaded, and the error
// lists every place searched and how to supply the files.
//
// # Binarization
//
// A pixel of value v, at position j of example i (its index in Images), is
// fed to the model as
//
//	none:     x = v/255
//	static:   x = 1 if u(seed, i, j) < t(v), else 0     (one draw for all epochs)
//	dynamic:  x = 1 if u(seed, e, i, j) < t(v), else 0  (a fresh draw each epoch e)
//
// with t(v) = round(65536 v/255), so that P(x = 1) = v/255 to within 2^-17
// and exactly for v = 0 and 255. The uniform 16-bit u comes from SplitMix64:
// with m its finalizer and g = 0x9e3779b97f4a7c15, key = m(m(seed XOR tag) +
// g*e) (a distinct tag for static, with e = 0), s = m(key + g*(i+1)),
// w_k = m(s + g*(k+1)), and u(j) is bits 16(j mod 4) to 16(j mod 4)+15 of
// w_floor(j/4). A draw is thus a pure function of (seed, e, i): it depends
// on neither the batch order, nor the batch size, nor the split, and
// training resumed mid-epoch sees exactly the same pixels.
//
// # Batches
//
// A Loader serves one split as float32 rows. With Shuffle, the order of
// epoch e is a Fisher-Yates shuffle driven by the same generator keyed by
// (seed, e), recomputed from scratch for each epoch (and cached), so it too
// is a pure function. Batch b holds positions b*B to min((b+1)*B, n)-1 of
// that order. The last, partial batch is kept, like PyTorch's
// drop_last=False; LoaderOptions.DropLast skips it. ValidationSplit carves a
// seeded random validation set out of the training indices.
package data

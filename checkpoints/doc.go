// Package checkpoints saves and loads models, and the state to resume their
// training, as safetensors files with a checksum.
//
//	m, err := checkpoints.Load("runs/mnist/model.safetensors") // *amortized.Model
//	imgs, err := m.Sample(64, rand.New(rand.NewPCG(1, 2)))
//
// The format is documented byte by byte in docs/checkpoint-format.md
// (enough to evaluate a model in NumPy) and in the comment of safetensors.go.
// In short: safetensors (8-byte header length, JSON header, raw little-endian
// row-major tensors); metadata "format" = "govae-checkpoint",
// "format_version" (2; version 1 files still load), "config" (the model
// configuration as JSON, naming each part), "data" (JSON, [Data]: the
// dataset, the folder it was found in, binarization, evaluation seed and
// image shape, in every file training writes, so a copied file needs
// nothing beside it), optionally "train_state" (JSON) with the Adam moments
// as tensors adam_m.NAME and adam_v.NAME, and "checksum", a SHA-256 over the
// whole file.
//
// Before allocating a model for a file's configuration, Load counts its
// parameters by defining it into a counting store (nothing allocated) and
// compares that with the values the file holds, so a forged header cannot
// make it allocate more than the file's size.
//
// Writes are atomic (temporary file in the same folder, fsync, rename, fsync
// of the folder), so a crash leaves the previous file intact. Loading checks
// the checksum, the format name and version, and that every tensor has the
// shape the configuration implies; a damaged, foreign or newer file fails
// with an error that names the file and the problem.
//
// Nothing in a file decides what is read before it is checked (ReadFile):
// a path that is not a regular file (directory, FIFO, device such as
// /dev/zero) is refused without blocking; the header is read first and its
// length and every tensor's data_offsets are checked against the size
// fstat gives; a file over MaxReadSize (half the machine's memory) is
// refused; only then is the file read, in one buffer of its size. A 40 GB
// sparse file thus fails in microseconds. FuzzReadHeader holds the header
// reader to this (allocations bounded by the bytes really present).
//
// Values are checked too: Load refuses weights holding a NaN or an
// infinity, naming the tensor; LoadTraining refuses a training state no
// trainer writes: invalid options, negative or out-of-run counters (epochs
// beyond the run's, a step smaller than the epochs and batches done), a
// best epoch in the future, non-finite sums or baseline, non-finite Adam
// moments and negative second moments.
//
// # Describing a file without loading it
//
// ReadInfo (used by cmd/inspect) parses the header only: configuration,
// parameter count (from a counting store), data description, training
// state, format version and size; with verify it streams the file through
// SHA-256 in constant memory and reports the checksum as verified,
// mismatch or none, so a multi-gigabyte file costs no memory.
//
// # Why our own codec, and not github.com/nlpodyssey/safetensors
//
// The files are plain safetensors, and interop_test.go holds both
// directions against github.com/nlpodyssey/safetensors (a Go port of
// Hugging Face's reference code): every file Save writes, of each
// posterior family, both dtypes, with training state, reads with it to the
// same names, dtypes, shapes, bytes and metadata; and a model written with
// it as docs/checkpoint-format.md says (names, metadata, the checksum
// patched in) loads with Load. We still keep our codec, because that
// library does not do what checkpoints need: it has no checksum (a flipped
// bit loads silently); it reads only from a []byte holding the whole file,
// so nothing can be checked before the file is in memory (ours reads the
// header first and checks every declared size against fstat, refusing a
// FIFO, a device, a sparse 40 GB file or a file over MaxReadSize first);
// it parses the header into map[string]any trees (losing duplicate keys,
// which ours reports, and allocating for arbitrary JSON); its Serialize
// takes a map, so the tensor order is its own, not the model's; and it is
// not fuzzed (ours is: FuzzDecode, FuzzReadHeader, with bounded
// allocations). Replacing ours would mean adding all of that around it.
package checkpoints

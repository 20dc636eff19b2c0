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
package checkpoints

// Package atomicfile writes files so that a reader (or a crash) sees either the
// old content or the complete new content, never a half-written file.
//
// The recipe is the usual one for POSIX file systems: write to a temporary file
// in the destination's directory (so the rename cannot cross file systems),
// fsync it, rename it over the destination, then fsync the directory so the
// rename itself survives a power cut. On any error the temporary file is removed.
//
// CheckOutput is the rule for output paths of every command (-out of
// pictures, -json, -cpuprofile), applied before any work: the folder must
// exist; the path may be absent, empty, or a file of the same kind (known
// by its first bytes: PNG signature; one JSON object, read whole, under
// 64 KiB; gzip), which is then
// replaced; a checkpoint (safetensors), any other file, a directory, a
// device, a FIFO or a symbolic link loop is refused with an error naming
// the flag. So no output silently replaces a checkpoint or a dataset.
package atomicfile

// Package atomicfile writes files so that a reader (or a crash) sees either the
// old content or the complete new content, never a half-written file.
//
// The recipe is the usual one for POSIX file systems: write to a temporary file
// in the destination's directory (so the rename cannot cross file systems),
// fsync it, rename it over the destination, then fsync the directory so the
// rename itself survives a power cut. On any error the temporary file is removed.
package atomicfile

package checkpoints

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/govae/govae/amortized"
)

// Checksum states reported by [ReadInfo].
const (
	ChecksumVerified    = "verified"     // present and matches the file
	ChecksumMismatch    = "mismatch"     // present but the file does not match it: corrupt
	ChecksumNone        = "none"         // the file carries no checksum (govae always writes one)
	ChecksumNotVerified = "not verified" // present; verification was not asked for
)

// Info is what a checkpoint says about itself, read from its header (and,
// for the checksum, by streaming the file once through SHA-256).
type Info struct {
	Path      string                `json:"path"`
	Size      int64                 `json:"size_bytes"`
	Version   int                   `json:"format_version"`
	Config    amortized.Config      `json:"config"` // as stored (canonical part strings)
	NumParams int64                 `json:"num_params"`
	Tensors   int                   `json:"tensors"` // model tensors (optimizer moments not counted)
	Data      *Data                 `json:"data"`    // nil: the file does not say (version 1)
	State     *amortized.TrainState `json:"train_state,omitempty"`
	Checksum  string                `json:"checksum"` // one of the Checksum* constants
	// ChecksumValue is the stored "sha256:..." value, empty when none.
	ChecksumValue string `json:"checksum_value,omitempty"`
}

// ReadInfo reads a checkpoint's description without reading its tensors
// into memory: the header gives the configuration, the data description
// and the training state; the parameter count comes from the configuration
// (a counting store: nothing allocated). With verify, the whole file is
// streamed through SHA-256 in constant memory and Checksum says whether it
// matches. A file that is not a govae checkpoint (or not a regular file,
// or truncated) is an error naming it; a checksum mismatch is not: it is
// reported in Info.Checksum.
func ReadInfo(path string, verify bool) (*Info, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := readHeader(f, fi.Size(), path)
	if err != nil {
		return nil, err
	}
	in := &Info{Path: path, Size: fi.Size()}
	meta := h.meta
	if _, ok := meta[keyFormat]; !ok {
		return nil, fmt.Errorf("checkpoints: %s: a safetensors file, but not a govae checkpoint (no metadata %q)", path, keyFormat)
	}
	if meta[keyFormat] != FormatName {
		return nil, fmt.Errorf("checkpoints: %s: not a govae checkpoint (metadata %q is %q, want %q)", path, keyFormat, meta[keyFormat], FormatName)
	}
	if in.Version, err = strconv.Atoi(meta[keyVersion]); err != nil || in.Version < 1 {
		return nil, fmt.Errorf("checkpoints: %s: format version %q, want a positive integer", path, meta[keyVersion])
	}
	if in.Version > FormatVersion {
		return nil, fmt.Errorf("checkpoints: %s: format version %d is newer than this program reads (%d); use a newer govae", path, in.Version, FormatVersion)
	}
	if err := json.Unmarshal([]byte(meta[keyConfig]), &in.Config); err != nil {
		return nil, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyConfig, err)
	}
	if n, err := in.Config.NumParams(); err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	} else {
		in.NumParams = int64(n)
	}
	for _, e := range h.entries {
		if !strings.HasPrefix(e.name, prefixAdamM) && !strings.HasPrefix(e.name, prefixAdamV) {
			in.Tensors++
		}
	}
	if js, ok := meta[keyData]; ok {
		in.Data = &Data{}
		if err := json.Unmarshal([]byte(js), in.Data); err != nil {
			return nil, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyData, err)
		}
	}
	if js, ok := meta[keyState]; ok {
		in.State = &amortized.TrainState{}
		if err := json.Unmarshal([]byte(js), in.State); err != nil {
			return nil, fmt.Errorf("checkpoints: %s: metadata %q: %w", path, keyState, err)
		}
	}
	v, ok := meta[ChecksumKey]
	switch {
	case !ok:
		in.Checksum = ChecksumNone
	case !verify:
		in.Checksum, in.ChecksumValue = ChecksumNotVerified, v
	default:
		in.ChecksumValue = v
		match, err := streamChecksum(f, h, v)
		if err != nil {
			return nil, fmt.Errorf("checkpoints: reading %s: %w", path, err)
		}
		in.Checksum = ChecksumMismatch
		if match {
			in.Checksum = ChecksumVerified
		}
	}
	return in, nil
}

// streamChecksum hashes the file as verifyChecksum does (the stored digits
// replaced by '0's), reading it in small pieces. A malformed or ambiguous
// checksum value counts as a mismatch.
func streamChecksum(f io.ReaderAt, h *fileHeader, v string) (bool, error) {
	want := checksumDigits(v)
	if want == "" || bytes.Count(h.hdr, []byte(want)) != 1 || !bytes.Contains(h.hdr, []byte(`"`+v+`"`)) {
		return false, nil
	}
	pos := 8 + int64(bytes.Index(h.hdr, []byte(want)))
	sum := sha256.New()
	if _, err := io.Copy(sum, io.NewSectionReader(f, 0, pos)); err != nil {
		return false, err
	}
	sum.Write(bytes.Repeat([]byte{'0'}, len(want)))
	if _, err := io.Copy(sum, io.NewSectionReader(f, pos+int64(len(want)), 1<<62)); err != nil {
		return false, err
	}
	return hex.EncodeToString(sum.Sum(nil)) == want, nil
}

//go:build unix

package atomicfile

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	put := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ckpt := put("model.safetensors", append(binary.LittleEndian.AppendUint64(nil, 8), `{}      `...))
	ckptPNG := put("model.png", append(binary.LittleEndian.AppendUint64(nil, 8), `{}      `...))
	png := put("old.png", []byte("\x89PNG\r\n\x1a\nrest"))
	js := put("old.json", []byte("{\n \"n\": 1}\n"))
	prof := put("cpu.prof", []byte{0x1f, 0x8b, 8, 0})
	data := put("train-images-idx3-ubyte", []byte{0, 0, 8, 3, 0, 0, 0, 1})
	empty := put("empty.png", nil)
	metrics := put("metrics.jsonl", []byte("{\"epoch\":1}\n{\"epoch\":2}\n"))
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.png")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		kind Kind
		want string // "" = allowed
	}{
		{filepath.Join(dir, "new.png"), PNG, ""},
		{empty, PNG, ""},
		{png, PNG, ""},
		{js, JSONReport, ""},
		{prof, CPUProfile, ""},
		{ckpt, CPUProfile, "is a checkpoint"},
		{ckpt, JSONReport, "is a checkpoint"},
		{ckptPNG, PNG, "is a checkpoint"},
		{png, JSONReport, "is not a JSON report"},
		{metrics, JSONReport, "is not a JSON report"},
		{js, PNG, "is not a PNG picture"},
		{data, CPUProfile, "is not a CPU profile"},
		{dir, JSONReport, "is a directory"},
		{fifo, JSONReport, "is not a regular file"},
		{loop, PNG, "is a loop of symbolic links"},
		{dangling, PNG, "symbolic link to a missing file"},
		{filepath.Join(dir, "no", "x.png"), PNG, "does not exist"},
		{filepath.Join(loop, "x.png"), PNG, "loop of symbolic links"},
		{"", PNG, "want a file name"},
	} {
		err := CheckOutput("-out", c.path, c.kind)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s as %s: %v, want allowed", c.path, c.kind.Name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "-out")):
			t.Errorf("%s as %s: %v, want an error naming -out with %q", c.path, c.kind.Name, err, c.want)
		}
	}
}

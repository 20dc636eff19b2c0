package readme

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// block is one ```go block of README.md.
type block struct {
	line     int    // of the opening fence
	code     string // between the fences
	fragment bool
	decls    string // statements from the fragment marker
}

var fragmentMark = regexp.MustCompile(`^<!--\s*fragment(?::\s*(.*?))?\s*-->$`)

func goBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	var code strings.Builder
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.TrimSpace(l) == "```go":
			cur = &block{line: n}
			if m := fragmentMark.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
				cur.fragment, cur.decls = true, m[1]
			}
			code.Reset()
		case cur != nil && strings.TrimSpace(l) == "```":
			cur.code = code.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			code.WriteString(l + "\n")
		}
		if strings.TrimSpace(l) != "" {
			prev = l
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: a ```go block is never closed", path, cur.line)
	}
	return out
}

// wrap turns a fragment into a program: its imports first, then its other
// lines inside func main after the marker's declarations.
func wrap(b block) string {
	imports, body := "", b.code
	if i := strings.Index(body, "import ("); i >= 0 {
		if j := strings.Index(body[i:], "\n)"); j >= 0 {
			imports, body = body[i:i+j+2], body[:i]+body[i+j+2:]
		}
	} else if m := regexp.MustCompile(`(?m)^import "[^"]+"\n`).FindStringIndex(body); m != nil {
		imports, body = body[m[0]:m[1]], body[:m[0]]+body[m[1]:]
	}
	decls := strings.ReplaceAll(b.decls, ";", "\n")
	return fmt.Sprintf("package main\n\n%s\n\nfunc main() {\n%s\n%s\n}\n", imports, decls, body)
}

var unused = regexp.MustCompile(`declared and not used: (\w+)`)

func TestReadmeGoBlocksCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: README's Go blocks are not compiled")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH; README's Go blocks are not compiled")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, filepath.Join(root, "README.md"))
	if len(blocks) == 0 {
		t.Fatal("README.md has no ```go block; this test expects at least the checkpoint example")
	}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
			src := b.code
			switch {
			case strings.HasPrefix(strings.TrimSpace(src), "package "):
				if b.fragment {
					t.Fatalf("README.md:%d: a fragment marker before a complete program", b.line)
				}
			case b.fragment:
				src = wrap(b)
			default:
				t.Fatalf("README.md:%d: a ```go block that is neither a complete program (package main) nor marked <!-- fragment --> on the line before", b.line)
			}
			// Built as a package of this module (under testdata/, which
			// ./... skips), against the repository's own go.mod and go.sum:
			// a new module would need go.mod files of old dependencies
			// that a module cache filled by building this repository need
			// not hold, and looking them up would need the network.
			dir, err := os.MkdirTemp(filepath.Join(root, "internal", "readme", "testdata"), "readmecheck-")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			pkg := "./" + filepath.ToSlash(must(filepath.Rel(root, dir)))
			// Fragments may leave results unused; name them used, a few
			// rounds at most (each round reports up to 10 errors).
			for round := 0; ; round++ {
				if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				cmd := exec.CommandContext(ctx, goBin, "build", "-o", os.DevNull, pkg)
				cmd.Dir = root
				// The module's own requirements, from the cache: no network.
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off")
				out, err := cmd.CombinedOutput()
				cancel()
				if err == nil {
					return
				}
				names := unused.FindAllStringSubmatch(string(out), -1)
				if !b.fragment || len(names) == 0 || round == 5 {
					t.Fatalf("README.md:%d: the Go block does not compile:\n%s\nsource as built:\n%s", b.line, out, src)
				}
				var uses strings.Builder
				for _, n := range names {
					fmt.Fprintf(&uses, "\t_ = %s\n", n[1])
				}
				src = strings.TrimSuffix(src, "}\n") + uses.String() + "}\n"
			}
		})
	}
}

func TestWrapFragment(t *testing.T) {
	b := block{fragment: true, decls: "var x []int; var y int", code: "import (\n\t\"fmt\"\n)\n\nfmt.Println(x, y)\n"}
	got := wrap(b)
	want := "package main\n\nimport (\n\t\"fmt\"\n)\n\nfunc main() {\nvar x []int\n var y int\n\n\nfmt.Println(x, y)\n\n}\n"
	if got != want {
		t.Errorf("wrap:\n%q\nwant\n%q", got, want)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

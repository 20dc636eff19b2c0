package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// header is the provenance block that opens every result README.
func header(x experiment, e *env, args []string, rev string, wall time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", x.name, x.summary)
	if e.Quick {
		b.WriteString("**Quick run: sizes chosen to test the code; the numbers mean nothing.**\n\n")
	}
	fmt.Fprintf(&b, "- Command: `go run ./experiments %s`\n", shellJoin(args))
	fmt.Fprintf(&b, "- Git revision: %s\n", rev)
	for _, d := range e.datasets {
		fmt.Fprintf(&b, "- Data: %s\n", d)
	}
	fmt.Fprintf(&b, "- Machine: %s\n", machine())
	fmt.Fprintf(&b, "- Wall time: %s\n", wall.Round(time.Second))
	fmt.Fprintf(&b, "- Date: %s\n\n", time.Now().UTC().Format("2006-01-02"))
	return b.String()
}

// shellJoin joins args as a shell would need them typed: an argument with
// a space or a shell metacharacter (-rows "two layers, VAE") in single quotes.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\*?[]{}()<>|&;#~!") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// gitRevision is HEAD's commit, marked when the tree has uncommitted changes
// to tracked files.
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += " (with uncommitted changes)"
	}
	return rev
}

// machine describes the CPU, cores and Go toolchain.
func machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s/%s, %s",
		cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

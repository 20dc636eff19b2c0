package testutil

import (
	"os"
	"os/exec"
)

// PythonWith returns the first of $GOVAE_PYTHON, python3 and Debian's
// /usr/bin/python3 that can import module (numpy, torch), or "" when none
// can: the tests that check the format page against NumPy and the conv
// trunk against PyTorch then skip, saying what to install.
func PythonWith(module string) string {
	for _, p := range []string{os.Getenv("GOVAE_PYTHON"), "python3", "/usr/bin/python3"} {
		if p != "" && exec.Command(p, "-c", "import "+module).Run() == nil {
			return p
		}
	}
	return ""
}

package testutil

import "github.com/govae/govae/internal/torchpeer"

// PythonWith returns the first of $GOVAE_PYTHON, python3 and Debian's
// /usr/bin/python3 that can import module (numpy, torch), or "" when none
// can: the tests that check the format page against NumPy and the conv
// trunk against PyTorch then skip, saying what to install.
func PythonWith(module string) string { return torchpeer.Python(module) }

package main

import (
	"os"
	"testing"

	"github.com/govae/govae/internal/testutil"
)

// TestMain says in one line how many tests skipped for want of $GOVAE_DATA.
func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }

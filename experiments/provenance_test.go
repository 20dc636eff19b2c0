package main

import "testing"

// TestShellJoin: the provenance header's command can be pasted into a shell.
func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"-run", "burda", "-rows", "two layers, VAE", "-x", "it's", ""})
	if want := `-run burda -rows 'two layers, VAE' -x 'it'\''s' ''`; got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}

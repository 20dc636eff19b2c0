package cli

import (
	"errors"
	"fmt"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	u := Usagef("-k %d: want >= 1", 0)
	wrapped := fmt.Errorf("eval: %w", u)
	for _, c := range []struct {
		err   error
		usage bool
		code  int
	}{
		{nil, false, 0}, {u, true, 2}, {wrapped, true, 2}, {errors.New("disk full"), false, 1}, {Usage(errors.New("x")), true, 2},
	} {
		if IsUsage(c.err) != c.usage || ExitCode(c.err) != c.code {
			t.Errorf("%v: usage %v, exit %d; want %v, %d", c.err, IsUsage(c.err), ExitCode(c.err), c.usage, c.code)
		}
	}
	if Usage(nil) != nil {
		t.Error("Usage(nil) is not nil")
	}
	if u.Error() != "-k 0: want >= 1" {
		t.Errorf("message %q", u.Error())
	}
}

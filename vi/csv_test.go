package vi

import (
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	tb, err := ReadCSV(strings.NewReader("\ufeffa, b\n1,2\n\n3, 4.5e1\n"), "x.csv", CSVLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Rows) != 2 || tb.Rows[1][1] != 45 || tb.Header[0] != "a" || tb.Header[1] != "b" {
		t.Errorf("got %+v", tb)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "x.csv: empty file"},
		{"a,b\n", "x.csv: a header and no rows"},
		{"a,b\n1,2\n3\n", "x.csv: row 3 has 1 columns, the header has 2"},
		{"a,b\n1,2\n3,x\n", `x.csv: row 3, column 2 (b): "x" is not a number`},
		{"a,b\n1,NaN\n", "x.csv: row 2, column 2 (b): NaN, want a finite number"},
		{"a,b\n1,-Inf\n", "x.csv: row 2, column 2 (b): -Inf, want a finite number"},
		{"a\n1\n2\n3\n", "x.csv: more than 2 rows"},
	} {
		_, err := ReadCSV(strings.NewReader(tc.in), "x.csv", CSVLimits{MaxRows: 2})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add("a,b\n1,2\n")
	f.Add("a\n\"1\n")
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := ReadCSV(strings.NewReader(s), "f.csv", CSVLimits{MaxRows: 100, MaxCols: 10})
		if err == nil && (len(tb.Rows) == 0 || len(tb.Rows) > 100) {
			t.Errorf("%q: %d rows without an error", s, len(tb.Rows))
		}
	})
}

package vi

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Table is numeric CSV data with its header.
type Table struct {
	Header []string
	Rows   [][]float64
}

// CSVLimits caps what ReadCSV accepts. Zero values mean the defaults noted.
type CSVLimits struct {
	MaxRows  int // 0: 10,000,000
	MaxCols  int // 0: 10,000
	MaxCells int // rows x columns; 0: 50,000,000 (400 MB of float64)
}

// ReadCSV reads comma-separated numbers under a header row. Errors name
// the file, the row (as a line of the file, the header being row 1) and
// the column: ragged rows, non-numbers, NaN and infinities, an empty file,
// and sizes beyond the limits.
func ReadCSV(r io.Reader, name string, lim CSVLimits) (*Table, error) {
	if lim.MaxRows == 0 {
		lim.MaxRows = 10_000_000
	}
	if lim.MaxCols == 0 {
		lim.MaxCols = 10_000
	}
	if lim.MaxCells == 0 {
		lim.MaxCells = 50_000_000
	}
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file, want a header row and rows of numbers", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(head) > lim.MaxCols {
		return nil, fmt.Errorf("%s: %d columns, at most %d allowed", name, len(head), lim.MaxCols)
	}
	t := &Table{Header: make([]string, len(head))}
	for j, h := range head {
		h = strings.TrimSpace(h)
		if j == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if h == "" {
			h = fmt.Sprintf("column %d", j+1)
		}
		t.Header[j] = h
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		if len(rec) != len(head) {
			return nil, fmt.Errorf("%s: row %d has %d columns, the header has %d", name, line, len(rec), len(head))
		}
		if len(t.Rows) >= lim.MaxRows || (len(t.Rows)+1)*len(head) > lim.MaxCells {
			return nil, fmt.Errorf("%s: more than %d rows (%d columns); at most %d rows and %d numbers are read", name, len(t.Rows), len(head), lim.MaxRows, lim.MaxCells)
		}
		row := make([]float64, len(rec))
		for j, f := range rec {
			f = strings.TrimSpace(f)
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: row %d, column %d (%s): %q is not a number", name, line, j+1, t.Header[j], f)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s: row %d, column %d (%s): %s, want a finite number", name, line, j+1, t.Header[j], f)
			}
			row[j] = v
		}
		t.Rows = append(t.Rows, row)
	}
	if len(t.Rows) == 0 {
		return nil, fmt.Errorf("%s: a header and no rows of numbers", name)
	}
	return t, nil
}

// Column returns column j.
func (t *Table) Column(j int) []float64 {
	c := make([]float64, len(t.Rows))
	for i, r := range t.Rows {
		c[i] = r[j]
	}
	return c
}

// ColumnIndex finds a column by name.
func (t *Table) ColumnIndex(name string) (int, error) {
	for j, h := range t.Header {
		if h == name {
			return j, nil
		}
	}
	return 0, fmt.Errorf("no column %q (the header has %s)", name, strings.Join(t.Header, ", "))
}

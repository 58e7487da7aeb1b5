package ingest

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// testNow is the receiver's clock in tests.
var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// decoded is everything a decoder gave.
type decoded struct {
	rows  []string // rowString of each row
	errs  []string // Error() of each RowError
	fatal error    // the final error other than io.EOF
	pos   []int    // positions of rows and errors, in order
}

// decodeAll drains dec, failing the test on a decoder that does not end.
func decodeAll(t testing.TB, dec Decoder) decoded {
	t.Helper()
	var out decoded
	for range 1_000_000 {
		row, err := dec.Next()
		switch e := err.(type) {
		case nil:
			out.rows = append(out.rows, rowString(row))
			out.pos = append(out.pos, row.Pos)
		case *RowError:
			out.errs = append(out.errs, e.Error())
			out.pos = append(out.pos, e.Pos)
		default:
			if err != io.EOF {
				out.fatal = err
				if _, again := dec.Next(); again != err {
					t.Errorf("after the final error %v, Next returned %v", err, again)
				}
			} else if _, again := dec.Next(); again != io.EOF {
				t.Errorf("after io.EOF, Next returned %v", again)
			}
			return out
		}
	}
	t.Fatal("decoder does not end")
	return out
}

// rowString renders a row compactly: pos asset|quantity|time|value|unit|phase|raw.
func rowString(r Row) string {
	return fmt.Sprintf("%d %s|%s|%d|%g|%s|%s|%s", r.Pos, r.Asset, r.Quantity, r.Time, r.Value, r.Unit, r.Phase, r.RawValue)
}

// ms returns the Unix milliseconds of an RFC 3339 time, for expectations.
func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// equalStrings compares two lists and reports the difference.
func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d, want %d\ngot:  %q\nwant: %q", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s[%d]:\ngot:  %s\nwant: %s", what, i, got[i], want[i])
		}
	}
}

// want renders an expected row as rowString does.
func want(pos int, asset, quantity string, ms int64, value float64, unit, phase, raw string) string {
	return rowString(Row{Pos: pos, Input: cimInput(asset, quantity, ms, value, unit, phase), RawValue: raw})
}

// iotestOneByte returns a reader of s that gives one byte per Read.
func iotestOneByte(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }

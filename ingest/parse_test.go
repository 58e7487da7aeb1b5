package ingest

import (
	"io"
	"runtime"
	"strconv"
	"testing"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 of the expected instant, "" for a refusal
	}{
		{"2026-11-27T10:00:00.250Z", "2026-11-27T10:00:00.250Z"},
		{"2026-11-27T10:00:00.2509999Z", "2026-11-27T10:00:00.250Z"},
		{"2026-11-27T10:00:00.2Z", "2026-11-27T10:00:00.200Z"},
		{"2026-11-27T11:30:00+01:30", "2026-11-27T10:00:00Z"},
		{"2026-11-27T00:00:00-23:59", "2026-11-27T23:59:00Z"},
		{"2026-11-27 10:00:00Z", "2026-11-27T10:00:00Z"},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
		{"2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"},
		{"1969-12-31T23:59:59.500Z", "1969-12-31T23:59:59.500Z"},
		{"0000-03-01T00:00:00Z", "0000-03-01T00:00:00Z"},
		{"1764237600123", "2025-11-27T10:00:00.123Z"},
		{"-1000", "1969-12-31T23:59:59Z"},
		{"1900-02-29T00:00:00Z", ""},
		{"2026-02-29T00:00:00Z", ""},
		{"2026-04-31T00:00:00Z", ""},
		{"2026-11-27T24:00:00Z", ""},
		{"2026-11-27T10:60:00Z", ""},
		{"2026-11-27T10:00:60Z", ""},
		{"2026-11-27T10:00:00.Z", ""},
		{"2026-11-27T10:00:00+0100", ""},
		{"2026-11-27T10:00:00+24:00", ""},
		{"2026-11-27T10:00:00", ""},
		{"2026-11-27", ""},
		{"2026-11-27T10:00:00Zjunk", ""},
		{"1764237600123.0", ""},
		{"17642376001230000000", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, ok := parseTime([]byte(tc.in))
		if tc.want == "" {
			if ok {
				t.Errorf("parseTime(%q) = %d, want a refusal", tc.in, got)
			}
			continue
		}
		if w := ms(tc.want); !ok || got != w {
			t.Errorf("parseTime(%q) = %d %v, want %d (%s)", tc.in, got, ok, w, tc.want)
		}
	}
}

func TestRowError(t *testing.T) {
	for _, tc := range []struct {
		e    RowError
		want string
	}{
		{RowError{Pos: 17, PosKind: PosLine, Field: "time", Value: "2026-13-01", Reason: reasonTime},
			`line 17: field "time": value "2026-13-01": not an RFC 3339 time or Unix milliseconds`},
		{RowError{Pos: 3, PosKind: PosIndex, Field: "value", Reason: "missing"}, `readings[3]: field "value": missing`},
		{RowError{Pos: 2, Reason: "3 fields, want 4 to 6"}, `line 2: 3 fields, want 4 to 6`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	long := make([]byte, 1000)
	for i := range long {
		long[i] = "é"[i%2]
	}
	if c := clip(long); len(c) > maxValueLen+3 {
		t.Errorf("clip kept %d bytes", len(c))
	}
}

// rowSource generates an endless-looking input of n rows without holding it.
type rowSource struct {
	n, i   int
	format benchFormat
	buf    []byte // generated, not yet read
	tmp    []byte
}

func (s *rowSource) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) && s.i <= s.n {
		switch {
		case s.format == fmtJSON && s.i == 0:
			s.buf = append(s.buf, `{"readings":[`...)
		case s.format == fmtJSON && s.i == s.n:
			s.buf = append(s.buf, `]}`...)
		}
		if s.i < s.n {
			if s.format == fmtJSON && s.i > 0 {
				s.buf = append(s.buf, ',')
			}
			// Formatted by hand: the generator must not allocate.
			asset := strconv.AppendInt(append(s.tmp[:0], "house-"...), int64(10000+s.i%1000), 10)
			asset = append(append(asset[:6], asset[7:]...), "/meter"...)
			s.tmp = asset
			tm := t0 + int64(s.i/1000)*1000
			if s.format == fmtCSVMillis {
				s.buf = append(s.buf, asset...)
				s.buf = append(s.buf, ",active_power,"...)
				s.buf = strconv.AppendInt(s.buf, tm, 10)
				s.buf = append(s.buf, ',')
				s.buf = strconv.AppendInt(s.buf, int64(s.i%5000), 10)
				s.buf = append(s.buf, ".5\n"...)
			} else {
				s.buf = append(s.buf, `{"asset":"`...)
				s.buf = append(s.buf, asset...)
				s.buf = append(s.buf, `","quantity":"active_power","time":`...)
				s.buf = strconv.AppendInt(s.buf, tm, 10)
				s.buf = append(s.buf, `,"value":`...)
				s.buf = strconv.AppendInt(s.buf, int64(s.i%5000), 10)
				s.buf = append(s.buf, ".5}\n"...)
			}
		}
		s.i++
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	return n, nil
}

// TestBoundedMemory decodes inputs of a few hundred thousand rows and checks
// that the decoders allocate a fixed amount, not an amount that grows with
// the input.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const rows = 300_000
	for _, tc := range []struct {
		name string
		f    benchFormat
		open func(io.Reader) Decoder
	}{{"csv", fmtCSVMillis, NewCSV}, {"ndjson", fmtNDJSON, NewNDJSON}, {"json", fmtJSON, NewJSON}} {
		src := &rowSource{n: rows, format: tc.f}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		dec := tc.open(src)
		n := 0
		for {
			_, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: row %d: %v", tc.name, n, err)
			}
			n++
		}
		runtime.ReadMemStats(&m1)
		if n != rows {
			t.Errorf("%s: %d rows, want %d", tc.name, n, rows)
		}
		// The input is ~25 MB; the buffers and the 1,000 interned
		// asset names take a few hundred kB.
		if got := m1.TotalAlloc - m0.TotalAlloc; got > 2<<20 {
			t.Errorf("%s: decoding %d rows allocated %d bytes", tc.name, rows, got)
		}
		t.Logf("%s: %d rows, %d bytes allocated, %d allocations", tc.name, rows, m1.TotalAlloc-m0.TotalAlloc, m1.Mallocs-m0.Mallocs)
	}
}

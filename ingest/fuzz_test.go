package ingest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// chunkReader gives at most n bytes per Read, to exercise buffer refills.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// checkDecoder runs the properties every decoder shares: it ends, positions
// increase, and reading in small chunks gives the same result.
func checkDecoder(t *testing.T, data []byte, open func(io.Reader) Decoder) decoded {
	got := decodeAll(t, open(bytes.NewReader(data)))
	checkIncreasing(t, got.pos)
	if got.fatal != nil {
		var ie *InputError
		if !errors.As(got.fatal, &ie) {
			t.Fatalf("final error %v is a %T, want an *InputError", got.fatal, got.fatal)
		}
	}
	small := decodeAll(t, open(chunkReader{bytes.NewReader(data), 7}))
	if !slices.Equal(got.rows, small.rows) || !slices.Equal(got.errs, small.errs) ||
		(got.fatal == nil) != (small.fatal == nil) {
		t.Fatalf("read whole and in chunks differ:\n%+v\n%+v", got, small)
	}
	return got
}

var fuzzSeeds = []string{
	"",
	"\xef\xbb\xbf",
	"house-01/meter,active_power,1764237600123,1234.5\n",
	"asset,quantity,time,value,unit,phase\r\nm,voltage,2026-11-27T10:00:00.250+01:00,230,V,L1\r\n",
	"Value,TIME,asset,quantity\n1,1764237600123,m,active_power\n# c\n\n",
	"\"a \"\"b\"\"\",\"x\ny\",1764237600123,\"1\"\n\"open,a,b,c\nho\"use,a,b,c\n\"m\"x,a,b,c\n",
	`{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}` + "\n",
	`{"asset":"h\u00e9\ud83d\ude00","quantity":"relay_state","time":"2026-11-27T10:00:00Z","value":"on","unit":null}`,
	`{"readings":[{"asset":"m","quantity":"active_power","time":1764237600123,"value":1},5,{"x":[]}]}`,
	`{"gateway":"g","readings":[],"more":{"a":[1,2,{"b":null}]}}`,
	`{"readings":[{"asset":}]}`,
	`{"readings":[1 2]}`,
	`[` + strings.Repeat("[", 300),
}

func FuzzCSV(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := checkDecoder(t, data, NewCSV)
		if bytes.IndexByte(data, '"') < 0 && got.fatal == nil {
			// Without quotes every record is one line: each line that
			// is neither blank nor a comment gives one row or error,
			// but for a header.
			lines := csvLines(data)
			n := len(lines)
			if n > 0 && csvIsHeader(lines[0]) {
				n--
			}
			if len(got.rows)+len(got.errs) != n {
				t.Fatalf("%d rows and %d errors from %d records", len(got.rows), len(got.errs), n)
			}
		}
		checkCSVFields(t, data)
	})
}

// csvLines returns the lines of a CSV input without quotes that are neither
// blank nor comments.
func csvLines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimPrefix(string(data), "\xef\xbb\xbf"), "\n") {
		l = strings.TrimLeft(l, " \t\r")
		if l != "" && l[0] != '#' {
			out = append(out, l)
		}
	}
	return out
}

func csvIsHeader(line string) bool {
	for _, f := range strings.Split(line, ",") {
		if columnOf([]byte(strings.Trim(f, " \t\r"))) >= 0 {
			return true
		}
	}
	return false
}

// checkCSVFields compares the record splitting with encoding/csv on inputs
// where the two dialects agree (no spaces, tabs, CRs or comment marks, no
// byte order mark) and encoding/csv finds no error.
func checkCSVFields(t *testing.T, data []byte) {
	if bytes.ContainsAny(data, " \t\r#") || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) || !utf8.Valid(data) {
		return
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	var want [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
		want = append(want, rec)
	}
	d := NewCSV(bytes.NewReader(data)).(*csvDecoder)
	for i := 0; ; i++ {
		kind, reason, err := d.record()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d records, encoding/csv finds %d", i, len(want))
			}
			return
		}
		if err != nil || kind == recBad {
			t.Fatalf("record %d: %v %q; encoding/csv reads it", i, err, reason)
		}
		if kind == recSkip {
			i--
			continue
		}
		if i >= len(want) {
			t.Fatalf("more records than encoding/csv's %d", len(want))
		}
		if d.nfields != len(want[i]) {
			t.Fatalf("record %d: %d fields, encoding/csv %d: %q", i, d.nfields, len(want[i]), want[i])
		}
		for j, f := range d.fields {
			if string(f) != want[i][j] {
				t.Fatalf("record %d field %d: %q, encoding/csv %q", i, j, f, want[i][j])
			}
		}
	}
}

func FuzzNDJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := checkDecoder(t, data, NewNDJSON)
		if got.fatal != nil {
			t.Fatalf("final error %v from an in-memory reader", got.fatal)
		}
		// Every line that is not blank gives exactly one row or error,
		// at its line number.
		var lines []int
		body := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		for i, l := range bytes.Split(body, []byte("\n")) {
			if !isBlank(l) {
				lines = append(lines, i+1)
			}
		}
		if !slices.Equal(got.pos, lines) {
			t.Fatalf("positions %v, want the non-blank lines %v", got.pos, lines)
		}
		// Syntax errors agree with encoding/json, and accepted rows
		// decode the same.
		d := NewNDJSON(bytes.NewReader(data))
		for _, n := range lines {
			l := bytes.Split(body, []byte("\n"))[n-1]
			row, err := d.Next()
			var re *RowError
			syntax := errors.As(err, &re) && strings.HasPrefix(re.Reason, "invalid JSON")
			if valid := json.Valid(l); valid == syntax {
				t.Fatalf("line %d %q: json.Valid %v, decoder %v", n, l, valid, err)
			}
			if err == nil {
				checkLikeEncodingJSON(t, l, row)
			}
		}
	})
}

// checkLikeEncodingJSON compares a decoded row with encoding/json's reading
// of the same object.
func checkLikeEncodingJSON(t *testing.T, line []byte, row Row) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("%q: decoded, but encoding/json: %v", line, err)
	}
	str := func(key, got string) {
		raw, ok := m[key]
		if !ok || string(raw) == "null" {
			if got != "" {
				t.Fatalf("%q: %s %q, encoding/json has none", line, key, got)
			}
			return
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%q: %s: %v", line, key, err)
		}
		if s != got && utf8.ValidString(got) {
			t.Fatalf("%q: %s %q, encoding/json %q", line, key, got, s)
		}
	}
	str("asset", row.Asset)
	str("quantity", row.Quantity)
	str("unit", row.Unit)
	str("phase", row.Phase)
	if raw := m["value"]; raw[0] != '"' {
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.Float64bits(v) != math.Float64bits(row.Value) {
			t.Fatalf("%q: value %v, strconv %v %v", line, row.Value, v, err)
		}
	}
}

func FuzzJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := checkDecoder(t, data, NewJSON)
		for i, p := range got.pos {
			if p != i {
				t.Fatalf("positions %v, want 0, 1, 2, ...", got.pos)
			}
		}
		body := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		if !json.Valid(body) {
			if got.fatal == nil {
				t.Fatalf("invalid JSON decoded without a final error")
			}
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			if got.fatal == nil {
				t.Fatalf("not an object, but no final error")
			}
			return
		}
		var elems []json.RawMessage
		raw, ok := top["readings"]
		if !ok || len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
			if got.fatal == nil {
				t.Fatalf("no readings array, but no final error")
			}
			return
		}
		if got.fatal != nil {
			if strings.Contains(got.fatal.Error(), `"readings" given twice`) {
				return
			}
			t.Fatalf("valid body, final error %v", got.fatal)
		}
		if len(got.rows)+len(got.errs) != len(elems) {
			t.Fatalf("%d rows and %d errors from %d elements", len(got.rows), len(got.errs), len(elems))
		}
	})
}

// rfc3339Shape is the strict syntax of RFC 3339 section 5.6; time.Parse is
// laxer (one-digit hours, commas before the fraction).
var rfc3339Shape = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)

// offsetMinutesOK reports whether the minutes of a numeric offset are below
// 60, which time.Parse does not check.
func offsetMinutesOK(s string) bool {
	if c := s[len(s)-1]; c == 'Z' || c == 'z' {
		return true
	}
	return s[len(s)-2] < '6'
}

// FuzzParseTime compares parseTime with time.Parse.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-27T10:00:00.250Z", "2026-11-27T11:00:00+01:00", "1764237600123",
		"2024-02-29T23:59:59.999999999-23:59", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
		"2026-02-29T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T10:00:60Z", "-5", "2026-11-27t10:00:00z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTime([]byte(s))
		if n, isInt := parseInt([]byte(s)); isInt {
			if !ok || got != n {
				t.Fatalf("%q: %d %v, want the integer %d", s, got, ok, n)
			}
			return
		}
		std := s
		if len(s) > 10 && (s[10] == 't' || s[10] == ' ') {
			std = s[:10] + "T" + s[11:]
		}
		if strings.HasSuffix(std, "z") {
			std = std[:len(std)-1] + "Z"
		}
		tm, err := time.Parse(time.RFC3339Nano, std)
		switch {
		case ok && err != nil:
			t.Fatalf("%q: parseTime %d, time.Parse: %v", s, got, err)
		case ok && tm.UnixMilli() != got:
			t.Fatalf("%q: parseTime %d, time.Parse %d", s, got, tm.UnixMilli())
		case !ok && err == nil && rfc3339Shape.MatchString(s) && offsetMinutesOK(s):
			t.Fatalf("%q: parseTime refuses, time.Parse %v", s, tm)
		}
	})
}

// FuzzParseFloat compares parseFloat with strconv.ParseFloat.
func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"1234.5", "-0", "0.1", ".5", "1.", "123456789012345", "1234567890123456",
		"0.0000000000000000000001", "1e999", "NaN", "-Inf", "0x1p-2", "1_000", "+", "-.", "9007199254740993"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok, rangeErr := parseFloat([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		var ne *strconv.NumError
		wantRange := errors.As(err, &ne) && ne.Err == strconv.ErrRange
		switch {
		case ok != (err == nil || wantRange) || rangeErr != wantRange:
			t.Fatalf("%q: ok %v range %v, strconv: %v", s, ok, rangeErr, err)
		case ok && math.Float64bits(v) != math.Float64bits(want) && !(math.IsNaN(v) && math.IsNaN(want)):
			t.Fatalf("%q: %v, strconv %v", s, v, want)
		}
	})
}

// FuzzBodyParser checks that no body makes BodyParser panic, that readings
// come with indexes 0, 1, 2, ... and errors with their reading's index, that
// only JSON is accepted, and that each reading of a valid array decodes as
// encoding/json reads it.
func FuzzBodyParser(f *testing.F) {
	for _, s := range []string{
		`{"asset":"a","quantity":"active_power","time":1,"value":1}`, `[{"asset":"a\u00e9\ud83d\ude00"}]`,
		`{"readings":[{},{"x":[1,{"y":null}]},3]}`, `[`, `{"time":"2024-05-01T00:00:00Z","value":"on"}`, `"\`,
		`[{"asset":"m","quantity":"active_power","time":1.7642376e12,"value":-0.5e1,"unit":null}]`,
		`{"readings":[],"readings":[]}`, `{"asset":"a","readings":[]}`, `{"readings":5}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var rows []Row
		var p BodyParser
		err := p.Parse(body, func(r Row, e *RowError) {
			if r.Pos != len(rows) || r.PosKind != PosIndex {
				t.Fatalf("reading at %d %q, want index %d", r.Pos, r.PosKind, len(rows))
			}
			if e != nil && (e.Pos != r.Pos || e.PosKind != PosIndex || e.Reason == "") {
				t.Fatalf("error %+v of reading %d", e, r.Pos)
			}
			if e != nil {
				r.PosKind = "refused"
			}
			rows = append(rows, r)
		})
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || !strings.HasPrefix(ie.Where, "byte ") && !strings.HasPrefix(ie.Where, "readings[") {
				t.Fatalf("error %v is a %T, want an *InputError naming the byte", err, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var elems []json.RawMessage
		if json.Unmarshal(body, &elems) != nil {
			return
		}
		if len(rows) != len(elems) {
			t.Fatalf("%d readings from %d elements", len(rows), len(elems))
		}
		for i, r := range rows {
			if r.PosKind == PosIndex {
				checkLikeEncodingJSON(t, elems[i], r)
			}
		}
	})
}

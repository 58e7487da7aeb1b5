package platform

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// This file decodes the JSON body of POST /api/v1/readings without
// reflection: the single-reading request is the platform's hot path. The
// body is one reading object, an array of them, or {"readings": [...]}:
//
//	{"asset": "house-01/meter", "quantity": "active_power", "phase": "L1",
//	 "unit": "kW", "time": 1700000000000, "value": 1.5}
//
// "time" is Unix milliseconds or an RFC 3339 string; "value" a number, or a
// string holding a number or the name of a state; "unit" and "phase" are
// optional. As in package ingest's JSON decoder, an unknown or repeated
// field, a missing one or one of the wrong JSON type refuses that reading
// alone; only a body that is not JSON (or not of this shape) fails as a
// whole.

// rawReading is one decoded reading. Its byte slices may point into the
// request body and are valid only during the callback. It is passed by
// value, which keeps it off the heap.
type rawReading struct {
	asset, quantity, phase, unit []byte
	time                         int64
	value                        float64
	valueText                    []byte // set when the value was a string
	seen                         uint8  // fieldBit of each field given
	issue                        *fieldIssue
}

// Bits of rawReading.seen.
const (
	bitAsset uint8 = 1 << iota
	bitQuantity
	bitPhase
	bitUnit
	bitTime
	bitValue
)

// fieldBit returns the bit of a reading field, or 0 for an unknown name.
func fieldBit(name []byte) uint8 {
	switch string(name) {
	case "asset":
		return bitAsset
	case "quantity":
		return bitQuantity
	case "phase":
		return bitPhase
	case "unit":
		return bitUnit
	case "time":
		return bitTime
	case "value":
		return bitValue
	}
	return 0
}

// missing reports the first required field not given, or "".
func (r *rawReading) missing() string {
	switch {
	case r.seen&bitAsset == 0:
		return "asset"
	case r.seen&bitQuantity == 0:
		return "quantity"
	case r.seen&bitTime == 0:
		return "time"
	case r.seen&bitValue == 0:
		return "value"
	}
	return ""
}

// fieldIssue is a problem with one field of one reading.
type fieldIssue struct {
	Field, Value, Reason string
}

func (r *rawReading) fail(field string, raw []byte, reason string) {
	if r.issue == nil {
		r.issue = &fieldIssue{Field: field, Value: clip(string(raw)), Reason: reason}
	}
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// maxDepth bounds the nesting of ignored JSON values.
const maxDepth = 64

type scanner struct {
	b []byte
	i int
}

// syntaxError is a body that is not JSON, or not of the expected shape.
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.offset, e.msg)
}

func (s *scanner) errf(format string, args ...any) error {
	return &syntaxError{offset: s.i, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return s.errf("unexpected end, want %q", c)
		}
		return s.errf("unexpected %q, want %q", s.b[s.i], c)
	}
	s.i++
	return nil
}

// decodeReadings calls fn for each reading of a body, with its index.
func decodeReadings(body []byte, fn func(i int, r rawReading)) error {
	s := &scanner{b: body}
	switch s.peek() {
	case '[':
		if err := s.readingArray(fn); err != nil {
			return err
		}
	case '{':
		var r rawReading
		batch, fields, err := s.readingObject(&r, fn)
		if err != nil {
			return err
		}
		if batch && fields {
			return s.errf(`an object holds either one reading or "readings", not both`)
		}
		if !batch {
			fn(0, r)
		}
	case 0:
		if s.i >= len(s.b) {
			return s.errf("empty body, want a reading object or an array of readings")
		}
		fallthrough
	default:
		return s.errf("unexpected %q, want a reading object or an array of readings", s.b[s.i])
	}
	if s.ws(); s.i < len(s.b) {
		return s.errf("unexpected data after the readings")
	}
	return nil
}

func (s *scanner) readingArray(fn func(int, rawReading)) error {
	s.i++ // [
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		var r rawReading
		if s.peek() == '{' {
			if _, _, err := s.readingObject(&r, nil); err != nil {
				return err
			}
		} else {
			start := s.i
			if err := s.skip(0); err != nil {
				return err
			}
			r.fail("", s.b[start:s.i], "a reading must be a JSON object")
		}
		fn(n, r)
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errf("want ',' or ']' after reading %d", n)
		}
	}
}

// readingObject decodes one object into r. With fn set (at the top level)
// a "readings" member is decoded as the array of readings: batch reports it,
// fields whether reading fields were seen as well.
func (s *scanner) readingObject(r *rawReading, fn func(int, rawReading)) (batch, fields bool, err error) {
	s.i++ // {
	if s.peek() == '}' {
		s.i++
		return false, false, nil
	}
	for {
		if s.peek() != '"' {
			return batch, fields, s.errf("want a field name")
		}
		key, err := s.str()
		if err != nil {
			return batch, fields, err
		}
		if err := s.expect(':'); err != nil {
			return batch, fields, err
		}
		s.peek()
		start := s.i
		bit := fieldBit(key)
		switch {
		case bit != 0 && r.seen&bit != 0:
			fields = true
			if err := s.skip(0); err != nil {
				return batch, fields, err
			}
			r.fail(string(key), nil, "given twice")
		case bit&(bitAsset|bitQuantity|bitPhase|bitUnit) != 0:
			fields = true
			r.seen |= bit
			v, ok, err := s.optString()
			if err != nil {
				return batch, fields, err
			}
			if !ok {
				r.fail(string(key), s.b[start:s.i], "must be a string")
			}
			switch bit {
			case bitAsset:
				r.asset = v
			case bitQuantity:
				r.quantity = v
			case bitPhase:
				r.phase = v
			case bitUnit:
				r.unit = v
			}
		case bit == bitTime:
			fields = true
			r.seen |= bit
			if err := s.timeField(r); err != nil {
				return batch, fields, err
			}
		case bit == bitValue:
			fields = true
			r.seen |= bit
			if err := s.valueField(r); err != nil {
				return batch, fields, err
			}
		case fn != nil && string(key) == "readings":
			if s.peek() != '[' {
				return batch, fields, s.errf(`"readings" must be an array`)
			}
			if batch {
				return batch, fields, s.errf(`"readings" given twice`)
			}
			batch = true
			if err := s.readingArray(fn); err != nil {
				return batch, fields, err
			}
		default:
			if err := s.skip(0); err != nil {
				return batch, fields, err
			}
			// At the top level this counts only if the object turns
			// out to be a reading rather than {"readings": [...]}.
			r.fail(string(key), nil, "unknown field (want asset, quantity, phase, unit, time, value)")
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return batch, fields, nil
		default:
			return batch, fields, s.errf("want ',' or '}' in a reading")
		}
	}
}

// optString reads a string, or null as the empty string; ok is false (and
// the value skipped) for any other JSON value.
func (s *scanner) optString() (v []byte, ok bool, err error) {
	switch s.peek() {
	case '"':
		v, err = s.str()
		return v, err == nil, err
	case 'n':
		return nil, true, s.literal("null")
	}
	return nil, false, s.skip(0)
}

func (s *scanner) timeField(r *rawReading) error {
	start := s.i
	switch c := s.peek(); {
	case c == '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err != nil {
			r.fail("time", v, "not RFC 3339 (e.g. 2024-05-01T12:00:00Z) nor Unix milliseconds")
			return nil
		}
		r.time = t.UnixMilli()
	case c == '-' || '0' <= c && c <= '9':
		num, err := s.number()
		if err != nil {
			return err
		}
		ms, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(string(num), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
				r.fail("time", num, "Unix milliseconds must be an integer")
				return nil
			}
			ms = int64(f)
		}
		r.time = ms
	default:
		if err := s.skip(0); err != nil {
			return err
		}
		r.fail("time", s.b[start:s.i], "must be Unix milliseconds or an RFC 3339 string")
	}
	return nil
}

func (s *scanner) valueField(r *rawReading) error {
	start := s.i
	switch c := s.peek(); {
	case c == '"':
		v, err := s.str()
		if err != nil {
			return err
		}
		r.valueText = v
	case c == '-' || '0' <= c && c <= '9':
		num, err := s.number()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil { // out of range
			r.fail("value", num, "number out of range")
			return nil
		}
		r.value = f
	default:
		if err := s.skip(0); err != nil {
			return err
		}
		r.fail("value", s.b[start:s.i], "must be a number or a state name")
	}
	return nil
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.errf("invalid literal, want %s", word)
	}
	s.i += len(word)
	return nil
}

// number scans a JSON number (RFC 8259 section 6).
func (s *scanner) number() ([]byte, error) {
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return nil, s.errf("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, s.errf("invalid number: no digit after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.i = i
			return nil, s.errf("invalid number: no digit in the exponent")
		}
	}
	s.i = i
	return b[start:i], nil
}

// str scans a JSON string (RFC 8259 section 7). Without escapes the result
// points into the body; with them it is a new slice.
func (s *scanner) str() ([]byte, error) {
	s.i++ // "
	start := s.i
	b := s.b
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return b[start:i], nil
		case c == '\\':
			return s.unescape(start, i)
		case c < 0x20:
			s.i = i
			return nil, s.errf("control character in a string")
		}
	}
	s.i = len(b)
	return nil, s.errf("unterminated string")
}

var errBadEscape = errors.New("invalid escape in a string")

func (s *scanner) unescape(start, i int) ([]byte, error) {
	b := s.b
	out := make([]byte, 0, i-start+16)
	out = append(out, b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return out, nil
		case c < 0x20:
			s.i = i
			return nil, s.errf("control character in a string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		e := b[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i)
			if !ok {
				s.i = i
				return nil, s.errf("%s", errBadEscape)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2, ok = hex4(b, i+2)
				}
				if dec := utf16.DecodeRune(r, r2); ok && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			s.i = i - 1
			return nil, s.errf("%s", errBadEscape)
		}
	}
	s.i = len(b)
	return nil, s.errf("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skip scans over any JSON value, checking its syntax.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.errf("nested deeper than %d", maxDepth)
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.number()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.errf("want ',' or ']'")
			}
		}
	case c == '{':
		s.i++
		if s.peek() == '}' {
			s.i++
			return nil
		}
		for {
			if s.peek() != '"' {
				return s.errf("want a field name")
			}
			if _, err := s.str(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return nil
			default:
				return s.errf("want ',' or '}'")
			}
		}
	case c == 0 && s.i >= len(s.b):
		return s.errf("unexpected end of body")
	}
	return s.errf("unexpected %q", s.b[s.i])
}

package ledger

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// The canonical encodings are RFC 8785 (JCS) JSON: members sorted by name,
// no white space, numbers as ECMAScript formats them, strings with only the
// escapes JSON requires. They are written by hand, members already in JCS
// order, because they run for every ledger reading; tests check each
// against jcs.Transform.

// appendString appends s as a JCS string. Invalid UTF-8 is an error: a
// signature over bytes that do not round-trip would not verify elsewhere.
func appendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return b, fmt.Errorf("string %q is not valid UTF-8", s)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return append(b, '"'), nil
}

// appendNumber appends v as ECMAScript formats it. NaN and infinities have
// no JSON form.
func appendNumber(b []byte, v float64) ([]byte, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return b, fmt.Errorf("value %v has no JSON form", v)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e21 {
		// Integral values print as integers in ECMAScript (and -0 as 0).
		if v == 0 {
			return append(b, '0'), nil
		}
		if math.Abs(v) < 1<<53 {
			return strconv.AppendInt(b, int64(v), 10), nil
		}
	}
	s, err := jcs.NumberToJSON(v)
	if err != nil {
		return b, fmt.Errorf("value %v: %w", v, err)
	}
	return append(b, s...), nil
}

// member appends `,"name":` (or `"name":` first) to an object under way.
func member(b []byte, name string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// maxSafeInt bounds the integer members: RFC 8785 numbers are IEEE
// doubles, so a larger integer would not survive canonicalisation exactly
// (ECMAScript's Number.MAX_SAFE_INTEGER).
const maxSafeInt = 1<<53 - 1

// appendInt appends an integer member's value, refusing one outside
// ±maxSafeInt.
func appendInt(b []byte, name string, v int64) ([]byte, error) {
	if v > maxSafeInt || v < -maxSafeInt {
		return b, fmt.Errorf("%s %d is outside ±2^53-1, the integers JSON numbers carry exactly", name, v)
	}
	return strconv.AppendInt(b, v, 10), nil
}

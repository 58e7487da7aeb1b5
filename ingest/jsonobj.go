package ingest

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of JSON values inside a reading object.
const maxDepth = 256

// objParser decodes one JSON reading object held whole in memory, for NDJSON
// lines and elements of a JSON "readings" array. It checks the full JSON
// syntax (RFC 8259) itself, so that it can read field values straight from
// the bytes without a reflection pass or a copy.
type objParser struct {
	intern  interner
	last    [numCols]string // last string of each field, a cache before intern
	scratch []byte          // unescaped string contents
}

// field returns the string of field c, sharing storage with earlier rows.
func (p *objParser) field(c int, b []byte) string {
	if string(b) == p.last[c] {
		return p.last[c]
	}
	s := p.intern.get(b)
	p.last[c] = s
	return s
}

// jsonSyntaxError is a syntax error at byte offset off of the object, or,
// with shape set, valid JSON that is not of the expected shape.
type jsonSyntaxError struct {
	off   int
	msg   string
	shape bool
}

// fieldBits marks the fields seen in an object.
const (
	bitAsset = 1 << colAsset
	bitQuant = 1 << colQuantity
	bitTime  = 1 << colTime
	bitValue = 1 << colValue
)

// reasonUnknown is the reason given for an unknown field.
const reasonUnknown = "unknown field (want asset, quantity, time, value, unit or phase)"

// parse decodes the object b into r. It returns a RowError without position:
// a syntax error (Field empty, Reason starting "invalid JSON"), or the first
// problem with a field. Problems are reported only for syntactically valid
// input, so that a syntax error always wins.
func (p *objParser) parse(b []byte, r *Row) *RowError {
	i := skipWS(b, 0)
	if i == len(b) {
		return &RowError{Reason: "invalid JSON: no value"}
	}
	if b[i] != '{' {
		end, serr := p.skipValue(b, i, 0)
		if serr == nil && skipWS(b, end) != len(b) {
			serr = &jsonSyntaxError{off: skipWS(b, end), msg: "data after the value"}
		}
		if serr != nil {
			return syntaxRowError(b, serr)
		}
		return &RowError{Value: clip(b[i:end]), Reason: "not an object"}
	}
	i, seen, first, serr := p.object(b, i, r, nil)
	if serr == nil && skipWS(b, i) != len(b) {
		serr = &jsonSyntaxError{off: skipWS(b, i), msg: "data after the object"}
	}
	switch {
	case serr != nil:
		return syntaxRowError(b, serr)
	case first != nil:
		return first
	}
	return missingField(seen)
}

// object decodes the reading object at b[i] (a '{') into r. It returns where
// the object ends, the fields seen (bit 1<<c for column c) and the first
// problem with a field, not counting missing ones; after a syntax error serr
// the rest means nothing. With top set (the top level of a body), a
// "readings" member is not a field but a batch, decoded by top.batch.
func (p *objParser) object(b []byte, i int, r *Row, top *bodyTop) (end int, seen uint, first *RowError, serr *jsonSyntaxError) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, 0, nil, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, seen, first, &jsonSyntaxError{off: i, msg: "want a field name"}
		}
		var key []byte
		key, i, serr = p.str(b, i)
		if serr != nil {
			return i, seen, first, serr
		}
		c := jsonColumn(key)
		var name string
		if c < 0 && first == nil {
			name = clip(key)
		}
		batch := c < 0 && top != nil && string(key) == "readings"
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, seen, first, &jsonSyntaxError{off: i, msg: "want ':' after a field name"}
		}
		i = skipWS(b, i+1)
		switch {
		case batch:
			i, serr = top.batch(p, b, i)
		case c < 0:
			i, serr = p.skipValue(b, i, 1)
			if first == nil {
				first = &RowError{Field: name, Reason: reasonUnknown}
			}
		case seen&(1<<c) != 0:
			i, serr = p.skipValue(b, i, 1)
			if first == nil {
				first = &RowError{Field: colNames[c], Reason: "given twice"}
			}
		default:
			seen |= 1 << c
			var fe *RowError
			i, fe, serr = p.value(b, i, c, r)
			if first == nil {
				first = fe
			}
		}
		if serr != nil {
			return i, seen, first, serr
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return i + 1, seen, first, nil
		}
		return i, seen, first, &jsonSyntaxError{off: i, msg: "want ',' or '}' after a field"}
	}
}

// missingField reports the first required field not among those seen.
func missingField(seen uint) *RowError {
	for _, c := range [...]int{colAsset, colQuantity, colTime, colValue} {
		if seen&(1<<c) == 0 {
			return &RowError{Field: colNames[c], Reason: "missing"}
		}
	}
	return nil
}

func syntaxRowError(b []byte, e *jsonSyntaxError) *RowError {
	if e.off >= len(b) {
		return &RowError{Reason: "invalid JSON: " + e.unexpected(b)}
	}
	return &RowError{Reason: fmt.Sprintf("invalid JSON at column %d: %s", e.off+1, e.unexpected(b))}
}

// unexpected describes the error as "unexpected <what stands at its
// offset>: <message>".
func (e *jsonSyntaxError) unexpected(b []byte) string {
	if e.off >= len(b) {
		return "unexpected end: " + e.msg
	}
	c := b[e.off]
	if c < 0x20 || c >= utf8.RuneSelf {
		return fmt.Sprintf("unexpected byte 0x%02x: %s", c, e.msg)
	}
	return fmt.Sprintf("unexpected %q: %s", c, e.msg)
}

// jsonColumn returns the column a JSON field name stands for, or -1. Names
// are matched exactly (lower case).
func jsonColumn(key []byte) int {
	switch string(key) {
	case "asset":
		return colAsset
	case "quantity":
		return colQuantity
	case "time":
		return colTime
	case "value":
		return colValue
	case "unit":
		return colUnit
	case "phase":
		return colPhase
	}
	return -1
}

// value decodes the value of field c at b[i:] into r.
func (p *objParser) value(b []byte, i, c int, r *Row) (int, *RowError, *jsonSyntaxError) {
	start := i
	if i < len(b) && b[i] == '"' {
		s, end, serr := p.str(b, i)
		if serr != nil {
			return end, nil, serr
		}
		switch c {
		case colAsset:
			r.Asset = p.field(c, s)
		case colQuantity:
			r.Quantity = p.field(c, s)
		case colUnit:
			r.Unit = p.field(c, s)
		case colPhase:
			r.Phase = p.field(c, s)
		case colTime:
			ms, ok := parseTime(s)
			if !ok {
				return end, &RowError{Field: "time", Value: clip(s), Reason: reasonTime}, nil
			}
			r.Time = ms
		case colValue:
			if len(s) == 0 {
				return end, &RowError{Field: "value", Reason: "empty"}, nil
			}
			r.RawValue = p.field(c, s)
		}
		return end, nil, nil
	}
	end, serr := p.skipValue(b, i, 1)
	if serr != nil {
		return end, nil, serr
	}
	raw := b[start:end]
	isNum := raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9'
	switch {
	case (c == colUnit || c == colPhase) && string(raw) == "null":
		return end, nil, nil
	case c == colTime && isNum:
		ms, ok := parseMillis(raw)
		if !ok {
			return end, &RowError{Field: "time", Value: clip(raw), Reason: reasonTime}, nil
		}
		r.Time = ms
		return end, nil, nil
	case c == colValue && isNum:
		v, _, overflow := parseFloat(raw)
		if overflow {
			return end, &RowError{Field: "value", Value: clip(raw), Reason: "number out of the range of a 64-bit float"}, nil
		}
		r.Value = v
		return end, nil, nil
	case c == colTime:
		return end, &RowError{Field: "time", Value: clip(raw), Reason: "not a string or number"}, nil
	case c == colValue:
		return end, &RowError{Field: "value", Value: clip(raw), Reason: "not a number or string"}, nil
	}
	return end, &RowError{Field: colNames[c], Value: clip(raw), Reason: "not a string"}, nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str decodes the JSON string at b[i] (a quote). The result points into b, or
// into p.scratch when the string has escapes; it is valid until the next call.
// Invalid UTF-8 is kept as is.
func (p *objParser) str(b []byte, i int) ([]byte, int, *jsonSyntaxError) {
	i++
	start := i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return b[start:i], i + 1, nil
		case c == '\\':
			return p.strEscaped(b, start, i)
		case c < 0x20:
			return nil, i, &jsonSyntaxError{off: i, msg: "control character in string"}
		}
		i++
	}
	return nil, i, &jsonSyntaxError{off: i, msg: "string not closed"}
}

// strEscaped continues str from the first backslash at b[i].
func (p *objParser) strEscaped(b []byte, start, i int) ([]byte, int, *jsonSyntaxError) {
	p.scratch = append(p.scratch[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return p.scratch, i + 1, nil
		case c < 0x20:
			return nil, i, &jsonSyntaxError{off: i, msg: "control character in string"}
		case c != '\\':
			p.scratch = append(p.scratch, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			return nil, i + 1, &jsonSyntaxError{off: i + 1, msg: "string not closed"}
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, e)
		case 'b':
			p.scratch = append(p.scratch, '\b')
		case 'f':
			p.scratch = append(p.scratch, '\f')
		case 'n':
			p.scratch = append(p.scratch, '\n')
		case 'r':
			p.scratch = append(p.scratch, '\r')
		case 't':
			p.scratch = append(p.scratch, '\t')
		case 'u':
			r1, ok := hex4(b, i+2)
			if !ok {
				return nil, i + 2, &jsonSyntaxError{off: i + 2, msg: `want 4 hex digits after \u`}
			}
			i += 6
			ru := rune(r1)
			if utf16.IsSurrogate(ru) {
				ru = utf8.RuneError
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if r2, ok := hex4(b, i+2); ok {
						if dec := utf16.DecodeRune(rune(r1), rune(r2)); dec != utf8.RuneError {
							ru = dec
							i += 6
						}
					}
				}
			}
			p.scratch = utf8.AppendRune(p.scratch, ru)
			continue
		default:
			return nil, i + 1, &jsonSyntaxError{off: i + 1, msg: "invalid escape"}
		}
		i += 2
	}
	return nil, i, &jsonSyntaxError{off: i, msg: "string not closed"}
}

func hex4(b []byte, i int) (uint32, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var v uint32
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
		v = v<<4 | uint32(c)
	}
	return v, true
}

// skipValue checks the JSON value at b[i] and returns where it ends.
func (p *objParser) skipValue(b []byte, i, depth int) (int, *jsonSyntaxError) {
	if i >= len(b) {
		return i, &jsonSyntaxError{off: i, msg: "want a value"}
	}
	switch c := b[i]; {
	case c == '"':
		_, end, serr := p.str(b, i)
		return end, serr
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return i, &jsonSyntaxError{off: i, msg: "nested too deeply"}
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var serr *jsonSyntaxError
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, &jsonSyntaxError{off: i, msg: "want a field name"}
				}
				if _, i, serr = p.str(b, i); serr != nil {
					return i, serr
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return i, &jsonSyntaxError{off: i, msg: "want ':' after a field name"}
				}
				i = skipWS(b, i+1)
			}
			if i, serr = p.skipValue(b, i, depth+1); serr != nil {
				return i, serr
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == closer {
				return i + 1, nil
			}
			return i, &jsonSyntaxError{off: i, msg: "want ',' or '" + string(closer) + "'"}
		}
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return i, &jsonSyntaxError{off: i, msg: "want a value"}
}

func literal(b []byte, i int, lit string) (int, *jsonSyntaxError) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return i + k, &jsonSyntaxError{off: i + k, msg: "want " + lit}
		}
	}
	return i + len(lit), nil
}

// scanNumber checks the JSON number at b[i]:
// -? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, *jsonSyntaxError) {
	if b[i] == '-' {
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
		return i, &jsonSyntaxError{off: i, msg: "want a digit"}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, &jsonSyntaxError{off: i, msg: "want a digit after '.'"}
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, &jsonSyntaxError{off: i, msg: "want a digit in the exponent"}
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i, nil
}

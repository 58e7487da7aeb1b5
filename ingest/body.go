package ingest

import (
	"errors"
	"fmt"
)

// BodyParser decodes a JSON body of readings held whole in memory, such as
// the body of a real-time request. The body is one reading object, an array
// of them, or an object whose "readings" member is that array (its other
// members are ignored):
//
//	{"asset":"house-01/meter","quantity":"active_power","time":1764237600123,"value":1234.5}
//	[{"asset":"house-01/meter", ...}, {"asset":"house-01/pv", ...}]
//	{"gateway":"gw-1","readings":[{"asset":"house-01/meter", ...}]}
//
// A reading has the fields of NewJSON's readings and follows their rules:
// unknown, repeated, missing or wrongly typed fields refuse it; "time" is
// RFC 3339 or Unix milliseconds; "value" a number or a string (a state name).
//
// The zero value is ready to use. A BodyParser keeps the strings it has made,
// a bounded number of them, to give them again for the readings of later
// bodies without allocating: reuse one, but from one goroutine at a time.
type BodyParser struct {
	obj objParser
}

// Parse decodes body and calls fn for each reading in order, with its 0-based
// index in r.Pos (r.PosKind is PosIndex). When the reading was refused (an
// unknown, repeated, missing or wrongly typed field, or an element that is
// not an object), e is the *RowError that says why, with the same position,
// and r holds only the position. r's strings do not point into body, so r
// and e may be kept after fn returns.
//
// A body that is not JSON, or not of one of the shapes above, is an
// *InputError whose Where names the byte offset (0-based) and, inside an
// array, the reading: "byte 12" or "readings[3] at byte 412". fn has then
// been called for the readings before that point.
func (p *BodyParser) Parse(body []byte, fn func(r Row, e *RowError)) error {
	var (
		end  int
		serr *jsonSyntaxError
		elem = -1 // the reading serr stands in, if any
	)
	i := skipWS(body, 0)
	switch {
	case i < len(body) && body[i] == '[':
		end, elem, serr = p.obj.array(body, i, fn)
	case i < len(body) && body[i] == '{':
		top := bodyTop{fn: fn, elem: -1}
		r := Row{PosKind: PosIndex}
		var (
			seen  uint
			first *RowError
		)
		end, seen, first, serr = p.obj.object(body, i, &r, &top)
		elem = top.elem
		switch {
		case serr != nil:
		case !top.batched:
			emit(fn, r, first, seen)
		case seen != 0:
			serr = &jsonSyntaxError{off: i, shape: true,
				msg: `a JSON object holds either one reading or a "readings" array, not both`}
		}
	default:
		if end, serr = p.obj.skipValue(body, i, 0); serr == nil {
			serr = &jsonSyntaxError{off: i, shape: true, msg: "not a JSON object or an array of readings"}
		}
	}
	if serr == nil && skipWS(body, end) != len(body) {
		serr = &jsonSyntaxError{off: skipWS(body, end), msg: "data after the readings"}
	}
	if serr == nil {
		return nil
	}
	where := fmt.Sprintf("byte %d", serr.off)
	if elem >= 0 {
		where = fmt.Sprintf("readings[%d] at %s", elem, where)
	}
	msg := serr.msg
	if !serr.shape {
		msg = "malformed JSON: " + serr.unexpected(body)
	}
	return &InputError{Where: where, Err: errors.New(msg)}
}

// bodyTop is the state of the object at the top of a body, which may hold
// a batch of readings rather than be one.
type bodyTop struct {
	fn      func(Row, *RowError)
	batched bool // a "readings" member was seen
	elem    int  // the reading a syntax error stands in, or -1
}

// batch decodes the value of a "readings" member at b[i].
func (t *bodyTop) batch(p *objParser, b []byte, i int) (int, *jsonSyntaxError) {
	if i >= len(b) || b[i] != '[' {
		end, serr := p.skipValue(b, i, 1)
		if serr == nil {
			serr = &jsonSyntaxError{off: i, shape: true, msg: `"readings" is not a JSON array`}
		}
		return end, serr
	}
	if t.batched {
		return i, &jsonSyntaxError{off: i, shape: true, msg: `"readings" given twice`}
	}
	t.batched = true
	end, elem, serr := p.array(b, i, t.fn)
	t.elem = elem
	return end, serr
}

// array decodes the array of readings at b[i] (a '['), calling fn for each.
// It returns where the array ends and, with a syntax error, the index of the
// reading the error stands in.
func (p *objParser) array(b []byte, i int, fn func(Row, *RowError)) (end, elem int, serr *jsonSyntaxError) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, -1, nil
	}
	for n := 0; ; n++ {
		r := Row{Pos: n, PosKind: PosIndex}
		if i < len(b) && b[i] == '{' {
			var (
				seen  uint
				first *RowError
			)
			if i, seen, first, serr = p.object(b, i, &r, nil); serr != nil {
				return i, n, serr
			}
			emit(fn, r, first, seen)
		} else {
			start := i
			if i, serr = p.skipValue(b, i, 1); serr != nil {
				return i, n, serr
			}
			emit(fn, r, &RowError{Value: clip(b[start:i]), Reason: "not an object"}, 0)
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return i + 1, -1, nil
		}
		return i, n + 1, &jsonSyntaxError{off: i, msg: "want ',' or ']' after a reading"}
	}
}

// emit gives fn the reading r decoded by object, or the first problem with
// it.
func emit(fn func(Row, *RowError), r Row, first *RowError, seen uint) {
	if first == nil {
		first = missingField(seen)
	}
	if first == nil {
		fn(r, nil)
		return
	}
	first.Pos, first.PosKind = r.Pos, r.PosKind
	fn(Row{Pos: r.Pos, PosKind: r.PosKind}, first)
}

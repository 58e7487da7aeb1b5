package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// jsonDecoder streams the "readings" array of a JSON request body with
// encoding/json's tokenizer, holding one element at a time.
type jsonDecoder struct {
	g     *guardReader
	dec   *json.Decoder
	state int
	found bool // the "readings" key was seen
	index int  // index of the next element
	raw   json.RawMessage
	obj   objParser
	fatal error
}

// States of jsonDecoder.
const (
	jsonStart   = iota // before the opening brace
	jsonKeys           // between keys of the top-level object
	jsonReading        // inside the "readings" array
	jsonDone           // after the closing brace
)

// NewJSON returns a decoder of a JSON request body:
//
//	{"readings":[{"asset":"house-01/meter","quantity":"active_power",
//	  "time":"2026-11-27T10:00:00.250Z","value":1234.5,"unit":"W","phase":"L1"}, ...]}
//
// "time" is an RFC 3339 string (any offset; converted to UTC; digits below
// the millisecond truncated) or an integer of Unix milliseconds (a number, or
// a string of digits; a number of integral value may be written with a
// fraction or an exponent, 1.7642376e12). "value" is a number, or a string for state quantities
// ("open", "on"). "unit" and "phase" are optional and may be null. Field
// names are matched exactly.
//
// An unknown or repeated field, a field of the wrong type or an element that
// is not an object is a RowError for that index (0-based). Other top-level
// keys are skipped. Malformed JSON, a body that is not an object or has no
// "readings" array, or an element larger than MaxRecord stops decoding with
// an *InputError that names the byte offset. A UTF-8 byte order mark at the
// start is ignored. Memory is bounded by MaxRecord whatever the number of
// readings.
func NewJSON(r io.Reader) Decoder {
	g := &guardReader{r: &bomReader{r: r}, limit: MaxRecord}
	return &jsonDecoder{g: g, dec: json.NewDecoder(g)}
}

// Next implements Decoder.
func (d *jsonDecoder) Next() (Row, error) {
	if d.fatal != nil {
		return Row{}, d.fatal
	}
	for {
		switch d.state {
		case jsonStart:
			tok, err := d.token()
			if err != nil {
				return d.fail(err, "")
			}
			if tok != json.Delim('{') {
				return d.failf("not a JSON object")
			}
			d.state = jsonKeys
		case jsonKeys:
			tok, err := d.token()
			if err != nil {
				return d.fail(err, "")
			}
			if tok == json.Delim('}') {
				if !d.found {
					return d.failf(`no "readings" array`)
				}
				if _, err := d.token(); err != io.EOF {
					if err == nil {
						return d.failf("data after the object")
					}
					return d.fail(err, "")
				}
				d.state = jsonDone
				continue
			}
			if tok != "readings" {
				d.guard()
				if err := d.dec.Decode(&d.raw); err != nil {
					return d.fail(err, "")
				}
				continue
			}
			if d.found {
				return d.failf(`"readings" given twice`)
			}
			d.found = true
			if tok, err = d.token(); err != nil {
				return d.fail(err, "")
			}
			if tok != json.Delim('[') {
				return d.failf(`"readings" is not an array`)
			}
			d.state = jsonReading
		case jsonReading:
			if !d.dec.More() {
				if _, err := d.token(); err != nil { // the closing bracket
					return d.fail(err, "")
				}
				d.state = jsonKeys
				continue
			}
			d.guard()
			index := d.index
			if err := d.dec.Decode(&d.raw); err != nil {
				return d.fail(err, fmt.Sprintf("readings[%d]", index))
			}
			d.index++
			r := Row{Pos: index, PosKind: PosIndex}
			if e := d.obj.parse(d.raw, &r); e != nil {
				e.Pos, e.PosKind = index, PosIndex
				return Row{}, e
			}
			return r, nil
		default:
			return Row{}, io.EOF
		}
	}
}

// token reads the next token within the size guard.
func (d *jsonDecoder) token() (json.Token, error) {
	d.guard()
	return d.dec.Token()
}

// guard lets the decoder read at most MaxRecord bytes (and its look-ahead)
// past where it stands, so that one huge value cannot take unbounded memory.
func (d *jsonDecoder) guard() {
	d.g.limit = d.dec.InputOffset() + MaxRecord + 2
}

// fail makes err, from the json.Decoder, the decoder's final error: an
// *InputError naming the byte offset (and the element, when reading one).
func (d *jsonDecoder) fail(err error, elem string) (Row, error) {
	off := d.dec.InputOffset()
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// The offsets of json.SyntaxError count from different places in
		// token and value mode; find the exact one by scanning what the
		// decoder holds from where it stopped.
		off += d.syntaxOffset()
		err = fmt.Errorf("malformed JSON: %w", err)
	case errors.Is(err, errGuard):
		err = fmt.Errorf("value larger than %d bytes", MaxRecord)
	case errors.Is(err, ErrTooLarge):
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		err = errors.New("malformed JSON: unexpected end of input")
	default:
		err = fmt.Errorf("read: %w", err)
	}
	return d.stop(off, elem, err)
}

// failf stops decoding for a JSON document of the wrong shape.
func (d *jsonDecoder) failf(msg string) (Row, error) {
	return d.stop(d.dec.InputOffset(), "", errors.New(msg))
}

func (d *jsonDecoder) stop(off int64, elem string, err error) (Row, error) {
	where := fmt.Sprintf("byte %d", off)
	if elem != "" {
		where = elem + " at " + where
	}
	d.fatal = &InputError{Where: where, Err: err}
	return Row{}, d.fatal
}

// syntaxOffset returns how far past InputOffset the syntax error lies, or 0.
func (d *jsonDecoder) syntaxOffset() int64 {
	rest, err := io.ReadAll(d.dec.Buffered())
	if err != nil {
		return 0
	}
	i := skipWS(rest, 0)
	if _, serr := d.obj.skipValue(rest, i, 0); serr != nil && serr.off < len(rest) {
		return int64(serr.off)
	}
	return int64(i)
}

var errGuard = errors.New("size guard")

// guardReader fails with errGuard once more than limit bytes have been read.
type guardReader struct {
	r        io.Reader
	n, limit int64
}

func (g *guardReader) Read(p []byte) (int, error) {
	if g.n >= g.limit {
		return 0, errGuard
	}
	if rest := g.limit - g.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	return n, err
}

// bomReader drops a UTF-8 byte order mark at the start of r.
type bomReader struct {
	r    io.Reader
	head []byte // bytes read ahead to look for the mark
	done bool
}

func (b *bomReader) Read(p []byte) (int, error) {
	if !b.done {
		b.done = true
		var buf [3]byte
		n, err := io.ReadFull(b.r, buf[:])
		b.head = buf[:n]
		if n == 3 && string(buf[:]) == "\xef\xbb\xbf" {
			b.head = nil
		}
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return 0, err
		}
	}
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	return b.r.Read(p)
}

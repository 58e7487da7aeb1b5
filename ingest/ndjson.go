package ingest

import (
	"bytes"
	"fmt"
	"io"
)

// ndjsonDecoder reads one JSON reading object per line (NDJSON, JSON Lines).
type ndjsonDecoder struct {
	src   source
	line  int // line number of src.data()[0]
	obj   objParser
	fatal error
}

// NewNDJSON returns a decoder of newline-delimited JSON readings: one object
// per line with the fields of a JSON reading (see NewJSON). Blank lines are
// skipped; a line may end in CRLF; a UTF-8 byte order mark at the start is
// ignored. Positions are line numbers.
func NewNDJSON(r io.Reader) Decoder {
	return &ndjsonDecoder{src: newSource(r), line: 1}
}

// Next implements Decoder.
func (d *ndjsonDecoder) Next() (Row, error) {
	if d.fatal != nil {
		return Row{}, d.fatal
	}
	d.src.skipBOM()
	for {
		data := d.src.data()
		eol := bytes.IndexByte(data, '\n')
		n := eol + 1
		if eol < 0 {
			if d.src.more() {
				continue
			}
			switch {
			case d.src.err == nil: // the buffer is full: the line is too long
				pos := d.line
				d.src.skipLine()
				d.line++
				return Row{}, &RowError{Pos: pos, PosKind: PosLine, Reason: "line longer than 1 MiB"}
			case d.src.err != io.EOF:
				d.fatal = &InputError{Where: fmt.Sprintf("line %d", d.line), Err: fmt.Errorf("read: %w", d.src.err)}
				return Row{}, d.fatal
			case len(data) == 0:
				return Row{}, io.EOF
			}
			eol, n = len(data), len(data)
		}
		line := data[:eol]
		pos := d.line
		d.src.pos += n
		d.line++
		if isBlank(line) {
			continue
		}
		r := Row{Pos: pos, PosKind: PosLine}
		if e := d.obj.parse(line, &r); e != nil {
			e.Pos, e.PosKind = pos, PosLine
			return Row{}, e
		}
		return r, nil
	}
}

// isBlank reports whether b holds nothing but JSON whitespace.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

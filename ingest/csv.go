package ingest

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// The columns of a reading, in their default order.
const (
	colAsset = iota
	colQuantity
	colTime
	colValue
	colUnit
	colPhase
	numCols
)

var colNames = [numCols]string{"asset", "quantity", "time", "value", "unit", "phase"}

// maxFields bounds the fields kept of one CSV record; more are only counted.
const maxFields = 32

// csvDecoder is the Decoder of NewCSV. The common record (no quotes, on one
// line) is split in place without copying; records with quotes take a slower
// path that unquotes into a buffer of its own.
type csvDecoder struct {
	src     source
	line    int // line number of src.data()[0]
	started bool
	cols    [numCols]int // field index of each column, -1 when absent
	nhead   int          // number of fields of the header, 0 without one
	fatal   error

	fields  [][]byte // the current record's fields, pointing into src or quoted
	nfields int      // the current record's field count (may exceed len(fields))
	quoted  []byte   // unquoted contents of quoted fields
	ends    []int    // for the slow path: end of each field in quoted

	intern interner
	last   [numCols]string // last string of each column, a cache before intern
}

// NewCSV returns a decoder of CSV readings. The columns are
// asset,quantity,time,value[,unit][,phase]. A first row with a field that is
// a column name (case-insensitive) is a header: it may order the columns in
// any way and leave out unit and phase; an unknown or repeated column name,
// or a missing required one, stops decoding with an *InputError. Times are
// RFC 3339 or Unix milliseconds.
//
// Quoting follows RFC 4180: fields are separated by commas, and a field in
// double quotes may hold commas, line breaks and doubled quotes. Records end
// with LF or CRLF. Beyond RFC 4180, blank lines and lines starting with '#'
// are skipped, spaces and tabs around a field are dropped, and a UTF-8 byte
// order mark at the start is ignored. A record longer than MaxRecord is a
// RowError, and decoding resumes on the next line.
//
// Positions are 1-based line numbers counting every line; a record that
// spans lines has the number of its first.
func NewCSV(r io.Reader) Decoder {
	d := &csvDecoder{src: newSource(r), line: 1}
	for i := range d.cols {
		d.cols[i] = i
	}
	return d
}

// recKind says what parse found.
type recKind int

const (
	recOK       recKind = iota // a record in fields
	recSkip                    // a blank or comment line
	recBad                     // a malformed record, reason set
	recNeedMore                // the record is not complete in the buffer
)

// Next implements Decoder.
func (d *csvDecoder) Next() (Row, error) {
	if d.fatal != nil {
		return Row{}, d.fatal
	}
	d.src.skipBOM()
	for {
		pos := d.line
		kind, reason, err := d.record()
		if err != nil {
			if err != io.EOF {
				d.fatal = err
			}
			return Row{}, err
		}
		switch kind {
		case recSkip:
			continue
		case recBad:
			return Row{}, &RowError{Pos: pos, PosKind: PosLine, Reason: reason}
		}
		if !d.started {
			d.started = true
			if d.isHeader() {
				if err := d.header(pos); err != nil {
					d.fatal = err
					return Row{}, err
				}
				continue
			}
		}
		return d.row(pos)
	}
}

// record reads the next record, consuming it and counting its lines.
func (d *csvDecoder) record() (recKind, string, error) {
	for {
		data := d.src.data()
		atEOF := d.src.atEOF()
		if len(data) == 0 && atEOF {
			return 0, "", io.EOF
		}
		n, nl, kind, reason := d.parse(data, atEOF)
		if kind != recNeedMore {
			d.src.pos += n
			d.line += nl
			return kind, reason, nil
		}
		if d.src.more() {
			continue
		}
		switch {
		case d.src.err == nil: // the buffer is full: the record is too long
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				// A quoted field that does not close: resume on the next line.
				d.src.pos += i + 1
				d.line++
				return recBad, "quoted field not closed within 1 MiB", nil
			}
			d.src.skipLine()
			d.line++
			return recBad, "line longer than 1 MiB", nil
		case d.src.err != io.EOF:
			return 0, "", &InputError{Where: fmt.Sprintf("line %d", d.line), Err: fmt.Errorf("read: %w", d.src.err)}
		}
		// At the end of the input: parse again with atEOF set.
	}
}

// parse splits the record at the start of data into fields. It returns the
// bytes and line breaks the record takes, including its line end. With atEOF
// false, a record not followed by a line end is incomplete.
func (d *csvDecoder) parse(data []byte, atEOF bool) (n, nl int, kind recKind, reason string) {
	eol := bytes.IndexByte(data, '\n')
	line := data
	n = len(data)
	if eol >= 0 {
		line = data[:eol]
		n, nl = eol+1, 1
	} else if !atEOF {
		return 0, 0, recNeedMore, ""
	}
	first := 0
	for first < len(line) && isSpace(line[first]) {
		first++
	}
	if first == len(line) || line[first] == '#' {
		return n, nl, recSkip, ""
	}
	if bytes.IndexByte(line, '"') >= 0 {
		n, nl, kind, reason = d.parseQuoted(data, atEOF)
		if kind == recOK {
			d.fields = d.fields[:0]
			start := 0
			for _, e := range d.ends {
				d.fields = append(d.fields, d.quoted[start:e])
				start = e
			}
		}
		return n, nl, kind, reason
	}
	// Fast path: no quotes, the record is this line.
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	d.fields = d.fields[:0]
	d.nfields = 0
	for {
		i := bytes.IndexByte(line, ',')
		f := line
		if i >= 0 {
			f = line[:i]
		}
		d.addField(trimSpace(f))
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	return n, nl, recOK, ""
}

func (d *csvDecoder) addField(f []byte) {
	if d.nfields < maxFields {
		d.fields = append(d.fields, f)
	}
	d.nfields++
}

// parseQuoted is the slow path for a record with quotes, which may span lines.
// Errors follow encoding/csv: a quote inside an unquoted field is a bare
// quote; a quote in a quoted field that is not doubled and not followed by the
// field's end is extraneous. After an error, the record ends at the end of the
// line where the error is.
func (d *csvDecoder) parseQuoted(data []byte, atEOF bool) (n, nl int, kind recKind, reason string) {
	d.quoted = d.quoted[:0]
	d.ends = d.ends[:0]
	d.nfields = 0
	// bad ends the record at the line end at or after i.
	bad := func(i int, why string) (int, int, recKind, string) {
		e := bytes.IndexByte(data[i:], '\n')
		if e < 0 {
			if !atEOF {
				return 0, 0, recNeedMore, ""
			}
			return len(data), nl, recBad, why
		}
		return i + e + 1, nl + 1, recBad, why
	}
	i := 0
	for {
		for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
			i++
		}
		if i < len(data) && data[i] == '"' {
			i++
			for {
				q := bytes.IndexByte(data[i:], '"')
				if q < 0 {
					if !atEOF {
						return 0, 0, recNeedMore, ""
					}
					// Unterminated: report it and resume after the first line.
					e := bytes.IndexByte(data, '\n')
					if e < 0 {
						return len(data), 0, recBad, "quoted field not closed"
					}
					return e + 1, 1, recBad, "quoted field not closed"
				}
				nl += bytes.Count(data[i:i+q], []byte{'\n'})
				d.quoted = append(d.quoted, data[i:i+q]...)
				i += q + 1
				if i < len(data) && data[i] == '"' {
					d.quoted = append(d.quoted, '"')
					i++
					continue
				}
				if i == len(data) && !atEOF {
					return 0, 0, recNeedMore, ""
				}
				break
			}
			for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
				i++
			}
			d.endField()
			switch {
			case i == len(data):
				if !atEOF {
					return 0, 0, recNeedMore, ""
				}
				return i, nl, recOK, ""
			case data[i] == ',':
				i++
				continue
			case data[i] == '\n':
				return i + 1, nl + 1, recOK, ""
			case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
				return i + 2, nl + 1, recOK, ""
			case data[i] == '\r' && i+1 == len(data) && !atEOF:
				return 0, 0, recNeedMore, ""
			case data[i] == '\r' && i+1 == len(data):
				return i + 1, nl, recOK, ""
			}
			return bad(i, `extraneous " in quoted field`)
		}
		start := i
		for i < len(data) && data[i] != ',' && data[i] != '\n' && data[i] != '"' {
			i++
		}
		if i == len(data) && !atEOF {
			return 0, 0, recNeedMore, ""
		}
		if i < len(data) && data[i] == '"' {
			return bad(i, `bare " in unquoted field`)
		}
		f := data[start:i]
		if i < len(data) && data[i] == '\n' || i == len(data) {
			f = bytes.TrimSuffix(f, []byte{'\r'})
		}
		d.quoted = append(d.quoted, trimSpace(f)...)
		d.endField()
		if i == len(data) {
			return i, nl, recOK, ""
		}
		if data[i] == '\n' {
			return i + 1, nl + 1, recOK, ""
		}
		i++ // the comma
	}
}

// endField closes a field of the slow path.
func (d *csvDecoder) endField() {
	d.nfields++
	if len(d.ends) < maxFields {
		d.ends = append(d.ends, len(d.quoted))
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// trimSpace drops spaces, tabs and carriage returns around b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// isHeader reports whether the current record names columns: a header has at
// least one field that is a column name.
func (d *csvDecoder) isHeader() bool {
	for _, f := range d.fields {
		if columnOf(f) >= 0 {
			return true
		}
	}
	return false
}

func columnOf(f []byte) int {
	for i, name := range colNames {
		if len(f) == len(name) && strings.EqualFold(string(f), name) {
			return i
		}
	}
	return -1
}

// header maps the columns by the header record at line pos.
func (d *csvDecoder) header(pos int) error {
	fail := func(format string, args ...any) error {
		return &InputError{Where: fmt.Sprintf("line %d", pos), Err: fmt.Errorf("csv header: "+format, args...)}
	}
	if d.nfields > numCols {
		return fail("%d columns, want at most %d (%s)", d.nfields, numCols, strings.Join(colNames[:], ", "))
	}
	for i := range d.cols {
		d.cols[i] = -1
	}
	for i, f := range d.fields {
		c := columnOf(f)
		switch {
		case c < 0:
			return fail("unknown column %q (want %s)", clip(f), strings.Join(colNames[:], ", "))
		case d.cols[c] >= 0:
			return fail("column %q given twice", colNames[c])
		}
		d.cols[c] = i
	}
	for c := colAsset; c <= colValue; c++ {
		if d.cols[c] < 0 {
			return fail("no %q column", colNames[c])
		}
	}
	d.nhead = d.nfields
	return nil
}

// field returns column c of the current record, nil when absent.
func (d *csvDecoder) field(c int) []byte {
	if i := d.cols[c]; i >= 0 && i < len(d.fields) {
		return d.fields[i]
	}
	return nil
}

// str returns column c as a string, sharing storage with earlier rows.
func (d *csvDecoder) str(c int) string {
	f := d.field(c)
	if string(f) == d.last[c] {
		return d.last[c]
	}
	s := d.intern.get(f)
	d.last[c] = s
	return s
}

// row turns the current record at line pos into a Row.
func (d *csvDecoder) row(pos int) (Row, error) {
	bad := func(field string, value []byte, reason string) (Row, error) {
		return Row{}, &RowError{Pos: pos, PosKind: PosLine, Field: field, Value: clip(value), Reason: reason}
	}
	switch {
	case d.nhead > 0 && d.nfields != d.nhead:
		return bad("", nil, fmt.Sprintf("%d fields, want %d as in the header", d.nfields, d.nhead))
	case d.nhead == 0 && (d.nfields < 4 || d.nfields > numCols):
		return bad("", nil, fmt.Sprintf("%d fields, want 4 to 6 (asset,quantity,time,value[,unit][,phase])", d.nfields))
	}
	r := Row{Pos: pos, PosKind: PosLine}
	r.Asset = d.str(colAsset)
	r.Quantity = d.str(colQuantity)
	r.Unit = d.str(colUnit)
	r.Phase = d.str(colPhase)
	tb := d.field(colTime)
	if len(tb) == 0 {
		return bad("time", nil, "missing")
	}
	ms, ok := parseTime(tb)
	if !ok {
		return bad("time", tb, reasonTime)
	}
	r.Time = ms
	vb := d.field(colValue)
	if len(vb) == 0 {
		return bad("value", nil, "missing")
	}
	v, ok, overflow := parseFloat(vb)
	switch {
	case overflow:
		return bad("value", vb, "number out of the range of a 64-bit float")
	case ok:
		r.Value = v
	default:
		r.RawValue = d.intern.get(vb)
	}
	return r, nil
}

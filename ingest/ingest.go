// Package ingest decodes readings that come from outside the platform and
// writes them: real-time JSON requests and batch files in CSV or NDJSON,
// gzip-compressed or not, of any size. It is the seed's "Data Ingester".
//
// Decoding streams: a Decoder holds at most one record (bounded by
// MaxRecord) and a read buffer, whatever the size of the input, and in
// steady state it allocates nothing per row. Run validates each decoded row
// against the common information model (cim.Catalogue.Normalize), rejects
// rows of unknown assets, and hands valid readings in batches to a Sink,
// overlapping decoding with writing.
//
// Every problem with one row is a *RowError that names where (line number or
// array index), the field, the offending value and the reason; decoding
// continues after it. A problem that stops decoding (malformed JSON, a bad CSV
// header, a corrupt gzip stream, a body over its limit) is an *InputError.
package ingest

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/cim"
)

// MaxRecord is the largest record a decoder accepts, in bytes: one CSV record
// or NDJSON line, or one element of a JSON "readings" array. A longer CSV or
// NDJSON record is a RowError and decoding continues on the next line; a
// longer JSON element stops decoding with an InputError.
const MaxRecord = 1 << 20

// Where a position points.
const (
	PosLine  = "line"  // a 1-based line number, counting a header and blank lines
	PosIndex = "index" // a 0-based index into the JSON "readings" array
)

// Row is one decoded, not yet validated reading with its position in the
// input. Its strings stay valid after the next call to Next.
type Row struct {
	Pos     int    // line number (PosLine) or array index (PosIndex)
	PosKind string // PosLine or PosIndex; "" means PosLine
	cim.Input
	// RawValue is the value as given when it was text that is not a number
	// (a state name such as "open"), or any JSON string; Input.Value is then
	// 0 and the text is resolved against the quantity's states by Run.
	RawValue string
}

// Decoder reads rows one at a time.
type Decoder interface {
	// Next returns the next row. At the end of the input it returns io.EOF.
	// For a row that cannot be decoded it returns a *RowError, and the next
	// call continues with the row after it. Any other error (usually an
	// *InputError) means the input cannot be read further; Next then keeps
	// returning it.
	Next() (Row, error)
}

// RowError is a problem with one row. Value is clipped to a few hundred
// bytes.
type RowError struct {
	Pos     int    // line number or array index
	PosKind string // PosLine or PosIndex; "" means PosLine
	Field   string // "asset", "quantity", "time", "value", "unit", "phase", or "" for the row as a whole
	Value   string // the offending text, "" when absent or empty
	Reason  string
}

// Error formats the problem as, for example,
// `line 17: field "time": value "2026-13-01": not an RFC 3339 time or Unix milliseconds`
// or `readings[3]: field "quantity": value "power": unknown quantity`.
func (e *RowError) Error() string {
	var b strings.Builder
	if e.PosKind == PosIndex {
		b.WriteString("readings[")
		b.WriteString(strconv.Itoa(e.Pos))
		b.WriteByte(']')
	} else {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Pos))
	}
	if e.Field != "" {
		b.WriteString(": field ")
		b.WriteString(strconv.Quote(e.Field))
	}
	if e.Value != "" {
		b.WriteString(": value ")
		b.WriteString(strconv.Quote(e.Value))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// InputError is a problem that stops decoding: malformed JSON, a bad CSV
// header, a corrupt or truncated gzip stream, a read error, a body over its
// size limit. It is the sender's fault (HTTP 400, or 413 when it wraps
// ErrTooLarge).
type InputError struct {
	Where string // "byte 1234" or "readings[3] at byte 1234" (JSON), "line 17" (CSV, NDJSON), or ""
	Err   error
}

// Error formats the problem as Where, a colon and the cause.
func (e *InputError) Error() string {
	if e.Where == "" {
		return e.Err.Error()
	}
	return e.Where + ": " + e.Err.Error()
}

// Unwrap returns the cause, so that errors.Is finds ErrTooLarge.
func (e *InputError) Unwrap() error { return e.Err }

var (
	// ErrUnsupported is wrapped by the errors of Open and OpenRequest for a
	// content type or content encoding they do not decode (HTTP 415).
	ErrUnsupported = errors.New("unsupported")
	// ErrTooLarge is wrapped by the InputError of a body larger than the
	// limit given to OpenRequest (HTTP 413).
	ErrTooLarge = errors.New("body too large")
)

// Content types that Open understands (parameters such as charset are
// ignored).
const (
	TypeCSV    = "text/csv"
	TypeNDJSON = "application/x-ndjson"
	TypeJSONL  = "application/jsonl"
	TypeJSON   = "application/json"
)

// Open returns a decoder for r as its content type says: text/csv (or
// application/csv); application/x-ndjson, application/ndjson or
// application/jsonl; application/json. A gzip stream is recognised by its
// magic bytes (1f 8b) and decompressed, whatever the content type or
// encoding said. An unknown content type is an error wrapping ErrUnsupported
// that names it; a gzip stream with a broken header is an *InputError.
func Open(r io.Reader, contentType string) (Decoder, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	var newDecoder func(io.Reader) Decoder
	switch mt {
	case TypeCSV, "application/csv":
		newDecoder = NewCSV
	case TypeNDJSON, "application/ndjson", TypeJSONL:
		newDecoder = NewNDJSON
	case TypeJSON:
		newDecoder = NewJSON
	default:
		return nil, fmt.Errorf("%w content type %q (want %s, %s, %s or %s)",
			ErrUnsupported, contentType, TypeCSV, TypeNDJSON, TypeJSONL, TypeJSON)
	}
	r, err = Gunzip(r)
	if err != nil {
		return nil, err
	}
	return newDecoder(r), nil
}

// Gunzip returns r decompressed if it starts with the gzip magic bytes, and r
// unchanged (but for buffering) otherwise. A broken gzip header is an
// *InputError.
func Gunzip(r io.Reader) (io.Reader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	magic, err := br.Peek(2)
	if err != nil && len(magic) < 2 {
		if err == io.EOF {
			return br, nil
		}
		return nil, &InputError{Err: fmt.Errorf("read: %w", err)}
	}
	if magic[0] != 0x1f || magic[1] != 0x8b {
		return br, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("open gzip stream: %w", err)}
	}
	return zr, nil
}

// OpenRequest returns a decoder for the body of an HTTP request. It undoes
// the Content-Encoding (gzip or identity; others wrap ErrUnsupported) and
// then decodes as Open does for the Content-Type. When limit > 0, reading more
// than limit bytes of body, either as sent or decompressed, stops decoding
// with an *InputError wrapping ErrTooLarge. Closing the body stays with the
// HTTP server.
func OpenRequest(req *http.Request, limit int64) (Decoder, error) {
	var body io.Reader = req.Body
	if body == nil {
		body = http.NoBody
	}
	if limit > 0 {
		body = &limitReader{r: body, n: limit, limit: limit}
	}
	switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, &InputError{Err: err}
			}
			return nil, &InputError{Err: fmt.Errorf("open gzip stream: %w", err)}
		}
		body = zr
		if limit > 0 {
			body = &limitReader{r: body, n: limit, limit: limit}
		}
	default:
		return nil, fmt.Errorf("%w content encoding %q (want gzip or identity)", ErrUnsupported, enc)
	}
	return Open(body, req.Header.Get("Content-Type"))
}

// limitReader reads at most limit bytes and then fails with ErrTooLarge (not
// io.EOF, so that a cut body is never taken for a complete one).
type limitReader struct {
	r        io.Reader
	n, limit int64 // n bytes may still be read
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Allow the reader to report its own end exactly at the limit.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n == 0 && err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.limit)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

package ingest

import (
	"bytes"
	"io"
)

// Buffer sizes of source, in bytes. The buffer starts small and grows only
// while one record does not fit, up to maxBuffer.
const (
	minBuffer = 64 << 10
	maxBuffer = MaxRecord + 2 // room for a CRLF
)

// source is the read buffer under the CSV and NDJSON decoders. The
// unconsumed input is buf[pos:end]; consumed bytes are dropped when more
// input is needed.
type source struct {
	r        io.Reader
	buf      []byte
	pos, end int
	err      error // the reader's first error, sticky; io.EOF at the end
	bomDone  bool
}

func newSource(r io.Reader) source {
	return source{r: r}
}

// data returns the unconsumed input.
func (s *source) data() []byte { return s.buf[s.pos:s.end] }

// atEOF reports whether the input has ended (not failed): data holds all that
// is left.
func (s *source) atEOF() bool { return s.err == io.EOF }

// more reads more input, keeping the unconsumed bytes, and fills the buffer
// as far as the reader allows, so that a record that spans many small reads is
// scanned only a few times. It reports false when nothing more can be read:
// the input ended or failed (s.err), or the unconsumed bytes already fill
// maxBuffer (a record too long).
func (s *source) more() bool {
	if s.err != nil {
		return false
	}
	n := s.end - s.pos
	if n >= maxBuffer {
		return false
	}
	if s.pos > 0 {
		copy(s.buf, s.buf[s.pos:s.end])
		s.pos, s.end = 0, n
	}
	if s.end == len(s.buf) {
		size := 2 * len(s.buf)
		if size < minBuffer {
			size = minBuffer
		}
		if size > maxBuffer {
			size = maxBuffer
		}
		buf := make([]byte, size)
		copy(buf, s.buf[:s.end])
		s.buf = buf
	}
	start := s.end
	for empty := 0; s.end < len(s.buf); {
		m, err := s.r.Read(s.buf[s.end:])
		s.end += m
		if err != nil {
			s.err = err
			break
		}
		if m == 0 {
			if empty++; empty == 100 {
				s.err = io.ErrNoProgress
				break
			}
		}
	}
	return s.end > start
}

// skipBOM drops a UTF-8 byte order mark at the start of the input.
func (s *source) skipBOM() {
	if s.bomDone {
		return
	}
	s.bomDone = true
	for s.end-s.pos < 3 && s.more() {
	}
	if bytes.HasPrefix(s.data(), []byte("\xef\xbb\xbf")) {
		s.pos += 3
	}
}

// skipLine drops input up to and including the next newline, reading as
// needed and keeping nothing: it is how a record longer than maxBuffer is
// passed over in bounded memory.
func (s *source) skipLine() {
	for {
		if i := bytes.IndexByte(s.data(), '\n'); i >= 0 {
			s.pos += i + 1
			return
		}
		s.pos = s.end
		if !s.more() {
			return
		}
	}
}

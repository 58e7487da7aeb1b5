package uplink

import (
	"bytes"
	"compress/gzip"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/gridlink/gridlink/cim"
)

// maxPrefixes bounds the cache of encoded series prefixes.
const maxPrefixes = 4096

// encoder renders batches as gzip-compressed NDJSON, one object per line:
//
//	{"asset":"house-01/meter","quantity":"active_power","phase":"L1","time":1780000000000,"value":1.5}
//
// Times are Unix milliseconds; the phase is left out for the total. It is
// used by one goroutine at a time.
type encoder struct {
	raw     []byte
	zbuf    bytes.Buffer
	zw      *gzip.Writer
	prefix  map[cim.SeriesKey][]byte
	scratch []byte
}

// encode returns the readings that can be sent (a value JSON cannot carry,
// NaN or ±Inf, cannot) and the compressed body that holds them, one line
// each in order; and the readings left out.
func (e *encoder) encode(rs []cim.Reading) (kept []cim.Reading, body []byte, bad []cim.Reading) {
	if e.prefix == nil || len(e.prefix) > maxPrefixes {
		e.prefix = make(map[cim.SeriesKey][]byte, 64)
	}
	e.raw = e.raw[:0]
	kept = rs
	for i := range rs {
		r := &rs[i]
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			if len(bad) == 0 {
				kept = append([]cim.Reading(nil), rs[:i]...)
			}
			bad = append(bad, *r)
			continue
		}
		if len(bad) > 0 {
			kept = append(kept, *r)
		}
		p, ok := e.prefix[r.SeriesKey]
		if !ok {
			p = e.seriesPrefix(r.SeriesKey)
			e.prefix[r.SeriesKey] = p
		}
		e.raw = append(e.raw, p...)
		e.raw = strconv.AppendInt(e.raw, r.Time, 10)
		e.raw = append(e.raw, `,"value":`...)
		e.raw = strconv.AppendFloat(e.raw, r.Value, 'g', -1, 64)
		e.raw = append(e.raw, "}\n"...)
	}
	e.zbuf.Reset()
	if e.zw == nil {
		e.zw, _ = gzip.NewWriterLevel(&e.zbuf, gzip.BestSpeed) // a valid level: no error
	} else {
		e.zw.Reset(&e.zbuf)
	}
	e.zw.Write(e.raw) // writes to a bytes.Buffer do not fail
	e.zw.Close()
	return kept, bytes.Clone(e.zbuf.Bytes()), bad
}

// seriesPrefix renders a line up to the time's value.
func (e *encoder) seriesPrefix(k cim.SeriesKey) []byte {
	b := append([]byte(nil), `{"asset":`...)
	b = appendJSONString(b, k.Asset)
	b = append(b, `,"quantity":`...)
	b = appendJSONString(b, k.Quantity)
	if k.Phase != cim.PhaseTotal {
		b = append(b, `,"phase":`...)
		b = appendJSONString(b, string(k.Phase))
	}
	return append(b, `,"time":`...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, so the line stays valid JSON and the platform names the asset in
// its refusal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

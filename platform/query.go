package platform

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// flushBytes is how much of a streamed reply is buffered before it is sent.
const flushBytes = 32 << 10

// rfc3339Milli is the time format of CSV replies.
const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

// seriesWriter streams series to a reply as JSON, {"series": [{...,
// "points": [[ms, v], ...]}, ...]}, or as CSV rows. Nothing is sent before
// flushBytes are buffered or the reply ends, so that an early failure can
// still become an error reply.
type seriesWriter struct {
	w       http.ResponseWriter
	csv     bool
	buf     []byte
	sent    bool // the status line went out
	open    bool // a JSON series is open
	n       int  // series begun
	cur     store.Series
	curUnit string
}

func newSeriesWriter(w http.ResponseWriter, csv bool) *seriesWriter {
	sw := &seriesWriter{w: w, csv: csv, buf: make([]byte, 0, 4096)}
	if csv {
		sw.buf = append(sw.buf, "site,asset,quantity,phase,unit,time,value\n"...)
	} else {
		sw.buf = append(sw.buf, `{"series":[`...)
	}
	return sw
}

func (sw *seriesWriter) block(se store.Series, unit string, pts []cim.Point) error {
	if sw.csv {
		for _, p := range pts {
			sw.buf = appendCSVRow(sw.buf, se, unit, p)
			if len(sw.buf) >= flushBytes {
				if err := sw.flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	first := false
	if !sw.open || se != sw.cur {
		if sw.open {
			sw.buf = append(sw.buf, "]}"...)
		}
		if sw.n > 0 {
			sw.buf = append(sw.buf, ',')
		}
		sw.buf = appendSeriesHead(sw.buf, se, unit)
		sw.buf = append(sw.buf, `,"points":[`...)
		sw.open, sw.cur, sw.curUnit, first = true, se, unit, true
		sw.n++
	}
	for _, p := range pts {
		if !first {
			sw.buf = append(sw.buf, ',')
		}
		first = false
		sw.buf = append(sw.buf, '[')
		sw.buf = strconv.AppendInt(sw.buf, p.Time, 10)
		sw.buf = append(sw.buf, ',')
		sw.buf = appendJSONFloat(sw.buf, p.Value)
		sw.buf = append(sw.buf, ']')
		if len(sw.buf) >= flushBytes {
			if err := sw.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendSeriesHead appends `{"site":...,"unit":...` without closing it.
func appendSeriesHead(b []byte, se store.Series, unit string) []byte {
	b = append(b, `{"site":`...)
	b = appendJSONString(b, se.Site)
	b = append(b, `,"asset":`...)
	b = appendJSONString(b, se.Asset)
	b = append(b, `,"quantity":`...)
	b = appendJSONString(b, se.Quantity)
	b = append(b, `,"phase":`...)
	b = appendJSONString(b, se.Phase.String())
	b = append(b, `,"unit":`...)
	return appendJSONString(b, unit)
}

func appendCSVRow(b []byte, se store.Series, unit string, p cim.Point) []byte {
	b = appendCSVField(b, se.Site)
	b = append(b, ',')
	b = appendCSVField(b, se.Asset)
	b = append(b, ',')
	b = appendCSVField(b, se.Quantity)
	b = append(b, ',')
	b = append(b, se.Phase.String()...)
	b = append(b, ',')
	b = appendCSVField(b, unit)
	b = append(b, ',')
	b = cim.TimeOf(p.Time).AppendFormat(b, rfc3339Milli)
	b = append(b, ',')
	if s := appendJSONFloat(nil, p.Value); string(s) != "null" {
		b = append(b, s...)
	}
	return append(b, '\n')
}

// appendCSVField quotes a field when RFC 4180 needs it.
func appendCSVField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") && (s == "" || s[0] != ' ') {
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(s, `"`, `""`)...)
	return append(b, '"')
}

func (sw *seriesWriter) flush() error {
	if !sw.sent {
		h := sw.w.Header()
		if sw.csv {
			h.Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/json")
		}
		sw.w.WriteHeader(http.StatusOK)
		sw.sent = true
	}
	if _, err := sw.w.Write(sw.buf); err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	sw.buf = sw.buf[:0]
	if f, ok := sw.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// finish ends the reply: it closes the JSON, or, if err is set and nothing
// was sent yet, sends the error instead. It returns err when the reply had
// already begun, for the caller to log.
func (sw *seriesWriter) finish(s *Server, r *http.Request, err error) {
	if err != nil {
		if !sw.sent {
			s.writeError(sw.w, r, err)
			return
		}
		// The status line is out: cut the reply short, so that the
		// client sees invalid JSON or a short CSV rather than a
		// complete-looking answer.
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "query reply cut short", slog.String("error", err.Error()))
		panic(http.ErrAbortHandler)
	}
	if !sw.csv {
		if sw.open {
			sw.buf = append(sw.buf, "]}"...)
		}
		sw.buf = append(sw.buf, "]}\n"...)
	}
	if err := sw.flush(); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "query reply not sent", slog.String("error", err.Error()))
	}
}

// visible gives a series' unit and whether the caller may see it.
// Quantities missing from the catalogue are treated as restricted.
func (s *Server) visible(p auth.Principal, quantity string) (unit string, ok bool) {
	q, found := s.cat.Lookup(quantity)
	if !found || q.Restricted() {
		return q.Unit, p.CanReadRestricted()
	}
	return q.Unit, true
}

func (s *Server) checkRestricted(p auth.Principal, quantity string) error {
	if quantity == "" || p.CanReadRestricted() {
		return nil
	}
	if q, ok := s.cat.Lookup(quantity); ok && q.Restricted() {
		return forbidden(CodeRestricted, "quantity %s is special-category health data; reading it needs scope read:restricted", quantity)
	}
	return nil
}

// handleQuery serves GET /api/v1/readings: raw or aggregated series.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	q, err := parseQuery(r.URL.Query(), s.cat)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	site, err := readSite(q.site, p)
	if err == nil {
		err = s.checkRestricted(p, q.sel.Quantity)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q.sel.Site = site
	sw := newSeriesWriter(w, wantCSV(q.format, r))
	fn := func(se store.Series, pts []cim.Point) error {
		unit, ok := s.visible(p, se.Quantity)
		if !ok {
			return nil
		}
		return sw.block(se, unit, pts)
	}
	if q.step == 0 {
		err = s.store.Read(r.Context(), q.sel, fn)
	} else {
		err = s.store.Aggregate(r.Context(), q.sel, q.step, q.agg, fn)
	}
	if err != nil {
		err = fmt.Errorf("read series of site %q: %w", site, err)
	}
	sw.finish(s, r, err)
}

// handleLatest serves GET /api/v1/latest: the newest point of every series.
func (s *Server) handleLatest(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	v := r.URL.Query()
	err := onlyParams(v, "site", "format")
	var site, format string
	if err == nil {
		site, err = siteParam(v)
	}
	if err == nil {
		format, err = formatParam(v)
	}
	if err == nil {
		site, err = readSite(site, p)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	lps, err := s.store.Latest(r.Context(), site)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("latest values of site %q: %w", site, err))
		return
	}
	csv := wantCSV(format, r)
	var b []byte
	if csv {
		b = append(b, "site,asset,quantity,phase,unit,time,value\n"...)
	} else {
		b = append(b, `{"readings":[`...)
	}
	n := 0
	for _, lp := range lps {
		unit, ok := s.visible(p, lp.Quantity)
		if !ok {
			continue
		}
		if csv {
			b = appendCSVRow(b, lp.Series, unit, lp.Point)
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendReadingJSON(b, lp.Series, unit, lp.Point)
	}
	if csv {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	b = append(b, "]}\n"...)
	writeJSONBytes(w, http.StatusOK, b)
}

// appendReadingJSON appends one reading as {"site", "asset", "quantity",
// "phase", "unit", "time", "value"}, time in Unix milliseconds.
func appendReadingJSON(b []byte, se store.Series, unit string, p cim.Point) []byte {
	b = appendSeriesHead(b, se, unit)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, p.Time, 10)
	b = append(b, `,"value":`...)
	b = appendJSONFloat(b, p.Value)
	return append(b, '}')
}

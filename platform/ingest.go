package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ingest"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// Write stores readings of a site, counts them in the metrics and, once
// they are durable, publishes them to the live feed. The readings must be
// valid and in canonical units (see cim.Catalogue.Normalize). Other ingest
// paths of the platform (OCPP, MQTT) call it too.
func (s *Server) Write(ctx context.Context, site string, rs []cim.Reading) (store.WriteResult, error) {
	if len(rs) == 0 {
		return store.WriteResult{}, nil
	}
	res, err := s.store.Write(ctx, site, rs)
	if err != nil {
		return res, fmt.Errorf("store %d readings of site %q: %w", len(rs), site, err)
	}
	s.met.countIngest(res, 0)
	s.hub.Publish(site, rs)
	return res, nil
}

// ingestSite is the site a caller writes to: an ingest key's own site, or
// for an admin key the one named by ?site=, which must exist.
func (s *Server) ingestSite(ctx context.Context, v url.Values, p auth.Principal) (string, error) {
	site := v.Get("site")
	switch {
	case p.Admin():
		if site == "" {
			return "", badParam("site", "", "an admin key must name the site to write to")
		}
		if !auth.ValidSiteID(site) {
			return "", badParam("site", site, "not a site id (1-64 characters a-z, 0-9, '-')")
		}
		if _, known := s.knownSites.Load(site); known {
			return site, nil
		}
		if _, err := s.store.Site(ctx, site); errors.Is(err, store.ErrNotFound) {
			return "", errorf(http.StatusNotFound, CodeNotFound, "site %q does not exist; create it with POST /api/v1/sites", site)
		} else if err != nil {
			return "", err
		}
		s.knownSites.Store(site, struct{}{}) // sites are never deleted
		return site, nil
	case p.Scope != auth.ScopeIngest:
		return "", forbidden(CodeWrongScope, "a key of scope %s cannot write readings; it needs scope ingest", p.Scope)
	case site != "" && site != p.Site:
		return "", forbidden(CodeWrongSite, "this key writes to site %q, not %q", p.Site, site)
	}
	return p.Site, nil
}

// isMediaType reports whether a Content-Type header value is of the media
// type (case-insensitive, parameters ignored).
func isMediaType(ct, want string) bool {
	if len(ct) < len(want) || !strings.EqualFold(ct[:len(want)], want) {
		return false
	}
	rest := strings.TrimLeft(ct[len(want):], " \t")
	return rest == "" || rest[0] == ';'
}

func (s *Server) getBuffer() *bytes.Buffer {
	b := s.bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func (s *Server) putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		s.bufs.Put(b)
	}
}

// readBody reads a request body of at most s.maxBody bytes into buf. (It
// does the work of http.MaxBytesReader without its allocation.)
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	tooLarge := func() error {
		w.Header().Set("Connection", "close") // the rest of the body stays unread
		return errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
			"request body larger than the limit of %d bytes; send large uploads to POST /api/v1/batches", s.maxBody)
	}
	if r.ContentLength > s.maxBody {
		return tooLarge()
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	} else {
		buf.Grow(512)
	}
	for {
		if int64(buf.Len()) > s.maxBody {
			return tooLarge()
		}
		if buf.Available() == 0 {
			buf.Grow(buf.Len())
		}
		room := buf.AvailableBuffer()[:buf.Available()]
		if lim := s.maxBody + 1 - int64(buf.Len()); int64(len(room)) > lim {
			room = room[:lim]
		}
		n, err := r.Body.Read(room)
		buf.Write(room[:n])
		switch {
		case err == io.EOF:
			if int64(buf.Len()) > s.maxBody {
				return tooLarge()
			}
			return nil
		case err != nil:
			return errorf(http.StatusBadRequest, CodeInvalidBody, "read request body: %s", err)
		}
	}
}

// fieldIssue is a problem with one field of one reading.
type fieldIssue struct {
	Field, Value, Reason string
}

// rowError is one refused reading of an ingest reply.
type rowError struct {
	Index int
	fieldIssue
}

// ingestTally is the result of one ingest request.
type ingestTally struct {
	res       store.WriteResult
	rejected  int
	errors    []rowError
	truncated int
	ledger    *ledgerOutcome // readings of ledger assets, when there were any
}

func (t *ingestTally) reject(max, i int, fi fieldIssue) {
	t.rejected++
	if len(t.errors) >= max {
		t.truncated++
		return
	}
	t.errors = append(t.errors, rowError{Index: i, fieldIssue: fi})
}

func (t *ingestTally) appendJSON(b []byte) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(t.res.Accepted), 10)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendInt(b, int64(t.res.Duplicate), 10)
	b = append(b, `,"corrected":`...)
	b = strconv.AppendInt(b, int64(t.res.Corrected), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(t.rejected), 10)
	b = append(b, `,"errors":[`...)
	for i, e := range t.errors {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(e.Index), 10)
		b = append(b, `,"field":`...)
		b = appendJSONString(b, e.Field)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, e.Value)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, e.Reason)
		b = append(b, '}')
	}
	b = append(b, ']')
	if t.truncated > 0 {
		b = append(b, `,"errors_truncated":`...)
		b = strconv.AppendInt(b, int64(t.truncated), 10)
	}
	if l := t.ledger; l != nil {
		b = append(b, `,"ledger":{"readings":`...)
		b = strconv.AppendInt(b, int64(l.Readings), 10)
		b = append(b, `,"appended":`...)
		b = strconv.AppendInt(b, int64(l.Appended), 10)
		b = append(b, `,"reused":`...)
		b = strconv.AppendInt(b, int64(l.Reused), 10)
		b = append(b, `,"batch":`...)
		b = strconv.AppendInt(b, l.Batch, 10)
		if l.Omitted > 0 {
			b = append(b, `,"omitted":`...)
			b = strconv.AppendInt(b, int64(l.Omitted), 10)
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

// handleIngest serves POST /api/v1/readings: the real-time path, one or a
// few readings per request.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var v url.Values // nil, and no parsing, in the usual case of no query
	if r.URL.RawQuery != "" {
		v = r.URL.Query()
		if err := onlyParams(v, "site"); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	site, err := s.ingestSite(r.Context(), v, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); !isMediaType(ct, "application/json") {
		s.writeError(w, r, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"Content-Type %q not supported: send application/json (CSV and NDJSON go to POST /api/v1/batches)", ct))
		return
	}
	buf := s.getBuffer()
	defer s.putBuffer(buf)
	if err := s.readBody(w, r, buf); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	now := s.now()
	// Readings of ledger assets are stored only with their signature, which
	// covers the refused ones too: held takes them all in array order.
	ls, lf, onLedger, err := s.ledgerFilterOf(ctx, site)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var (
		tally ingestTally
		valid []cim.Reading
		one   [1]cim.Reading
		inErr error
		held  *heldLedger
	)
	if onLedger {
		held = newHeldLedger(ls.maxHeld)
	}
	valid = one[:0]
	parser := s.parsers.Get().(*ingest.BodyParser)
	err = parser.Parse(buf.Bytes(), func(row ingest.Row, re *ingest.RowError) {
		if inErr != nil {
			return
		}
		if re != nil {
			tally.reject(s.maxErrors, row.Pos, fieldIssue{Field: re.Field, Value: re.Value, Reason: re.Reason})
			if held != nil {
				held.unreadRow(re.Error())
			}
			return
		}
		rd, fi, err := s.normalize(ctx, site, &row, now)
		switch {
		case err != nil:
			inErr = err
		case fi != nil:
			tally.reject(s.maxErrors, row.Pos, *fi)
			if held != nil {
				if c, ok := lf.candidate(site, &row); ok {
					inErr = held.refuse(c)
				}
			}
		case held != nil && lf.takes(&rd):
			inErr = held.add(&rd)
		default:
			valid = append(valid, rd)
		}
	})
	s.parsers.Put(parser)
	if err == nil {
		err = inErr
	}
	if err != nil {
		var ie *ingest.InputError
		if errors.As(err, &ie) {
			err = errorf(http.StatusBadRequest, CodeInvalidBody, "%s", ie)
		}
		s.writeError(w, r, err)
		return
	}
	if len(valid) > 0 {
		tally.res, err = s.Write(ctx, site, valid)
	}
	if err == nil && held != nil && len(held.readings) > 0 {
		// Without valid ledger readings there is nothing to store or log.
		err = s.ingestLedger(ctx, r, ls, site, held, &tally)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.met.countIngest(store.WriteResult{}, tally.rejected)
	out := tally.appendJSON(buf.AvailableBuffer()[:0])
	writeJSONBytes(w, http.StatusOK, out)
}

// normalize checks one decoded reading and converts it to the canonical
// unit. A refused reading comes back as a fieldIssue; err is a failure of
// the store.
func (s *Server) normalize(ctx context.Context, site string, row *ingest.Row, now time.Time) (cim.Reading, *fieldIssue, error) {
	known := s.assets.known(site, row.Asset)
	in := row.Input
	if row.RawValue != "" {
		q, ok := s.cat.Lookup(in.Quantity)
		if ok {
			v, err := q.ParseValue(row.RawValue)
			if err != nil {
				return cim.Reading{}, &fieldIssue{Field: "value", Value: clip(row.RawValue), Reason: err.Error()}, nil
			}
			in.Value = v
		}
	}
	rd, err := s.cat.Normalize(in, now)
	if err != nil {
		fi := issueOf(err)
		return cim.Reading{}, &fi, nil
	}
	if !known {
		ok, err := s.assetExists(ctx, site, rd.Asset)
		if err != nil {
			return cim.Reading{}, nil, err
		}
		if !ok {
			return cim.Reading{}, &fieldIssue{Field: "asset", Value: clip(rd.Asset),
				Reason: fmt.Sprintf("asset %q does not exist in site %q; register it with POST /api/v1/sites/%s/assets", rd.Asset, site, site)}, nil
		}
	}
	return rd, nil, nil
}

// issueOf turns a validation error of cim into a fieldIssue.
func issueOf(err error) fieldIssue {
	var fe *cim.FieldError
	if errors.As(err, &fe) {
		return fieldIssue{Field: fe.Field, Value: clip(fe.Value), Reason: fe.Reason}
	}
	return fieldIssue{Reason: err.Error()}
}

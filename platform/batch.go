package platform

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ingest"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// handleBatch serves POST /api/v1/batches: a CSV (text/csv), NDJSON
// (application/x-ndjson) or JSON ({"readings": [...]}) upload of any size,
// gzip-compressed or not, decoded and written as it streams in.
// ?dry_run=true only validates.
func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	v := r.URL.Query()
	err := onlyParams(v, "site", "dry_run")
	var site string
	if err == nil {
		site, err = s.ingestSite(r.Context(), v, p)
	}
	dry := false
	if d := v.Get("dry_run"); err == nil && d != "" {
		if dry, err = strconv.ParseBool(d); err != nil {
			err = badParam("dry_run", clip(d), "want true or false")
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	dec, err := ingest.OpenRequest(r, 0)
	if err != nil {
		s.writeError(w, r, batchError(err, nil))
		return
	}
	// An upload may take longer than the server's read timeout allows.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})

	ctx := r.Context()
	var lookupErr error
	exists := func(asset string) bool {
		ok, err := s.assetExists(ctx, site, asset)
		if err != nil && lookupErr == nil {
			lookupErr = err
		}
		return ok
	}
	var sink ingest.Sink = func(ctx context.Context, rs []cim.Reading) (store.WriteResult, error) {
		return s.Write(ctx, site, rs)
	}
	// Readings of ledger assets wait for the signature at the end.
	ls, lf, onLedger, err := s.ledgerFilterOf(ctx, site)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var held *heldLedger
	var rows *ledgerRows
	if onLedger {
		held = newHeldLedger(ls.maxHeld)
		sink = ledgerSink(lf, site, held, sink)
		// The signer signed the refused rows too: rows notes them all.
		rows = &ledgerRows{dec: dec, f: lf, site: site, max: ls.maxHeld}
		dec = rows
	}
	rep, err := ingest.Run(ctx, dec, sink, ingest.Options{
		Catalogue:   s.cat,
		Now:         s.now,
		AssetExists: exists,
		BatchSize:   s.batchSize,
		DryRun:      dry,
		MaxErrors:   s.maxErrors,
	})
	s.met.countIngest(store.WriteResult{}, int(rep.Rejected))
	if err == nil && lookupErr != nil {
		err = lookupErr
	}
	if err != nil {
		s.writeError(w, r, batchError(err, &rep))
		return
	}
	var lout *ledgerOutcome
	if held != nil && len(held.readings) > 0 {
		// Without valid ledger readings there is nothing to store or log,
		// and the refused ones are reported as rejected already.
		err := held.merge(site, rows.rows, rows.unread)
		var signer string
		var sig []byte
		if err == nil {
			signer, sig, err = s.verifyLedger(ctx, ls, site, r.Header.Get(ledger.SignatureHeader), held)
		}
		if err != nil {
			rep.Rejected += int64(len(held.readings))
			s.met.countIngest(store.WriteResult{}, len(held.readings))
			s.writeError(w, r, batchError(err, &rep))
			return
		}
		res, out, err := s.writeLedger(ctx, ls, site, signer, sig, held)
		rep.Accepted += int64(res.Accepted)
		rep.Duplicate += int64(res.Duplicate)
		rep.Corrected += int64(res.Corrected)
		if err != nil {
			s.writeError(w, r, batchError(err, &rep))
			return
		}
		lout = &out
	}
	reply := batchReply(rep, dry)
	reply.Ledger = lout
	writeJSON(w, http.StatusOK, reply)
}

// batchResult is the reply of POST /api/v1/batches.
type batchResult struct {
	Rows            int64           `json:"rows"`
	Accepted        int64           `json:"accepted"`
	Duplicate       int64           `json:"duplicate"`
	Corrected       int64           `json:"corrected"`
	Rejected        int64           `json:"rejected"`
	DryRun          bool            `json:"dry_run"`
	Errors          []batchRowError `json:"errors"`
	ErrorsTruncated int64           `json:"errors_truncated,omitempty"`
	// Ledger is what became of the readings of ledger assets, when there
	// were any.
	Ledger *ledgerOutcome `json:"ledger,omitempty"`
}

// batchRowError is one refused row: Line for CSV and NDJSON, Index for the
// elements of a JSON array.
type batchRowError struct {
	Line   *int   `json:"line,omitempty"`
	Index  *int   `json:"index,omitempty"`
	Field  string `json:"field"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

func batchReply(rep ingest.Report, dry bool) batchResult {
	out := batchResult{
		Rows: rep.Rows, Accepted: rep.Accepted, Duplicate: rep.Duplicate, Corrected: rep.Corrected,
		Rejected: rep.Rejected, DryRun: dry, Errors: make([]batchRowError, 0, len(rep.Errors)),
		ErrorsTruncated: rep.ErrorsTruncated,
	}
	for _, e := range rep.Errors {
		pos := e.Pos
		be := batchRowError{Field: e.Field, Value: e.Value, Reason: e.Reason}
		if e.PosKind == ingest.PosIndex {
			be.Index = &pos
		} else {
			be.Line = &pos
		}
		out.Errors = append(out.Errors, be)
	}
	return out
}

// batchFailure is an error reply of POST /api/v1/batches, which also says
// what was written before the failure.
type batchFailure struct {
	*apiError
	report any // *batchResult, or the JSON of an ingest reply
}

func batchError(err error, rep *ingest.Report) error {
	var ae *apiError
	var ie *ingest.InputError
	switch {
	case errors.Is(err, ingest.ErrUnsupported):
		ae = errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"%s; send text/csv, application/x-ndjson or application/json, optionally gzip-compressed", err)
	case errors.Is(err, ingest.ErrTooLarge):
		ae = errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "%s", err)
	case errors.As(err, &ie):
		ae = errorf(http.StatusBadRequest, CodeInvalidBody, "%s", err)
	default:
		ae = toAPIError(err)
	}
	if rep == nil {
		return ae
	}
	br := batchReply(*rep, false)
	return &batchFailure{apiError: ae, report: &br}
}

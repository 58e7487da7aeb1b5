package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// This file keeps the results of integration test runs (gridlink itc):
// POST /api/v1/itc/runs, GET /api/v1/itc/runs and GET /api/v1/itc/runs/{id}.
// The body is the JSON of an itc.Run. The platform checks the parts it
// reads and summarises (run, results) strictly and keeps the body as sent;
// package itc is not imported, so that the runner may use the platform's
// packages without a cycle.

// MaxITCRunBytes bounds the body of POST /api/v1/itc/runs.
const MaxITCRunBytes = 16 << 20

// Limits of GET /api/v1/itc/runs.
const (
	defaultITCRunList = 20
	maxITCRunList     = 100
)

// The statuses of a case's result, as package itc writes them.
var itcStatuses = []string{"passed", "failed", "suspended", "not_run"}

// itcRun mirrors itc.Run: the fields the platform checks and lists.
type itcRun struct {
	ID       string      `json:"id"`
	Platform string      `json:"platform"`
	Start    time.Time   `json:"start"`
	End      time.Time   `json:"end"`
	Results  []itcResult `json:"results"`
}

// itcResult mirrors itc.Result. The measures of each asset are kept as
// sent: the platform neither reads nor summarises them.
type itcResult struct {
	Case   string            `json:"case"`
	Name   string            `json:"name"`
	Site   string            `json:"site"`
	Status string            `json:"status"`
	Reason string            `json:"reason"`
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end"`
	Assets []json.RawMessage `json:"assets"`
}

// ParseITCRun checks the JSON of an itc.Run as POST /api/v1/itc/runs
// takes it, and returns its id and start. Unknown fields of the run and
// of its results, a missing id, start or results, an unknown status and
// text that is too long or not UTF-8 are refused with an error naming the
// field ("results[3].status").
func ParseITCRun(body []byte) (id string, start time.Time, err error) {
	run, err := parseITCRun(body)
	if err != nil {
		return "", time.Time{}, err
	}
	return run.ID, run.Start, nil
}

func parseITCRun(body []byte) (*itcRun, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var run itcRun
	if err := dec.Decode(&run); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errorf(http.StatusBadRequest, CodeInvalidBody, "empty request body, want the JSON of an ITC run")
		}
		return nil, errorf(http.StatusBadRequest, CodeInvalidBody, "invalid ITC run: %s", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errorf(http.StatusBadRequest, CodeInvalidBody, "invalid ITC run: data after the object")
	}
	if err := store.CheckITCRunID(run.ID); err != nil {
		return nil, invalidField("id", run.ID, "%s", err)
	}
	if err := checkRunText("platform", run.Platform, 2048); err != nil {
		return nil, err
	}
	if run.Start.IsZero() {
		return nil, invalidField("start", "", "missing: the run's start time (RFC 3339)")
	}
	if !run.End.IsZero() && run.End.Before(run.Start) {
		return nil, invalidField("end", run.End.Format(time.RFC3339Nano), "before the start %s", run.Start.Format(time.RFC3339Nano))
	}
	if run.Results == nil {
		return nil, invalidField("results", "", "missing: an array of the cases' results")
	}
	for i := range run.Results {
		if err := checkITCResult(fmt.Sprintf("results[%d]", i), &run.Results[i]); err != nil {
			return nil, err
		}
	}
	return &run, nil
}

func checkITCResult(at string, r *itcResult) error {
	if r.Case == "" {
		return invalidField(at+".case", "", "missing: the case id")
	}
	if err := checkText(at+".case", r.Case, 64); err != nil {
		return err
	}
	if err := checkText(at+".name", r.Name, 256); err != nil {
		return err
	}
	if r.Site != "" && !auth.ValidSiteID(r.Site) {
		return invalidField(at+".site", r.Site, "not a site id (1-64 characters a-z, 0-9, '-')")
	}
	ok := false
	for _, s := range itcStatuses {
		ok = ok || r.Status == s
	}
	if !ok {
		return invalidField(at+".status", r.Status, "want passed, failed, suspended or not_run")
	}
	if err := checkRunText(at+".reason", r.Reason, 8192); err != nil {
		return err
	}
	if !r.End.IsZero() && !r.Start.IsZero() && r.End.Before(r.Start) {
		return invalidField(at+".end", r.End.Format(time.RFC3339Nano), "before the start %s", r.Start.Format(time.RFC3339Nano))
	}
	for j, a := range r.Assets {
		if len(a) == 0 || a[0] != '{' {
			return invalidField(fmt.Sprintf("%s.assets[%d]", at, j), clip(string(a)), "want an object")
		}
	}
	return nil
}

// checkRunText is checkText for free text that may span lines (a reason).
func checkRunText(field, v string, max int) error {
	switch {
	case len(v) > max:
		return invalidField(field, v, "longer than %d bytes", max)
	case !utf8.ValidString(v):
		return invalidField(field, v, "not valid UTF-8")
	}
	return nil
}

// itcRunSummary is one run as GET /api/v1/itc/runs lists it.
type itcRunSummary struct {
	ID       string         `json:"id"`
	Platform string         `json:"platform"`
	Start    time.Time      `json:"start"`
	End      *time.Time     `json:"end,omitempty"`
	Cases    int            `json:"cases"`
	Counts   map[string]int `json:"counts"`
}

// itcRuns returns the store's ITC runs, or a 404 when it keeps none.
func (s *Server) itcRuns() (store.ITCRuns, error) {
	st, ok := s.store.(store.ITCRuns)
	if !ok {
		return nil, errorf(http.StatusNotFound, CodeNotFound, "this platform's store (%T) keeps no integration test runs", s.store)
	}
	return st, nil
}

// requireSomeRead admits any key that reads a site: runs hold no personal
// data, so a site's read key may see every site's results.
func requireSomeRead(p auth.Principal) error {
	if p.Scope == auth.ScopeIngest {
		return forbidden(CodeWrongScope, "a key of scope ingest cannot read; it needs scope read, read:restricted or admin")
	}
	return nil
}

func (s *Server) handlePostITCRun(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	err := requireAdmin(p)
	var st store.ITCRuns
	if err == nil {
		st, err = s.itcRuns()
	}
	var body []byte
	if err == nil {
		body, err = readITCBody(w, r)
	}
	var run *itcRun
	if err == nil {
		run, err = parseITCRun(body)
	}
	var sum itcRunSummary
	if err == nil {
		// Summarised once, here, where the body is parsed anyway: the list
		// reads the stored summaries, never the bodies.
		sum = summarise(run)
		var enc []byte
		if enc, err = json.Marshal(sum); err != nil {
			err = fmt.Errorf("encode summary of ITC run %q: %w", run.ID, err)
		} else if err = st.PutITCRun(r.Context(), run.ID, run.Start, enc, body); err != nil {
			err = fmt.Errorf("store ITC run %q: %w", run.ID, err)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sum)
}

// readITCBody reads a JSON body of at most MaxITCRunBytes.
func readITCBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); !isMediaType(ct, "application/json") {
		return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type %q not supported: send application/json", ct)
	}
	if r.ContentLength > MaxITCRunBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, MaxITCRunBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxITCRunBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body larger than the limit of %d bytes", MaxITCRunBytes)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, CodeInvalidBody, "read request body: %s", err)
	}
	return body, nil
}

// summarise counts a checked run's results per status.
func summarise(run *itcRun) itcRunSummary {
	sum := newITCRunSummary(run.ID, run.Platform, run.Start.UTC(), run.End, len(run.Results))
	for _, res := range run.Results {
		sum.Counts[res.Status]++
	}
	return sum
}

// newITCRunSummary returns a summary whose counts are all zero.
func newITCRunSummary(id, platform string, start, end time.Time, cases int) itcRunSummary {
	sum := itcRunSummary{ID: id, Platform: platform, Start: start, Cases: cases, Counts: make(map[string]int, len(itcStatuses))}
	for _, st := range itcStatuses {
		sum.Counts[st] = 0
	}
	if !end.IsZero() {
		end = end.UTC()
		sum.End = &end
	}
	return sum
}

func (s *Server) handleListITCRuns(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	v := r.URL.Query()
	err := onlyParams(v, "limit")
	limit := defaultITCRunList
	if err == nil && v.Has("limit") {
		n, perr := strconv.Atoi(v.Get("limit"))
		if perr != nil || n < 1 || n > maxITCRunList {
			err = badParam("limit", clip(v.Get("limit")), "want a whole number from 1 to %d", maxITCRunList)
		}
		limit = n
	}
	if err == nil {
		err = requireSomeRead(p)
	}
	var st store.ITCRuns
	if err == nil {
		st, err = s.itcRuns()
	}
	var runs []store.ITCRunInfo
	if err == nil {
		if runs, err = st.ListITCRuns(r.Context(), limit); err != nil {
			err = fmt.Errorf("list ITC runs: %w", err)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]itcRunSummary, 0, len(runs))
	for _, info := range runs {
		sum, ok := storedITCSummary(info)
		if !ok {
			if sum, err = s.summariseStoredRun(r, st, info); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		out = append(out, sum)
	}
	writeList(w, "runs", out)
}

// storedITCSummary decodes the summary POST stored beside a run. It
// reports false for an empty one (a run stored before stores kept
// summaries) or one this platform cannot read; the id and start are the
// store's.
func storedITCSummary(info store.ITCRunInfo) (itcRunSummary, bool) {
	if len(info.Summary) == 0 {
		return itcRunSummary{}, false
	}
	var got itcRunSummary
	if err := json.Unmarshal(info.Summary, &got); err != nil || got.Counts == nil || got.Cases < 0 {
		return itcRunSummary{}, false
	}
	var end time.Time
	if got.End != nil {
		end = *got.End
	}
	sum := newITCRunSummary(info.ID, got.Platform, info.Start, end, got.Cases)
	for st, n := range got.Counts {
		if _, known := sum.Counts[st]; !known || n < 0 {
			return itcRunSummary{}, false
		}
		sum.Counts[st] = n
	}
	return sum, true
}

// summariseStoredRun summarises a run from its body, for a run stored
// without a usable summary (before the store kept summaries). Nothing is
// written back: a listing only reads, and such runs become rare as new
// runs are posted.
func (s *Server) summariseStoredRun(r *http.Request, st store.ITCRuns, info store.ITCRunInfo) (itcRunSummary, error) {
	body, err := st.GetITCRun(r.Context(), info.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return itcRunSummary{}, fmt.Errorf("summarise ITC run %q: %w", info.ID, err)
	}
	var run itcRunHead
	if err == nil {
		err = json.Unmarshal(body, &run)
	}
	if err != nil {
		// Stored by another version of the platform, or gone since the
		// listing: list what the store knows.
		s.log.Warn("stored ITC run does not parse", "id", info.ID, "error", err)
		run = itcRunHead{}
	}
	sum := newITCRunSummary(info.ID, run.Platform, info.Start, run.End, len(run.Results))
	for _, res := range run.Results {
		if _, ok := sum.Counts[res.Status]; ok {
			sum.Counts[res.Status]++
		}
	}
	return sum, nil
}

// itcRunHead is what summariseStoredRun reads of a stored run, which was
// checked when it was posted: decoding less (no assets) makes it cheaper.
type itcRunHead struct {
	Platform string    `json:"platform"`
	End      time.Time `json:"end"`
	Results  []struct {
		Status string `json:"status"`
	} `json:"results"`
}

func (s *Server) handleGetITCRun(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	err := requireSomeRead(p)
	var st store.ITCRuns
	if err == nil {
		st, err = s.itcRuns()
	}
	var body []byte
	if err == nil {
		id := r.PathValue("id")
		body, err = st.GetITCRun(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			err = errorf(http.StatusNotFound, CodeNotFound, "no ITC run %q (GET /api/v1/itc/runs lists them)", clip(id))
		} else if err != nil {
			err = fmt.Errorf("get ITC run %q: %w", id, err)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSONBytes(w, http.StatusOK, body)
}

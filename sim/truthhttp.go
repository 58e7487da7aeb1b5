package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// MaxTruthLimit is the most cycles one GET /truth answer holds; the answer
// then says where to go on (next).
const MaxTruthLimit = 10000

// truthResponse is the body of GET /truth.
type truthResponse struct {
	Cycles []CycleRecord `json:"cycles"`
	// Truncated says more cycles matched; Next is the start (Unix ms) of
	// the first one left out, the from of the next request.
	Truncated bool  `json:"truncated,omitempty"`
	Next      int64 `json:"next,omitempty"`
}

// errorResponse is the body of a refused request.
type errorResponse struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

// truthQuery is a parsed GET /truth query.
type truthQuery struct {
	asset    string
	from, to time.Time
	limit    int
}

// paramError names the query parameter that is wrong.
type paramError struct {
	param, msg string
}

func (e *paramError) Error() string { return "parameter " + e.param + ": " + e.msg }

// Handler serves the truth log:
//
//	GET /truth?asset=A&from=T&to=T&limit=N
//
// T is RFC 3339 or Unix milliseconds; the answer holds the cycles starting
// in [from, to), at most limit (default and maximum MaxTruthLimit) of
// them, as {"cycles":[{"asset","cycle","start","end","values":[{"quantity",
// "phase","value","state"}]}]} with times in Unix milliseconds. A bad
// parameter gets 400 with {"error","parameter"}.
func (t *Truth) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /truth", t.serveTruth)
	return mux
}

func (t *Truth) serveTruth(w http.ResponseWriter, r *http.Request) {
	q, err := parseTruthQuery(r.URL.RawQuery)
	if err != nil {
		resp := errorResponse{Error: err.Error()}
		if pe, ok := err.(*paramError); ok {
			resp.Parameter = pe.param
		}
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	recs, next := t.cycles(q.asset, q.from, q.to, q.limit)
	resp := truthResponse{Cycles: recs}
	if resp.Cycles == nil {
		resp.Cycles = []CycleRecord{}
	}
	if !next.IsZero() {
		resp.Truncated, resp.Next = true, next.UnixMilli()
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client may have gone; nothing to do about it.
	_ = json.NewEncoder(w).Encode(v)
}

// parseTruthQuery reads a raw query string of GET /truth.
func parseTruthQuery(raw string) (truthQuery, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return truthQuery{}, &paramError{param: "query", msg: fmt.Sprintf("malformed: %v", err)}
	}
	q := truthQuery{limit: MaxTruthLimit}
	// In name order, so that the same query always names the same error.
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vs := vals[name]
		if name == "" {
			return truthQuery{}, &paramError{param: "query", msg: "a parameter has no name"}
		}
		if len(vs) > 1 {
			return truthQuery{}, &paramError{param: name, msg: "given more than once"}
		}
		v := vs[0]
		switch name {
		case "asset":
			q.asset = v
		case "from":
			if q.from, err = parseTruthTime(v); err != nil {
				return truthQuery{}, &paramError{param: name, msg: err.Error()}
			}
		case "to":
			if q.to, err = parseTruthTime(v); err != nil {
				return truthQuery{}, &paramError{param: name, msg: err.Error()}
			}
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxTruthLimit {
				return truthQuery{}, &paramError{param: name, msg: fmt.Sprintf("%q is not a number from 1 to %d", clipText(v), MaxTruthLimit)}
			}
			q.limit = n
		default:
			return truthQuery{}, &paramError{param: clipText(name), msg: "unknown (want asset, from, to, limit)"}
		}
	}
	if !q.from.IsZero() && !q.to.IsZero() && q.to.Before(q.from) {
		return truthQuery{}, &paramError{param: "to", msg: "is before from"}
	}
	return q, nil
}

// maxTruthMillis bounds millisecond times to years 0001..9999 or so, where
// time arithmetic does not overflow.
const maxTruthMillis = 253402300799999

// parseTruthTime reads RFC 3339 or Unix milliseconds.
func parseTruthTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("empty (want RFC 3339 or Unix milliseconds)")
	}
	if c := s[0]; c == '-' || c >= '0' && c <= '9' {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			if ms < -maxTruthMillis || ms > maxTruthMillis {
				return time.Time{}, fmt.Errorf("%d ms is out of range", ms)
			}
			return cim.TimeOf(ms), nil
		}
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor Unix milliseconds", clipText(s))
	}
	if y := tm.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("%q is out of range", clipText(s))
	}
	return tm.UTC(), nil
}

// clipText shortens outside text quoted in errors.
func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// FetchTruth asks a truth server (baseURL is where its Handler is mounted,
// e.g. http://127.0.0.1:8089) for the asset's cycles starting in
// [from, to), following the server's paging; a zero from or to leaves that
// side open, an empty asset means every asset.
func FetchTruth(ctx context.Context, baseURL string, asset string, from, to time.Time) ([]CycleRecord, error) {
	base, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("truth base URL %q: %w", baseURL, err)
	}
	var out []CycleRecord
	for {
		page, err := fetchTruthPage(ctx, base, asset, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Cycles...)
		if !page.Truncated {
			return out, nil
		}
		next := cim.TimeOf(page.Next)
		if !next.After(from) {
			return nil, fmt.Errorf("truth server at %s: paging does not advance (next %d)", baseURL, page.Next)
		}
		from = next
	}
}

func fetchTruthPage(ctx context.Context, base *url.URL, asset string, from, to time.Time) (*truthResponse, error) {
	u := base.JoinPath("truth")
	q := url.Values{}
	if asset != "" {
		q.Set("asset", asset)
	}
	if !from.IsZero() {
		q.Set("from", strconv.FormatInt(from.UnixMilli(), 10))
	}
	if !to.IsZero() {
		q.Set("to", strconv.FormatInt(to.UnixMilli(), 10))
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("truth request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e errorResponse
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, fmt.Errorf("get %s: %s: %s", u.Redacted(), resp.Status, clipText(msg))
	}
	var page truthResponse
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("get %s: decode: %w", u.Redacted(), err)
	}
	return &page, nil
}

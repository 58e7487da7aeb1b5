package platform

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// readQuery is the parsed query string of GET /api/v1/readings.
type readQuery struct {
	site   string         // "" when not given
	sel    store.Selector // Site left empty
	step   time.Duration  // 0 for raw points
	agg    store.Agg      // set when step is
	format string         // "json" or "csv" or "" (by the Accept header)
}

// maxStep bounds the aggregation step.
const maxStep = 3660 * 24 * time.Hour

// Times are refused outside years 0000..9999, which RFC 3339 can write.
const (
	minTimeMs = -62167219200000
	maxTimeMs = 253402300799999
)

// parseQuery checks the parameters of GET /api/v1/readings. Its errors name
// the parameter and the value.
func parseQuery(v url.Values, cat *cim.Catalogue) (readQuery, error) {
	var q readQuery
	if err := onlyParams(v, "site", "asset", "quantity", "phase", "from", "to", "step", "agg", "format"); err != nil {
		return q, err
	}
	var err error
	if q.site, err = siteParam(v); err != nil {
		return q, err
	}
	if a := v.Get("asset"); a != "" {
		if len(a) > 200 || !utf8.ValidString(a) {
			return q, badParam("asset", clip(a), "not an asset id")
		}
		q.sel.Asset = a
	}
	if name := v.Get("quantity"); name != "" {
		if _, ok := cat.Lookup(name); !ok {
			return q, badParam("quantity", clip(name), "unknown quantity (GET /api/v1/quantities lists them)")
		}
		q.sel.Quantity = name
	}
	if ph, ok := v["phase"]; ok {
		p, err := cim.ParsePhase(ph[0])
		if err != nil {
			return q, badParam("phase", clip(ph[0]), "unknown phase (want total, L1, L2, L3, N, L12, L23 or L31)")
		}
		q.sel.Phase = &p
	}
	if s := v.Get("from"); s != "" {
		if q.sel.From, err = parseTimeParam(s); err != nil {
			return q, badParam("from", clip(s), "%s", err)
		}
	}
	if s := v.Get("to"); s != "" {
		if q.sel.To, err = parseTimeParam(s); err != nil {
			return q, badParam("to", clip(s), "%s", err)
		}
		if q.sel.To <= q.sel.From {
			return q, badParam("to", s, "not after from")
		}
	}
	if s := v.Get("step"); s != "" {
		if q.step, err = parseStep(s); err != nil {
			return q, badParam("step", clip(s), "%s", err)
		}
		q.agg = store.AggAvg
	}
	if s := v.Get("agg"); s != "" {
		if q.step == 0 {
			return q, badParam("agg", clip(s), "an aggregation needs a step, e.g. step=15m")
		}
		if q.agg, err = store.ParseAgg(s); err != nil {
			return q, badParam("agg", clip(s), "unknown aggregation (want avg, min, max, sum, first, last, count or delta)")
		}
	}
	if q.format, err = formatParam(v); err != nil {
		return q, err
	}
	return q, nil
}

// onlyParams refuses parameters not in the list, and repeated ones.
func onlyParams(v url.Values, names ...string) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, n := range names {
			if k == n {
				known = true
				break
			}
		}
		if !known {
			return badParam(clip(k), clip(v.Get(k)), "unknown parameter (known: %s)", strings.Join(names, ", "))
		}
		if len(v[k]) > 1 {
			return badParam(k, clip(v[k][1]), "given %d times", len(v[k]))
		}
	}
	return nil
}

func siteParam(v url.Values) (string, error) {
	s := v.Get("site")
	if s != "" && !auth.ValidSiteID(s) {
		return "", badParam("site", clip(s), "not a site id (1-64 characters a-z, 0-9, '-')")
	}
	return s, nil
}

func formatParam(v url.Values) (string, error) {
	switch f := v.Get("format"); f {
	case "", "json", "csv":
		return f, nil
	default:
		return "", badParam("format", clip(f), "want json or csv")
	}
}

// parseTimeParam reads Unix milliseconds, an RFC 3339 time or a date
// (midnight UTC).
func parseTimeParam(s string) (int64, error) {
	digits := s
	if strings.HasPrefix(digits, "-") {
		digits = digits[1:]
	}
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms < minTimeMs || ms > maxTimeMs {
			return 0, errorString("Unix milliseconds out of range")
		}
		return ms, nil
	}
	var t time.Time
	var err error
	if len(s) == len("2006-01-02") {
		t, err = time.Parse(time.DateOnly, s)
	} else {
		t, err = time.Parse(time.RFC3339Nano, s)
	}
	if err != nil {
		return 0, errorString("not an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01) nor Unix milliseconds")
	}
	return t.UnixMilli(), nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// parseStep reads an aggregation step: a Go duration ("15m", "1h30m") or a
// whole number of days ("1d", "7d").
func parseStep(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		days, err := strconv.Atoi(n)
		if err != nil || days > int(maxStep/(24*time.Hour)) {
			return 0, errorString("too long")
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errorString("not a duration such as 15m, 1h or 1d")
		}
	}
	switch {
	case d <= 0:
		return 0, errorString("must be positive")
	case d%time.Millisecond != 0:
		return 0, errorString("must be a whole number of milliseconds")
	case d > maxStep:
		return 0, errorString("too long")
	}
	return d, nil
}

// wantCSV decides the reply format from ?format= and the Accept header.
func wantCSV(format string, r *http.Request) bool {
	if format != "" {
		return format == "csv"
	}
	acc := r.Header.Get("Accept")
	return strings.Contains(acc, "text/csv") && !strings.Contains(acc, "application/json")
}

// readSite is the site a caller reads: the one named, which must be the
// key's own unless the key is an admin key, or the key's own by default.
func readSite(site string, p auth.Principal) (string, error) {
	switch {
	case p.Admin():
		if site == "" {
			return "", badParam("site", "", "an admin key must name the site to read")
		}
		return site, nil
	case site == "":
		site = p.Site
	}
	return site, requireRead(p, site)
}

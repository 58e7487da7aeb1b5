package itc

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/chargepoint"
	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/sim"
)

// Target is the platform under test and where the devices' truth comes
// from.
type Target struct {
	Platform string // base URL
	// Key is an API key that can read the sites (admin, or read +
	// read:restricted for ITC9.01).
	Key string
	// Sites to test; empty means every site the key can list.
	Sites []string
	// Truth endpoints: base URLs of simulators (GET {base}/truth?asset=…
	// as package sim serves it) or of a charge point's TruthHandler. An
	// asset is under test only if some truth endpoint knows it.
	Truth []string
	// HTTP is the client; nil means a client with a 30 s timeout.
	HTTP *http.Client
}

// client talks to the platform's public API as Target says.
type client struct {
	base *url.URL
	key  string
	http *http.Client
	live *http.Client // without a timeout: a stream lasts the window
	// retryFor bounds how long a query is retried while the platform
	// cannot be reached: a platform restarting (FLT1.01) comes back
	// within it, and a case must not fail for asking during the outage.
	retryFor time.Duration
}

// defaultRetryFor is client.retryFor unless a test shortens it.
const defaultRetryFor = 30 * time.Second

// Backoff bounds of the retried queries and of the live feed's reconnects.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
)

func newClient(t Target) (*client, error) {
	u, err := url.Parse(strings.TrimRight(t.Platform, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("platform %q: want the platform's base URL, http:// or https://", t.Platform)
	}
	if t.Key == "" {
		return nil, errors.New("key: empty; the runner needs an API key that can read the sites")
	}
	c := &client{base: u, key: t.Key, http: t.HTTP, retryFor: defaultRetryFor}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	s := *c.http
	s.Timeout = 0
	c.live = &s
	return c, nil
}

// apiError is a refused request, with the platform's message.
type apiError struct {
	Method, Path string
	Status       int
	Msg          string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Msg)
}

func (c *client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// do sends a request and decodes a 2xx JSON reply into out (if not nil).
// A GET that fails as a platform that is away fails (see transient) is
// retried with backoff for up to retryFor.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	if method != http.MethodGet {
		return c.once(ctx, method, path, q, body, out)
	}
	return c.retry(ctx, func() error { return c.once(ctx, method, path, q, body, out) })
}

// retry calls f until it succeeds, fails for good, retryFor has passed
// or ctx ends. The error is f's last, saying how long it was retried.
func (c *client) retry(ctx context.Context, f func() error) error {
	start := time.Now()
	wait := minBackoff
	for {
		err := f()
		if err == nil || !transient(ctx, err) {
			return err
		}
		if time.Since(start)+wait > c.retryFor {
			return fmt.Errorf("%w (retried for %v)", err, time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// transient says whether err is what a platform that is away (stopped,
// restarting, behind a proxy that cannot reach it) causes: no connection,
// a connection dropped, or 502, 503 or 504. A timeout is not retried: it
// has already waited its time.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status == http.StatusBadGateway || ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// once sends a request once; see do.
func (c *client) once(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &apiError{Method: method, Path: path, Status: resp.StatusCode, Msg: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// ready asks GET /readyz once; nil means the platform is ready. It is
// the probe of the platform being up, so it is not retried.
func (c *client) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.once(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// sites lists the sites the key can read.
func (c *client) sites(ctx context.Context) ([]cim.Site, error) {
	var out struct {
		Sites []cim.Site `json:"sites"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/sites", nil, nil, &out)
	return out.Sites, err
}

// assets lists a site's assets.
func (c *client) assets(ctx context.Context, site string) ([]cim.Asset, error) {
	var out struct {
		Assets []cim.Asset `json:"assets"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/sites/"+url.PathEscape(site)+"/assets", nil, nil, &out)
	return out.Assets, err
}

// readings fetches an asset's stored readings with times in [from, to).
func (c *client) readings(ctx context.Context, site, asset string, from, to time.Time) ([]cim.Reading, error) {
	q := url.Values{"site": {site}, "asset": {asset},
		"from": {strconv.FormatInt(from.UnixMilli(), 10)}, "to": {strconv.FormatInt(to.UnixMilli(), 10)}}
	var out struct {
		Series []struct {
			Asset    string       `json:"asset"`
			Quantity string       `json:"quantity"`
			Phase    string       `json:"phase"`
			Points   [][2]float64 `json:"points"`
		} `json:"series"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/readings", q, nil, &out); err != nil {
		return nil, err
	}
	var rs []cim.Reading
	for _, s := range out.Series {
		ph, err := cim.ParsePhase(s.Phase)
		if err != nil {
			return nil, fmt.Errorf("readings of %s: series %s: %w", asset, s.Quantity, err)
		}
		for _, p := range s.Points {
			rs = append(rs, cim.Reading{SeriesKey: cim.SeriesKey{Asset: s.Asset, Quantity: s.Quantity, Phase: ph},
				Point: cim.Point{Time: int64(p[0]), Value: p[1]}})
		}
	}
	return rs, nil
}

// ledgerSize reads the size of the ledger's latest checkpoint: its
// second line (a signed note: origin, size, root hash).
func (c *client) ledgerSize(ctx context.Context) (n int64, err error) {
	err = c.retry(ctx, func() (err error) {
		n, err = c.ledgerSizeOnce(ctx)
		return err
	})
	return n, err
}

func (c *client) ledgerSizeOnce(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/ledger/checkpoint", nil), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /api/v1/ledger/checkpoint: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return 0, &apiError{Method: "GET", Path: "/api/v1/ledger/checkpoint", Status: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 {
		return 0, fmt.Errorf("GET /api/v1/ledger/checkpoint: %q is not a checkpoint", clip(string(b)))
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("GET /api/v1/ledger/checkpoint: size %q is not a number", clip(lines[1]))
	}
	return n, nil
}

// ledgerReadings reads the readable reading entries of the ledger from
// index from on, grouped by ledgerKey(site, asset): asset ids repeat
// across sites, so the site must tell them apart.
func (c *client) ledgerReadings(ctx context.Context, from int64) (map[string][]cim.Reading, error) {
	const page = 10000
	out := map[string][]cim.Reading{}
	for {
		var body struct {
			Entries []struct {
				Kind     string `json:"kind"`
				Site     string `json:"site"`
				Readable *struct {
					Asset    string  `json:"asset"`
					Quantity string  `json:"quantity"`
					Phase    string  `json:"phase"`
					Time     int64   `json:"time"`
					Value    float64 `json:"value"`
				} `json:"readable"`
			} `json:"entries"`
		}
		q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(from+page, 10)}}
		if err := c.do(ctx, http.MethodGet, "/api/v1/ledger/entries", q, nil, &body); err != nil {
			return nil, err
		}
		for _, e := range body.Entries {
			if e.Kind != "reading" || e.Readable == nil {
				continue
			}
			r := e.Readable
			ph, err := cim.ParsePhase(r.Phase)
			if err != nil {
				continue
			}
			k := ledgerKey(e.Site, r.Asset)
			out[k] = append(out[k], cim.Reading{SeriesKey: cim.SeriesKey{Asset: r.Asset, Quantity: r.Quantity, Phase: ph},
				Point: cim.Point{Time: r.Time, Value: r.Value}})
		}
		if len(body.Entries) < page {
			return out, nil
		}
		from += page
	}
}

// ledgerKey keys ledgerReadings' groups.
func ledgerKey(site, asset string) string { return site + "\x00" + asset }

// arrival is one reading seen on the live feed.
type arrival struct {
	series cim.SeriesKey
	time   int64 // the reading's time, Unix ms
	at     time.Time
}

// streamEvent is the data of an SSE "reading" event.
type streamEvent struct {
	Asset    string  `json:"asset"`
	Quantity string  `json:"quantity"`
	Phase    string  `json:"phase"`
	Time     int64   `json:"time"`
	Value    float64 `json:"value"`
}

// stream subscribes to GET /api/v1/stream of a site and calls fn for each
// reading as it arrives, until ctx ends or the stream breaks. connected is
// called once the platform answered 200.
func (c *client) stream(ctx context.Context, site string, now func() time.Time, connected func(), fn func(arrival), dropped func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/api/v1/stream", url.Values{"site": {site}}), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.live.Do(req)
	if err != nil {
		return fmt.Errorf("GET /api/v1/stream?site=%s: %w", site, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &apiError{Method: "GET", Path: "/api/v1/stream?site=" + site, Status: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	connected()
	return readSSE(resp.Body, func(event, data string) {
		if event == "dropped" {
			dropped() // the platform dropped readings for this slow subscriber
			return
		}
		if event != "reading" {
			return
		}
		at := now()
		var e streamEvent
		if json.Unmarshal([]byte(data), &e) != nil {
			return
		}
		ph, err := cim.ParsePhase(e.Phase)
		if err != nil {
			return
		}
		fn(arrival{series: cim.SeriesKey{Asset: e.Asset, Quantity: e.Quantity, Phase: ph}, time: e.Time, at: at})
	})
}

// follow keeps a site's live feed open until ctx ends: a stream that
// breaks or cannot be opened (the platform away) is opened again after a
// backoff from minBackoff doubling to maxBackoff, which starts over once
// the platform answered. failed hears each error.
func (c *client) follow(ctx context.Context, site string, now func() time.Time, connected func(), fn func(arrival), dropped func(), failed func(error)) {
	wait := minBackoff
	for ctx.Err() == nil {
		err := c.stream(ctx, site, now, func() {
			wait = minBackoff
			connected()
		}, fn, dropped)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = fmt.Errorf("GET /api/v1/stream?site=%s: the platform ended the stream", site)
		}
		failed(err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// readSSE parses a Server-Sent Events stream, calling fn per event with
// its type ("message" when none) and data lines joined by "\n".
func readSSE(r io.Reader, fn func(event, data string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(data) > 0 {
				if event == "" {
					event = "message"
				}
				fn(event, strings.Join(data, "\n"))
			}
			event, data = "", data[:0]
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}

// truthSource is one truth endpoint: a simulator's GET /truth or a charge
// point's TruthHandler.
type truthSource struct {
	base       string
	chargeID   string // the charge point's id, for a charge point's truth
	http       *http.Client
	knownAsset map[string]bool
}

// probeTruth learns what a truth endpoint is and which assets it knows:
// those with a cycle recorded in the last minute.
func probeTruth(ctx context.Context, base string, hc *http.Client, now time.Time) (*truthSource, error) {
	ts := &truthSource{base: strings.TrimRight(base, "/"), http: hc, knownAsset: map[string]bool{}}
	recs, err := sim.FetchTruth(ctx, ts.base, "", now.Add(-time.Minute), time.Time{})
	if err == nil && len(recs) > 0 {
		for _, r := range recs {
			ts.knownAsset[r.Asset] = true
		}
		return ts, nil
	}
	// A charge point's handler answers any path, /truth included, with
	// its own document: ask it as one before taking an empty answer.
	doc, cerr := ts.chargeTruth(ctx)
	if cerr != nil {
		if err == nil {
			return ts, nil // a simulator that recorded nothing yet
		}
		return nil, fmt.Errorf("truth endpoint %s answers neither as a simulator (%v) nor as a charge point (%v)", base, err, cerr)
	}
	ts.chargeID = doc.ChargePoint
	ts.knownAsset[cmp.Or(doc.Asset, doc.ChargePoint)] = true
	return ts, nil
}

// chargeDoc is the part of a charge point's truth the runner reads.
type chargeDoc struct {
	ChargePoint string                   `json:"chargePoint"`
	Asset       string                   `json:"asset"` // "" from a charger that files under its id
	MeterValues []chargepoint.MeterValue `json:"meterValues"`
}

func (ts *truthSource) chargeTruth(ctx context.Context) (*chargeDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.base+"/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := ts.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/: %s", ts.base, resp.Status)
	}
	var doc chargeDoc
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("GET %s/: %w", ts.base, err)
	}
	if doc.ChargePoint == "" {
		return nil, fmt.Errorf("GET %s/: no chargePoint in the reply", ts.base)
	}
	return &doc, nil
}

// cycles returns what the asset's device held in the cycles starting in
// [from, to). A charge point's meter values become one record each per
// time sent, lasting a millisecond: the reading carries that very time.
func (ts *truthSource) cycles(ctx context.Context, asset string, from, to time.Time) ([]sim.CycleRecord, error) {
	if ts.chargeID == "" {
		return sim.FetchTruth(ctx, ts.base, asset, from, to)
	}
	doc, err := ts.chargeTruth(ctx)
	if err != nil {
		return nil, err
	}
	byTime := map[int64]int{}
	var out []sim.CycleRecord
	for _, m := range doc.MeterValues {
		if m.Quantity == "" || m.Time.Before(from) || !m.Time.Before(to) {
			continue
		}
		ms := m.Time.UnixMilli()
		i, ok := byTime[ms]
		if !ok {
			i = len(out)
			byTime[ms] = i
			t := cim.TimeOf(ms)
			out = append(out, sim.CycleRecord{Asset: asset, Cycle: ms, Start: t, End: t.Add(time.Millisecond)})
		}
		out[i].Values = append(out[i].Values, sim.HeldValue{Quantity: m.Quantity, Phase: m.CIMPhase, Value: m.Canonical})
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

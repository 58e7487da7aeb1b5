// Package audit checks a gridlink platform's energy ledger from outside,
// over the platform's HTTP API only: the verifier (Client.Verify) rebuilds
// the Merkle tree from the log's entries and compares it with the signed
// checkpoint, checks the gateways' batch signatures and compares the
// ledger with the readings and 15-minute energy the platform serves; the
// witness (Client.Witness) cosigns checkpoints that extend the last one it
// cosigned, so that a platform that forks or rolls back its log is caught.
//
// Everything the platform answers is outside data: a reply that does not
// parse is an error naming the endpoint and the field, never a panic.
package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxPage is the most entries one GET /api/v1/ledger/entries returns.
const MaxPage = 10_000

// maxReply bounds a reply: a page of entries with their data is a few MB.
const maxReply = 64 << 20

// Client talks to one platform's ledger API.
type Client struct {
	// BaseURL is the platform's base URL, e.g. https://cdmp.example.org.
	BaseURL string
	// Key is an API key, sent as a bearer token when not "". Entries'
	// data are only served to a key that may read the entry's site.
	Key string
	// HTTP sends the requests; nil means a client with a 60 s timeout.
	HTTP *http.Client
}

// Entry is one entry as GET /api/v1/ledger/entries serves it. Data is nil
// when the key may not read the entry's site or the entry was erased.
type Entry struct {
	Index    int64
	Kind     string
	Site     string
	LeafHash tlog.Hash
	Data     []byte
	Readable *Readable
}

// Readable is an entry's readable record in the platform's store: the
// asset its pseudonym stands for, and the reading (or energy interval).
type Readable struct {
	Asset, Quantity string
	Phase           string // "" for the total phase
	Time            int64  // Unix ms; an energy interval's start
	Value           float64
}

// Signer is a registered signer of a site.
type Signer struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key"`
}

// Point is a stored reading or an aggregate.
type Point struct {
	Time  int64
	Value float64
	Null  bool // the platform sent null (no finite value)
}

// SeriesQuery selects one series of GET /api/v1/readings; Step and Agg
// ask for aggregates ("15m", "delta").
type SeriesQuery struct {
	Site, Asset, Quantity, Phase string
	From, To                     int64
	Step, Agg                    string
}

// APIError is a reply other than 200.
type APIError struct {
	Method, Path string
	Status       int
	Code, Msg    string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}

// do sends a request and returns the body of a 200 reply.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, ctype string) ([]byte, error) {
	base, err := url.Parse(c.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("platform URL %q: want http:// or https:// and a host", c.BaseURL)
	}
	u := base.JoinPath(strings.Split(strings.TrimPrefix(path, "/"), "/")...)
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", "gridlink-ledger-audit")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if len(raw) > maxReply {
		return nil, fmt.Errorf("%s %s: reply larger than %d bytes", method, path, maxReply)
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var er struct{ Error, Code string }
		if json.Unmarshal(raw, &er) == nil && er.Error != "" {
			e.Msg, e.Code = er.Error, er.Code
		} else {
			e.Msg = clip(string(bytes.TrimSpace(raw)))
		}
		return nil, e
	}
	return raw, nil
}

// LogKey returns the log's public key as the platform serves it. Trusting
// it is trusting the platform: pin the key instead where possible.
func (c *Client) LogKey(ctx context.Context) (string, error) {
	raw, err := c.do(ctx, http.MethodGet, "/api/v1/ledger/key", nil, nil, "")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}

// Checkpoint returns the latest signed checkpoint note, not yet verified.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/api/v1/ledger/checkpoint", nil, nil, "")
}

// Consistency returns the proof that the tree of size from is a prefix of
// the tree of size to.
func (c *Client) Consistency(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	const path = "/api/v1/ledger/consistency"
	raw, err := c.do(ctx, http.MethodGet, path, url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}, nil, "")
	if err != nil {
		return nil, err
	}
	return parseConsistency(raw, from, to)
}

// parseConsistency reads {"from":N1,"to":N2,"proof":[b64...]}.
func parseConsistency(raw []byte, from, to int64) (tlog.TreeProof, error) {
	var r struct {
		From, To *int64
		Proof    []string
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("consistency reply: %w", err)
	}
	if r.From == nil || r.To == nil || *r.From != from || *r.To != to {
		return nil, fmt.Errorf("consistency reply: asked for %d → %d, the reply is for %s → %s", from, to, optInt(r.From), optInt(r.To))
	}
	if len(r.Proof) > 128 {
		return nil, fmt.Errorf("consistency reply: %d hashes, more than any tree needs", len(r.Proof))
	}
	p := make(tlog.TreeProof, len(r.Proof))
	for i, s := range r.Proof {
		h, err := parseHash(s)
		if err != nil {
			return nil, fmt.Errorf("consistency reply: proof[%d]: %w", i, err)
		}
		p[i] = h
	}
	return p, nil
}

func optInt(p *int64) string {
	if p == nil {
		return "missing"
	}
	return strconv.FormatInt(*p, 10)
}

// Entries returns the entries with from <= index < to (to-from at most
// MaxPage), in the order the platform serves them.
func (c *Client) Entries(ctx context.Context, from, to int64) ([]Entry, error) {
	if from < 0 || to < from || to-from > MaxPage {
		return nil, fmt.Errorf("entries %d to %d: want 0 <= from <= to, at most %d", from, to, MaxPage)
	}
	raw, err := c.do(ctx, http.MethodGet, "/api/v1/ledger/entries", url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}, nil, "")
	if err != nil {
		return nil, err
	}
	return parseEntries(raw)
}

// entryJSON is an entry of the entries reply, before checking.
type entryJSON struct {
	Index    *int64        `json:"index"`
	Kind     string        `json:"kind"`
	Site     string        `json:"site"`
	LeafHash string        `json:"leaf_hash"`
	Data     *string       `json:"data"`
	Readable *readableJSON `json:"readable"`
}

// readableJSON is an entry's readable record, before checking.
type readableJSON struct {
	Asset, Quantity, Phase string
	Time                   *int64
	Value                  *float64
}

// parseEntries reads {"entries":[{"index","kind","site","leaf_hash","data","readable"}]}.
func parseEntries(raw []byte) ([]Entry, error) {
	var r struct {
		Entries *[]entryJSON `json:"entries"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("entries reply: %w", err)
	}
	if r.Entries == nil {
		return nil, errors.New(`entries reply: member "entries" missing`)
	}
	out := make([]Entry, 0, len(*r.Entries))
	for i, ej := range *r.Entries {
		e, err := ej.entry()
		if err != nil {
			return nil, fmt.Errorf("entries reply: entries[%d]: %w", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func (ej entryJSON) entry() (Entry, error) {
	if ej.Index == nil || *ej.Index < 0 {
		return Entry{}, fmt.Errorf("index %s: want a non-negative integer", optInt(ej.Index))
	}
	e := Entry{Index: *ej.Index, Kind: ej.Kind, Site: ej.Site}
	if e.Kind == "" {
		return Entry{}, fmt.Errorf("entry %d: kind missing", e.Index)
	}
	h, err := parseHash(ej.LeafHash)
	if err != nil {
		return Entry{}, fmt.Errorf("entry %d: leaf_hash: %w", e.Index, err)
	}
	e.LeafHash = h
	if ej.Data != nil {
		if e.Data, err = base64.StdEncoding.DecodeString(*ej.Data); err != nil {
			return Entry{}, fmt.Errorf("entry %d: data: not base64", e.Index)
		}
		if e.Data == nil {
			e.Data = []byte{}
		}
	}
	if rd := ej.Readable; rd != nil {
		if rd.Time == nil || rd.Value == nil {
			return Entry{}, fmt.Errorf("entry %d: readable: time or value missing", e.Index)
		}
		if rd.Phase == "total" {
			rd.Phase = ""
		}
		e.Readable = &Readable{Asset: rd.Asset, Quantity: rd.Quantity, Phase: rd.Phase, Time: *rd.Time, Value: *rd.Value}
	}
	return e, nil
}

// parseHash reads a base64 SHA-256 hash.
func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("%q is not 32 bytes of base64", clip(s))
	}
	copy(h[:], b)
	return h, nil
}

// Signers returns the registered signers of a site (an admin key's view).
func (c *Client) Signers(ctx context.Context, site string) ([]Signer, error) {
	raw, err := c.do(ctx, http.MethodGet, "/api/v1/sites/"+url.PathEscape(site)+"/signers", nil, nil, "")
	if err != nil {
		return nil, err
	}
	var r struct {
		Signers *[]Signer `json:"signers"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("signers of site %s: %w", site, err)
	}
	if r.Signers == nil {
		return nil, fmt.Errorf(`signers of site %s: member "signers" missing`, site)
	}
	return *r.Signers, nil
}

// Series returns the points of one series (raw, or aggregated with Step
// and Agg) by time.
func (c *Client) Series(ctx context.Context, sq SeriesQuery) ([]Point, error) {
	phase := sq.Phase
	if phase == "" {
		phase = "total"
	}
	q := url.Values{"site": {sq.Site}, "asset": {sq.Asset}, "quantity": {sq.Quantity}, "phase": {phase},
		"from": {strconv.FormatInt(sq.From, 10)}, "to": {strconv.FormatInt(sq.To, 10)}}
	if sq.Step != "" {
		q.Set("step", sq.Step)
		q.Set("agg", sq.Agg)
	}
	raw, err := c.do(ctx, http.MethodGet, "/api/v1/readings", q, nil, "")
	if err != nil {
		return nil, err
	}
	pts, err := parseSeries(raw, sq)
	if err != nil {
		return nil, fmt.Errorf("readings of %s %s %s: %w", sq.Asset, sq.Quantity, phase, err)
	}
	return pts, nil
}

// parseSeries reads {"series":[{"site","asset","quantity","phase","points":[[ms,v],...]}]}
// and keeps the points of the series asked for.
func parseSeries(raw []byte, sq SeriesQuery) ([]Point, error) {
	var r struct {
		Series *[]struct {
			Site, Asset, Quantity, Phase string
			Points                       []json.RawMessage
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("readings reply: %w", err)
	}
	if r.Series == nil {
		return nil, errors.New(`readings reply: member "series" missing`)
	}
	var out []Point
	for i, s := range *r.Series {
		if s.Phase == "total" {
			s.Phase = ""
		}
		if s.Site != sq.Site || s.Asset != sq.Asset || s.Quantity != sq.Quantity || s.Phase != sq.Phase {
			continue
		}
		for j, pr := range s.Points {
			var pair []json.RawMessage
			if err := json.Unmarshal(pr, &pair); err != nil || len(pair) != 2 {
				return nil, fmt.Errorf("readings reply: series[%d].points[%d]: want [time, value]", i, j)
			}
			var p Point
			if err := json.Unmarshal(pair[0], &p.Time); err != nil {
				return nil, fmt.Errorf("readings reply: series[%d].points[%d]: time %s is not Unix ms", i, j, clip(string(pair[0])))
			}
			if string(pair[1]) == "null" {
				p.Null = true
			} else if err := json.Unmarshal(pair[1], &p.Value); err != nil || math.IsInf(p.Value, 0) {
				return nil, fmt.Errorf("readings reply: series[%d].points[%d]: value %s is not a number", i, j, clip(string(pair[1])))
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Cosign posts a cosigned checkpoint and returns the note the platform
// stored (with every cosignature it holds).
func (c *Client) Cosign(ctx context.Context, cosigned []byte) ([]byte, error) {
	return c.do(ctx, http.MethodPost, "/api/v1/ledger/cosign", nil, cosigned, "text/plain; charset=utf-8")
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

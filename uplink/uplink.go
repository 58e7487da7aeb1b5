// Package uplink forwards the gateway's durable queue (package queue) to the
// platform's batch API, POST /api/v1/batches?site=S, as gzip-compressed
// NDJSON with a bearer API key. A batch is acknowledged to the queue only
// when the platform answers 200, which it does once the readings are
// durable; until then the same batch is retried:
//
//   - 429 and 503: after the Retry-After header's wait (seconds or an HTTP
//     date, capped at MaxRetryAfter), else after a backoff;
//   - other 5xx, network errors and timeouts: exponential backoff with
//     jitter between MinBackoff and MaxBackoff;
//   - 401 and 403: state "unauthorized", retried every MaxBackoff, the
//     readings kept until a valid key is configured;
//   - 400, 413 and 415, refusals of the whole body that should not happen:
//     the batch is split in halves until the poison reading is alone, which
//     is then dropped, counted as rejected and logged with the reason;
//   - 422 with code bad_signature or unsigned: the platform refused the
//     batch's ledger signature (see Config.Sign). State "signature_refused",
//     retried every MaxBackoff, the readings kept until the signer's key is
//     registered or the gateway's key fixed.
//
// # Signed batches
//
// With Config.Sign set, every request body is signed for the energy
// ledger (package ledger): Sign gets the body's readings in body order and
// returns the Gridlink-Ledger-Signature header. A batch split to isolate a
// poison reading is signed again part by part, as is each live batch.
//
// Rows that the platform refuses inside a 200 reply (an unknown asset, an
// impossible value) are counted as rejected, the first few of each batch are
// logged with the platform's reason, and they are not retried. Values that
// JSON cannot carry (NaN, ±Inf) are rejected the same way before sending.
//
// # Live readings during a backlog
//
// After an outage the queue may hold hours of readings. So that the platform
// still sees the present while the backlog drains, the gateway hands each
// appended batch to Notify as well; the uplink keeps the newest of them in
// a small bounded ring and, while the backlog is larger than one batch, sends
// a batch of those live readings before each backlog batch. The live
// readings stay in the queue and are sent again, in order, when the backlog
// reaches them. That is harmless: the platform's writes are idempotent, so
// the second copy only counts as "duplicate". A failed live batch is not
// retried; the queue still holds it.
package uplink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/queue"
)

// The states of Status.State.
const (
	StateOK           = "ok"           // the last request succeeded (or none was needed yet)
	StateBackoff      = "backoff"      // a server error; waiting to retry
	StateUnauthorized = "unauthorized" // the platform refused the key (401, 403)
	StateRateLimited  = "rate_limited" // 429: waiting as the platform asked
	StateUnreachable  = "unreachable"  // network, TLS or timeout error
	// StateSignatureRefused: the platform refused the batch's ledger
	// signature (422 bad_signature or unsigned).
	StateSignatureRefused = "signature_refused"
)

// SignatureHeader is the header of a batch's ledger signature (the same as
// ledger.SignatureHeader; uplink does not import the ledger).
const SignatureHeader = "Gridlink-Ledger-Signature"

// Defaults of Config.
const (
	DefaultBatchSize  = 5000
	DefaultTimeout    = 60 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// maxReply bounds how much of a reply is read.
const maxReply = 1 << 20

// logRejected is how many refused rows of one batch are logged.
const logRejected = 5

// Config configures an Uplink.
type Config struct {
	// URL is the platform's base URL, e.g. "https://cdmp.example.org".
	URL string
	// Site is the site the readings belong to.
	Site string
	// Key is the API key (scope ingest for the site).
	Key string
	// BatchSize is the most readings per request; zero means 5000.
	BatchSize int
	// LiveBuffer is how many live readings (see Notify) are kept at most;
	// zero means BatchSize.
	LiveBuffer int
	// CAFile is a PEM file of the certificate authorities to trust for
	// HTTPS; empty means the system's roots.
	CAFile string
	// Insecure skips the verification of the platform's certificate. For
	// tests only.
	Insecure bool
	// Timeout bounds one request, reply included; zero means 60 s.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the waits between retries; zero
	// means 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// HTTPClient, if set, sends the requests, and CAFile and Insecure are
	// ignored.
	HTTPClient *http.Client
	// Registerer receives the uplink's metrics; nil means none.
	Registerer prometheus.Registerer
	// Linger is how long after a request a batch that is not full waits
	// for more readings before it is sent: it bounds the requests to about
	// one per Linger while readings trickle in (a gateway on a slow board
	// pays for each request and for each acknowledgement written to its
	// queue). Zero sends at once.
	Linger time.Duration
	// Sign, if set, signs each request for the energy ledger: it gets the
	// body's readings in body order and returns the SignatureHeader value,
	// "" when none of them is a ledger reading. An error refuses the
	// readings as a whole body would be refused (split, then dropped).
	Sign func(rs []cim.Reading) (header string, err error)
}

// Status is the uplink's state for the gateway's status page.
type Status struct {
	State       string    `json:"state"`                 // one of the State constants
	LastError   string    `json:"last_error,omitempty"`  // the last failure, "" after a success
	LastSuccess time.Time `json:"last_success,omitzero"` // when the platform last answered 200
	Sent        int64     `json:"sent"`                  // readings the platform took (live copies included)
	Rejected    int64     `json:"rejected"`              // readings refused and dropped
	Duplicate   int64     `json:"duplicate"`             // readings the platform already held
	Backlog     int64     `json:"backlog"`               // readings waiting in the queue
	RetryAt     time.Time `json:"retry_at,omitzero"`     // when the next attempt is due while waiting; zero otherwise
}

// Uplink forwards a queue to the platform.
type Uplink struct {
	cfg      Config
	q        *queue.Queue
	log      *slog.Logger
	client   *http.Client
	endpoint string
	met      *metrics
	running  atomic.Bool
	enc      encoder // used by Run only

	notify chan struct{} // a token when Notify adds live readings

	liveMu sync.Mutex
	live   []cim.Reading // newest last, at most cfg.LiveBuffer

	mu sync.Mutex
	st Status
}

// New checks the configuration and builds an Uplink for q; log may be nil.
func New(cfg Config, q *queue.Queue, log *slog.Logger) (*Uplink, error) {
	if q == nil {
		return nil, errors.New("uplink: no queue")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("uplink config: URL %q: %w", cfg.URL, err)
	case base.Scheme != "http" && base.Scheme != "https" || base.Host == "":
		return nil, fmt.Errorf("uplink config: URL %q: want http:// or https:// and a host", cfg.URL)
	case cfg.Site == "":
		return nil, errors.New("uplink config: no Site")
	case cfg.Key == "":
		return nil, errors.New("uplink config: no Key")
	case cfg.BatchSize < 0 || cfg.LiveBuffer < 0 || cfg.Timeout < 0 || cfg.MinBackoff < 0 || cfg.MaxBackoff < 0:
		return nil, errors.New("uplink config: negative BatchSize, LiveBuffer, Timeout or backoff")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.LiveBuffer == 0 {
		cfg.LiveBuffer = cfg.BatchSize
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("uplink config: MaxBackoff %s below MinBackoff %s", cfg.MaxBackoff, cfg.MinBackoff)
	}
	client := cfg.HTTPClient
	if client == nil {
		if client, err = newClient(cfg, log); err != nil {
			return nil, err
		}
	}
	ep := base.JoinPath("api", "v1", "batches")
	ep.RawQuery = url.Values{"site": {cfg.Site}}.Encode()
	u := &Uplink{
		cfg: cfg, q: q, log: log, client: client, endpoint: ep.String(),
		notify: make(chan struct{}, 1),
		st:     Status{State: StateOK},
	}
	if cfg.Registerer != nil {
		if u.met, err = newMetrics(cfg.Registerer, q); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// newClient builds the HTTP client for the configured trust.
func newClient(cfg Config, log *slog.Logger) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("uplink config: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("uplink config: CAFile %s: no PEM certificate in it", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.Insecure {
		log.Warn("uplink: the platform's certificate is not verified (Insecure)")
		tc.InsecureSkipVerify = true
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

// Notify hands the uplink readings just appended to the queue, so that they
// can overtake a backlog (see the package comment). It does not block.
func (u *Uplink) Notify(rs []cim.Reading) {
	if len(rs) == 0 {
		return
	}
	u.liveMu.Lock()
	u.live = append(u.live, rs...)
	if over := len(u.live) - u.cfg.LiveBuffer; over > 0 {
		u.live = append(u.live[:0], u.live[over:]...)
	}
	u.liveMu.Unlock()
	select {
	case u.notify <- struct{}{}:
	default:
	}
}

// takeLive removes and returns up to n of the newest live readings, oldest
// first.
func (u *Uplink) takeLive(n int) []cim.Reading {
	u.liveMu.Lock()
	defer u.liveMu.Unlock()
	if len(u.live) == 0 {
		return nil
	}
	from := max(0, len(u.live)-n)
	out := append([]cim.Reading(nil), u.live[from:]...)
	u.live = u.live[:0]
	return out
}

// Status returns the current state and counters.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	st.Backlog = u.q.Len()
	return st
}

// Run sends the queue to the platform until ctx ends, and then returns nil;
// it returns an error only when the queue was closed under it. Only one Run
// may be active at a time.
func (u *Uplink) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return errors.New("uplink: Run is already running")
	}
	defer u.running.Store(false)
	failures := 0
	var lastSend time.Time
	for ctx.Err() == nil {
		if u.cfg.Linger > 0 && u.q.Len() < int64(u.cfg.BatchSize) {
			if wait := time.Until(lastSend.Add(u.cfg.Linger)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
				continue
			}
		}
		wake := u.q.Appended()
		if u.q.Len() > int64(u.cfg.BatchSize) {
			if live := u.takeLive(u.cfg.BatchSize); len(live) > 0 {
				u.sendLive(ctx, live)
			}
		} else {
			u.takeLive(0) // the next batches hold them anyway
		}
		rs, c, err := u.q.Peek(u.cfg.BatchSize)
		if errors.Is(err, queue.ErrClosed) {
			return fmt.Errorf("uplink: %w", err)
		}
		if err != nil {
			failures++
			u.log.Error("uplink: read queue", "err", err)
			u.wait(ctx, StateBackoff, "read queue: "+err.Error(), backoff(failures, u.cfg.MinBackoff, u.cfg.MaxBackoff))
			continue
		}
		if len(rs) == 0 {
			select {
			case <-ctx.Done():
			case <-wake:
			case <-u.notify:
			}
			continue
		}
		lastSend = time.Now()
		if !u.deliver(ctx, rs) {
			break
		}
		if err := u.q.Ack(c); err != nil {
			// They were delivered: at worst they are sent again.
			failures++
			u.log.Error("uplink: acknowledge to the queue", "err", err)
			u.wait(ctx, StateBackoff, "acknowledge to queue: "+err.Error(), backoff(failures, u.cfg.MinBackoff, u.cfg.MaxBackoff))
			continue
		}
		failures = 0
	}
	return nil
}

// outcome classifies a reply.
type outcome int

const (
	outOK           outcome = iota
	outPoison               // 400, 413, 415: the body as a whole was refused
	outUnauthorized         // 401, 403
	outRetryAfter           // 429, 503
	outServer               // other 5xx and unexpected statuses
	outNetwork              // no reply
	outCanceled             // ctx ended
	outSignature            // 422 bad_signature or unsigned
)

// result is what one request came to.
type result struct {
	out        outcome
	code       int
	msg        string        // for LastError and the log
	retryAfter time.Duration // with hasRetry, for outRetryAfter
	hasRetry   bool
	reply      batchReply // for outOK
}

// batchReply is the platform's answer to a batch.
type batchReply struct {
	Rows      int64 `json:"rows"`
	Accepted  int64 `json:"accepted"`
	Duplicate int64 `json:"duplicate"`
	Corrected int64 `json:"corrected"`
	Rejected  int64 `json:"rejected"`
	Errors    []struct {
		Line   int    `json:"line"`
		Field  string `json:"field"`
		Value  string `json:"value"`
		Reason string `json:"reason"`
	} `json:"errors"`
	ErrorsTruncated int64 `json:"errors_truncated"`
}

// deliver sends rs until the platform has taken them or refused them for
// good. It returns false when ctx ended first.
func (u *Uplink) deliver(ctx context.Context, rs []cim.Reading) bool {
	kept, body, bad := u.enc.encode(rs)
	for _, r := range bad {
		u.reject(r, "value", strconv.FormatFloat(r.Value, 'g', -1, 64), "not a finite number")
	}
	if len(kept) == 0 {
		return true
	}
	sig, signErr := u.sign(kept)
	failures := 0
	for {
		var res result
		if signErr != nil {
			res = result{out: outPoison, msg: signErr.Error()}
		} else {
			res = u.post(ctx, body, sig)
		}
		var state string
		var d time.Duration
		switch res.out {
		case outOK:
			u.succeeded(res.reply, kept, failures)
			return true
		case outCanceled:
			return false
		case outPoison:
			if len(kept) == 1 {
				u.reject(kept[0], "", "", res.msg)
				return true
			}
			u.log.Warn("uplink: the platform refused a batch as a whole; splitting it to find the reading at fault",
				"readings", len(kept), "err", res.msg)
			h := len(kept) / 2
			return u.deliver(ctx, kept[:h]) && u.deliver(ctx, kept[h:])
		case outUnauthorized:
			state, d = StateUnauthorized, u.cfg.MaxBackoff
		case outSignature:
			// Permanent until someone fixes the key: said once, then
			// retried quietly.
			d = u.cfg.MaxBackoff
			if u.Status().State != StateSignatureRefused {
				u.log.Error("uplink: the platform refused the batch's ledger signature; the readings stay queued until the signer's key is registered for the site",
					"err", res.msg, "readings", len(kept), "retry_every", d)
			}
			u.met.signatureRefused()
			if !u.wait(ctx, StateSignatureRefused, res.msg, d) {
				return false
			}
			continue
		case outRetryAfter:
			failures++
			state, d = StateBackoff, backoff(failures, u.cfg.MinBackoff, u.cfg.MaxBackoff)
			if res.code == http.StatusTooManyRequests {
				state = StateRateLimited
			}
			if res.hasRetry && res.retryAfter > 0 { // "0" would make a busy loop
				d = res.retryAfter
			}
		case outServer:
			failures++
			state, d = StateBackoff, backoff(failures, u.cfg.MinBackoff, u.cfg.MaxBackoff)
		case outNetwork:
			failures++
			state, d = StateUnreachable, backoff(failures, u.cfg.MinBackoff, u.cfg.MaxBackoff)
		}
		if failures <= 1 || state != u.Status().State {
			u.log.Warn("uplink: delivery failed; retrying", "state", state, "err", res.msg, "retry_in", d, "readings", len(kept))
		}
		if !u.wait(ctx, state, res.msg, d) {
			return false
		}
	}
}

// sendLive makes one attempt to send live readings.
func (u *Uplink) sendLive(ctx context.Context, rs []cim.Reading) {
	kept, body, _ := u.enc.encode(rs) // bad values are rejected when the backlog reaches them
	if len(kept) == 0 {
		return
	}
	sig, err := u.sign(kept)
	if err != nil {
		u.log.Debug("uplink: live batch not signed; the queue still holds it", "err", err)
		return
	}
	res := u.post(ctx, body, sig)
	if res.out != outOK {
		u.log.Debug("uplink: live batch not delivered; the queue still holds it", "err", res.msg)
		return
	}
	u.succeeded(res.reply, kept, 0)
}

// sign returns the ledger signature header of a body's readings, "" when
// the uplink does not sign.
func (u *Uplink) sign(rs []cim.Reading) (string, error) {
	if u.cfg.Sign == nil {
		return "", nil
	}
	h, err := u.cfg.Sign(rs)
	if err != nil {
		return "", fmt.Errorf("sign the batch for the ledger: %w", err)
	}
	return h, nil
}

// post sends one body, with its ledger signature header unless sig is "",
// and classifies the reply.
func (u *Uplink) post(ctx context.Context, body []byte, sig string) result {
	rctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.endpoint, bytes.NewReader(body))
	if err != nil {
		return result{out: outNetwork, msg: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.cfg.Key)
	req.Header.Set("User-Agent", "gridlink-uplink")
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	start := time.Now()
	resp, err := u.client.Do(req)
	if err != nil {
		u.met.observe("error", time.Since(start))
		if ctx.Err() != nil {
			return result{out: outCanceled, msg: ctx.Err().Error()}
		}
		return result{out: outNetwork, msg: describeNetError(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	u.met.observe(strconv.Itoa(resp.StatusCode), time.Since(start))
	if err != nil {
		if ctx.Err() != nil {
			return result{out: outCanceled, msg: ctx.Err().Error()}
		}
		// A 200 whose reply was cut off cannot be trusted as one.
		return result{out: outNetwork, code: resp.StatusCode, msg: fmt.Sprintf("read reply (HTTP %d): %v", resp.StatusCode, err)}
	}
	res := result{code: resp.StatusCode}
	switch c := resp.StatusCode; {
	case c == http.StatusOK:
		res.out = outOK
		if err := json.Unmarshal(raw, &res.reply); err != nil {
			// The platform stored the batch; only the counts are lost.
			u.log.Warn("uplink: reply to a batch not understood", "err", err, "body", clip(raw))
			res.reply = batchReply{}
		}
		return res
	case c == http.StatusBadRequest || c == http.StatusRequestEntityTooLarge || c == http.StatusUnsupportedMediaType:
		res.out = outPoison
	case c == http.StatusUnauthorized || c == http.StatusForbidden:
		res.out = outUnauthorized
	case c == http.StatusUnprocessableEntity && signatureRefused(raw):
		res.out = outSignature
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		res.out = outRetryAfter
		res.retryAfter, res.hasRetry = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		res.out = outServer
	}
	res.msg = errorMessage(resp.StatusCode, raw)
	return res
}

// errorMessage renders an error reply, {"error": "...", "code": "..."}
// from the platform or whatever a proxy said.
func errorMessage(code int, raw []byte) string {
	var e struct{ Error, Code string }
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return fmt.Sprintf("HTTP %d: %s (%s)", code, e.Error, e.Code)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		return fmt.Sprintf("HTTP %d %s: %s", code, http.StatusText(code), clip(raw))
	}
	return fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
}

// signatureRefused reports whether a 422 reply refuses the batch's ledger
// signature (codes bad_signature and unsigned); other 422s are server
// errors to retry.
func signatureRefused(raw []byte) bool {
	var e struct{ Code string }
	return json.Unmarshal(raw, &e) == nil && (e.Code == "bad_signature" || e.Code == "unsigned")
}

// describeNetError explains a failed request, pointing at CAFile when the
// platform's certificate is not trusted.
func describeNetError(err error) string {
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ce) || errors.As(err, &ua) {
		return "the platform's certificate is not trusted (set CAFile to its CA): " + err.Error()
	}
	return err.Error()
}

func clip(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// succeeded records a 200 for the readings sent.
func (u *Uplink) succeeded(rep batchReply, sent []cim.Reading, failures int) {
	for i, e := range rep.Errors {
		if i == logRejected {
			u.log.Warn("uplink: more readings refused", "count", rep.Rejected-logRejected)
			break
		}
		args := []any{"field", e.Field, "value", e.Value, "reason", e.Reason}
		if e.Line >= 1 && e.Line <= len(sent) {
			r := sent[e.Line-1]
			args = append(args, "asset", r.Asset, "quantity", r.Quantity, "phase", r.Phase.String(), "time", cim.TimeOf(r.Time))
		}
		u.log.Warn("uplink: the platform refused a reading; dropped", args...)
	}
	took := rep.Accepted + rep.Duplicate + rep.Corrected
	if rep.Rows == 0 && rep.Rejected == 0 {
		took = int64(len(sent)) // reply not understood
	}
	if failures > 0 {
		u.log.Info("uplink: delivering again", "after_failures", failures)
	}
	u.mu.Lock()
	u.st.State, u.st.LastError, u.st.RetryAt = StateOK, "", time.Time{}
	u.st.LastSuccess = time.Now()
	u.st.Sent += took
	u.st.Duplicate += rep.Duplicate
	u.st.Rejected += rep.Rejected
	u.mu.Unlock()
	u.met.add(took, rep.Duplicate, rep.Rejected)
}

// reject drops one reading the platform will not take.
func (u *Uplink) reject(r cim.Reading, field, value, reason string) {
	u.log.Warn("uplink: reading refused; dropped", "asset", r.Asset, "quantity", r.Quantity, "phase", r.Phase.String(),
		"time", cim.TimeOf(r.Time), "field", field, "value", value, "reason", reason)
	u.mu.Lock()
	u.st.Rejected++
	u.mu.Unlock()
	u.met.add(0, 0, 1)
}

// wait records a failure and sleeps d; it returns false when ctx ended.
func (u *Uplink) wait(ctx context.Context, state, msg string, d time.Duration) bool {
	u.mu.Lock()
	u.st.State, u.st.LastError, u.st.RetryAt = state, msg, time.Now().Add(d)
	u.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

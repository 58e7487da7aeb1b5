package platform

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ingest"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// This file connects the platform to the energy ledger (package ledger):
// which readings must be signed, the check of their signature, their
// append to the log, and the ledger's HTTP API.

// LedgerConfig is what SetLedger connects the platform to.
type LedgerConfig struct {
	// Log is the Merkle log. Required.
	Log *ledger.Log
	// Key is the log key: it signs the readings the platform takes itself
	// (WriteOwn). Required.
	Key note.Signer
	// PublicKey is the log key's verifier key text
	// ("<name>+<hash>+<base64>"), served at GET /api/v1/ledger/key.
	// Required; it must belong to Key.
	PublicKey string
	// MaxHeld bounds the readings of ledger assets one request may carry,
	// held in memory until its signature is checked; zero means 200,000.
	MaxHeld int
}

// DefaultMaxHeld is LedgerConfig.MaxHeld's default.
const DefaultMaxHeld = 200_000

// ledgerState is a Server's ledger, set once by SetLedger.
type ledgerState struct {
	log     *ledger.Log
	st      store.Ledger
	key     note.Signer
	vkey    string
	maxHeld int
	assets  *ledgerAssets
}

// SetLedger connects the platform to an energy ledger. From then on the
// readings of a site's ledger assets (cim.Asset.Ledger, quantities other
// than health data) are stored only when signed by a registered signer of
// the site, and are appended to the log before the request is answered;
// the ledger routes answer instead of 404. The server's store must keep
// the ledger (implement store.Ledger). Without a ledger every reading is
// stored as before.
func (s *Server) SetLedger(cfg LedgerConfig) error {
	st, ok := s.store.(store.Ledger)
	switch {
	case cfg.Log == nil:
		return errors.New("platform ledger: no log")
	case cfg.Key == nil:
		return errors.New("platform ledger: no log key")
	case !ok:
		return fmt.Errorf("platform ledger: the store (%T) keeps no ledger", s.store)
	case cfg.MaxHeld < 0:
		return fmt.Errorf("platform ledger: negative MaxHeld %d", cfg.MaxHeld)
	}
	v, err := note.NewVerifier(strings.TrimSpace(cfg.PublicKey))
	if err != nil {
		return fmt.Errorf("platform ledger: public key %q: %w", clip(cfg.PublicKey), err)
	}
	if v.Name() != cfg.Key.Name() || v.KeyHash() != cfg.Key.KeyHash() {
		return fmt.Errorf("platform ledger: public key %s is not that of the log key %s", v.Name(), cfg.Key.Name())
	}
	if cfg.MaxHeld == 0 {
		cfg.MaxHeld = DefaultMaxHeld
	}
	s.ledger.Store(&ledgerState{
		log: cfg.Log, st: st, key: cfg.Key, vkey: strings.TrimSpace(cfg.PublicKey),
		maxHeld: cfg.MaxHeld, assets: newLedgerAssets(s.assets.ttl),
	})
	return nil
}

// ledgerAssets caches the ledger assets of each site. An asset PUT through
// this server forgets its site at once; one changed through another node
// is seen within ttl.
type ledgerAssets struct {
	ttl time.Duration

	mu    sync.Mutex
	sites map[string]ledgerSite
	gen   map[string]uint64 // bumped by forget, so a load under way is not kept
}

type ledgerSite struct {
	ids   map[string]struct{} // nil: none
	until time.Time
}

func newLedgerAssets(ttl time.Duration) *ledgerAssets {
	return &ledgerAssets{ttl: ttl, sites: make(map[string]ledgerSite), gen: make(map[string]uint64)}
}

// of returns the ids of the site's ledger assets, loading them with list
// when not cached.
func (c *ledgerAssets) of(ctx context.Context, site string, list func(context.Context, string) ([]cim.Asset, error)) (map[string]struct{}, error) {
	now := time.Now()
	c.mu.Lock()
	ls, ok := c.sites[site]
	gen := c.gen[site]
	c.mu.Unlock()
	if ok && now.Before(ls.until) {
		return ls.ids, nil
	}
	as, err := list(ctx, site)
	if err != nil {
		return nil, fmt.Errorf("list the assets of site %q: %w", site, err)
	}
	var ids map[string]struct{}
	for _, a := range as {
		// CheckLedger: a health sensor marked by other means stays off.
		if a.Ledger && a.CheckLedger() == nil {
			if ids == nil {
				ids = make(map[string]struct{})
			}
			ids[a.ID] = struct{}{}
		}
	}
	c.mu.Lock()
	if c.gen[site] == gen {
		c.sites[site] = ledgerSite{ids: ids, until: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return ids, nil
}

func (c *ledgerAssets) forget(site string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sites, site)
	c.gen[site]++
}

// forgetLedgerAssets is called when an asset of the site changed.
func (s *Server) forgetLedgerAssets(site string) {
	if ls := s.ledger.Load(); ls != nil {
		ls.assets.forget(site)
	}
}

// ledgerFilter tells the readings the ledger takes of one site.
type ledgerFilter struct {
	ids map[string]struct{}
	cat *cim.Catalogue
}

// ledgerFilterOf returns the filter of a site, and false when the site
// has no ledger assets (or the platform no ledger).
func (s *Server) ledgerFilterOf(ctx context.Context, site string) (*ledgerState, ledgerFilter, bool, error) {
	ls := s.ledger.Load()
	if ls == nil {
		return nil, ledgerFilter{}, false, nil
	}
	ids, err := ls.assets.of(ctx, site, s.store.ListAssets)
	if err != nil || len(ids) == 0 {
		return ls, ledgerFilter{}, false, err
	}
	return ls, ledgerFilter{ids: ids, cat: s.cat}, true, nil
}

// takes reports whether the reading goes into the ledger: one of a ledger
// asset, of a quantity that is not health data.
func (f ledgerFilter) takes(r *cim.Reading) bool {
	if _, ok := f.ids[r.Asset]; !ok {
		return false
	}
	q, ok := f.cat.Lookup(r.Quantity)
	return ok && !q.Restricted()
}

func ledgerReading(site string, r *cim.Reading) ledger.Reading {
	return ledger.Reading{Site: site, Asset: r.Asset, Quantity: r.Quantity, Phase: string(r.Phase), Time: r.Time, Value: r.Value}
}

// heldLedger collects the ledger readings of one request, in body order,
// until their signature is checked. The signer signed every reading of its
// ledger assets, so the refused ones count too: by the hash of the form
// the signer signed, at their positions (ledger.Omission).
type heldLedger struct {
	max      int
	readings []cim.Reading     // the valid ones, in body order
	omitted  []ledger.Omission // the refused ones, by position among all
	n        int               // ledger rows, valid and refused
	broken   string            // the first refused ledger row that has no signed form, "" if none
	unread   []string          // rows refused before their asset was read (a few, for the 422 message)
}

// maxUnread bounds heldLedger.unread.
const maxUnread = 3

func newHeldLedger(max int) *heldLedger {
	return &heldLedger{max: max}
}

func (h *heldLedger) full() error {
	return errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge,
		"more than %d readings of ledger assets in one request (the limit); send them in smaller signed batches", h.max)
}

// add holds a valid reading; a 413 when there are too many.
func (h *heldLedger) add(r *cim.Reading) error {
	if h.n >= h.max {
		return h.full()
	}
	h.readings = append(h.readings, *r)
	h.n++
	return nil
}

// refuse counts a refused ledger row: the signed form's hash when it has
// one, else the row is noted as what makes the signature uncheckable.
func (h *heldLedger) refuse(c ledgerCandidate) error {
	if h.n >= h.max {
		return h.full()
	}
	if c.why != "" {
		if h.broken == "" {
			h.broken = c.where() + ": " + c.why
		}
	} else {
		h.omitted = append(h.omitted, ledger.Omission{Pos: int64(h.n), Hash: c.hash})
	}
	h.n++
	return nil
}

// unreadRow notes a row refused before its asset was read: it may have
// been a ledger reading, which the 422 message then says.
func (h *heldLedger) unreadRow(problem string) {
	if len(h.unread) < maxUnread {
		h.unread = append(h.unread, problem)
	}
}

// digest is the batch digest of the held rows: the valid readings and the
// refused ones' hashes in body order. A 400 for a reading that has no
// canonical form (which Normalize should have prevented).
func (h *heldLedger) digest(site string) (*ledger.BatchDigest, error) {
	d := ledger.NewBatchDigest()
	om := h.omitted
	for i := range h.readings {
		for len(om) > 0 && om[0].Pos == int64(d.Count()) {
			d.AddHash(om[0].Hash)
			om = om[1:]
		}
		r := &h.readings[i]
		if err := d.Add(ledgerReading(site, r)); err != nil {
			return nil, errorf(http.StatusBadRequest, CodeInvalidBody, "reading of asset %q, quantity %s at %d: %s", clip(r.Asset), r.Quantity, r.Time, err)
		}
	}
	for _, o := range om {
		d.AddHash(o.Hash)
	}
	return d, nil
}

// ledgerCandidate is a row of a ledger asset as its signer signed it: the
// hash of its canonical form, or why it has none.
type ledgerCandidate struct {
	pos     int
	posKind string
	asset   string
	hash    [32]byte
	why     string
}

func (c ledgerCandidate) where() string {
	at := "line " + strconv.Itoa(c.pos)
	if c.posKind == ingest.PosIndex {
		at = "readings[" + strconv.Itoa(c.pos) + "]"
	}
	return fmt.Sprintf("%s (asset %q)", at, clip(c.asset))
}

// candidate reports whether a row, valid or not, is one the signer signed
// as a ledger reading (as the gateway decides: a ledger asset, a quantity
// not known as health data), and returns it with the hash of its signed
// form. That form is the row canonicalised as Normalize does — the
// quantity's name, the parsed phase, the value in the canonical unit —
// without Normalize's checks of range and time, which are what refused it.
func (f ledgerFilter) candidate(site string, row *ingest.Row) (ledgerCandidate, bool) {
	if _, ok := f.ids[row.Asset]; !ok {
		return ledgerCandidate{}, false
	}
	c := ledgerCandidate{pos: row.Pos, posKind: row.PosKind, asset: row.Asset}
	r := ledger.Reading{Site: site, Asset: row.Asset, Quantity: row.Quantity, Phase: row.Phase, Time: row.Time, Value: row.Value}
	if p, err := cim.ParsePhase(row.Phase); err == nil {
		r.Phase = string(p)
	}
	q, known := f.cat.Lookup(row.Quantity)
	switch {
	case known && q.Restricted():
		return ledgerCandidate{}, false
	case known:
		r.Quantity = q.Name
		if row.RawValue != "" {
			v, err := q.ParseValue(row.RawValue)
			if err != nil {
				c.why = fmt.Sprintf("value %q is not a number", clip(row.RawValue))
				return c, true
			}
			r.Value = v
		}
		v, err := q.Convert(r.Value, row.Unit)
		if err != nil {
			c.why = fmt.Sprintf("unit %q: %s", clip(row.Unit), reasonOf(err))
			return c, true
		}
		r.Value = v
	case row.RawValue != "":
		c.why = fmt.Sprintf("value %q of unknown quantity %q is not a number", clip(row.RawValue), clip(row.Quantity))
		return c, true
	case row.Unit != "":
		c.why = fmt.Sprintf("unit %q of unknown quantity %q cannot be converted", clip(row.Unit), clip(row.Quantity))
		return c, true
	}
	h, err := ledger.ReadingHash(r)
	if err != nil {
		c.why = err.Error()
		return c, true
	}
	c.hash = h
	return c, true
}

// ledgerRows wraps the decoder of a batch upload: it notes, in body
// order, every row the signer signed as a ledger reading, valid or not,
// while ingest.Run validates them and hands the valid ones to the sink.
// Run calls Next from one goroutine; the lists are read after Run.
type ledgerRows struct {
	dec    ingest.Decoder
	f      ledgerFilter
	site   string
	max    int
	rows   []ledgerCandidate
	unread []string
}

// Next implements ingest.Decoder.
func (d *ledgerRows) Next() (ingest.Row, error) {
	row, err := d.dec.Next()
	if err != nil {
		var re *ingest.RowError
		if errors.As(err, &re) && len(d.unread) < maxUnread {
			d.unread = append(d.unread, re.Error())
		}
		return row, err
	}
	if c, ok := d.f.candidate(d.site, &row); ok {
		if len(d.rows) >= d.max {
			return row, (&heldLedger{max: d.max}).full()
		}
		d.rows = append(d.rows, c)
	}
	return row, nil
}

// merge lines the rows up with the valid readings the sink held, in the
// same body order: a row whose hash is not the next held reading's was
// refused.
func (h *heldLedger) merge(site string, rows []ledgerCandidate, unread []string) error {
	valid := h.readings
	h.readings, h.omitted, h.n, h.broken = h.readings[:0], nil, 0, ""
	j := 0
	for _, c := range rows {
		if j < len(valid) && c.why == "" {
			hv, err := ledger.ReadingHash(ledgerReading(site, &valid[j]))
			if err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidBody, "reading of asset %q, quantity %s at %d: %s", clip(valid[j].Asset), valid[j].Quantity, valid[j].Time, err)
			}
			if hv == c.hash {
				h.readings = append(h.readings, valid[j])
				h.n++
				j++
				continue
			}
		}
		if err := h.refuse(c); err != nil {
			return err
		}
	}
	if j != len(valid) {
		// The canonical forms of candidate and ledgerReading disagree:
		// a bug here, not the sender's fault.
		return fmt.Errorf("ledger: %d of the %d valid ledger readings of the upload do not line up with its rows", len(valid)-j, len(valid))
	}
	h.unread = unread
	return nil
}

// verify checks the request's signature header over the held readings of
// site: the signer and signature, or a 422 naming what is wrong.
func (s *Server) verifyLedger(ctx context.Context, ls *ledgerState, site, header string, h *heldLedger) (string, []byte, error) {
	n := h.n
	if h.broken != "" {
		return "", nil, errorf(http.StatusUnprocessableEntity, CodeBadSignature,
			"%s, a reading of a ledger asset, has no form a signer could have signed, so the signature over the %d readings of ledger assets of site %q in this request cannot be checked (a broken sender); none of them was stored",
			h.broken, n, site)
	}
	if strings.TrimSpace(header) == "" {
		return "", nil, errorf(http.StatusUnprocessableEntity, CodeUnsigned,
			"%d readings of ledger assets of site %q are not signed: header %s is missing (signer of site %q expected, signing these %d readings in body order); none of them was stored",
			n, site, ledger.SignatureHeader, site, n)
	}
	signer, sig, err := ledger.ParseSignatureHeader(header)
	if err != nil {
		return "", nil, errorf(http.StatusUnprocessableEntity, CodeBadSignature,
			"%s; %d readings of ledger assets of site %q refused, none of them was stored", err, n, site)
	}
	owner, pub, err := ls.st.Signer(ctx, signer)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && owner != site:
		return "", nil, errorf(http.StatusUnprocessableEntity, CodeBadSignature,
			"signer %q is not registered for site %q (POST /api/v1/sites/%s/signers); %d readings of ledger assets refused, none of them was stored",
			signer, site, site, n)
	case err != nil:
		return "", nil, fmt.Errorf("look up signer %q: %w", signer, err)
	}
	v, err := note.NewVerifier(string(pub))
	if err != nil {
		return "", nil, fmt.Errorf("stored public key of signer %q: %w", signer, err)
	}
	d, err := h.digest(site)
	if err != nil {
		return "", nil, err
	}
	if err := ledger.VerifyBatch(v, site, n, d.Sum(), sig); err != nil {
		unread := ""
		if len(h.unread) > 0 {
			// Their asset is unknown: if they were ledger readings, the
			// signer counted them and the platform could not.
			unread = fmt.Sprintf("; rows refused before their asset could be read may be signed readings: %s", strings.Join(h.unread, "; "))
		}
		return "", nil, errorf(http.StatusUnprocessableEntity, CodeBadSignature,
			"the signature of signer %q does not verify over the %d readings of ledger assets of site %q in this request, refused ones included (altered, reordered, missing or extra readings, or a forged signature)%s; none of them was stored",
			signer, n, site, unread)
	}
	return signer, sig, nil
}

// ledgerOutcome is what a request's ledger readings became, part of the
// ingest replies.
type ledgerOutcome struct {
	Readings int   `json:"readings"` // readings of ledger assets in the request
	Appended int   `json:"appended"` // new reading entries
	Reused   int   `json:"reused"`   // already logged with the same value
	Batch    int64 `json:"batch"`    // index of the batch entry; -1 when nothing new was logged
	// Omitted counts the signed readings the platform refused (reported
	// among the rejected rows), recorded by hash in the batch entry.
	Omitted int `json:"omitted,omitempty"`
}

// writeLedger stores the valid held readings, then appends them to the
// log with the refused ones' hashes, so that an acknowledged ledger
// reading is in both. A failure between the two is repaired by the
// sender's retry: the store takes the readings as duplicates and the log
// appends them then.
func (s *Server) writeLedger(ctx context.Context, ls *ledgerState, site, signer string, sig []byte, h *heldLedger) (store.WriteResult, ledgerOutcome, error) {
	rs := h.readings
	var total store.WriteResult
	chunk := s.batchSize
	if chunk <= 0 {
		chunk = 50_000
	}
	for i := 0; i < len(rs); i += chunk {
		res, err := s.Write(ctx, site, rs[i:min(i+chunk, len(rs))])
		total.Accepted += res.Accepted
		total.Duplicate += res.Duplicate
		total.Corrected += res.Corrected
		if err != nil {
			return total, ledgerOutcome{}, err
		}
	}
	lr := make([]ledger.Reading, len(rs))
	for i := range rs {
		lr[i] = ledgerReading(site, &rs[i])
	}
	ar, err := ls.log.AppendBatchOmitted(ctx, signer, sig, lr, h.omitted)
	if errors.Is(err, ledger.ErrErased) {
		return total, ledgerOutcome{}, errorf(http.StatusConflict, CodeConflict,
			"%s: mark the asset ledger: false (POST /api/v1/sites/%s/assets) to store its readings without the ledger", err, site)
	}
	if err != nil {
		return total, ledgerOutcome{}, fmt.Errorf("append %d signed readings of site %q to the ledger: %w", len(rs), site, err)
	}
	return total, ledgerOutcome{Readings: len(rs), Appended: ar.Appended, Reused: ar.Reused, Batch: ar.Batch, Omitted: len(h.omitted)}, nil
}

// WriteOwn stores readings the platform takes itself (the charge points it
// speaks OCPP with), as Write does. With a ledger, those of the site's
// ledger assets are signed with the log key and appended to the log before
// it returns.
func (s *Server) WriteOwn(ctx context.Context, site string, rs []cim.Reading) (store.WriteResult, error) {
	ls, f, on, err := s.ledgerFilterOf(ctx, site)
	if err != nil || !on {
		if err != nil {
			return store.WriteResult{}, err
		}
		return s.Write(ctx, site, rs)
	}
	h := newHeldLedger(len(rs))
	others := make([]cim.Reading, 0, len(rs))
	for i := range rs {
		if !f.takes(&rs[i]) {
			others = append(others, rs[i])
			continue
		}
		if err := h.add(&rs[i]); err != nil {
			return store.WriteResult{}, err
		}
	}
	res, err := s.Write(ctx, site, others)
	if err != nil || len(h.readings) == 0 {
		return res, err
	}
	d, err := h.digest(site)
	if err != nil {
		return res, err
	}
	sig, err := ledger.SignBatch(ls.key, site, d)
	if err != nil {
		return res, err
	}
	lres, _, err := s.writeLedger(ctx, ls, site, ls.key.Name(), sig, h)
	res.Accepted += lres.Accepted
	res.Duplicate += lres.Duplicate
	res.Corrected += lres.Corrected
	return res, err
}

// The ledger's HTTP API.

// errNoLedger answers the ledger routes of a platform without one.
var errNoLedger = errorf(http.StatusNotFound, CodeNotFound, "this platform keeps no energy ledger")

// ledgerOf returns the ledger, or writes the 404 of a platform without one.
func (s *Server) ledgerOf(w http.ResponseWriter, r *http.Request) *ledgerState {
	ls := s.ledger.Load()
	if ls == nil {
		s.writeError(w, r, errNoLedger)
	}
	return ls
}

func writeText(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// handleLedgerKey serves GET /api/v1/ledger/key: the log's public key.
func (s *Server) handleLedgerKey(w http.ResponseWriter, r *http.Request) {
	if ls := s.ledgerOf(w, r); ls != nil {
		writeText(w, http.StatusOK, []byte(ls.vkey+"\n"))
	}
}

// latestCheckpoint returns the newest signed checkpoint, making the first
// one (of the empty log) if there is none yet.
func (ls *ledgerState) latestCheckpoint(ctx context.Context) (store.Checkpoint, error) {
	cp, err := ls.log.Latest(ctx)
	if errors.Is(err, store.ErrNotFound) {
		cp, err = ls.log.Checkpoint(ctx)
	}
	if err != nil {
		return cp, fmt.Errorf("latest checkpoint: %w", err)
	}
	return cp, nil
}

// handleLedgerCheckpoint serves GET /api/v1/ledger/checkpoint.
func (s *Server) handleLedgerCheckpoint(w http.ResponseWriter, r *http.Request) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	if err := onlyParams(r.URL.Query()); err != nil {
		s.writeError(w, r, err)
		return
	}
	cp, err := ls.latestCheckpoint(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeText(w, http.StatusOK, cp.Note)
}

// intParam reads a non-negative integer parameter; def when absent.
func intParam(v map[string][]string, name string, def int64) (int64, error) {
	vs, ok := v[name]
	if !ok || len(vs) == 0 || vs[0] == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || n < 0 {
		return 0, badParam(name, clip(vs[0]), "want a whole number 0 or more")
	}
	return n, nil
}

func appendHashes(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// handleLedgerConsistency serves GET /api/v1/ledger/consistency?from=&to=.
func (s *Server) handleLedgerConsistency(w http.ResponseWriter, r *http.Request) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	v := r.URL.Query()
	err := onlyParams(v, "from", "to")
	var from, to, size int64
	if err == nil {
		size, err = ls.st.LedgerSize(r.Context())
	}
	if err == nil {
		from, err = intParam(v, "from", -1)
	}
	if err == nil {
		to, err = intParam(v, "to", -1)
	}
	switch {
	case err != nil:
	case from < 0:
		err = badParam("from", v.Get("from"), "want a tree size")
	case to < 0:
		err = badParam("to", v.Get("to"), "want a tree size")
	case to < from:
		err = badParam("to", v.Get("to"), "smaller than from=%d", from)
	case to > size:
		err = badParam("to", v.Get("to"), "the log has %d entries", size)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := ls.log.Consistency(r.Context(), from, to)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("consistency proof %d → %d: %w", from, to, err))
		return
	}
	writeJSON(w, http.StatusOK, consistencyView{From: from, To: to, Proof: appendHashes(p)})
}

type consistencyView struct {
	From  int64    `json:"from"`
	To    int64    `json:"to"`
	Proof []string `json:"proof"`
}

// readableView is the readable record of a reading or energy entry, shown
// to those who may read its site.
type readableView struct {
	Asset    string  `json:"asset"`
	Quantity string  `json:"quantity"`
	Phase    string  `json:"phase"`
	Time     int64   `json:"time"` // Unix ms: a reading's time, an energy interval's start
	Value    float64 `json:"value"`
}

// entryView is a log entry as the API shows it.
type entryView struct {
	Index    int64         `json:"index"`
	Kind     string        `json:"kind"`
	Site     string        `json:"site"`
	LeafHash string        `json:"leaf_hash"`
	Data     *string       `json:"data"` // null when not visible or erased
	Readable *readableView `json:"readable,omitempty"`
}

func viewEntry(e store.LedgerEntry, leaf [32]byte, p auth.Principal) entryView {
	v := entryView{Index: e.Index, Kind: e.Kind, Site: e.Site, LeafHash: base64.StdEncoding.EncodeToString(leaf[:])}
	if e.Data == nil || !p.CanRead(e.Site) {
		return v
	}
	d := base64.StdEncoding.EncodeToString(e.Data)
	v.Data = &d
	if e.Kind != ledger.KindBatch && e.Asset != "" {
		v.Readable = &readableView{Asset: e.Asset, Quantity: e.Quantity, Phase: cim.Phase(e.Phase).String(), Time: e.Time, Value: e.Value}
	}
	return v
}

// leafHashes reads the stored leaf hashes of entries [from, to): they stay
// when an entry's data is erased.
func (ls *ledgerState) leafHashes(ctx context.Context, from, to int64) ([][32]byte, error) {
	idx := make([]int64, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, tlog.StoredHashIndex(0, i))
	}
	hs, err := ls.st.LedgerHashes(ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("read leaf hashes %d..%d: %w", from, to, err)
	}
	return hs, nil
}

// maxEntries bounds the entries of one GET /api/v1/ledger/entries.
const maxEntries = 10_000

// handleLedgerEntries serves GET /api/v1/ledger/entries?from=&to=.
func (s *Server) handleLedgerEntries(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	v := r.URL.Query()
	err := onlyParams(v, "from", "to")
	var from, to, size int64
	if err == nil {
		size, err = ls.st.LedgerSize(r.Context())
	}
	if err == nil {
		from, err = intParam(v, "from", 0)
	}
	if err == nil {
		to, err = intParam(v, "to", from+maxEntries)
	}
	switch {
	case err != nil:
	case to < from:
		err = badParam("to", v.Get("to"), "smaller than from=%d", from)
	case to-from > maxEntries:
		err = badParam("to", v.Get("to"), "more than %d entries after from=%d; page through them", maxEntries, from)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Past the end is no error: a pager asks for the next page and gets
	// what is there.
	to = min(to, size)
	from = min(from, to)
	out := struct {
		Entries []entryView `json:"entries"`
	}{Entries: []entryView{}}
	if from < to {
		es, err := ls.st.LedgerEntries(r.Context(), from, to)
		var hs [][32]byte
		if err == nil {
			hs, err = ls.leafHashes(r.Context(), from, to)
		}
		if err == nil && len(es) != len(hs) {
			err = fmt.Errorf("ledger entries %d..%d: %d entries but %d leaf hashes", from, to, len(es), len(hs))
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out.Entries = make([]entryView, len(es))
		for i, e := range es {
			out.Entries[i] = viewEntry(e, hs[i], p)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// recordView is the reply of GET /api/v1/ledger/records/{index}.
type recordView struct {
	entryView
	Size       int64    `json:"size"`
	Proof      []string `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

// handleLedgerRecord serves GET /api/v1/ledger/records/{index}?size=: an
// entry with its inclusion proof in the tree of a signed checkpoint.
func (s *Server) handleLedgerRecord(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	ctx := r.Context()
	v := r.URL.Query()
	raw := r.PathValue("index")
	index, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || index < 0 {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalidParameter, "record index %q in the path: want a whole number 0 or more", clip(raw)))
		return
	}
	err = onlyParams(v, "size")
	var size int64
	if err == nil {
		size, err = intParam(v, "size", -1)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var cp store.Checkpoint
	if size < 0 {
		if cp, err = ls.latestCheckpoint(ctx); err == nil && index >= cp.Size {
			// The record came after the latest checkpoint: sign one
			// that holds it, if it is in the log at all.
			cp, err = ls.log.Checkpoint(ctx)
		}
		if err == nil && index >= cp.Size {
			err = errorf(http.StatusNotFound, CodeNotFound, "record %d is not in the log, which has %d entries", index, cp.Size)
		}
	} else {
		cp, err = ls.st.CheckpointAt(ctx, size)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = badParam("size", v.Get("size"), "no checkpoint of this size (GET /api/v1/ledger/checkpoint gives the latest)")
		case err == nil && index >= size:
			err = badParam("size", v.Get("size"), "record %d is not in a tree of %d entries", index, size)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	es, err := ls.st.LedgerEntries(ctx, index, index+1)
	var hs [][32]byte
	if err == nil {
		hs, err = ls.leafHashes(ctx, index, index+1)
	}
	var proof tlog.RecordProof
	if err == nil {
		proof, err = ls.log.Inclusion(ctx, index, cp.Size)
	}
	if err == nil && len(es) != 1 {
		err = fmt.Errorf("ledger entry %d of %d: not stored", index, cp.Size)
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("record %d: %w", index, err))
		return
	}
	writeJSON(w, http.StatusOK, recordView{entryView: viewEntry(es[0], hs[0], p), Size: cp.Size,
		Proof: appendHashes(proof), Checkpoint: string(cp.Note)})
}

// handleLedgerCosign serves POST /api/v1/ledger/cosign: a witness's
// cosignature of a checkpoint. The witness's signature is its
// authentication.
func (s *Server) handleLedgerCosign(w http.ResponseWriter, r *http.Request) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, min(s.maxBody, 64<<10)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "cosigned checkpoint larger than %d bytes", mbe.Limit)
		} else {
			err = errorf(http.StatusBadRequest, CodeInvalidBody, "read body: %s", err)
		}
		s.writeError(w, r, err)
		return
	}
	cp, err := ls.log.Cosign(r.Context(), body)
	if err != nil {
		if r.Context().Err() == nil {
			// The log refuses what does not open, is not from a
			// configured witness, or is of another tree.
			err = errorf(http.StatusBadRequest, CodeInvalidBody, "cosigned checkpoint refused: %s", err)
		}
		s.writeError(w, r, err)
		return
	}
	writeText(w, http.StatusOK, cp.Note)
}

// signerView is a registered signer.
type signerView struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key"`
}

// handlePutSigner serves POST /api/v1/sites/{site}/signers: it registers
// the public key of a party that signs the site's ledger readings.
func (s *Server) handlePutSigner(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		PublicKey string `json:"public_key"`
	}
	if err := s.decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	vkey := strings.TrimSpace(req.PublicKey)
	v, err := note.NewVerifier(vkey)
	switch {
	case err != nil:
		err = invalidField("public_key", vkey, "not a signed-note public key <name>+<hash>+<base64> (gridlink ledger keygen prints one): %s", err)
	case strings.ContainsAny(v.Name(), "/?#%"):
		err = invalidField("public_key", vkey, "key name %q holds a character of URLs (/?#%%); choose another name", v.Name())
	case v.Name() == ls.key.Name():
		err = errorf(http.StatusConflict, CodeConflict, "signer id %q is the log key's name; the log key signs only the platform's own readings", v.Name())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := ls.st.PutSigner(r.Context(), site, v.Name(), []byte(vkey)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = errorf(http.StatusConflict, CodeConflict, "signer id %q is registered for another site; give this key another name", v.Name())
		} else {
			err = fmt.Errorf("register signer %q of site %q: %w", v.Name(), site, err)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, signerView{ID: v.Name(), PublicKey: vkey})
}

// handleListSigners serves GET /api/v1/sites/{site}/signers. Public keys
// are no secret: whoever reads the site may check its batch signatures.
func (s *Server) handleListSigners(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	site, err := readableSite(r, p)
	if err == nil {
		_, err = s.lookupSite(r.Context(), site, "")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ss, err := ls.st.Signers(r.Context(), site)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list signers of site %q: %w", site, err))
		return
	}
	out := make([]signerView, len(ss))
	for i, sg := range ss {
		out[i] = signerView{ID: sg.ID, PublicKey: string(sg.PublicKey)}
	}
	writeList(w, "signers", out)
}

// handleDeleteSigner serves DELETE /api/v1/sites/{site}/signers/{id}.
func (s *Server) handleDeleteSigner(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := ls.st.DeleteSigner(r.Context(), site, id); errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "signer %q is not registered for site %q", clip(id), site))
		return
	} else if err != nil {
		s.writeError(w, r, fmt.Errorf("delete signer %q of site %q: %w", id, site, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"site": site, "id": id})
}

// handleLedgerErase serves POST /api/v1/sites/{site}/ledger/erase: the
// erasure of a member (GDPR Art. 17). The asset's pseudonym key and the
// readable part of its entries are deleted; the log keeps hashes that can
// no longer be linked to it.
func (s *Server) handleLedgerErase(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ls := s.ledgerOf(w, r)
	if ls == nil {
		return
	}
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Asset string `json:"asset"`
	}
	if err := s.decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Asset == "" {
		s.writeError(w, r, invalidField("asset", "", "the asset whose ledger records to erase is required"))
		return
	}
	if err := cim.CheckAssetID(req.Asset); err != nil {
		s.writeError(w, r, invalidField("asset", req.Asset, "%s", reasonOf(err)))
		return
	}
	n, err := ls.log.EraseSubject(r.Context(), site, req.Asset)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// An erased member leaves the ledger: its readings, if any come, are
	// stored as those of any other asset.
	a, err := s.store.Asset(r.Context(), site, req.Asset)
	if err == nil && a.Ledger {
		a.Ledger = false
		err = s.store.PutAsset(r.Context(), a)
		s.forgetLedgerAssets(site)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, fmt.Errorf("erased %d ledger entries of asset %q of site %q, but could not unmark it: %w", n, req.Asset, site, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"erased": n})
}

// reasonOf is the reason of a cim.FieldError, or the error's text.
func reasonOf(err error) string {
	var fe *cim.FieldError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return err.Error()
}

// ledgerSink wraps the sink of a batch upload: the readings the ledger
// takes are held in h (in body order) instead of written; the others go
// to sink as before.
func ledgerSink(f ledgerFilter, site string, h *heldLedger, sink ingest.Sink) ingest.Sink {
	var others []cim.Reading
	return func(ctx context.Context, rs []cim.Reading) (store.WriteResult, error) {
		first := -1
		for i := range rs {
			if f.takes(&rs[i]) {
				first = i
				break
			}
		}
		if first < 0 {
			return sink(ctx, rs)
		}
		others = append(others[:0], rs[:first]...)
		for i := first; i < len(rs); i++ {
			if !f.takes(&rs[i]) {
				others = append(others, rs[i])
			} else if err := h.add(&rs[i]); err != nil {
				return store.WriteResult{}, err
			}
		}
		if len(others) == 0 {
			return store.WriteResult{}, nil
		}
		return sink(ctx, others)
	}
}

// ingestLedger checks the signature of a POST /api/v1/readings over its
// held ledger readings and stores and logs them, counting them in t. A
// refusal is a 422 whose report says what was done with the others.
func (s *Server) ingestLedger(ctx context.Context, r *http.Request, ls *ledgerState, site string, h *heldLedger, t *ingestTally) error {
	signer, sig, err := s.verifyLedger(ctx, ls, site, r.Header.Get(ledger.SignatureHeader), h)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			return err
		}
		t.rejected += len(h.readings)
		s.met.countIngest(store.WriteResult{}, len(h.readings))
		return &batchFailure{apiError: ae, report: json.RawMessage(t.appendJSON(nil))}
	}
	res, out, err := s.writeLedger(ctx, ls, site, signer, sig, h)
	t.res.Accepted += res.Accepted
	t.res.Duplicate += res.Duplicate
	t.res.Corrected += res.Corrected
	t.ledger = &out
	return err
}

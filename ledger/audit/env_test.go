package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
)

const (
	site       = "bristol"
	meter      = "house-01/meter"   // ledger asset
	battery    = "house-01/battery" // ledger asset
	plainAsset = "house-02/meter"   // not a ledger asset
)

// env is a real platform with an energy ledger (ledger.Log over memstore)
// behind a real HTTP server. Between the two, tamperStore can rewrite what
// the platform reads of its own store, as an operator with database access
// could, and middleware can rewrite its replies.
type env struct {
	t       testing.TB
	mem     *memstore.Store
	st      *tamperStore
	log     *ledger.Log
	srv     *platform.Server
	mw      *middleware
	ts      *httptest.Server
	logKey  note.Signer
	logV    note.Verifier
	logPub  string
	witness note.Signer
	witV    note.Verifier
	gw      note.Signer // registered signer of the site
	gwV     note.Verifier
	admin   string
	read    string
	ingest  string
	base    int64 // time of the first reading: a whole hour, 6 h ago
}

func newKey(t testing.TB, name string) (note.Signer, note.Verifier, string) {
	t.Helper()
	priv, pub, err := ledger.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, pub
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := t.Context()
	e := &env{t: t, mem: memstore.New()}
	e.st = &tamperStore{Store: e.mem}
	e.base = time.Now().Add(-6 * time.Hour).Truncate(time.Hour).UnixMilli()
	if err := e.mem.PutSite(ctx, cim.Site{ID: site, Name: "Bristol"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []cim.Asset{
		{Site: site, ID: meter, Type: cim.SmartMeter, Ledger: true},
		{Site: site, ID: battery, Type: cim.HomeBattery, Ledger: true},
		{Site: site, ID: plainAsset, Type: cim.SmartMeter},
	} {
		if err := e.mem.PutAsset(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []struct {
		dst         *string
		site, scope string
	}{{&e.admin, "", "admin"}, {&e.read, site, "read"}, {&e.ingest, site, "ingest"}} {
		secret, key := auth.NewKey(k.site, k.scope, "test-"+k.scope, time.Now())
		if err := e.mem.CreateKey(ctx, key); err != nil {
			t.Fatal(err)
		}
		*k.dst = secret
	}
	e.logKey, e.logV, e.logPub = newKey(t, "test-log")
	e.witness, e.witV, _ = newKey(t, "test-witness")
	var gwPub string
	e.gw, e.gwV, gwPub = newKey(t, "gw-bristol-1")
	l, err := ledger.New(e.mem, ledger.Config{Key: e.logKey, Witnesses: []note.Verifier{e.witV}, CheckpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.log = l
	t.Cleanup(func() { l.Close() })
	srv, err := platform.New(platform.Config{Store: e.st})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.SetLedger(platform.LedgerConfig{Log: l, Key: e.logKey, PublicKey: e.logPub}); err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.mw = &middleware{next: srv, dropEntry: -1}
	e.ts = httptest.NewServer(e.mw)
	t.Cleanup(func() { srv.Close(); e.ts.Close() })
	body, _ := json.Marshal(map[string]string{"public_key": gwPub})
	e.call(http.MethodPost, "/api/v1/sites/"+site+"/signers", e.admin, body, http.Header{"Content-Type": {"application/json"}}, http.StatusOK, http.StatusCreated)
	return e
}

// call sends a request and checks its status.
func (e *env) call(method, path, key string, body []byte, hdr http.Header, want ...int) []byte {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if resp.StatusCode == w {
			return raw
		}
	}
	e.t.Fatalf("%s %s: HTTP %d %s", method, path, resp.StatusCode, raw)
	return nil
}

// rd is a reading.
func rd(asset, q string, p cim.Phase, t int64, v float64) cim.Reading {
	return cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: q, Phase: p}, Point: cim.Point{Time: t, Value: v}}
}

// send posts a batch as a gateway does, signed by signer over the ledger
// assets' readings in body order.
func (e *env) send(rs []cim.Reading, signer note.Signer) []byte {
	e.t.Helper()
	var body bytes.Buffer
	d := ledger.NewBatchDigest()
	for _, r := range rs {
		line := map[string]any{"asset": r.Asset, "quantity": r.Quantity, "time": r.Time, "value": r.Value}
		if r.Phase != cim.PhaseTotal {
			line["phase"] = string(r.Phase)
		}
		b, _ := json.Marshal(line)
		body.Write(append(b, '\n'))
		if r.Asset == meter || r.Asset == battery {
			d.Add(ledger.Reading{Site: site, Asset: r.Asset, Quantity: r.Quantity, Phase: string(r.Phase), Time: r.Time, Value: r.Value})
		}
	}
	hdr := http.Header{"Content-Type": {"application/x-ndjson"}}
	if d.Count() > 0 {
		sig, err := ledger.SignBatch(signer, site, d)
		if err != nil {
			e.t.Fatal(err)
		}
		hdr.Set(ledger.SignatureHeader, ledger.FormatSignatureHeader(signer.Name(), sig))
	}
	return e.call(http.MethodPost, "/api/v1/batches?site="+site, e.ingest, body.Bytes(), hdr, http.StatusOK)
}

// fill sends a measuring cycle every 5 minutes for two hours: the meter's
// import register and L1 power, the battery's state of charge, the plain
// meter's power; then seals the energy and makes a checkpoint.
func (e *env) fill() {
	e.t.Helper()
	for i := range 24 {
		t := e.base + int64(i)*5*60_000
		e.send([]cim.Reading{
			rd(meter, "energy_active_import", cim.PhaseTotal, t, 1000+float64(i)*12.5),
			rd(plainAsset, "active_power", cim.PhaseTotal, t, float64(i)),
			rd(meter, "active_power", cim.PhaseL1, t, 100+float64(i)/4),
			rd(battery, "battery_soc", cim.PhaseTotal, t, float64(40+i)),
		}, e.gw)
	}
	e.seal()
}

// seal seals the energy intervals that ended and makes a checkpoint.
func (e *env) seal() {
	e.t.Helper()
	ctx := e.t.Context()
	assets, err := e.mem.ListAssets(ctx, site)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.log.SealEnergy(ctx, time.Now(), assets, e.mem); err != nil {
		e.t.Fatal(err)
	}
	e.checkpoint()
}

func (e *env) checkpoint() store.Checkpoint {
	e.t.Helper()
	cp, err := e.log.Checkpoint(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return cp
}

func (e *env) client(key string) *Client { return &Client{BaseURL: e.ts.URL, Key: key} }

// verify runs Verify with the read key (and the gateway's key trusted).
func (e *env) verify(state string) *Report {
	e.t.Helper()
	rep, err := e.client(e.read).Verify(e.t.Context(), VerifyOptions{
		LogKey: e.logV, Signers: []note.Verifier{e.gwV}, State: state, CompareReadings: true,
	})
	if err != nil {
		e.t.Fatalf("verify: %v", err)
	}
	return rep
}

// tamperStore is the platform's store as an operator with database access
// may have rewritten it: entries changes the log's entries as the
// platform reads them, and with leavesFromData the leaf hashes follow the
// changed data (a careful forger) instead of staying as appended.
type tamperStore struct {
	*memstore.Store
	mu             sync.Mutex
	entries        func([]store.LedgerEntry) []store.LedgerEntry
	leavesFromData bool
}

func (s *tamperStore) set(fn func([]store.LedgerEntry) []store.LedgerEntry, leavesFromData bool) {
	s.mu.Lock()
	s.entries, s.leavesFromData = fn, leavesFromData
	s.mu.Unlock()
}

// tampered returns the rewritten log, or nil when it is not rewritten.
func (s *tamperStore) tampered(ctx context.Context) ([]store.LedgerEntry, bool, error) {
	s.mu.Lock()
	fn, fromData := s.entries, s.leavesFromData
	s.mu.Unlock()
	if fn == nil {
		return nil, false, nil
	}
	n, err := s.Store.LedgerSize(ctx)
	if err != nil {
		return nil, false, err
	}
	all, err := s.Store.LedgerEntries(ctx, 0, n)
	if err != nil {
		return nil, false, err
	}
	return fn(all), fromData, nil
}

func (s *tamperStore) LedgerSize(ctx context.Context) (int64, error) {
	all, _, err := s.tampered(ctx)
	if err != nil || all == nil {
		return s.Store.LedgerSize(ctx)
	}
	return int64(len(all)), nil
}

func (s *tamperStore) LedgerEntries(ctx context.Context, from, to int64) ([]store.LedgerEntry, error) {
	all, _, err := s.tampered(ctx)
	if err != nil || all == nil {
		return s.Store.LedgerEntries(ctx, from, to)
	}
	var out []store.LedgerEntry
	for _, e := range all {
		if e.Index >= from && e.Index < to {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *tamperStore) LedgerHashes(ctx context.Context, idx []int64) ([][32]byte, error) {
	all, fromData, err := s.tampered(ctx)
	if err != nil || !fromData {
		return s.Store.LedgerHashes(ctx, idx)
	}
	hs, err := s.Store.LedgerHashes(ctx, idx)
	if err != nil {
		return nil, err
	}
	for i, x := range idx {
		if level, n := tlog.SplitStoredHashIndex(x); level == 0 && n < int64(len(all)) {
			hs[i] = tlog.RecordHash(all[n].Data)
		}
	}
	return hs, nil
}

// middleware rewrites the platform's replies: a checkpoint served instead
// of the platform's, and an entry left out of the entries.
type middleware struct {
	next       http.Handler
	mu         sync.Mutex
	checkpoint []byte
	dropEntry  int64
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	cp, drop := m.checkpoint, m.dropEntry
	m.mu.Unlock()
	switch {
	case r.URL.Path == "/api/v1/ledger/checkpoint" && cp != nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(cp)
		return
	case r.URL.Path == "/api/v1/ledger/entries" && drop >= 0:
		rec := httptest.NewRecorder()
		m.next.ServeHTTP(rec, r)
		var reply struct{ Entries []map[string]any }
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		kept := reply.Entries[:0]
		for _, e := range reply.Entries {
			if idx, _ := e["index"].(float64); int64(idx) != drop {
				kept = append(kept, e)
			}
		}
		reply.Entries = kept
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(reply)
		return
	}
	m.next.ServeHTTP(w, r)
}

// signCheckpoint signs a checkpoint of any tree with the log key, as a
// platform that forks its log would.
func (e *env) signCheckpoint(size int64, root tlog.Hash) []byte {
	e.t.Helper()
	msg, err := note.Sign(&note.Note{Text: string(ledger.FormatCheckpoint(ledger.DefaultOrigin, size, root))}, e.logKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return msg
}

// problems renders a report's problems, one a line.
func problems(r *Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// wantProblem fails unless a problem line contains every part.
func wantProblem(t *testing.T, r *Report, parts ...string) {
	t.Helper()
	for _, p := range r.Problems {
		s := p.String()
		ok := true
		for _, part := range parts {
			if !strings.Contains(s, part) {
				ok = false
				break
			}
		}
		if ok {
			return
		}
	}
	t.Errorf("no problem line with all of %q; problems:\n%s", parts, problems(r))
}

// entryOf finds the index of the first logged entry matching.
func (e *env) entryOf(kind string, match func(store.LedgerEntry) bool) store.LedgerEntry {
	e.t.Helper()
	n, _ := e.mem.LedgerSize(e.t.Context())
	all, err := e.mem.LedgerEntries(e.t.Context(), 0, n)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range all {
		if x.Kind == kind && (match == nil || match(x)) {
			return x
		}
	}
	e.t.Fatalf("no %s entry found", kind)
	return store.LedgerEntry{}
}

func msText(ms int64) string { return cim.TimeOf(ms).Format("2006-01-02T15:04:05.000Z") }

// otherSiteKey returns a read key of another site.
func (e *env) otherSiteKey() string {
	e.t.Helper()
	if err := e.mem.PutSite(e.t.Context(), cim.Site{ID: "athens", Name: "Athens"}); err != nil {
		e.t.Fatal(err)
	}
	secret, key := auth.NewKey("athens", "read", "test-athens", time.Now())
	if err := e.mem.CreateKey(e.t.Context(), key); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

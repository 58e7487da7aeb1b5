package platform

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ingest"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
)

// ledgerEnv is a platform with an energy ledger (a real ledger.Log over
// the platform's own store) behind a real HTTP server, with site bristol
// (ledger asset house-01/meter, plain asset house-01/door), site athens,
// and a registered gateway signer of bristol.
type ledgerEnv struct {
	*testEnv
	log        *ledger.Log
	logKey     note.Signer
	logVKey    string
	witness    note.Signer
	gw         note.Signer // registered for bristol
	ingest     string      // bristol ingest key
	read       string      // bristol read key
	athensRead string
}

// newLedgerEnv builds a ledgerEnv over st (nil: SQLite in a temporary
// directory).
func newLedgerEnv(t testing.TB, st store.Store, mods ...func(*LedgerConfig)) *ledgerEnv {
	t.Helper()
	if st == nil {
		st = newTestStore(t)
	}
	e := &testEnv{t: t, st: st, reg: prometheus.NewRegistry()}
	srv, err := New(Config{Store: st, Registerer: e.reg, Catalogue: testCatalogue})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv)
	e.oa = newOpenAPIChecker(t)
	e.client = &http.Client{Transport: e.oa}
	secret, k := auth.NewKey("", "admin", "test-admin", time.Now())
	if err := st.CreateKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	e.admin = secret
	le := &ledgerEnv{testEnv: e}
	le.logKey, le.logVKey = newNoteKey(t, "test-log")
	var wv string
	le.witness, wv = newNoteKey(t, "test-witness")
	wver, err := note.NewVerifier(wv)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(st.(store.Ledger), ledger.Config{Key: le.logKey, Witnesses: []note.Verifier{wver}})
	if err != nil {
		t.Fatal(err)
	}
	le.log = l
	// Closed first: the server, then the log, then the store.
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close log: %v", err)
		}
	})
	t.Cleanup(func() {
		srv.Close()
		e.ts.Close()
	})
	cfg := LedgerConfig{Log: l, Key: le.logKey, PublicKey: le.logVKey}
	for _, m := range mods {
		m(&cfg)
	}
	if err := srv.SetLedger(cfg); err != nil {
		t.Fatal(err)
	}
	e.site("bristol")
	e.site("athens")
	e.must(http.StatusCreated, "POST", "/api/v1/sites/bristol/assets", e.admin, map[string]any{"id": "house-01/meter", "type": "smart_meter", "ledger": true})
	e.asset("bristol", "house-01/door", "environmental_sensor")
	e.asset("athens", "pv-1", "inverter")
	le.ingest, _ = e.key("bristol", "ingest")
	le.read, _ = e.key("bristol", "read")
	le.athensRead, _ = e.key("athens", "read")
	var gv string
	le.gw, gv = newNoteKey(t, "gw-bristol")
	e.must(http.StatusOK, "POST", "/api/v1/sites/bristol/signers", e.admin, map[string]string{"public_key": gv})
	return le
}

func newNoteKey(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	priv, pub, err := ledger.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// lr is a reading of site bristol as a signer sees it.
func lr(asset, quantity, phase string, at int64, v float64) ledger.Reading {
	return ledger.Reading{Site: "bristol", Asset: asset, Quantity: quantity, Phase: phase, Time: at, Value: v}
}

// signHeader signs readings (the ledger ones of a request, in order).
func signHeader(t testing.TB, s note.Signer, site string, rs ...ledger.Reading) string {
	t.Helper()
	d := ledger.NewBatchDigest()
	for _, r := range rs {
		if err := d.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := ledger.SignBatch(s, site, d)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.SignatureHeader + ": " + ledger.FormatSignatureHeader(s.Name(), sig)
}

// ndjson renders readings as an NDJSON body.
func ndjson(rs ...ledger.Reading) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, `{"asset":%q,"quantity":%q,"time":%d,"value":%v`, r.Asset, r.Quantity, r.Time, r.Value)
		if r.Phase != "" {
			fmt.Fprintf(&b, `,"phase":%q`, r.Phase)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

type ledgerReply struct {
	Accepted, Duplicate, Rejected int
	Ledger                        *ledgerOutcome
}

type entriesReply struct {
	Entries []struct {
		Index    int64
		Kind     string
		Site     string
		LeafHash string `json:"leaf_hash"`
		Data     *string
		Readable *readableView
	}
}

func (e *ledgerEnv) entries(key string) entriesReply {
	e.t.Helper()
	var out entriesReply
	e.must(http.StatusOK, "GET", "/api/v1/ledger/entries?from=0&to=10000", key, nil).json(e.t, &out)
	return out
}

// stored counts the stored points of an asset.
func (e *ledgerEnv) stored(asset string) int {
	e.t.Helper()
	var q struct {
		Series []struct{ Points [][2]float64 }
	}
	e.must(http.StatusOK, "GET", "/api/v1/readings?asset="+asset, e.read, nil).json(e.t, &q)
	n := 0
	for _, s := range q.Series {
		n += len(s.Points)
	}
	return n
}

// The stores a ledger runs on here: memstore and SQLite.
func ledgerStores() map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"memstore": func(t *testing.T) store.Store { return memstore.New() },
		"sqlite":   func(t *testing.T) store.Store { return newTestStore(t) },
	}
}

func TestLedgerSignedBatchIsStoredAndLogged(t *testing.T) {
	for name, open := range ledgerStores() {
		t.Run(name, func(t *testing.T) {
			e := newLedgerEnv(t, open(t))
			at := ms(t, "2024-05-01T12:00:00Z")
			signed := []ledger.Reading{
				lr("house-01/meter", "energy_active_import", "", at, 1000),
				lr("house-01/meter", "active_power", "L1", at, 230.5),
				lr("house-01/meter", "energy_active_import", "", at+60_000, 1012.25),
			}
			door := lr("house-01/door", "door_window_state", "", at, 1)
			// The door's reading sits between the signed ones: only the
			// ledger readings are signed, in body order.
			body := ndjson(signed[0], door, signed[1], signed[2])
			var got ledgerReply
			e.must(http.StatusOK, "POST", "/api/v1/batches", e.ingest, body, "Content-Type: application/x-ndjson",
				signHeader(t, e.gw, "bristol", signed...)).json(t, &got)
			if got.Accepted != 4 || got.Ledger == nil || got.Ledger.Readings != 3 || got.Ledger.Appended != 3 || got.Ledger.Batch != 3 {
				t.Fatalf("reply %+v ledger %+v", got, got.Ledger)
			}
			if n := e.stored("house-01/meter"); n != 3 {
				t.Errorf("%d meter readings stored, want 3", n)
			}

			es := e.entries(e.read)
			if len(es.Entries) != 4 {
				t.Fatalf("%d entries, want 4: %+v", len(es.Entries), es)
			}
			for i, en := range es.Entries {
				want := "reading"
				if i == 3 {
					want = "batch"
				}
				if en.Kind != want || en.Site != "bristol" || en.Data == nil {
					t.Errorf("entry %d: %+v, want a visible %s of bristol", i, en, want)
				}
			}
			if r := es.Entries[1].Readable; r == nil || *r != (readableView{Asset: "house-01/meter", Quantity: "active_power", Phase: "L1", Time: at, Value: 230.5}) {
				t.Errorf("readable record of entry 1: %+v", r)
			}
			if r := es.Entries[0].Readable; r == nil || r.Phase != "total" {
				t.Errorf("readable record of entry 0: %+v", r)
			}
			// Another site's key sees hashes only.
			for _, en := range e.entries(e.athensRead).Entries {
				if en.Data != nil || en.Readable != nil || en.LeafHash == "" {
					t.Errorf("athens sees entry %d: %+v", en.Index, en)
				}
			}
			// Sent again: duplicates in the store, nothing new in the log.
			e.must(http.StatusOK, "POST", "/api/v1/batches", e.ingest, body, "Content-Type: application/x-ndjson",
				signHeader(t, e.gw, "bristol", signed...)).json(t, &got)
			if got.Duplicate != 4 || got.Ledger.Appended != 0 || got.Ledger.Reused != 3 || got.Ledger.Batch != -1 {
				t.Errorf("resent: %+v ledger %+v", got, got.Ledger)
			}
			if n := len(e.entries(e.read).Entries); n != 4 {
				t.Errorf("%d entries after resending, want 4", n)
			}
		})
	}
}

// TestLedgerRefusals: a batch whose ledger readings are not validly signed
// is answered 422 and none of them is stored or logged, while its other
// readings are stored as usual — on both ingest routes.
func TestLedgerRefusals(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	at := ms(t, "2024-05-01T12:00:00Z")
	signed := []ledger.Reading{
		lr("house-01/meter", "energy_active_import", "", at, 1000),
		lr("house-01/meter", "energy_active_import", "", at+60_000, 1010),
	}
	forger, _ := newNoteKey(t, "gw-bristol") // same name, another key
	stranger, _ := newNoteKey(t, "gw-unknown")
	athensGW, athensPub := newNoteKey(t, "gw-athens")
	e.must(http.StatusOK, "POST", "/api/v1/sites/athens/signers", e.admin, map[string]string{"public_key": athensPub})
	altered := append([]ledger.Reading(nil), signed...)
	altered[1].Value = 1011 // changed after signing

	door := 0
	for _, c := range []struct {
		name, header, code string
		body               []ledger.Reading
		inMsg              []string
	}{
		{"unsigned", "", CodeUnsigned, signed, []string{"2 readings", `"bristol"`, ledger.SignatureHeader}},
		{"forged", signHeader(t, forger, "bristol", signed...), CodeBadSignature, signed, []string{`"gw-bristol"`, "2 readings", `"bristol"`}},
		{"altered", signHeader(t, e.gw, "bristol", signed...), CodeBadSignature, altered, []string{`"gw-bristol"`, "2 readings"}},
		{"reordered", signHeader(t, e.gw, "bristol", signed...), CodeBadSignature, []ledger.Reading{signed[1], signed[0]}, []string{`"gw-bristol"`}},
		{"unknown signer", signHeader(t, stranger, "bristol", signed...), CodeBadSignature, signed, []string{`"gw-unknown"`, "not registered", `"bristol"`}},
		{"signer of another site", signHeader(t, athensGW, "bristol", signed...), CodeBadSignature, signed, []string{`"gw-athens"`, "not registered"}},
		{"malformed header", ledger.SignatureHeader + ": gw-bristol !!!", CodeBadSignature, signed, []string{"gw-bristol", "2 readings"}},
	} {
		for _, route := range []string{"batches", "readings"} {
			t.Run(c.name+"/"+route, func(t *testing.T) {
				door++
				d := lr("house-01/door", "door_window_state", "", at+int64(door), 1)
				var hdr []string
				if c.header != "" {
					hdr = append(hdr, c.header)
				}
				var r response
				if route == "batches" {
					r = e.do("POST", "/api/v1/batches", e.ingest, ndjson(append([]ledger.Reading{d}, c.body...)...), append(hdr, "Content-Type: application/x-ndjson")...)
				} else {
					rows := []any{reading(d.Asset, d.Quantity, d.Time, d.Value)}
					for _, x := range c.body {
						rows = append(rows, reading(x.Asset, x.Quantity, x.Time, x.Value))
					}
					r = e.do("POST", "/api/v1/readings", e.ingest, rows, hdr...)
				}
				if r.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d, want 422: %s", r.status, r.body)
				}
				msg, code := r.errorBody(t)
				if code != c.code {
					t.Errorf("code %q, want %q (%s)", code, c.code, msg)
				}
				for _, s := range c.inMsg {
					if !strings.Contains(msg, s) {
						t.Errorf("message %q does not name %s", msg, s)
					}
				}
				var rep struct{ Report ledgerReply }
				r.json(t, &rep)
				if rep.Report.Accepted != 1 || rep.Report.Rejected != 2 {
					t.Errorf("report %+v: want the door's reading accepted and 2 rejected", rep.Report)
				}
				if n := e.stored("house-01/door"); n != door {
					t.Errorf("%d door readings stored, want %d", n, door)
				}
				if n := e.stored("house-01/meter"); n != 0 {
					t.Errorf("%d meter readings stored, want none", n)
				}
			})
		}
	}
	if n := len(e.entries(e.read).Entries); n != 0 {
		t.Errorf("%d ledger entries, want none", n)
	}
	// The real-time route takes a signature too.
	var got ledgerReply
	e.must(http.StatusOK, "POST", "/api/v1/readings", e.ingest, []any{
		reading("house-01/meter", "energy_active_import", at, 1000),
		reading("house-01/meter", "energy_active_import", at+60_000, 1010),
	}, signHeader(t, e.gw, "bristol", signed...)).json(t, &got)
	if got.Accepted != 2 || got.Ledger == nil || got.Ledger.Appended != 2 {
		t.Errorf("signed real-time readings: %+v %+v", got, got.Ledger)
	}
}

// TestLedgerRefusedReadingsOmitted: a signed batch in which the platform
// refuses some ledger readings (a value out of range, a time far in the
// gateway's future) is taken: the valid ones stored and logged, the
// refused ones reported per row and recorded in the batch entry by hash at
// their signed positions — on both ingest routes and both stores.
func TestLedgerRefusedReadingsOmitted(t *testing.T) {
	for name, open := range ledgerStores() {
		for _, route := range []string{"batches", "readings"} {
			t.Run(name+"/"+route, func(t *testing.T) {
				e := newLedgerEnv(t, open(t))
				at := ms(t, "2024-05-01T12:00:00Z")
				future := time.Now().Add(3 * time.Hour).UnixMilli()
				signed := []ledger.Reading{
					lr("house-01/meter", "energy_active_import", "", at, 1000),
					lr("house-01/meter", "energy_active_import", "", at+60_000, -5), // below the register's range
					lr("house-01/meter", "active_power", "L1", at, 230.5),
					lr("house-01/meter", "energy_active_import", "", future, 1020), // gateway clock ahead
					lr("house-01/meter", "energy_active_import", "", at+120_000, 1012.25),
				}
				door := lr("house-01/door", "door_window_state", "", at, 1)
				body := append([]ledger.Reading{signed[0], door}, signed[1:]...)
				var got struct {
					ledgerReply
					Errors []struct {
						Line, Index *int
						Field       string
					}
				}
				post(t, e, route, body, signHeader(t, e.gw, "bristol", signed...)).json(t, &got)
				if got.Accepted != 4 || got.Rejected != 2 || got.Ledger == nil ||
					*got.Ledger != (ledgerOutcome{Readings: 3, Appended: 3, Batch: 3, Omitted: 2}) {
					t.Fatalf("reply %+v ledger %+v", got, got.Ledger)
				}
				if len(got.Errors) != 2 || got.Errors[0].Field != "value" || got.Errors[1].Field != "time" {
					t.Errorf("errors %+v: want the value's row, then the time's", got.Errors)
				}
				if n := e.stored("house-01/meter"); n != 3 {
					t.Errorf("%d meter readings stored, want 3", n)
				}
				es := e.entries(e.read)
				if len(es.Entries) != 4 || es.Entries[3].Kind != ledger.KindBatch {
					t.Fatalf("entries %+v: want 3 readings and the batch", es)
				}
				data, _ := base64.StdEncoding.DecodeString(*es.Entries[3].Data)
				d, err := ledger.DecodeEntry(data)
				if err != nil {
					t.Fatal(err)
				}
				h1, _ := ledger.ReadingHash(signed[1])
				h3, _ := ledger.ReadingHash(signed[3])
				if d.Count != 5 || len(d.Omitted) != 2 || d.Omitted[0] != (ledger.Omission{Pos: 1, Hash: h1}) || d.Omitted[1] != (ledger.Omission{Pos: 3, Hash: h3}) {
					t.Fatalf("batch entry %s", data)
				}
				if !strings.Contains(string(data), `"kind":"batch","omitted":[[1,"`) {
					t.Errorf("batch entry %s: omitted not in JCS place", data)
				}

				// A refused reading changed after signing breaks the
				// signature: the refused ones count.
				altered := append([]ledger.Reading(nil), body...)
				altered[2].Value = -6
				r := e.do("POST", path(route), e.ingest, encodeRows(route, altered), signedHeaders(route, signHeader(t, e.gw, "bristol", signed...))...)
				if r.status != http.StatusUnprocessableEntity {
					t.Fatalf("altered refused reading: status %d: %s", r.status, r.body)
				}
				if _, code := r.errorBody(t); code != CodeBadSignature {
					t.Errorf("altered refused reading: code %s", code)
				}

				// A ledger row with no form a signer could have signed:
				// 422 naming it.
				broken := append(encodeRowList(route, []ledger.Reading{signed[0]}), map[string]any{"asset": "house-01/meter", "quantity": "energy_active_import", "time": at, "value": "lots"})
				r = e.do("POST", path(route), e.ingest, rowsBody(route, broken), signedHeaders(route, signHeader(t, e.gw, "bristol", signed[0]))...)
				if r.status != http.StatusUnprocessableEntity {
					t.Fatalf("unreadable ledger row: status %d: %s", r.status, r.body)
				}
				msg, code := r.errorBody(t)
				where := "line 2"
				if route == "readings" {
					where = "readings[1]"
				}
				if code != CodeBadSignature || !strings.Contains(msg, where) || !strings.Contains(msg, `"lots"`) {
					t.Errorf("unreadable ledger row: %s %q, want bad_signature naming %s", code, msg, where)
				}
				if n := len(e.entries(e.read).Entries); n != 4 {
					t.Errorf("%d entries after the refusals, want 4", n)
				}
			})
		}
	}
}

func path(route string) string { return "/api/v1/" + route }

// encodeRowList renders readings as the rows of a request.
func encodeRowList(route string, rs []ledger.Reading) []map[string]any {
	out := make([]map[string]any, len(rs))
	for i, r := range rs {
		out[i] = reading(r.Asset, r.Quantity, r.Time, r.Value)
		if r.Phase != "" {
			out[i]["phase"] = r.Phase
		}
	}
	return out
}

// rowsBody is the body of rows: NDJSON for batches, a JSON array for
// readings.
func rowsBody(route string, rows []map[string]any) any {
	if route == "readings" {
		return rows
	}
	var b strings.Builder
	for _, r := range rows {
		j, _ := json.Marshal(r)
		b.Write(append(j, '\n'))
	}
	return b.String()
}

func encodeRows(route string, rs []ledger.Reading) any {
	return rowsBody(route, encodeRowList(route, rs))
}

func signedHeaders(route, sig string) []string {
	if route == "batches" {
		return []string{sig, "Content-Type: application/x-ndjson"}
	}
	return []string{sig}
}

func post(t *testing.T, e *ledgerEnv, route string, rs []ledger.Reading, sig string) response {
	t.Helper()
	r := e.do("POST", path(route), e.ingest, encodeRows(route, rs), signedHeaders(route, sig)...)
	if r.status != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", path(route), r.status, r.body)
	}
	return r
}

// TestLedgerHealthDataNeverLogged: health quantities stay off the ledger
// even on a ledger asset, and a health sensor cannot be a ledger asset.
func TestLedgerHealthDataNeverLogged(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	at := ms(t, "2024-05-01T12:00:00Z")
	r := e.must(http.StatusBadRequest, "POST", "/api/v1/sites/bristol/assets", e.admin,
		map[string]any{"id": "house-01/band", "type": "physiological_sensor", "ledger": true})
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "ledger") || !strings.Contains(msg, "health") {
		t.Errorf("refusal %q does not name the ledger field and health data", msg)
	}
	// heart_rate of the ledger-marked meter: stored without a signature,
	// not logged; the signature covers only the energy reading.
	energy := lr("house-01/meter", "energy_active_import", "", at, 5)
	var got ledgerReply
	e.must(http.StatusOK, "POST", "/api/v1/batches", e.ingest,
		ndjson(lr("house-01/meter", "heart_rate", "", at, 61), energy), "Content-Type: application/x-ndjson",
		signHeader(t, e.gw, "bristol", energy)).json(t, &got)
	if got.Accepted != 2 || got.Ledger == nil || got.Ledger.Readings != 1 {
		t.Fatalf("reply %+v %+v", got, got.Ledger)
	}
	e.must(http.StatusOK, "POST", "/api/v1/readings", e.ingest, []any{reading("house-01/meter", "heart_rate", at+1000, 62)})
	for _, en := range e.entries(e.admin).Entries {
		if en.Readable != nil && en.Readable.Quantity == "heart_rate" {
			t.Errorf("health reading logged: entry %d", en.Index)
		}
	}
	if n := len(e.entries(e.admin).Entries); n != 2 {
		t.Errorf("%d entries, want the energy reading and its batch", n)
	}
}

// TestLedgerAssetMarkSeenAtOnce: marking an asset for the ledger takes
// effect on the next request.
func TestLedgerAssetMarkSeenAtOnce(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	at := ms(t, "2024-05-01T12:00:00Z")
	row := []any{reading("house-01/door", "door_window_state", at, 1)}
	e.must(http.StatusOK, "POST", "/api/v1/readings", e.ingest, row)
	e.must(http.StatusOK, "POST", "/api/v1/sites/bristol/assets", e.admin, map[string]any{"id": "house-01/door", "type": "environmental_sensor", "ledger": true})
	e.must(http.StatusUnprocessableEntity, "POST", "/api/v1/readings", e.ingest, row)
	e.must(http.StatusOK, "POST", "/api/v1/readings", e.ingest, row,
		signHeader(t, e.gw, "bristol", lr("house-01/door", "door_window_state", "", at, 1)))
}

func TestLedgerHeldLimit(t *testing.T) {
	e := newLedgerEnv(t, memstore.New(), func(c *LedgerConfig) { c.MaxHeld = 3 })
	at := ms(t, "2024-05-01T12:00:00Z")
	var rs []ledger.Reading
	for i := range 4 {
		rs = append(rs, lr("house-01/meter", "energy_active_import", "", at+int64(i)*1000, float64(i)))
	}
	r := e.must(http.StatusRequestEntityTooLarge, "POST", "/api/v1/batches", e.ingest, ndjson(rs...), "Content-Type: application/x-ndjson",
		signHeader(t, e.gw, "bristol", rs...))
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "3") {
		t.Errorf("413 %q does not name the limit", msg)
	}
	if n := e.stored("house-01/meter"); n != 0 {
		t.Errorf("%d stored", n)
	}
}

// TestLedgerProofs: a record's inclusion proof verifies against its signed
// checkpoint, and the consistency proof between two checkpoints verifies.
func TestLedgerProofs(t *testing.T) {
	for name, open := range ledgerStores() {
		t.Run(name, func(t *testing.T) {
			e := newLedgerEnv(t, open(t))
			logV, err := note.NewVerifier(e.logVKey)
			if err != nil {
				t.Fatal(err)
			}
			if r := e.must(http.StatusOK, "GET", "/api/v1/ledger/key", "", nil); strings.TrimSpace(string(r.body)) != e.logVKey {
				t.Errorf("log key %q, want %q", r.body, e.logVKey)
			}
			at := ms(t, "2024-05-01T12:00:00Z")
			post := func(from, n int) {
				var rs []ledger.Reading
				for i := from; i < from+n; i++ {
					rs = append(rs, lr("house-01/meter", "energy_active_import", "", at+int64(i)*60_000, float64(1000+i)))
				}
				e.must(http.StatusOK, "POST", "/api/v1/batches", e.ingest, ndjson(rs...), "Content-Type: application/x-ndjson",
					signHeader(t, e.gw, "bristol", rs...))
			}
			type record struct {
				Index      int64
				Kind       string
				LeafHash   string `json:"leaf_hash"`
				Data       *string
				Size       int64
				Proof      []string
				Checkpoint string
			}
			get := func(index int64, query, key string) record {
				var rec record
				e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/ledger/records/%d%s", index, query), key, nil).json(t, &rec)
				return rec
			}
			verify := func(rec record) (int64, tlog.Hash) {
				t.Helper()
				size, root, _, err := ledger.OpenCheckpoint([]byte(rec.Checkpoint), ledger.DefaultOrigin, logV)
				if err != nil || size != rec.Size {
					t.Fatalf("checkpoint of size %d: %v (size %d)", rec.Size, err, size)
				}
				data, err := base64.StdEncoding.DecodeString(*rec.Data)
				if err != nil {
					t.Fatal(err)
				}
				if err := ledger.VerifyInclusion(hashes(t, rec.Proof), rec.Index, size, root, data); err != nil {
					t.Errorf("record %d of %d: %v", rec.Index, size, err)
				}
				data[0] ^= 1
				if ledger.VerifyInclusion(hashes(t, rec.Proof), rec.Index, size, root, data) == nil {
					t.Errorf("record %d: altered data verifies", rec.Index)
				}
				return size, root
			}

			post(0, 5) // entries 0..5
			r1 := get(2, "", e.read)
			size1, root1 := verify(r1)
			if size1 != 6 || r1.Kind != "reading" {
				t.Fatalf("record %+v", r1)
			}
			post(5, 7) // entries 6..13
			r2 := get(13, "", e.read)
			size2, root2 := verify(r2)
			if size2 != 14 || r2.Kind != "batch" {
				t.Fatalf("record %+v", r2)
			}
			verify(get(2, fmt.Sprintf("?size=%d", size1), e.read)) // an older tree
			verify(get(0, "", e.read))

			// Visibility: another site's key gets the hashes, not the data.
			var other struct {
				Data     *string
				LeafHash string `json:"leaf_hash"`
				Proof    []string
			}
			e.must(http.StatusOK, "GET", "/api/v1/ledger/records/2", e.athensRead, nil).json(t, &other)
			if other.Data != nil || other.LeafHash != r1.LeafHash || len(other.Proof) == 0 {
				t.Errorf("athens sees %+v", other)
			}

			var c struct {
				From, To int64
				Proof    []string
			}
			e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/ledger/consistency?from=%d&to=%d", size1, size2), "", nil).json(t, &c)
			if err := ledger.VerifyConsistency(hashes(t, c.Proof), size1, root1, size2, root2); err != nil {
				t.Errorf("consistency %d → %d: %v", size1, size2, err)
			}
			if ledger.VerifyConsistency(hashes(t, c.Proof), size1, root2, size2, root2) == nil {
				t.Error("consistency with a wrong old root verifies")
			}

			// Parameters named in errors.
			for _, q := range []struct{ path, name string }{
				{"/api/v1/ledger/consistency?from=9&to=3", "to"},
				{"/api/v1/ledger/consistency?from=1&to=999", "to"},
				{"/api/v1/ledger/consistency?from=x&to=3", "from"},
				{"/api/v1/ledger/records/2?size=7", "size"},
				{"/api/v1/ledger/records/-1", "-1"},
				{"/api/v1/ledger/entries?from=0&to=20000", "to"},
				{"/api/v1/ledger/entries?form=1", "form"},
			} {
				r := e.must(http.StatusBadRequest, "GET", q.path, e.read, nil)
				if msg, _ := r.errorBody(t); !strings.Contains(msg, q.name) {
					t.Errorf("%s: %q does not name %s", q.path, msg, q.name)
				}
			}
			e.must(http.StatusNotFound, "GET", "/api/v1/ledger/records/99", e.read, nil)
			e.must(http.StatusUnauthorized, "GET", "/api/v1/ledger/records/0", "", nil)
		})
	}
}

func hashes(t testing.TB, b64 []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(b64))
	for i, s := range b64 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != len(tlog.Hash{}) {
			t.Fatalf("proof hash %q: %v", s, err)
		}
		copy(out[i][:], b)
	}
	return out
}

func TestLedgerCosign(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	at := ms(t, "2024-05-01T12:00:00Z")
	rs := []ledger.Reading{lr("house-01/meter", "energy_active_import", "", at, 1)}
	e.must(http.StatusOK, "POST", "/api/v1/readings", e.ingest, []any{reading("house-01/meter", "energy_active_import", at, 1)},
		signHeader(t, e.gw, "bristol", rs...))
	if _, err := e.log.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	cp := e.must(http.StatusOK, "GET", "/api/v1/ledger/checkpoint", "", nil).body
	logV, _ := note.NewVerifier(e.logVKey)
	n, err := note.Open(cp, note.VerifierList(logV))
	if err != nil {
		t.Fatalf("checkpoint %q: %v", cp, err)
	}
	cosigned, err := note.Sign(n, e.witness)
	if err != nil {
		t.Fatal(err)
	}
	r := e.must(http.StatusOK, "POST", "/api/v1/ledger/cosign", "", string(cosigned), "Content-Type: text/plain")
	if !strings.Contains(string(r.body), "— test-witness ") || !strings.Contains(string(r.body), "— test-log ") {
		t.Errorf("stored note %q lacks a signature", r.body)
	}
	if got := e.must(http.StatusOK, "GET", "/api/v1/ledger/checkpoint", "", nil).body; string(got) != string(r.body) {
		t.Errorf("checkpoint after cosigning %q, want %q", got, r.body)
	}
	// Not a witness: refused.
	other, _ := newNoteKey(t, "not-a-witness")
	bad, _ := note.Sign(n, other)
	e.must(http.StatusBadRequest, "POST", "/api/v1/ledger/cosign", "", string(bad), "Content-Type: text/plain")
	e.must(http.StatusBadRequest, "POST", "/api/v1/ledger/cosign", "", "hello", "Content-Type: text/plain")
}

func TestLedgerSigners(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	var list struct{ Signers []signerView }
	e.must(http.StatusOK, "GET", "/api/v1/sites/bristol/signers", e.admin, nil).json(t, &list)
	if len(list.Signers) != 1 || list.Signers[0].ID != "gw-bristol" || !strings.HasPrefix(list.Signers[0].PublicKey, "gw-bristol+") {
		t.Errorf("signers %+v", list)
	}
	_, pub := newNoteKey(t, "gw-2")
	e.must(http.StatusOK, "POST", "/api/v1/sites/bristol/signers", e.admin, map[string]string{"public_key": pub})
	e.must(http.StatusConflict, "POST", "/api/v1/sites/athens/signers", e.admin, map[string]string{"public_key": pub})
	e.must(http.StatusConflict, "POST", "/api/v1/sites/athens/signers", e.admin, map[string]string{"public_key": e.logVKey})
	r := e.must(http.StatusBadRequest, "POST", "/api/v1/sites/bristol/signers", e.admin, map[string]string{"public_key": "nonsense"})
	if msg, _ := r.errorBody(t); !strings.Contains(msg, "public_key") {
		t.Errorf("%q does not name public_key", msg)
	}
	e.must(http.StatusOK, "GET", "/api/v1/sites/bristol/signers", e.read, nil) // public keys: readers may check signatures
	e.must(http.StatusForbidden, "GET", "/api/v1/sites/bristol/signers", e.athensRead, nil)
	e.must(http.StatusForbidden, "POST", "/api/v1/sites/bristol/signers", e.read, map[string]string{"public_key": pub})
	e.must(http.StatusNotFound, "GET", "/api/v1/sites/nowhere/signers", e.admin, nil)
	e.must(http.StatusOK, "DELETE", "/api/v1/sites/bristol/signers/gw-2", e.admin, nil)
	e.must(http.StatusNotFound, "DELETE", "/api/v1/sites/bristol/signers/gw-2", e.admin, nil)
	// A deleted signer's batches are refused.
	e.must(http.StatusOK, "DELETE", "/api/v1/sites/bristol/signers/gw-bristol", e.admin, nil)
	at := ms(t, "2024-05-01T12:00:00Z")
	e.must(http.StatusUnprocessableEntity, "POST", "/api/v1/readings", e.ingest, []any{reading("house-01/meter", "energy_active_import", at, 1)},
		signHeader(t, e.gw, "bristol", lr("house-01/meter", "energy_active_import", "", at, 1)))
}

// TestLedgerWriteOwn: readings the platform takes itself are signed with
// the log key and logged.
func TestLedgerWriteOwn(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	e.must(http.StatusCreated, "POST", "/api/v1/sites/bristol/assets", e.admin, map[string]any{"id": "evse-01", "type": "charging_point", "ledger": true})
	at := ms(t, "2024-05-01T12:00:00Z")
	rs := []cim.Reading{
		{SeriesKey: cim.SeriesKey{Asset: "evse-01", Quantity: "ev_energy_register"}, Point: cim.Point{Time: at, Value: 100}},
		{SeriesKey: cim.SeriesKey{Asset: "house-01/door", Quantity: "door_window_state"}, Point: cim.Point{Time: at, Value: 1}},
		{SeriesKey: cim.SeriesKey{Asset: "evse-01", Quantity: "ev_charging_power", Phase: cim.PhaseL1}, Point: cim.Point{Time: at, Value: 7400}},
	}
	res, err := e.srv.WriteOwn(t.Context(), "bristol", rs)
	if err != nil || res.Accepted != 3 {
		t.Fatalf("WriteOwn: %+v, %v", res, err)
	}
	es, err := e.st.(store.Ledger).LedgerEntries(t.Context(), 0, 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("entries %+v, %v", es, err)
	}
	d, err := ledger.EntryOf(es[2]).Decode()
	if err != nil {
		t.Fatal(err)
	}
	b := d.Batch()
	logV, _ := note.NewVerifier(e.logVKey)
	if b.Signer != "test-log" || b.Count != 2 {
		t.Fatalf("batch %+v", b)
	}
	if err := ledger.VerifyBatch(logV, "bristol", b.Count, b.Digest, b.Signature); err != nil {
		t.Error(err)
	}
	// Without ledger assets it is Write.
	if res, err := e.srv.WriteOwn(t.Context(), "athens", []cim.Reading{{SeriesKey: cim.SeriesKey{Asset: "pv-1", Quantity: "active_power"}, Point: cim.Point{Time: at, Value: 1}}}); err != nil || res.Accepted != 1 {
		t.Errorf("athens: %+v %v", res, err)
	}
}

func TestLedgerErase(t *testing.T) {
	e := newLedgerEnv(t, memstore.New())
	at := ms(t, "2024-05-01T12:00:00Z")
	rs := []ledger.Reading{lr("house-01/meter", "energy_active_import", "", at, 1), lr("house-01/meter", "energy_active_import", "", at+1000, 2)}
	e.must(http.StatusOK, "POST", "/api/v1/batches", e.ingest, ndjson(rs...), "Content-Type: application/x-ndjson", signHeader(t, e.gw, "bristol", rs...))
	before := e.entries(e.read)
	cp, err := e.log.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Erased int64 }
	e.must(http.StatusOK, "POST", "/api/v1/sites/bristol/ledger/erase", e.admin, map[string]string{"asset": "house-01/meter"}).json(t, &out)
	if out.Erased != 2 {
		t.Errorf("erased %d, want 2", out.Erased)
	}
	after := e.entries(e.read)
	for i, en := range after.Entries {
		if en.LeafHash != before.Entries[i].LeafHash {
			t.Errorf("entry %d: leaf hash changed by erasure", i)
		}
		if en.Kind == "reading" && (en.Data != nil || en.Readable != nil) {
			t.Errorf("entry %d still readable: %+v", i, en)
		}
	}
	// The tree is unchanged: a record's proof still verifies against the
	// checkpoint signed before the erasure.
	var rec struct{ Proof []string }
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/ledger/records/0?size=%d", cp.Size), e.read, nil).json(t, &rec)
	if len(rec.Proof) == 0 {
		t.Error("no proof for an erased record")
	}
	// The erased member left the ledger: its readings need no signature.
	e.must(http.StatusOK, "POST", "/api/v1/readings", e.ingest, []any{reading("house-01/meter", "energy_active_import", at+2000, 3)})
	for _, c := range []struct {
		body any
		name string
	}{{map[string]string{}, "asset"}, {map[string]string{"asset": "a\tb"}, "asset"}} {
		r := e.must(http.StatusBadRequest, "POST", "/api/v1/sites/bristol/ledger/erase", e.admin, c.body)
		if msg, _ := r.errorBody(t); !strings.Contains(msg, c.name) {
			t.Errorf("%q does not name %s", msg, c.name)
		}
	}
	e.must(http.StatusForbidden, "POST", "/api/v1/sites/bristol/ledger/erase", e.read, map[string]string{"asset": "x"})
}

func TestLedgerRoutesWithoutLedger(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/api/v1/ledger/key", "/api/v1/ledger/checkpoint", "/api/v1/ledger/entries", "/api/v1/sites/bristol/signers"} {
		r := f.must(http.StatusNotFound, "GET", p, f.admin, nil)
		if msg, _ := r.errorBody(t); !strings.Contains(msg, "ledger") {
			t.Errorf("%s: %q", p, msg)
		}
	}
}

func TestSetLedgerChecks(t *testing.T) {
	e := newEnv(t)
	st := memstore.New()
	key, vkey := newNoteKey(t, "k")
	_, other := newNoteKey(t, "k")
	l, err := ledger.New(st, ledger.Config{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []LedgerConfig{
		{Key: key, PublicKey: vkey},
		{Log: l, PublicKey: vkey},
		{Log: l, Key: key, PublicKey: "junk"},
		{Log: l, Key: key, PublicKey: other},
		{Log: l, Key: key, PublicKey: vkey, MaxHeld: -1},
	} {
		if err := e.srv.SetLedger(c); err == nil {
			t.Errorf("SetLedger(%+v) accepted", c)
		}
	}
	if err := e.srv.SetLedger(LedgerConfig{Log: l, Key: key, PublicKey: vkey}); err != nil {
		t.Errorf("SetLedger: %v", err)
	}
}

// exerciseLedgerRoutes drives every ledger route of the conformance test
// to its success status (and the ingest routes to 422), on the fixture's
// SQLite store.
func exerciseLedgerRoutes(t *testing.T, f *fixture) {
	t.Helper()
	logKey, logVKey := newNoteKey(t, "conformance-log")
	witness, wv := newNoteKey(t, "conformance-witness")
	wver, _ := note.NewVerifier(wv)
	l, err := ledger.New(f.st.(store.Ledger), ledger.Config{Key: logKey, Witnesses: []note.Verifier{wver}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := f.srv.SetLedger(LedgerConfig{Log: l, Key: logKey, PublicKey: logVKey}); err != nil {
		t.Fatal(err)
	}
	gw, gv := newNoteKey(t, "conformance-gw")
	f.must(200, "POST", "/api/v1/sites/bristol/signers", f.admin, map[string]string{"public_key": gv})
	f.must(200, "GET", "/api/v1/sites/bristol/signers", f.admin, nil)
	f.must(200, "POST", "/api/v1/sites/bristol/assets", f.admin, map[string]any{"id": "house-01/meter", "type": "smart_meter", "ledger": true})
	at := ms(t, "2024-05-02T12:00:00Z")
	rs := []ledger.Reading{lr("house-01/meter", "energy_active_import", "", at, 50), lr("house-01/meter", "active_power", "L2", at, 7)}
	f.must(200, "POST", "/api/v1/batches", f.ingest, ndjson(rs...), "Content-Type: application/x-ndjson", signHeader(t, gw, "bristol", rs...))
	f.must(200, "POST", "/api/v1/readings", f.ingest, []any{reading("house-01/meter", "energy_active_import", at+1000, 51)},
		signHeader(t, gw, "bristol", lr("house-01/meter", "energy_active_import", "", at+1000, 51)))
	f.must(422, "POST", "/api/v1/readings", f.ingest, []any{reading("house-01/meter", "energy_active_import", at+2000, 52)})
	f.must(422, "POST", "/api/v1/batches", f.ingest, ndjson(rs...), "Content-Type: application/x-ndjson")
	f.must(200, "GET", "/api/v1/ledger/key", "", nil)
	f.must(200, "GET", "/api/v1/ledger/entries?from=0&to=100", f.read, nil)
	f.must(200, "GET", "/api/v1/ledger/records/1", f.read, nil)
	f.must(200, "GET", "/api/v1/ledger/records/1", f.athensRead, nil)
	f.must(200, "GET", "/api/v1/ledger/consistency?from=3&to=5", "", nil)
	cp := f.must(200, "GET", "/api/v1/ledger/checkpoint", "", nil).body
	logV, err := note.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cp, note.VerifierList(logV))
	if err != nil {
		t.Fatalf("checkpoint %q: %v", cp, err)
	}
	cosigned, err := note.Sign(n, witness)
	if err != nil {
		t.Fatal(err)
	}
	f.must(200, "POST", "/api/v1/ledger/cosign", "", string(cosigned), "Content-Type: text/plain")
	f.must(200, "POST", "/api/v1/sites/bristol/ledger/erase", f.admin, map[string]string{"asset": "house-01/meter"})
	f.must(200, "DELETE", "/api/v1/sites/bristol/signers/conformance-gw", f.admin, nil)
}

// signedBatch renders n signed readings of the ledger meter from time at
// on as an NDJSON body and its signature header.
func signedBatch(tb testing.TB, gw note.Signer, at int64, n int) ([]byte, string) {
	rs := make([]ledger.Reading, n)
	for i := range rs {
		rs[i] = lr("house-01/meter", "energy_active_import", "", at+int64(i), float64(at+int64(i))/1000)
	}
	h := signHeader(tb, gw, "bristol", rs...)
	_, v, _ := strings.Cut(h, ": ")
	return []byte(ndjson(rs...)), v
}

func postBatch(tb testing.TB, url, key string, body []byte, sig string) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set(ledger.SignatureHeader, sig)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		tb.Fatalf("status %d: %s", res.StatusCode, b)
	}
}

// BenchmarkLedgerBatch posts signed batches of 1,000 ledger readings
// through a real HTTP server into SQLite (fsync off): the signature
// check, the store write and the append to the log, each reading new.
// "serial" signs each batch outside the timing; "parallel" has 4 gateways
// that sign their batches on the same cores, within the timing.
func BenchmarkLedgerBatch(b *testing.B) {
	const n = 1000
	b.Run("serial", func(b *testing.B) {
		e := newLedgerEnv(b, nil)
		url := e.ts.URL + "/api/v1/batches"
		at := time.Now().Add(-24 * time.Hour).UnixMilli()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			body, sig := signedBatch(b, e.gw, at+int64(i*n), n)
			b.StartTimer()
			postBatch(b, url, e.ingest, body, sig)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "readings/s")
	})
	// One reading in ten out of range: refused, and omitted from the log
	// by hash.
	b.Run("serial-10pct-refused", func(b *testing.B) {
		e := newLedgerEnv(b, nil)
		url := e.ts.URL + "/api/v1/batches"
		at := time.Now().Add(-24 * time.Hour).UnixMilli()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			rs := make([]ledger.Reading, n)
			for j := range rs {
				rs[j] = lr("house-01/meter", "energy_active_import", "", at+int64(i*n+j), float64(at+int64(i*n+j))/1000)
				if j%10 == 0 {
					rs[j].Value = -1
				}
			}
			h := signHeader(b, e.gw, "bristol", rs...)
			_, sig, _ := strings.Cut(h, ": ")
			body := []byte(ndjson(rs...))
			b.StartTimer()
			postBatch(b, url, e.ingest, body, sig)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "readings/s")
	})
	b.Run("parallel", func(b *testing.B) {
		e := newLedgerEnv(b, nil)
		url := e.ts.URL + "/api/v1/batches"
		var clock atomic.Int64
		clock.Store(time.Now().Add(-24 * time.Hour).UnixMilli())
		b.SetParallelism(2) // 4 gateways on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body, sig := signedBatch(b, e.gw, clock.Add(n)-n, n)
				postBatch(b, url, e.ingest, body, sig)
			}
		})
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "readings/s")
	})
}

// FuzzLedgerRequests sends arbitrary parameters, signature headers and
// bodies to the ledger's routes and the signed ingest route: no panic,
// every refusal a JSON error with a documented status, and never a ledger
// reading accepted (nobody can forge the gateway's signature).
func FuzzLedgerRequests(f *testing.F) {
	at := int64(1714564800000)
	seedKey, _ := newNoteKey(f, "gw-bristol") // not the registered one
	_, sig := signedBatch(f, seedKey, at, 1)
	f.Add("from=0&to=5", "3", "size=2", sig, `[{"asset":"house-01/meter","quantity":"energy_active_import","time":1714564800000,"value":1}]`)
	f.Add("from=3&to=1", "-1", "size=x", "gw-bristol AAAA", `{"asset":"house-01/door","quantity":"door_window_state","time":1714564800000,"value":1}`)
	f.Add("to=99999999999999999999", "99", "", "", `[]`)
	f.Add("from=0&from=1", "0", "size=1", "nobody "+strings.Repeat("A", 86)+"==", `[{"asset":"house-01/meter","quantity":"heart_rate","time":1714564800000,"value":60}]`)
	// Refused ledger rows: out of range, far future, a unit, a state name,
	// an unknown phase and quantity.
	f.Add("", "1", "", sig, `[{"asset":"house-01/meter","quantity":"energy_active_import","time":1714564800000,"value":-5},{"asset":"house-01/meter","quantity":"energy_active_import","time":99999999999999,"value":1}]`)
	f.Add("", "1", "", sig, `[{"asset":"house-01/meter","quantity":"energy_active_import","time":1714564800000,"value":2,"unit":"kWh"},{"asset":"house-01/meter","quantity":"active_power","phase":"L9","time":1714564800000,"value":"open"}]`)
	f.Add("", "1", "", sig, `{"readings":[{"asset":"house-01/meter","quantity":"no_such","time":1714564800000,"value":"x","unit":"W"},{"asset":"house-01/meter","quantity":"energy_active_import","time":1714564800000,"value":1}]}`)
	e := newLedgerEnv(f, memstore.New())
	// A few entries, so that proofs have something to prove.
	body, h := signedBatch(f, e.gw, at, 3)
	postBatch(f, e.ts.URL+"/api/v1/batches", e.ingest, body, h)
	allowed := map[int]bool{200: true, 400: true, 401: true, 404: true, 413: true, 415: true, 422: true}
	f.Fuzz(func(t *testing.T, query, index, recQuery, sigHeader, body string) {
		send := func(method, target, key, hdr, body string) {
			req, err := http.NewRequest(method, "http://x"+target, strings.NewReader(body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			if hdr != "" {
				req.Header.Set(ledger.SignatureHeader, hdr)
			}
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			if rec.Code/100 == 3 {
				return // the ServeMux's redirect of an unclean path ("/records/.")
			}
			if !allowed[rec.Code] {
				t.Fatalf("%s %s: status %d: %s", method, target, rec.Code, rec.Body)
			}
			if rec.Code != 200 && !strings.Contains(rec.Body.String(), `"code":`) {
				t.Fatalf("%s %s: %d without a JSON error: %s", method, target, rec.Code, rec.Body)
			}
			if rec.Code == 200 && strings.Contains(rec.Body.String(), `"ledger":{`) {
				t.Fatalf("%s %s with %q: ledger readings accepted: %s", method, target, hdr, rec.Body)
			}
		}
		send("GET", "/api/v1/ledger/entries?"+query, e.read, "", "")
		send("GET", "/api/v1/ledger/consistency?"+query, "", "", "")
		send("GET", "/api/v1/ledger/records/"+url.PathEscape(index)+"?"+recQuery, e.athensRead, "", "")
		send("POST", "/api/v1/readings", e.ingest, sigHeader, body)
		send("POST", "/api/v1/batches", e.ingest, sigHeader, body)
	})
}

// FuzzLedgerCandidate checks what the line-up of a batch upload rests on:
// for a row validation accepts, the signed form candidate hashes is the
// reading as stored; for any row it neither panics nor hashes a row it
// calls unreadable.
func FuzzLedgerCandidate(f *testing.F) {
	f.Add("energy_active_import", "", "", int64(1714564800000), 1000.5, "")
	f.Add("active_power", "l1", "kW", int64(1714564800000), 2.5, "")
	f.Add("energy_active_import", "total", "kWh", int64(1714564800000), 0.0, "12.5")
	f.Add("battery_state", "", "", int64(1714564800000), 0.0, "charging")
	f.Add("no_such", "L9", "furlong", int64(-1), -5.0, "x")
	f.Add("heart_rate", "", "", int64(1714564800000), 60.0, "")
	lf := ledgerFilter{ids: map[string]struct{}{"house-01/meter": {}}, cat: testCatalogue}
	now := time.UnixMilli(1714564800000)
	f.Fuzz(func(t *testing.T, quantity, phase, unit string, at int64, value float64, raw string) {
		row := ingest.Row{Input: cim.Input{Asset: "house-01/meter", Quantity: quantity, Phase: phase, Unit: unit, Time: at, Value: value}, RawValue: raw}
		c, ok := lf.candidate("bristol", &row)
		if ok && c.why != "" && c.hash != ([32]byte{}) {
			t.Fatalf("unreadable row %+v hashed", row)
		}
		in := row.Input
		if raw != "" {
			q, known := testCatalogue.Lookup(quantity)
			if !known {
				return
			}
			v, err := q.ParseValue(raw)
			if err != nil {
				return
			}
			in.Value = v
		}
		rd, err := testCatalogue.Normalize(in, now)
		if err != nil || !lf.takes(&rd) {
			return
		}
		want, err := ledger.ReadingHash(ledgerReading("bristol", &rd))
		if err != nil {
			return
		}
		if !ok || c.why != "" || c.hash != want {
			t.Fatalf("valid row %+v: candidate %+v (ok %v), want hash %x", row, c, ok, want)
		}
	})
}

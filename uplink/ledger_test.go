package uplink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/logbuf"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/store"
)

// ledgerAssets are the test assets whose readings are signed.
var ledgerAssets = map[string]bool{"house-01/meter": true, "house-03/battery": true}

// testSign is a Config.Sign over the ledger assets' readings, as the
// gateway builds it.
func testSign(t testing.TB, private string) func([]cim.Reading) (string, error) {
	s, err := note.NewSigner(private)
	if err != nil {
		t.Fatal(err)
	}
	return func(rs []cim.Reading) (string, error) {
		d := ledger.NewBatchDigest()
		for _, r := range rs {
			if ledgerAssets[r.Asset] {
				if err := d.Add(ledgerReading(r)); err != nil {
					return "", err
				}
			}
		}
		if d.Count() == 0 {
			return "", nil
		}
		sig, err := ledger.SignBatch(s, testSite, d)
		if err != nil {
			return "", err
		}
		return ledger.FormatSignatureHeader(s.Name(), sig), nil
	}
}

func ledgerReading(r cim.Reading) ledger.Reading {
	return ledger.Reading{Site: testSite, Asset: r.Asset, Quantity: r.Quantity, Phase: string(r.Phase), Time: r.Time, Value: r.Value}
}

// verifier stands in front of the real platform and checks each body's
// ledger signature as the platform's ledger does: over the ledger assets'
// readings in body order, with the registered signer's public key. A body
// it cannot verify gets 422 bad_signature (or unsigned); one that holds
// the poison value gets 400; the rest go on to the platform.
type verifier struct {
	t      testing.TB
	keys   note.Verifiers
	next   http.Handler
	poison []byte

	mu       sync.Mutex
	verified []int // ledger readings of each verified body
	refused  int
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw := gunzip(v.t, body)
	if v.poison != nil && bytes.Contains(raw, v.poison) {
		http.Error(w, `{"error":"line 1: invalid JSON","code":"invalid_body"}`, http.StatusBadRequest)
		return
	}
	d := ledger.NewBatchDigest()
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var l struct {
			Asset, Quantity, Phase string
			Time                   int64
			Value                  float64
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			v.t.Errorf("line %q: %v", sc.Text(), err)
			return
		}
		if ledgerAssets[l.Asset] {
			d.Add(ledger.Reading{Site: r.URL.Query().Get("site"), Asset: l.Asset, Quantity: l.Quantity, Phase: l.Phase, Time: l.Time, Value: l.Value})
		}
	}
	refuse := func(code, msg string) {
		v.mu.Lock()
		v.refused++
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(map[string]string{"error": msg, "code": code})
	}
	if d.Count() > 0 {
		h := r.Header.Get(ledger.SignatureHeader)
		if h == "" {
			refuse("unsigned", "ledger readings without a signature")
			return
		}
		name, sig, err := ledger.ParseSignatureHeader(h)
		if err != nil {
			refuse("bad_signature", err.Error())
			return
		}
		v.mu.Lock()
		keys := v.keys
		v.mu.Unlock()
		key, err := keys.Verifier(name, 0)
		if err != nil {
			// note.Verifiers looks keys up by name and hash; the test
			// registers one key per name.
			refuse("bad_signature", "signer "+name+" is not registered for the site")
			return
		}
		if err := ledger.VerifyBatch(key, r.URL.Query().Get("site"), d.Count(), d.Sum(), sig); err != nil {
			refuse("bad_signature", err.Error())
			return
		}
		v.mu.Lock()
		v.verified = append(v.verified, d.Count())
		v.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	v.next.ServeHTTP(w, r)
}

// byName looks a registered key up by name only.
type byName map[string]note.Verifier

func (b byName) Verifier(name string, _ uint32) (note.Verifier, error) {
	if v, ok := b[name]; ok {
		return v, nil
	}
	return nil, &note.UnknownVerifierError{Name: name}
}

func newVerifier(t testing.TB, e *env, public string) *verifier {
	k, err := note.NewVerifier(public)
	if err != nil {
		t.Fatal(err)
	}
	return &verifier{t: t, keys: byName{k.Name(): k}, next: e.srv}
}

func TestSignedBatchesVerify(t *testing.T) {
	if SignatureHeader != ledger.SignatureHeader {
		t.Fatalf("SignatureHeader %q, ledger's %q", SignatureHeader, ledger.SignatureHeader)
	}
	e := newEnv(t, false)
	private, public, err := ledger.GenerateKey("gw-bristol-1")
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, e, public)
	v.poison = []byte(`"value":13.25}`) // reading 53: the uplink halves until it is alone
	ts := httptest.NewServer(v)
	defer ts.Close()
	q := openQueue(t)
	appendN(t, q, 0, 1000, 250)
	cfg := fastConfig(ts.URL, e.key)
	cfg.BatchSize = 200
	cfg.Sign = testSign(t, private)
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	stop()
	got := e.stored(t)
	if len(got) != 999 || got[53] {
		t.Fatalf("stored %d readings (53 there: %v)", len(got), got[53])
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.refused != 0 {
		t.Fatalf("%d bodies refused", v.refused)
	}
	// Every ledger reading arrived in a verified body: half of the test
	// assets are ledger assets, and reading 53 (asset 1) is not one.
	total := 0
	for _, n := range v.verified {
		total += n
	}
	if total != 500 {
		t.Fatalf("verified %d ledger readings in %d bodies, want 500", total, len(v.verified))
	}
	// The halving re-signed each part: more bodies than full batches.
	if len(v.verified) <= 5 {
		t.Fatalf("only %d verified bodies: the split parts were not signed", len(v.verified))
	}
}

func TestSignatureRefusedKeepsReadings(t *testing.T) {
	e := newEnv(t, false)
	_, public, _ := ledger.GenerateKey("gw-bristol-1")
	wrong, _, _ := ledger.GenerateKey("gw-bristol-1") // same name, other key
	v := newVerifier(t, e, public)
	ts := httptest.NewServer(v)
	defer ts.Close()
	q := openQueue(t)
	appendN(t, q, 0, 300, 300)
	var logs logbuf.Buffer
	reg := prometheus.NewRegistry()
	cfg := fastConfig(ts.URL, e.key)
	cfg.Sign = testSign(t, wrong)
	cfg.Registerer = reg
	u, err := New(cfg, q, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "the signature refused", func() bool { return u.Status().State == StateSignatureRefused })
	// The uplink counts a refusal after the verifier has sent it: wait for
	// the count, not only the verifier's.
	eventually(t, "a few retries", func() bool { return counter(t, reg, "gridlink_uplink_signature_refused_total") >= 3 })
	stop()
	st := u.Status()
	if !strings.Contains(st.LastError, "422") || !strings.Contains(st.LastError, "bad_signature") || st.Backlog != 300 || st.Rejected != 0 {
		t.Fatalf("status %+v", st)
	}
	if n := strings.Count(logs.String(), "refused the batch's ledger signature"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	if got := counter(t, reg, "gridlink_uplink_signature_refused_total"); got < 3 {
		t.Fatalf("gridlink_uplink_signature_refused_total = %v", got)
	}
	if q.Len() != 300 {
		t.Fatalf("queue holds %d, want 300", q.Len())
	}

	// Unsigned: the same permanent state, code unsigned.
	cfg.Sign, cfg.Registerer = nil, nil
	u, err = New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, u)
	eventually(t, "unsigned refused", func() bool { return u.Status().State == StateSignatureRefused })
	stop()
	if st := u.Status(); !strings.Contains(st.LastError, "unsigned") {
		t.Fatalf("status %+v", st)
	}

	// The right key: everything goes.
	right, public2, _ := ledger.GenerateKey("gw-bristol-2")
	k2, _ := note.NewVerifier(public2)
	v.mu.Lock()
	v.keys = byName{k2.Name(): k2}
	v.mu.Unlock()
	cfg.Sign = testSign(t, right)
	u, err = New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	eventually(t, "delivery with the registered key", func() bool { return q.Len() == 0 })
	e.checkStored(t, 0, 300)
}

func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSignedBatchesRealLedger sends through the platform's own ledger
// check: every ledger reading is stored and logged, splits included; a
// wrong key leaves the readings queued.
func TestSignedBatchesRealLedger(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	st, private := realLedger(t, e)
	wrong, _, _ := ledger.GenerateKey("gw-bristol-1")

	q := openQueue(t)
	appendN(t, q, 0, 1000, 250)
	cfg := fastConfig(e.ts.URL, e.key)
	cfg.BatchSize = 300
	cfg.Sign = testSign(t, wrong)
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "the signature refused", func() bool { return u.Status().State == StateSignatureRefused })
	stop()
	if q.Len() != 1000 {
		t.Fatalf("queue %d, want 1000 kept", q.Len())
	}

	cfg.Sign = testSign(t, private)
	u, err = New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, u)
	eventually(t, "delivery", func() bool { return q.Len() == 0 })
	stop()
	e.checkStored(t, 0, 1000)
	n, err := st.LedgerSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.LedgerEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	readings := 0
	for _, x := range es {
		if x.Kind == ledger.KindReading {
			readings++
		}
	}
	if readings != 500 {
		t.Fatalf("%d reading entries, want the 500 of the ledger assets", readings)
	}
}

// TestSignedBatchAheadClockNotStuck: a gateway whose clock runs ahead
// sends signed readings the platform refuses for their time, in the same
// bodies as good ones. The platform takes the batch (the refused readings
// count in the signed digest by hash), so the uplink reports them
// rejected, stays ok and drains its queue instead of retrying forever.
func TestSignedBatchAheadClockNotStuck(t *testing.T) {
	e := newEnv(t, false)
	ctx := t.Context()
	st, private := realLedger(t, e)

	// Each queued batch: 40 good readings (20 of ledger assets), then 10
	// ledger readings stamped by a clock 2 h ahead (the platform allows
	// 1 h), then 40 more good ones.
	ahead := time.Now().Add(2 * time.Hour).UnixMilli()
	q := openQueue(t)
	const batches = 5
	for b := range batches {
		rs := readings(b*80, 40)
		for i := range 10 {
			asset := "house-01/meter"
			if i%2 == 1 {
				asset = "house-03/battery"
			}
			rs = append(rs, cim.Reading{
				SeriesKey: cim.SeriesKey{Asset: asset, Quantity: "active_power"},
				Point:     cim.Point{Time: ahead + int64(b*10+i), Value: float64(i)},
			})
		}
		rs = append(rs, readings(b*80+40, 40)...)
		if err := q.Append(rs); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fastConfig(e.ts.URL, e.key)
	cfg.BatchSize = 90
	cfg.Sign = testSign(t, private)
	u, err := New(cfg, q, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, u)
	eventually(t, "the queue drained", func() bool { return q.Len() == 0 })
	stop()
	if s := u.Status(); s.State != StateOK || s.Rejected != batches*10 {
		t.Fatalf("status %+v: want ok with %d rejected", s, batches*10)
	}
	e.checkStored(t, 0, batches*80)

	n, err := st.LedgerSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.LedgerEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	readingEntries, omitted := 0, 0
	for _, x := range es {
		switch x.Kind {
		case ledger.KindReading:
			readingEntries++
		case ledger.KindBatch:
			d, err := ledger.EntryOf(x).Decode()
			if err != nil {
				t.Fatal(err)
			}
			omitted += len(d.Omitted)
		}
	}
	if readingEntries != batches*40 || omitted != batches*10 {
		t.Fatalf("%d reading entries and %d omitted, want %d and %d", readingEntries, omitted, batches*40, batches*10)
	}
}

// realLedger marks the ledger assets of the test site, gives the test
// platform a real ledger Log (closed when the test ends) and registers
// gateway gw-bristol-1 as a signer of the site. It returns the store's
// ledger and the gateway's private signing key.
func realLedger(t *testing.T, e *env) (store.Ledger, string) {
	t.Helper()
	ctx := t.Context()
	for a := range ledgerAssets {
		if err := e.st.PutAsset(ctx, cim.Asset{Site: testSite, ID: a, Type: cim.SmartMeter, Ledger: true}); err != nil {
			t.Fatal(err)
		}
	}
	logPriv, logPub, _ := ledger.GenerateKey("test-log")
	logKey, _ := note.NewSigner(logPriv)
	st := e.st.(store.Ledger)
	l, err := ledger.New(st, ledger.Config{Key: logKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := e.srv.SetLedger(platform.LedgerConfig{Log: l, Key: logKey, PublicKey: logPub}); err != nil {
		t.Fatal(err)
	}
	private, public, _ := ledger.GenerateKey("gw-bristol-1")
	if err := st.PutSigner(ctx, testSite, "gw-bristol-1", []byte(public)); err != nil {
		t.Fatal(err)
	}
	return st, private
}

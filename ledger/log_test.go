package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
	"github.com/gridlink/gridlink/store/sqlite"
)

// ledgerStore is what the tests need of a store: the ledger, and readings
// for SealEnergy.
type ledgerStore interface {
	store.Ledger
	EnergySource
	Write(ctx context.Context, site string, readings []cim.Reading) (store.WriteResult, error)
}

// stores runs a test against memstore and a real SQLite file.
func stores(t *testing.T, fn func(t *testing.T, st ledgerStore)) {
	t.Run("memstore", func(t *testing.T) { fn(t, memstore.New()) })
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
}

// signer is a gateway's key in tests.
type signer struct {
	s note.Signer
	v note.Verifier
}

func newSigner(t testing.TB, name string) signer {
	s, v := testKey(t, name)
	return signer{s, v}
}

// sign signs readings as a gateway does.
func (g signer) sign(t testing.TB, rs []Reading) []byte {
	t.Helper()
	d := NewBatchDigest()
	for _, r := range rs {
		if err := d.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := SignBatch(g.s, rs[0].Site, d)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (g signer) append(t testing.TB, l *Log, rs []Reading) AppendResult {
	t.Helper()
	res, err := l.AppendBatch(t.Context(), g.s.Name(), g.sign(t, rs), rs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func rd(asset, q string, tm int64, v float64) Reading {
	return Reading{Site: "site-1", Asset: asset, Quantity: q, Time: tm, Value: v}
}

// checkLog checks the whole log as a verifier would: every batch's
// readings, rebuilt from the entries before it and its refs, carry a
// valid signature; every entry is proven in the latest checkpoint.
func checkLog(t *testing.T, l *Log, st store.Ledger, signers map[string]note.Verifier) (batches int) {
	t.Helper()
	ctx := t.Context()
	c, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size, root, _, err := OpenCheckpoint(c.Note, DefaultOrigin, l.self)
	if err != nil {
		t.Fatal(err)
	}
	es, err := st.LedgerEntries(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(es)) != size {
		t.Fatalf("%d entries, checkpoint size %d", len(es), size)
	}
	for i, e := range es {
		if e.Index != int64(i) {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
		p, err := l.Inclusion(ctx, e.Index, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(p, e.Index, size, root, e.Data); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		d, err := EntryOf(e).Decode()
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != KindBatch {
			continue
		}
		batches++
		var rs []Reading
		refs := d.Refs
		next := d.First
		omitted := map[int64][32]byte{}
		for _, o := range d.Omitted {
			omitted[o.Pos] = o.Hash
		}
		dg := NewBatchDigest()
		for pos := 0; pos < d.Count; pos++ {
			if h, ok := omitted[int64(pos)]; ok {
				dg.AddHash(h)
				continue
			}
			var src store.LedgerEntry
			if len(refs) > 0 && refs[0][0] == int64(pos) {
				src, refs = es[refs[0][1]], refs[1:]
			} else {
				if next >= e.Index {
					t.Fatalf("batch %d: its readings run out at position %d", i, pos)
				}
				src = es[next]
				next++
			}
			if src.Kind != KindReading {
				t.Fatalf("batch %d position %d: entry %d is a %s", i, pos, src.Index, src.Kind)
			}
			rd := Reading{Site: src.Site, Asset: src.Asset, Quantity: src.Quantity, Phase: src.Phase, Time: src.Time, Value: src.Value}
			sd, _ := EntryOf(src).Decode()
			if sd.Reading(src.Asset) != rd || sd.Signer != d.Signer {
				t.Fatalf("entry %d: data %+v and readable record %+v differ", src.Index, sd, rd)
			}
			rs = append(rs, rd)
			dg.Add(rd)
		}
		if next != e.Index || len(refs) != 0 {
			t.Fatalf("batch %d: %d new readings and %d refs left over", i, e.Index-next, len(refs))
		}
		if dg.Sum() != d.Digest {
			t.Fatalf("batch %d: digest of its readings differs", i)
		}
		if err := VerifyBatch(signers[d.Signer], d.Site, d.Count, d.Digest, d.Signature); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	return batches
}

// marks sets whether a Log's writer uses its reading marks (the
// watermarks fast path) or looks every reading up in the store.
func marks(l *Log, on bool) {
	<-l.scanDone
	if !on {
		<-l.wmReady
	}
}

func TestAppendBatch(t *testing.T) {
	for _, withMarks := range []bool{true, false} {
		t.Run(fmt.Sprintf("marks=%v", withMarks), func(t *testing.T) { testAppendBatch(t, withMarks) })
	}
}

func testAppendBatch(t *testing.T, withMarks bool) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		l := newTestLog(t, st, Config{})
		marks(l, withMarks)
		gw := newSigner(t, "gw-1")
		const t0 = 1_700_000_000_000
		b1 := []Reading{rd("m1", "energy_active_import", t0, 1000), rd("m1", "active_power", t0, -620.34), rd("m2", "voltage", t0, 230.1)}
		b1[2].Phase = "L1"
		res := gw.append(t, l, b1)
		if res != (AppendResult{First: 0, Batch: 3, Appended: 3}) {
			t.Fatalf("first batch: %+v", res)
		}

		// Resent as is: nothing new.
		if res := gw.append(t, l, b1); res != (AppendResult{First: -1, Batch: -1, Reused: 3}) {
			t.Fatalf("resent batch: %+v", res)
		}
		if n, _ := st.LedgerSize(ctx); n != 4 {
			t.Fatalf("size %d after a resent batch, want 4", n)
		}

		// Two old readings (one at another position), a correction, a new one.
		b2 := []Reading{rd("m2", "voltage", t0, 230.1), rd("m1", "active_power", t0, -600), rd("m1", "energy_active_import", t0, 1000), rd("m1", "energy_active_import", t0+1000, 1001)}
		b2[0].Phase = "L1"
		res = gw.append(t, l, b2)
		if res != (AppendResult{First: 4, Batch: 6, Appended: 2, Reused: 2}) {
			t.Fatalf("second batch: %+v", res)
		}
		es, err := st.LedgerEntries(ctx, 6, 7)
		if err != nil {
			t.Fatal(err)
		}
		d, err := EntryOf(es[0]).Decode()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(d.Refs) != "[[0 2] [2 0]]" || d.First != 4 || d.Count != 4 || d.Signer != "gw-1" || d.Site != "site-1" {
			t.Fatalf("batch entry %+v", d)
		}

		// The same reading twice in one batch: logged once, then a ref.
		b3 := []Reading{rd("m3", "energy_active_import", t0, 5), rd("m3", "energy_active_import", t0, 5)}
		if res := gw.append(t, l, b3); res != (AppendResult{First: 7, Batch: 8, Appended: 1, Reused: 1}) {
			t.Fatalf("third batch: %+v", res)
		}

		// The readable record and the pseudonym.
		es, _ = st.LedgerEntries(ctx, 0, 1)
		key, err := st.SubjectKey(ctx, "site-1", "m1", func() []byte { panic("key must exist") })
		if err != nil {
			t.Fatal(err)
		}
		d, _ = EntryOf(es[0]).Decode()
		if es[0].Asset != "m1" || es[0].Quantity != "energy_active_import" || es[0].Time != t0 || es[0].Value != 1000 || d.Subject != Pseudonym(key, "site-1", "m1") {
			t.Fatalf("entry 0: %+v / %+v", es[0], d)
		}
		// Quoted: a random pseudonym may hold the letters m1.
		if strings.Contains(string(es[0].Data), `"m1"`) {
			t.Fatalf("entry data names the asset: %s", es[0].Data)
		}
		if n := checkLog(t, l, st, map[string]note.Verifier{"gw-1": gw.v}); n != 3 {
			t.Fatalf("%d batches logged, want 3", n)
		}
		if withMarks != (l.wm != nil) {
			t.Fatalf("marks used: %v, want %v", l.wm != nil, withMarks)
		}
	})
}

// TestAppendBatchSharedStore runs two Logs over one store, as two platform
// nodes do: each sees what the other logged, whether it reads its marks
// from a scan at start or catches up before a commit.
func TestAppendBatchSharedStore(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		gw := newSigner(t, "gw-1")
		key, _ := testKey(t, "log") // the nodes share the log key
		a := newTestLog(t, st, Config{Key: key})
		marks(a, true)
		old := []Reading{rd("m1", "energy_active_import", 10, 1), rd("m1", "energy_active_import", 20, 2)}
		gw.append(t, a, old)

		// b starts over a log that has entries: its scan finds them.
		b := newTestLog(t, st, Config{Key: key})
		marks(b, true)
		if res := gw.append(t, b, old); res.Batch != -1 || res.Reused != 2 {
			t.Fatalf("b resent a's batch: %+v", res)
		}
		// a logs more; b catches up before its next commit.
		newer := []Reading{rd("m1", "energy_active_import", 30, 3), rd("m2", "energy_active_import", 30, 3)}
		gw.append(t, a, newer)
		if res := gw.append(t, b, newer); res.Batch != -1 || res.Reused != 2 {
			t.Fatalf("b resent a's later batch: %+v", res)
		}
		// Below the mark but never logged (a gap), and a correction: both new.
		mixed := []Reading{rd("m1", "energy_active_import", 15, 1.5), rd("m1", "energy_active_import", 20, 2.5), rd("m1", "energy_active_import", 30, 3)}
		if res := gw.append(t, b, mixed); res.Appended != 2 || res.Reused != 1 {
			t.Fatalf("gap and correction: %+v", res)
		}
		if res := gw.append(t, a, mixed); res.Batch != -1 || res.Reused != 3 {
			t.Fatalf("a resent b's batch: %+v", res)
		}
		if a.wm == nil || b.wm == nil {
			t.Fatal("a Log dropped its marks")
		}
		checkLog(t, a, st, map[string]note.Verifier{"gw-1": gw.v})
	})
}

func TestAppendBatchRefuses(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		l := newTestLog(t, st, Config{})
		gw := newSigner(t, "gw-1")
		good := []Reading{rd("m1", "energy_active_import", 1, 1)}
		health := []Reading{rd("wrist", "heart_rate", 1, 70)}
		mixed := []Reading{rd("m1", "energy_active_import", 1, 1), {Site: "site-2", Asset: "m1", Quantity: "energy_active_import", Time: 1, Value: 1}}
		for _, tt := range []struct {
			name   string
			signer string
			sig    []byte
			rs     []Reading
			want   string
		}{
			{"empty", "gw-1", []byte{1}, nil, "empty batch"},
			{"health data", "gw-1", []byte{1}, health, `"heart_rate" is health data`},
			{"two sites", "gw-1", []byte{1}, mixed, `reading 1 is of site "site-2"`},
			{"no signature", "gw-1", nil, good, "no signature"},
			{"bad signer name", "gw 1", []byte{1}, good, "signer"},
		} {
			if _, err := l.AppendBatch(ctx, tt.signer, tt.sig, tt.rs); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
			}
		}

		// An erased asset's readings are refused; the others still enter.
		gw.append(t, l, good)
		n, err := l.EraseSubject(ctx, "site-1", "m1")
		if err != nil || n != 1 {
			t.Fatalf("EraseSubject = %d, %v", n, err)
		}
		again := []Reading{rd("m1", "energy_active_import", 2, 2)}
		if _, err := l.AppendBatch(ctx, "gw-1", gw.sign(t, again), again); !errors.Is(err, ErrErased) || !strings.Contains(err.Error(), `"m1"`) {
			t.Fatalf("erased asset: err %v", err)
		}
		gw.append(t, l, []Reading{rd("m2", "energy_active_import", 2, 2)})
		es, _ := st.LedgerEntries(ctx, 0, 1)
		if es[0].Data != nil || es[0].Asset != "" {
			t.Fatalf("erased entry still readable: %+v", es[0])
		}

		size, _ := st.LedgerSize(ctx)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Close leaves a checkpoint of the whole log.
		if c, err := st.LatestCheckpoint(ctx); err != nil || c.Size != size {
			t.Fatalf("after Close: checkpoint %d, %v; want %d", c.Size, err, size)
		}
		other := []Reading{rd("m2", "energy_active_import", 3, 3)}
		if _, err := l.AppendBatch(ctx, "gw-1", gw.sign(t, other), other); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: err %v", err)
		}
	})
}

// countingStore counts UpdateLedger calls.
type countingStore struct {
	ledgerStore
	mu      sync.Mutex
	updates int
}

func (c *countingStore) UpdateLedger(ctx context.Context, fn func(tx store.LedgerTx) error) error {
	c.mu.Lock()
	c.updates++
	c.mu.Unlock()
	return c.ledgerStore.UpdateLedger(ctx, fn)
}

func TestAppendBatchConcurrent(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		cs := &countingStore{ledgerStore: st}
		l := newTestLog(t, cs, Config{})
		const workers, batches, per = 8, 15, 20
		signers := make(map[string]note.Verifier)
		gws := make([]signer, workers)
		for w := range gws {
			gws[w] = newSigner(t, fmt.Sprintf("gw-%d", w))
			signers[gws[w].s.Name()] = gws[w].v
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers*batches)
		for w := range workers {
			wg.Go(func() {
				for b := range batches {
					rs := make([]Reading, per)
					for i := range rs {
						// Each worker resends half of its previous batch.
						tm := int64(b*per/2 + i)
						rs[i] = rd(fmt.Sprintf("m%d", w), "energy_active_import", tm, float64(tm))
					}
					res, err := l.AppendBatch(t.Context(), gws[w].s.Name(), gws[w].sign(t, rs), rs)
					if err == nil && res.Appended+res.Reused != per {
						err = fmt.Errorf("result %+v", res)
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := checkLog(t, l, cs, signers); n != workers*batches {
			t.Fatalf("%d batches logged, want %d", n, workers*batches)
		}
		size, _ := cs.LedgerSize(t.Context())
		// Each worker logs per readings first, then per/2 new ones a batch.
		if want := int64(workers * (batches + per + (batches-1)*per/2)); size != want { // 1400
			t.Fatalf("size %d, want %d", size, want)
		}
		t.Logf("%d batches in %d transactions", workers*batches, cs.updates)
	})
}

func TestCheckpointAndCosign(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		logS, logV := testKey(t, "log")
		witS, witV := testKey(t, "witness")
		otherS, _ := testKey(t, "other-witness")
		l := newTestLog(t, st, Config{Key: logS, Witnesses: []note.Verifier{witV}, CheckpointEvery: time.Hour})

		if _, err := l.Latest(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Latest of an empty log: %v", err)
		}
		gw := newSigner(t, "gw-1")
		gw.append(t, l, []Reading{rd("m1", "energy_active_import", 1, 1), rd("m1", "energy_active_import", 2, 2)})
		// The first commit makes a checkpoint at once (none was made yet).
		c, err := l.Latest(ctx)
		if err != nil || c.Size != 3 {
			t.Fatalf("Latest = %+v, %v", c, err)
		}
		// CheckpointEvery has not passed: the next commit defers it.
		gw.append(t, l, []Reading{rd("m1", "energy_active_import", 3, 3)})
		if c2, _ := l.Latest(ctx); c2.Size != 3 {
			t.Fatalf("checkpoint of size %d before CheckpointEvery passed", c2.Size)
		}
		c, err = l.Checkpoint(ctx)
		if err != nil || c.Size != 5 {
			t.Fatalf("Checkpoint = %+v, %v", c, err)
		}
		if again, _ := l.Checkpoint(ctx); string(again.Note) != string(c.Note) {
			t.Fatal("Checkpoint signed again without growth")
		}
		size, root, n, err := OpenCheckpoint(c.Note, DefaultOrigin, logV)
		if err != nil || size != 5 {
			t.Fatalf("OpenCheckpoint = %d, %v", size, err)
		}
		// Consistency from the first checkpoint to this one.
		old, _ := st.CheckpointAt(ctx, 3)
		_, oldRoot, _, _ := OpenCheckpoint(old.Note, DefaultOrigin, logV)
		p, err := l.Consistency(ctx, 3, 5)
		if err != nil || VerifyConsistency(p, 3, oldRoot, 5, root) != nil {
			t.Fatalf("consistency 3 → 5: %v", err)
		}

		// A witness cosigns.
		cosigned, err := note.Sign(n, witS)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := l.Cosign(ctx, cosigned)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := OpenCheckpoint(stored.Note, DefaultOrigin, logV, witV); err != nil {
			t.Fatalf("stored cosigned checkpoint: %v", err)
		}
		if latest, _ := l.Latest(ctx); string(latest.Note) != string(stored.Note) {
			t.Fatalf("latest checkpoint lost the cosignature:\n%s", latest.Note)
		}
		// Cosigning again keeps one signature per key.
		if again, err := l.Cosign(ctx, cosigned); err != nil || string(again.Note) != string(stored.Note) {
			t.Fatalf("second cosign: %v\n%s", err, again.Note)
		}

		// Refused: an unknown witness, no log signature, another tree.
		unknown, _ := note.Sign(n, otherS)
		noLog, _ := note.Sign(&note.Note{Text: n.Text}, witS)
		fork, _ := note.Sign(&note.Note{Text: string(FormatCheckpoint(DefaultOrigin, 5, tlog.RecordHash([]byte("fork"))))}, logS, witS)
		unstored, _ := note.Sign(&note.Note{Text: string(FormatCheckpoint(DefaultOrigin, 4, root))}, logS, witS)
		for _, tt := range []struct {
			name string
			msg  []byte
			want string
		}{
			{"unknown witness", unknown, "no signature of a configured witness"},
			{"no log signature", noLog, "no signature of the log key"},
			{"another root", fork, "another root"},
			{"no such checkpoint", unstored, "checkpoint of size 4"},
			{"garbage", []byte("hello"), "cosign"},
		} {
			if _, err := l.Cosign(ctx, tt.msg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
			}
		}
	})
}

func TestSealEnergy(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		l := newTestLog(t, st, Config{Grace: 2 * time.Minute})
		base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
		var rs []cim.Reading
		for k := range 30 { // every 5 min from base, 0..145 min
			for _, a := range []string{"meter", "plain", "wrist"} {
				rs = append(rs, cim.Reading{SeriesKey: cim.SeriesKey{Asset: a, Quantity: "energy_active_import"}, Point: cim.Point{Time: ms(time.Duration(k) * 5 * time.Minute), Value: 1000 + 10*float64(k)}})
			}
			rs = append(rs, cim.Reading{SeriesKey: cim.SeriesKey{Asset: "meter", Quantity: "energy_active_export"}, Point: cim.Point{Time: ms(time.Duration(k) * 5 * time.Minute), Value: 7}})
		}
		if _, err := st.Write(ctx, "site-1", rs); err != nil {
			t.Fatal(err)
		}
		assets := []cim.Asset{
			{Site: "site-1", ID: "meter", Type: cim.SmartMeter, Ledger: true},
			{Site: "site-1", ID: "plain", Type: cim.SmartMeter},
			{Site: "site-1", ID: "wrist", Type: cim.PhysiologicalSensor, Ledger: true}, // never
		}
		now := base.Add(151 * time.Minute) // sealed: intervals ending by 149 min → 0..8
		n, err := l.SealEnergy(ctx, now, assets, st)
		if err != nil {
			t.Fatal(err)
		}
		if n != 18 { // 9 intervals × (import, export)
			t.Fatalf("sealed %d entries, want 18", n)
		}
		es, _ := st.LedgerEntries(ctx, 0, 18)
		for _, e := range es {
			d, err := EntryOf(e).Decode()
			if err != nil {
				t.Fatal(err)
			}
			k := (e.Time - base.UnixMilli()) / Interval.Milliseconds()
			want := 30.0
			switch {
			case e.Quantity == "energy_active_export":
				want = 0
			case k == 0:
				want = 20 // no earlier reading: from the first in the interval
			}
			if e.Asset != "meter" || d.Kind != KindEnergy || d.Rev != 0 || d.Wh != want || e.Value != want || d.End-d.Start != Interval.Milliseconds() || d.Start != e.Time || d.Quantity != e.Quantity || k < 0 || k > 8 {
				t.Fatalf("entry %d: %+v / %+v, want %v Wh", e.Index, e, d, want)
			}
		}
		if n, err := l.SealEnergy(ctx, now, assets, st); err != nil || n != 0 {
			t.Fatalf("sealed again: %d, %v", n, err)
		}

		// Late data: the last reading of interval 1 was 1055, not 1050.
		late := []cim.Reading{{SeriesKey: cim.SeriesKey{Asset: "meter", Quantity: "energy_active_import"}, Point: cim.Point{Time: ms(25 * time.Minute), Value: 1055}}}
		if _, err := st.Write(ctx, "site-1", late); err != nil {
			t.Fatal(err)
		}
		if n, err := l.SealEnergy(ctx, now, assets, st); err != nil || n != 2 {
			t.Fatalf("after late data: %d, %v; want 2 new revisions", n, err)
		}
		es, _ = st.LedgerEntries(ctx, 18, 20)
		for i, want := range []float64{35, 25} {
			d, _ := EntryOf(es[i]).Decode()
			if d.Rev != 1 || d.Wh != want || d.Start != ms(time.Duration(15*(i+1))*time.Minute) {
				t.Fatalf("revision %d: %+v, want %v Wh rev 1", i, d, want)
			}
		}
		// Later, interval 9 is sealed too.
		if n, err := l.SealEnergy(ctx, now.Add(15*time.Minute), assets, st); err != nil || n != 2 {
			t.Fatalf("next interval: %d, %v", n, err)
		}
		checkLog(t, l, st, nil)

		// An erased asset's energy is no longer sealed.
		if _, err := l.EraseSubject(ctx, "site-1", "meter"); err != nil {
			t.Fatal(err)
		}
		if n, err := l.SealEnergy(ctx, now.Add(30*time.Minute), assets, st); err != nil || n != 0 {
			t.Fatalf("erased asset: %d, %v", n, err)
		}
	})
}

// TestAppendBatchOmitted appends batches of which the platform refused
// some signed readings: the entry records them by hash at their signed
// positions, the digest rebuilt from the log matches the signature, and
// refs count positions in signed order.
func TestAppendBatchOmitted(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		l := newTestLog(t, st, Config{})
		gw := newSigner(t, "gw-1")
		signed := []Reading{
			rd("m1", "energy_active_import", 1000, 1),
			rd("m1", "energy_active_import", 2000, -5), // refused: out of range
			rd("m1", "energy_active_import", 3000, 3),
			rd("m1", "energy_active_import", 9e15, 4), // refused: far future
		}
		omit := func(pos ...int) []Omission {
			var out []Omission
			for _, p := range pos {
				h, err := ReadingHash(signed[p])
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, Omission{Pos: int64(p), Hash: h})
			}
			return out
		}
		res, err := l.AppendBatchOmitted(ctx, "gw-1", gw.sign(t, signed), []Reading{signed[0], signed[2]}, omit(1, 3))
		if err != nil {
			t.Fatal(err)
		}
		if res.First != 0 || res.Batch != 2 || res.Appended != 2 {
			t.Fatalf("result %+v", res)
		}
		es, err := st.LedgerEntries(ctx, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		d, err := EntryOf(es[0]).Decode()
		if err != nil {
			t.Fatal(err)
		}
		if d.Count != 4 || len(d.Omitted) != 2 || d.Omitted[0].Pos != 1 || d.Omitted[1].Pos != 3 || d.Omitted[1].Hash != omit(3)[0].Hash {
			t.Fatalf("batch entry %s", es[0].Data)
		}

		// Resent with the refused one first: the logged reading is a ref
		// at its signed position 1, the new one at 2.
		again := []Reading{signed[1], signed[2], rd("m1", "energy_active_import", 4000, 5)}
		res, err = l.AppendBatchOmitted(ctx, "gw-1", gw.sign(t, again), again[1:], []Omission{{Pos: 0, Hash: omit(1)[0].Hash}})
		if err != nil {
			t.Fatal(err)
		}
		es, err = st.LedgerEntries(ctx, res.Batch, res.Batch+1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ = EntryOf(es[0]).Decode()
		if res.Reused != 1 || len(d.Refs) != 1 || d.Refs[0] != [2]int64{1, 1} || len(d.Omitted) != 1 {
			t.Fatalf("result %+v, entry %s", res, es[0].Data)
		}
		if n := checkLog(t, l, st, map[string]note.Verifier{"gw-1": gw.v}); n != 2 {
			t.Fatalf("%d batches", n)
		}

		// Omissions that do not fit the batch are refused.
		for _, om := range [][]Omission{
			{{Pos: 2}},           // past the 2 readings + 1 omitted
			{{Pos: -1}},          // negative
			{{Pos: 1}, {Pos: 0}}, // not ascending
			{{Pos: 0}, {Pos: 0}}, // twice
		} {
			if _, err := l.AppendBatchOmitted(ctx, "gw-1", []byte{1}, signed[:1], om); err == nil || !strings.Contains(err.Error(), "omitted") {
				t.Errorf("omitted %v: err %v", om, err)
			}
		}
	})
}

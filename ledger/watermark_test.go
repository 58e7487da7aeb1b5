package ledger

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/internal/logbuf"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

// fullScan returns the marks a scan of the whole log gives.
func fullScan(t testing.TB, st store.Ledger) *watermarks {
	t.Helper()
	size, err := st.LedgerSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w := newWatermarks()
	if err := w.scan(t.Context(), st, size); err != nil {
		t.Fatal(err)
	}
	return w
}

// readyMarks waits for a Log's start-up marks and takes them.
func readyMarks(t testing.TB, l *Log) *watermarks {
	t.Helper()
	<-l.scanDone
	select {
	case w := <-l.wmReady:
		return w
	default:
		t.Fatal("no reading marks after the start-up scan")
		return nil
	}
}

func equalMarks(t testing.TB, what string, got, want *watermarks) {
	t.Helper()
	if got.upto != want.upto || !maps.Equal(got.hi, want.hi) {
		t.Errorf("%s: marks up to %d %v, want (a full scan) up to %d %v", what, got.upto, got.hi, want.upto, want.hi)
	}
}

func hasAsset(w *watermarks, asset string) bool {
	for k := range w.hi {
		if k.asset == asset {
			return true
		}
	}
	return false
}

// TestMarksSnapshotPlusTail checks that marks loaded from a snapshot plus
// a scan of the entries after it equal a full scan of the log, on a log
// of several series (phases, corrections, readings below the newest) with
// an asset erased before the snapshot, one erased after it, and entries
// appended after it by another Log. The snapshot is an older one than the
// last Log's (a crash, or another node closing first): still right.
func TestMarksSnapshotPlusTail(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		key, _ := testKey(t, "log")
		gw := newSigner(t, "gw-1")
		const t0 = 1_700_000_000_000
		ph := func(r Reading, p string) Reading { r.Phase = p; return r }

		a := newTestLog(t, st, Config{Key: key})
		marks(a, true) // a Log closed before its scan ended saves none
		gw.append(t, a, []Reading{
			rd("m1", "energy_active_import", t0, 10), rd("m1", "active_power", t0, 1),
			ph(rd("m1", "voltage", t0, 230), "L1"), ph(rd("m1", "voltage", t0, 231), "L2"),
			rd("m2", "energy_active_import", t0, 5), rd("m3", "energy_active_import", t0, 7),
		})
		gw.append(t, a, []Reading{
			rd("m1", "energy_active_import", t0+1000, 11), rd("m1", "energy_active_import", t0, 10.5), // a correction
			rd("m2", "energy_active_import", t0+5000, 6), rd("m3", "energy_active_import", t0+2000, 8),
			rd("m4", "energy_active_import", t0-9000, 1),
		})
		gw.append(t, a, []Reading{rd("m1", "energy_active_import", t0+500, 10.7)}) // below the mark
		if _, err := a.EraseSubject(ctx, "site-1", "m2"); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		upto, data, found, err := st.LedgerMarks(ctx)
		size, _ := st.LedgerSize(ctx)
		if err != nil || !found || upto != size || upto == 0 {
			t.Fatalf("marks saved at Close: up to %d, found %v, %v; want up to the size %d", upto, found, err, size)
		}
		saved, _, err := decodeMarks(data, upto)
		if err != nil {
			t.Fatal(err)
		}
		if !hasAsset(saved, "m2") || !hasAsset(saved, "m3") {
			t.Fatalf("saved marks %v lack m2 or m3: the test would not exercise erasures", saved.hi)
		}

		// Another Log appends after the snapshot, erases m3 and closes,
		// saving newer marks; the older snapshot is put back.
		b := newTestLog(t, st, Config{Key: key})
		marks(b, true)
		gw.append(t, b, []Reading{
			rd("m1", "energy_active_import", t0+3000, 12), rd("m5", "energy_active_import", t0, 1),
			rd("m3", "energy_active_import", t0+9000, 9), ph(rd("m1", "voltage", t0+60_000, 229), "L1"),
		})
		if _, err := b.EraseSubject(ctx, "site-1", "m3"); err != nil {
			t.Fatal(err)
		}
		gw.append(t, b, []Reading{rd("m4", "energy_active_import", t0-8000, 2)})
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := st.PutLedgerMarks(ctx, upto, data); err != nil {
			t.Fatal(err)
		}

		full := fullScan(t, st)
		if hasAsset(full, "m2") || hasAsset(full, "m3") || !hasAsset(full, "m5") {
			t.Fatalf("full scan %v: want no m2, m3 (erased) and m5", full.hi)
		}
		c := newTestLog(t, st, Config{Key: key})
		marks(c, false) // c's own start, not used below
		loaded := c.loadMarks(ctx)
		if loaded.upto != upto {
			t.Fatalf("loadMarks: marks up to %d, want the snapshot's %d", loaded.upto, upto)
		}
		if err := loaded.scan(ctx, st, full.upto); err != nil {
			t.Fatal(err)
		}
		equalMarks(t, "snapshot + tail", loaded, full)

		// The same through New: the start-up marks.
		d := newTestLog(t, st, Config{Key: key})
		equalMarks(t, "marks at start", readyMarks(t, d), full)
	})
}

// TestMarksRestart checks a restart through the marks: the next Log
// loads them (no full scan), still finds what was logged before, and
// logs what is new.
func TestMarksRestart(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		key, _ := testKey(t, "log")
		gw := newSigner(t, "gw-1")
		old := []Reading{rd("m1", "energy_active_import", 10, 1), rd("m1", "energy_active_import", 20, 2), rd("m2", "active_power", 20, 5)}
		a := newTestLog(t, st, Config{Key: key})
		marks(a, true)
		gw.append(t, a, old)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}

		var logs logbuf.Buffer
		b := newTestLog(t, st, Config{Key: key, Logger: logs.Logger(slog.LevelInfo)})
		marks(b, true)
		if res := gw.append(t, b, old); res.Batch != -1 || res.Reused != 3 {
			t.Fatalf("resent after a restart: %+v", res)
		}
		mixed := []Reading{rd("m1", "energy_active_import", 15, 1.5), rd("m1", "energy_active_import", 20, 2.5), rd("m1", "energy_active_import", 30, 3), rd("m2", "active_power", 20, 5)}
		if res := gw.append(t, b, mixed); res.Appended != 3 || res.Reused != 1 {
			t.Fatalf("gap, correction and new after a restart: %+v", res)
		}
		if b.wm == nil {
			t.Fatal("the restarted Log has no marks")
		}
		if !strings.Contains(logs.String(), "reading marks ready") || !strings.Contains(logs.String(), "saved=4") {
			t.Errorf("start-up messages %q: want the marks ready from the 4 saved entries", logs.String())
		}
		checkLog(t, b, st, map[string]note.Verifier{"gw-1": gw.v})
	})
}

// TestMarksDiscarded checks that saved marks that do not fit the log are
// discarded with a warning, and the start-up marks are a full scan's.
func TestMarksDiscarded(t *testing.T) {
	stores(t, func(t *testing.T, st ledgerStore) {
		ctx := t.Context()
		key, _ := testKey(t, "log")
		gw := newSigner(t, "gw-1")
		a := newTestLog(t, st, Config{Key: key})
		marks(a, true)
		gw.append(t, a, []Reading{rd("m1", "energy_active_import", 10, 1), rd("m2", "energy_active_import", 10, 1)})
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		upto, good, _, err := st.LedgerMarks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		full := fullScan(t, st)
		// Marks of another log of the same size: another tree hash.
		other := &watermarks{hi: map[seriesKey]int64{{"site-1", "m1", "energy_active_import", ""}: 1}, upto: upto}
		for _, c := range []struct {
			name string
			upto int64
			data []byte
			warn string
		}{
			{"longer log", upto + 5, good, "of a longer log"},
			{"another log", upto, encodeMarks(other, tlog.Hash{1}), "of another log"},
			{"corrupt", upto, good[:len(good)-1], "unreadable"},
			{"upto mismatch", upto - 1, good, "unreadable"},
		} {
			t.Run(c.name, func(t *testing.T) {
				if err := st.PutLedgerMarks(ctx, c.upto, c.data); err != nil {
					t.Fatal(err)
				}
				var logs logbuf.Buffer
				l := newTestLog(t, st, Config{Key: key, Logger: logs.Logger(slog.LevelInfo)})
				equalMarks(t, "marks at start", readyMarks(t, l), full)
				if !strings.Contains(logs.String(), c.warn) || !strings.Contains(logs.String(), "scanning the whole log") {
					t.Errorf("messages %q: want a warning %q", logs.String(), c.warn)
				}
			})
		}
	})
}

func TestMarksEncoding(t *testing.T) {
	w := &watermarks{upto: 1 << 33, hi: map[seriesKey]int64{
		{"site-1", "m1", "energy_active_import", ""}:     1_700_000_000_000,
		{"site-1", "m1", "voltage", "L1"}:                -5,
		{"site-2", "house-01/meter", "active_power", ""}: 0,
	}}
	root := tlog.Hash{7, 7, 7}
	data := encodeMarks(w, root)
	got, gotRoot, err := decodeMarks(data, w.upto)
	if err != nil {
		t.Fatal(err)
	}
	if gotRoot != root {
		t.Errorf("root %x, want %x", gotRoot, root)
	}
	equalMarks(t, "decoded", got, w)
	if again := encodeMarks(got, gotRoot); !bytes.Equal(again, data) {
		t.Errorf("encoded again: %x, want %x", again, data)
	}

	bad := func(name string, data []byte, upto int64, want string) {
		t.Helper()
		if _, _, err := decodeMarks(data, upto); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one saying %q", name, err, want)
		}
	}
	bad("empty", nil, 0, "no GLMK header")
	bad("JSON", []byte(`{"upto":3}`), 3, "no GLMK header")
	bad("header alone", []byte("GLMK"), 0, "truncated header")
	bad("version 2", append([]byte("GLMK\x02"), data[5:]...), w.upto, "format version 2")
	bad("other upto", data, w.upto+1, "the store says")
	bad("trailing", append(bytes.Clone(data), 0), w.upto, "1 bytes after the last mark")
	for i := 5; i < len(data); i++ {
		if _, _, err := decodeMarks(data[:i], w.upto); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", i, len(data))
		}
	}
	noAsset := &watermarks{upto: 1, hi: map[seriesKey]int64{{"s", "", "q", ""}: 1}}
	bad("no asset", encodeMarks(noAsset, root), 1, "has no asset")
	padded := []byte(marksMagic)
	padded = append(padded, 0x81, 0x00) // upto 1, not minimal
	bad("padded varint", padded, 1, "padded varint")
	huge := append([]byte(marksMagic), 0)
	huge = append(huge, make([]byte, 32)...)
	huge = append(huge, 0xff, 0xff, 0xff, 0xff, 0x0f) // 2^32-1 strings
	bad("huge count", huge, 0, "strings in 0 bytes")
}

func FuzzDecodeMarks(f *testing.F) {
	w := &watermarks{upto: 42, hi: map[seriesKey]int64{
		{"site-1", "m1", "energy_active_import", ""}: 1_700_000_000_000,
		{"site-1", "m2", "voltage", "L3"}:            -1,
	}}
	f.Add(encodeMarks(w, tlog.Hash{1}), int64(42))
	f.Add(encodeMarks(newWatermarks(), tlog.Hash{}), int64(0))
	f.Add([]byte("GLMK\x01"), int64(0))
	f.Add([]byte("garbage"), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, upto int64) {
		got, root, err := decodeMarks(data, upto)
		if err != nil {
			if got != nil {
				t.Fatal("marks with an error")
			}
			return
		}
		if got.upto != upto {
			t.Fatalf("upto %d, want %d", got.upto, upto)
		}
		for k := range got.hi {
			if k.asset == "" {
				t.Fatalf("mark without an asset: %+v", k)
			}
		}
		if again := encodeMarks(got, root); !bytes.Equal(again, data) {
			t.Fatalf("accepted %x, encodes back to %x", data, again)
		}
	})
}

// buildReadings writes n reading entries of series series (assets of 4
// quantities each) into st in large transactions, without going through
// AppendBatch: what the start-up scan reads.
func buildReadings(b *testing.B, st store.Ledger, n int64, series int) {
	const chunk = 100_000
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	quantities := [...]string{"energy_active_import", "energy_active_export", "active_power", "voltage"}
	for done := int64(0); done < n; {
		m := min(chunk, n-done)
		err := st.UpdateLedger(b.Context(), func(tx store.LedgerTx) error {
			bd := newBuilder(b.Context(), tx)
			for i := range m {
				x := done + i
				s := int(x % int64(series))
				data := strconv.AppendInt([]byte("r"), x, 10)
				e := store.LedgerEntry{Kind: KindReading, Site: "site-1", Data: data,
					Asset: fmt.Sprintf("house-%03d/meter", s/len(quantities)), Quantity: quantities[s%len(quantities)],
					Time: t0 + x/int64(series)*1000, Value: float64(x)}
				if err := bd.add(e, tlog.RecordHash(data)); err != nil {
					return err
				}
			}
			return tx.Append(b.Context(), bd.entries, bd.hashes)
		})
		if err != nil {
			b.Fatal(err)
		}
		done += m
	}
}

// BenchmarkMarksStart measures the time from New to the reading marks
// ready on a SQLite log of reading entries (1,000,000 of 2,000 series, or
// GRIDLINK_BENCH_LEDGER_ENTRIES): a full scan (no saved marks), and
// saved marks with nothing or 1% of the log after them.
func BenchmarkMarksStart(b *testing.B) {
	n := int64(1_000_000)
	if v := os.Getenv("GRIDLINK_BENCH_LEDGER_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 100 {
			b.Fatalf("GRIDLINK_BENCH_LEDGER_ENTRIES=%q: want a number of entries of at least 100", v)
		}
	}
	const series = 2000
	st, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	built := time.Now()
	buildReadings(b, st, n-n/100, series)
	b.Logf("built %d entries in %v", n-n/100, time.Since(built).Round(time.Millisecond))
	key := newSigner(b, "log").s

	start := func(b *testing.B, save bool) {
		b.Helper()
		for b.Loop() {
			l, err := New(st, Config{Key: key})
			if err != nil {
				b.Fatal(err)
			}
			<-l.scanDone
			b.StopTimer()
			if !save {
				<-l.wmReady // Close saves nothing
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("full-scan", func(b *testing.B) { start(b, false) })
	b.Run("saved", func(b *testing.B) {
		l, err := New(st, Config{Key: key}) // saves the marks at Close
		if err != nil {
			b.Fatal(err)
		}
		<-l.scanDone
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		start(b, true)
		_, data, _, err := st.LedgerMarks(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(data)), "snapshot-bytes")
	})
	buildReadings(b, st, n/100, series)
	b.Run("saved+1%", func(b *testing.B) {
		start(b, false) // the marks saved before the last 1%
	})
}

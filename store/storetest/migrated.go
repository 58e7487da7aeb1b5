package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// The drivers' migration tests put data the older schema held, take the
// schema back, open it again and check the data through the contract;
// these are the puts and the checks, alike for every driver.

// WriteCounterResets writes an energy register of site "s" with two
// resets, for CheckCounterResets after a migration.
func WriteCounterResets(t *testing.T, r store.Readings) {
	t.Helper()
	key := cim.SeriesKey{Asset: "m1", Quantity: "energy_active_import"}
	var rs []cim.Reading
	for i, v := range []float64{100, 110, 3, 8, 2, 12} { // resets to 3 and to 2
		rs = append(rs, cim.Reading{SeriesKey: key, Point: cim.Point{Time: t0 + int64(i)*5*minute, Value: v}})
	}
	if _, err := r.Write(t.Context(), "s", rs); err != nil {
		t.Fatal(err)
	}
}

// CheckCounterResets checks the 15-minute delta of WriteCounterResets'
// register: the reset-aware one.
func CheckCounterResets(t *testing.T, r store.Readings) {
	t.Helper()
	// 100→110 (+10), →3 (reset, +3); →8 (+5), →2 (reset, +2), →12 (+10).
	want := []cim.Point{{Time: t0, Value: 13}, {Time: t0 + 15*minute, Value: 17}}
	var got []cim.Point
	if err := r.Aggregate(t.Context(), store.Selector{Site: "s"}, 15*time.Minute, store.AggDelta, func(_ store.Series, ps []cim.Point) error {
		got = append(got, ps...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("delta after migrating: %v, want %v", got, want)
	}
}

// CheckITCRunsUnsummarised checks runs after the migration that gave runs
// a summary: run "old", put before with body big, is kept with an empty
// summary, and a run put afterwards keeps its summary.
func CheckITCRunsUnsummarised(t *testing.T, s store.ITCRuns, big []byte) {
	t.Helper()
	ctx := t.Context()
	runs, err := s.ListITCRuns(ctx, 0)
	if err != nil || len(runs) != 1 || runs[0].ID != "old" || len(runs[0].Summary) != 0 || runs[0].Start != time.UnixMilli(1000).UTC() {
		t.Errorf("ListITCRuns after migrating = %+v, %v; want run old with an empty summary", runs, err)
	}
	if got, err := s.GetITCRun(ctx, "old"); err != nil || !bytes.Equal(got, big) {
		t.Errorf("GetITCRun after migrating: %d bytes, %v; want the %d bytes put", len(got), err, len(big))
	}
	if err := s.PutITCRun(ctx, "new", time.UnixMilli(2000), []byte(`{"cases":2}`), []byte(`{}`)); err != nil {
		t.Fatalf("PutITCRun after migrating: %v", err)
	}
	runs, err = s.ListITCRuns(ctx, 1)
	if err != nil || len(runs) != 1 || string(runs[0].Summary) != `{"cases":2}` {
		t.Errorf("ListITCRuns of a run put after migrating = %+v, %v", runs, err)
	}
}

// PutLedgerBeforeMarks puts a signer "gw-1" of site and saved marks, for
// CheckLedgerMarksMigrated after the migration that added the marks'
// table.
func PutLedgerBeforeMarks(t *testing.T, l store.Ledger, site string) {
	t.Helper()
	if err := l.PutSigner(t.Context(), site, "gw-1", []byte("pk")); err != nil {
		t.Fatal(err)
	}
	if err := l.PutLedgerMarks(t.Context(), 5, []byte("old")); err != nil {
		t.Fatal(err)
	}
}

// CheckLedgerMarksMigrated checks a ledger after that migration: the
// signer is kept, no marks are saved (the table is new), and marks are
// then saved and read back.
func CheckLedgerMarksMigrated(t *testing.T, l store.Ledger, site string) {
	t.Helper()
	ctx := t.Context()
	if got, _, err := l.Signer(ctx, "gw-1"); err != nil || got != site {
		t.Errorf("signer after migrating: %q, %v; want site %q", got, err, site)
	}
	if _, _, found, err := l.LedgerMarks(ctx); err != nil || found {
		t.Errorf("LedgerMarks after migrating: found %v, %v; want none", found, err)
	}
	if err := l.PutLedgerMarks(ctx, 7, []byte("new")); err != nil {
		t.Fatalf("PutLedgerMarks after migrating: %v", err)
	}
	if upto, data, found, err := l.LedgerMarks(ctx); err != nil || !found || upto != 7 || string(data) != "new" {
		t.Errorf("LedgerMarks = %d, %q, %v, %v; want 7, new", upto, data, found, err)
	}
}

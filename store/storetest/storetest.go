// Package storetest is the conformance suite of the storage contract in
// package store: one suite that every driver runs from its own tests, so
// that the drivers stay interchangeable.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newTestStore(t) })
//	}
//
// The suite keeps a reference model of everything it wrote and compares
// what a store returns with what the model computes from the raw points, so
// a failure names the series, the time and the expected and actual values.
package storetest

import (
	"context"
	"testing"

	"github.com/gridlink/gridlink/store"
)

// Run runs the whole conformance suite. open must return a fresh, empty
// store each time it is called; the suite closes that store itself when the
// subtest ends (and reports an error from Close), so open must not close it,
// though it may register its own cleanup (dropping a database, say), which
// runs after Close. The subtests of each group run in parallel (t.Parallel),
// each on its own store, so open must be safe to call concurrently.
//
// Where the contract in package store leaves room, the suite reads it as
// follows:
//   - Strings are ordered byte-wise, as Go compares strings (not by a
//     database collation): sites and assets by id, series by asset, quantity
//     and phase, with PhaseTotal ("") first.
//   - Write is not required to check that the site or the assets exist: the
//     suite always creates them before writing, so a driver may or may not
//     require them.
//   - WriteResult counts as if the readings of a call were applied one after
//     another: each is compared with the value stored at that moment, which
//     may be one written earlier in the same call. [t=1, t=2] into an empty
//     store counts 1 accepted and 1 corrected and stores 2; the same call
//     again counts 2 corrected (1 replaced 2, then 2 replaced 1).
//   - Read and Aggregate may leave out a series that has no point in the
//     range; a block without points is tolerated and ignored.
//   - Read, Aggregate and Latest of a site that has no data return nothing,
//     with a nil error or ErrNotFound.
//   - A canceled context makes Read and Aggregate return an error that
//     matches context.Canceled, also when it is canceled while they stream.
//   - Aggregate with a step <= 0 or an unknown Agg returns an error.
//   - Aggregate counts only the points inside [From, To), so the first and
//     last intervals may be partial, and the delta of an interval is taken
//     against the last point before max(interval start, From): see
//     store.Readings.Aggregate.
//   - Key times are compared at millisecond precision (the suite uses whole
//     milliseconds); they must come back Equal and in UTC.
//   - CreateKey with an ID or a Hash that is already stored returns an error.
//   - Revoking a revoked key returns nil and keeps the first time.
//   - Validation errors of sessions, charge point ids and RFID tags are
//     *cim.FieldError values naming the field.
//   - Sessions, charge point secrets and RFID tags need their site to
//     exist; a missing one is ErrNotFound.
//
// Drivers that keep data across a close also run RunReopen.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Sites", siteTests},
		{"Assets", assetTests},
		{"Keys", keyTests},
		{"Write", writeTests},
		{"Read", readTests},
		{"Aggregate", aggregateTests},
		{"Latest", latestTests},
		{"Sessions", sessionTests},
		{"ChargePoints", chargePointTests},
		{"IDTags", idTagTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(newFixture(t, open))
				})
			}
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	fn   func(f *fixture)
}

// fixture is a fresh store and the suite's model of what it should hold.
type fixture struct {
	t   *testing.T
	s   store.Store
	m   *model
	ctx context.Context
	// made names the sites and assets ensure has created, as "site" and
	// "site\x00asset".
	made map[string]bool
}

func newFixture(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &fixture{t: t, s: s, m: newModel(), ctx: context.Background(), made: make(map[string]bool)}
}

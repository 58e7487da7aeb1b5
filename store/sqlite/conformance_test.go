package sqlite

import (
	"testing"

	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, t.TempDir(), Options{NoSync: true})
	})
}

// TestConformanceSmallHead runs the suite with a tiny head, so that most
// reads merge blocks, rollups and head.
func TestConformanceSmallHead(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newTestStore(t, t.TempDir(), Options{NoSync: true, MaxHeadPoints: 7})
	})
}

func TestConformanceReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		dir := t.TempDir()
		return newTestStore(t, dir, Options{NoSync: true}), func(t *testing.T) store.Store {
			return newTestStore(t, dir, Options{NoSync: true})
		}
	})
}

// TestLedgerConformance runs the ledger suite; the other handle is a
// second store on the same file, opened for metadata only, as the command
// line tools open it beside a running server.
func TestLedgerConformance(t *testing.T) {
	storetest.RunLedger(t, func(t *testing.T) (store.Ledger, func(t *testing.T) store.Ledger) {
		dir := t.TempDir()
		return newTestStore(t, dir, Options{NoSync: true}), func(t *testing.T) store.Ledger {
			return newTestStore(t, dir, Options{NoSync: true, MetaOnly: true})
		}
	})
}

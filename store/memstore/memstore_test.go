package memstore_test

import (
	"testing"

	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
	"github.com/gridlink/gridlink/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}

func TestLedgerConformance(t *testing.T) {
	storetest.RunLedger(t, func(t *testing.T) (store.Ledger, func(t *testing.T) store.Ledger) {
		s := memstore.New()
		return s, func(*testing.T) store.Ledger { return s }
	})
}

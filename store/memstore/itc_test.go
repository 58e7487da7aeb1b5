package memstore_test

import (
	"testing"

	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
	"github.com/gridlink/gridlink/store/storetest"
)

func TestITCConformance(t *testing.T) {
	storetest.RunITC(t, func(*testing.T) store.ITCRuns { return memstore.New() })
}

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

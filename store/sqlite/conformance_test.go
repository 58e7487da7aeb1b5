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

package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// RunReopen checks that charging sessions, charge point secrets and RFID
// tags survive closing and reopening a durable store, and that puts after
// the reopen merge with what was stored before it. open returns a fresh,
// empty store and a function that opens the same data again once the first
// store is closed; RunReopen closes both stores itself.
func RunReopen(t *testing.T, open func(t *testing.T) (s store.Store, reopen func(t *testing.T) store.Store)) {
	ctx := context.Background()
	s, reopen := open(t)
	f := &fixture{t: t, s: s, m: newModel(), ctx: ctx, made: make(map[string]bool)}
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	done := both("bristol", "cp-1", 1, sessT0, at(time.Hour), 100, 5100)
	running := startOf("bristol", "cp-1", 2, at(2*time.Hour), 5100)
	stopOnly := stopOf("athens", "cp-2", 9, at(3*time.Hour), 700)
	for _, sess := range []store.Session{done, running, stopOnly} {
		f.putSession(sess)
	}
	if err := s.PutChargePointSecret(ctx, "bristol", "cp-1", "evse-01", secret("one")); err != nil {
		t.Fatalf("PutChargePointSecret: %v", err)
	}
	f.putTag("bristol", "04e1a2b3", at(24*time.Hour))
	f.putTag("athens", "NEVER", time.Time{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	f.s = reopen(t)
	t.Cleanup(func() {
		if err := f.s.Close(); err != nil {
			t.Errorf("Close after reopening: %v", err)
		}
	})
	f.expectSessions(store.SessionFilter{Site: "bristol"}, done, running)
	f.expectSessions(store.SessionFilter{Site: "athens"}, stopOnly)
	f.expectSecret("cp-1", "bristol", "evse-01", secret("one"))
	f.expectTags("bristol", store.IDTagEntry{Tag: "04e1a2b3", Expires: at(24 * time.Hour)})
	f.expectTag("athens", "never", true, time.Time{})

	// The halves that arrive after the reopen merge with the stored ones.
	f.putSession(stopOf("bristol", "cp-1", 2, at(3*time.Hour), 9100))
	f.expectSession(both("bristol", "cp-1", 2, at(2*time.Hour), at(3*time.Hour), 5100, 9100))
	start := startOf("athens", "cp-2", 9, at(2*time.Hour), 300)
	f.putSession(start)
	f.expectSession(both("athens", "cp-2", 9, at(2*time.Hour), at(3*time.Hour), 300, 700))
	err := f.s.PutChargePointSecret(ctx, "athens", "cp-1", "", secret("two"))
	if err == nil {
		t.Errorf("PutChargePointSecret of an id another site held before the reopen: no error")
	}
}

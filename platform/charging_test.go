package platform

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gridlink/gridlink/store"
)

func TestSessionsAPI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	put := func(s store.Session) {
		if err := f.st.PutSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	put(store.Session{Site: "bristol", ChargePoint: "evse-01", Connector: 1, TransactionID: 1, IDTag: "TAG1", Start: start, MeterStartWh: 1000,
		Stop: start.Add(2 * time.Hour), MeterStopWh: 15400, StopReason: "EVDisconnected"})
	put(store.Session{Site: "bristol", ChargePoint: "evse-02", Connector: 1, TransactionID: 9223372036854775807, IDTag: "TAG2", Start: start.Add(3 * time.Hour), MeterStartWh: 500})

	var got struct{ Sessions []sessionView }
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions", f.read, nil).json(t, &got)
	if len(got.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2", len(got.Sessions))
	}
	done, running := got.Sessions[0], got.Sessions[1]
	if done.EnergyWh != 14400 || done.Running || done.Stop == nil || *done.MeterStopWh != 15400 || done.IDTag != "TAG1" {
		t.Errorf("finished session: %+v", done)
	}
	if !running.Running || running.Stop != nil || running.EnergyWh != 0 || running.TransactionID != 9223372036854775807 {
		t.Errorf("running session: %+v", running)
	}

	// Filters: one charge point; a window after the first session ended.
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions?charge_point=evse-02", f.read, nil).json(t, &got)
	if len(got.Sessions) != 1 || got.Sessions[0].ChargePoint != "evse-02" {
		t.Errorf("charge_point filter: %+v", got.Sessions)
	}
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions?from=2026-11-28T20:30:00Z", f.read, nil).json(t, &got)
	if len(got.Sessions) != 1 || !got.Sessions[0].Running {
		t.Errorf("from filter: %+v", got.Sessions)
	}

	// Errors name the parameter; other sites' keys cannot read.
	for _, q := range []string{"limit=0", "from=yesterday", "chargepoint=x"} {
		f.must(http.StatusBadRequest, "GET", "/api/v1/sites/bristol/sessions?"+q, f.read, nil)
	}
	f.must(http.StatusForbidden, "GET", "/api/v1/sites/bristol/sessions", f.athensRead, nil)
	f.must(http.StatusNotFound, "GET", "/api/v1/sites/nowhere/sessions", f.admin, nil)
}

func TestChargePointsAndTagsAPI(t *testing.T) {
	f := newFixture(t)
	f.must(http.StatusBadRequest, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "short"})
	f.must(http.StatusForbidden, "POST", "/api/v1/sites/bristol/chargepoints", f.read, map[string]string{"id": "evse-01", "password": "0123456789abcdef"})
	f.must(http.StatusOK, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "0123456789abcdef"})
	site, sum, err := f.st.ChargePointSecret(context.Background(), "evse-01")
	if err != nil || site != "bristol" || sum == [32]byte{} {
		t.Fatalf("stored secret: %s %x %v", site, sum, err)
	}
	f.must(http.StatusConflict, "POST", "/api/v1/sites/athens/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "0123456789abcdef"})

	f.must(http.StatusBadRequest, "POST", "/api/v1/sites/bristol/idtags", f.admin, map[string]string{"tag": "012345678901234567890"})
	f.must(http.StatusOK, "POST", "/api/v1/sites/bristol/idtags", f.admin, map[string]string{"tag": "04a2b3"})
	var tags struct {
		IDTags []idTagView `json:"id_tags"`
	}
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/idtags", f.admin, nil).json(t, &tags)
	if len(tags.IDTags) != 1 || tags.IDTags[0].Tag != "04a2b3" || tags.IDTags[0].Expires != nil {
		t.Errorf("tags: %+v", tags.IDTags)
	}
	f.must(http.StatusOK, "DELETE", "/api/v1/sites/bristol/idtags/04A2B3", f.admin, nil)
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/idtags", f.admin, nil).json(t, &tags)
	if len(tags.IDTags) != 0 {
		t.Errorf("tag not deleted: %+v", tags.IDTags)
	}
}

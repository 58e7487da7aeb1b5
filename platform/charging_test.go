package platform

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
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

// TestSessionMeterValues checks that a session carries the readings of its
// connector between its start and stop (both included), those of the
// connector's measuring locations too, and nothing of another connector or
// from outside the session.
func TestSessionMeterValues(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	stop := start.Add(time.Hour)
	if err := f.st.PutSession(ctx, store.Session{Site: "bristol", ChargePoint: "evse-01", Connector: 1, TransactionID: 7, IDTag: "TAG1",
		Start: start, MeterStartWh: 1000, Stop: stop, MeterStopWh: 8000}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutSession(ctx, store.Session{Site: "bristol", ChargePoint: "evse-01", Connector: 2, TransactionID: 8, Start: start, MeterStartWh: 0}); err != nil {
		t.Fatal(err)
	}
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	var rs []cim.Reading
	add := func(asset, quantity string, at time.Time, v float64) {
		rs = append(rs, cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: quantity}, Point: cim.Point{Time: ms(at), Value: v}})
	}
	add("evse-01", "ev_energy_register", start.Add(-time.Minute), 990) // before: not in the session
	add("evse-01", "ev_energy_register", start, 1000)
	add("evse-01", "ev_energy_register", start.Add(30*time.Minute), 4500)
	add("evse-01", "ev_energy_register", stop, 8000)
	add("evse-01", "ev_energy_register", stop.Add(time.Second), 8000) // after
	add("evse-01", "ev_charging_power", start.Add(30*time.Minute), 7000)
	add("evse-01/ev", "ev_soc", start.Add(30*time.Minute), 55)
	add("evse-01/connector-2", "ev_charging_power", start.Add(30*time.Minute), 11000) // the other connector
	add("evse-02", "ev_charging_power", start.Add(30*time.Minute), 3000)              // another charger
	if _, err := f.st.Write(ctx, "bristol", rs); err != nil {
		t.Fatal(err)
	}
	type series struct {
		Asset, Quantity, Phase, Unit string
		Points                       [][2]float64
	}
	var one struct {
		Asset       string
		EnergyWh    float64  `json:"energy_wh"`
		MeterValues []series `json:"meter_values"`
	}
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions/evse-01/7", f.read, nil).json(t, &one)
	got := map[string][][2]float64{}
	for _, s := range one.MeterValues {
		got[s.Asset+" "+s.Quantity+" "+s.Unit] = s.Points
	}
	want := map[string][][2]float64{
		"evse-01 ev_energy_register Wh": {{float64(ms(start)), 1000}, {float64(ms(start.Add(30 * time.Minute))), 4500}, {float64(ms(stop)), 8000}},
		"evse-01 ev_charging_power W":   {{float64(ms(start.Add(30 * time.Minute))), 7000}},
		"evse-01/ev ev_soc %":           {{float64(ms(start.Add(30 * time.Minute))), 55}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("meter values of session 7:\n got %v\nwant %v", got, want)
	}
	if one.Asset != "evse-01" || one.EnergyWh != 7000 {
		t.Errorf("session 7: asset %q, energy %v Wh", one.Asset, one.EnergyWh)
	}

	// Connector 2's running session sees its own connector only.
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions/evse-01/8", f.read, nil).json(t, &one)
	if one.Asset != "evse-01/connector-2" || len(one.MeterValues) != 1 || one.MeterValues[0].Points[0][1] != 11000 {
		t.Errorf("session 8: %+v", one)
	}

	// The list carries them only when asked.
	var list struct {
		Sessions []struct {
			MeterValues []series `json:"meter_values"`
		}
	}
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions", f.read, nil).json(t, &list)
	if len(list.Sessions) != 2 || list.Sessions[0].MeterValues != nil {
		t.Errorf("list without meter_values: %+v", list)
	}
	f.must(http.StatusOK, "GET", "/api/v1/sites/bristol/sessions?meter_values=true", f.read, nil).json(t, &list)
	if len(list.Sessions) != 2 || len(list.Sessions[0].MeterValues) != 3 || len(list.Sessions[1].MeterValues) != 1 {
		t.Errorf("list with meter_values: %+v", list)
	}

	f.must(http.StatusNotFound, "GET", "/api/v1/sites/bristol/sessions/evse-01/9", f.read, nil)
	f.must(http.StatusBadRequest, "GET", "/api/v1/sites/bristol/sessions/evse-01/seven", f.read, nil)
	f.must(http.StatusBadRequest, "GET", "/api/v1/sites/bristol/sessions?meter_values=maybe", f.read, nil)
	f.must(http.StatusForbidden, "GET", "/api/v1/sites/bristol/sessions/evse-01/7", f.athensRead, nil)
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

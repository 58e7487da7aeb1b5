package platform

import (
	"context"
	"net/http"
	"reflect"
	"strings"
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
	f.asset("bristol", "evse-01", "charging_point")
	f.asset("athens", "evse-01", "charging_point")
	f.must(http.StatusBadRequest, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "short"})
	f.must(http.StatusForbidden, "POST", "/api/v1/sites/bristol/chargepoints", f.read, map[string]string{"id": "evse-01", "password": "0123456789abcdef"})
	f.must(http.StatusOK, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "evse-01", "password": "0123456789abcdef"})
	site, asset, sum, err := f.st.ChargePointSecret(context.Background(), "evse-01")
	if err != nil || site != "bristol" || asset != "evse-01" || sum == [32]byte{} {
		t.Fatalf("stored secret: %s %s %x %v", site, asset, sum, err)
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

// TestChargePointAsset checks the registration's asset: the OCPP identity
// and the asset are separate, the asset defaults to the identity, must be
// a charging point of the site, and a new registration replaces it.
func TestChargePointAsset(t *testing.T) {
	f := newFixture(t)
	f.asset("bristol", "evse-01", "charging_point")
	f.asset("athens", "evse-01", "charging_point")
	const pw = "0123456789abcdef"
	reg := func(site string, body map[string]string) chargePointView {
		t.Helper()
		body["password"] = pw
		var v chargePointView
		f.must(http.StatusOK, "POST", "/api/v1/sites/"+site+"/chargepoints", f.admin, body).json(t, &v)
		return v
	}
	stored := func(id string) (site, asset string) {
		t.Helper()
		site, asset, _, err := f.st.ChargePointSecret(context.Background(), id)
		if err != nil {
			t.Fatalf("ChargePointSecret %q: %v", id, err)
		}
		return site, asset
	}

	// Both sites' chargers are asset evse-01, under identities of their own.
	if v := reg("bristol", map[string]string{"id": "ALF-2217345", "asset": "evse-01"}); v != (chargePointView{"bristol", "ALF-2217345", "evse-01"}) {
		t.Errorf("register with an asset: %+v", v)
	}
	if v := reg("athens", map[string]string{"id": "STH-EVSE-01", "asset": "evse-01"}); v != (chargePointView{"athens", "STH-EVSE-01", "evse-01"}) {
		t.Errorf("register the other site's evse-01: %+v", v)
	}
	if site, asset := stored("STH-EVSE-01"); site != "athens" || asset != "evse-01" {
		t.Errorf("stored: %s %s", site, asset)
	}
	// Without an asset, the identity is the asset.
	if v := reg("bristol", map[string]string{"id": "evse-01"}); v.Asset != "evse-01" {
		t.Errorf("register without an asset: %+v", v)
	}
	// Re-registering with another asset replaces it.
	f.asset("bristol", "house-01/evse", "charging_point")
	reg("bristol", map[string]string{"id": "ALF-2217345", "asset": "house-01/evse"})
	if _, asset := stored("ALF-2217345"); asset != "house-01/evse" {
		t.Errorf("asset after re-registering: %q", asset)
	}

	// Errors name the field asset and its value, and change nothing.
	for _, c := range []struct {
		body       map[string]string
		status     int
		code, want string
	}{
		{map[string]string{"id": "ALF-2217345", "asset": "evse-99"}, http.StatusNotFound, CodeNotFound, `field asset="evse-99"`},
		{map[string]string{"id": "ALF-2217345", "asset": "house-01/meter"}, http.StatusBadRequest, CodeInvalidBody, `field asset="house-01/meter": an asset of type smart_meter`},
		{map[string]string{"id": "ALF-2217345", "asset": " evse"}, http.StatusBadRequest, CodeInvalidBody, `field asset=" evse"`},
		{map[string]string{"id": "ALF-2217345"}, http.StatusNotFound, CodeNotFound, `field asset="ALF-2217345" (the id, as no asset was given)`},
		{map[string]string{"id": "", "asset": "evse-01"}, http.StatusBadRequest, CodeInvalidBody, `field id=""`},
	} {
		c.body["password"] = pw
		r := f.must(c.status, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, c.body)
		var e struct{ Error, Code string }
		r.json(t, &e)
		if e.Code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("register %v: %s %q, want code %s and %q", c.body, e.Code, e.Error, c.code, c.want)
		}
	}
	if _, asset := stored("ALF-2217345"); asset != "house-01/evse" {
		t.Errorf("asset after refused registrations: %q", asset)
	}
	// An asset of another site is not this site's.
	f.asset("athens", "evse-07", "charging_point")
	f.must(http.StatusNotFound, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, map[string]string{"id": "X-1", "password": pw, "asset": "evse-07"})
}

// BenchmarkRegisterChargePoint measures POST …/chargepoints with an asset
// (the asset check and the store's upsert, on SQLite) through real HTTP.
func BenchmarkRegisterChargePoint(b *testing.B) {
	f := newFixture(b)
	f.asset("bristol", "evse-01", "charging_point")
	body := map[string]string{"id": "ALF-2217345", "password": "0123456789abcdef", "asset": "evse-01"}
	for b.Loop() {
		f.must(http.StatusOK, "POST", "/api/v1/sites/bristol/chargepoints", f.admin, body)
	}
}

package httpjson

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// The tests in this file serve replies recorded from real devices and
// cloud APIs, as published in the public sources each devices/*.src file
// names (the cloud APIs and the devices cannot run here), and check the
// decoded values against numbers read from those files by hand.

func readDevice(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("devices/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withField adds a field to a recorded object, for fields the recording
// lacks but the profiled model has.
func withField(t *testing.T, doc, key string, val any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	m[key] = val
	b, _ := json.Marshal(m)
	return string(b)
}

func pollProfile(t *testing.T, name string, cfg device.Config) []device.Value {
	t.Helper()
	p, err := NewPoller(embedded(t, name), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	vals, err := p.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func TestRecordedShellyEM(t *testing.T) {
	cat := cim.Default()
	ts := serve(t, map[string]string{"/status": readDevice(t, "shelly-em-status.json")})
	vals := pollProfile(t, "shelly-em-http", device.Config{Address: ts.URL})
	near(t, cat, vals, "active_power", "", -620.34) // exporting
	near(t, cat, vals, "reactive_power", "", 714.48)
	near(t, cat, vals, "power_factor", "", -0.66)
	near(t, cat, vals, "voltage", "", 235.68)
	near(t, cat, vals, "energy_active_import", "", 401472.9)
	near(t, cat, vals, "energy_active_export", "", 653673.7)
	near(t, cat, vals, "relay_state", "", 0)
	if want := time.Unix(1676110566, 0); !vals[0].Time.Equal(want) {
		t.Errorf("time %v, want %v", vals[0].Time, want)
	}
}

func TestRecordedShellyPlugS(t *testing.T) {
	cat := cim.Default()
	// The recording is the meters and relays block of a Plug S; /status
	// adds the device temperature, which it lacks.
	doc := withField(t, readDevice(t, "shelly-plug-s-meters-excerpt.json"), "temperature", 34.8)
	ts := serve(t, map[string]string{"/status": doc})
	vals := pollProfile(t, "shelly-plug-s-http", device.Config{Address: ts.URL})
	near(t, cat, vals, "active_power", "", 3.75)
	near(t, cat, vals, "energy_active_import", "", 9251.0/60) // Watt-minutes
	near(t, cat, vals, "relay_state", "", 1)
	near(t, cat, vals, "temperature", "", 34.8)

	// DEVICES.md's example of a long-running plug: 6472513 Wmin.
	doc = strings.Replace(doc, `"total":9251`, `"total":6472513`, 1)
	ts = serve(t, map[string]string{"/status": doc})
	vals = pollProfile(t, "shelly-plug-s-http", device.Config{Address: ts.URL})
	if got := canonical(t, cat, find(t, vals, "energy_active_import", "")); got < 107875.15 || got > 107875.25 {
		t.Errorf("6472513 Wmin read as %v Wh, want 107875.2", got)
	}
}

func TestRecordedShellyDoorWindow(t *testing.T) {
	cat := cim.Default()
	// The recording is an SHDW-1; the SHDW-2 this profile is for adds tmp.
	doc := withField(t, readDevice(t, "shelly-door-window-status.json"), "tmp",
		map[string]any{"value": 21.5, "units": "C", "tC": 21.5, "tF": 70.7, "is_valid": true})
	ts := serve(t, map[string]string{"/status": doc})
	vals := pollProfile(t, "shelly-dw2-http", device.Config{Address: ts.URL})
	if v := find(t, vals, "door_window_state", ""); v.State != "closed" {
		t.Errorf("sensor.state close read as %+v", v)
	}
	near(t, cat, vals, "illuminance", "", 66)
	near(t, cat, vals, "device_battery_level", "", 99)
	near(t, cat, vals, "temperature", "", 21.5)
	if !vals[0].Time.IsZero() {
		t.Errorf("the recording has no unixtime, yet time is %v", vals[0].Time)
	}
}

func TestRecordedNetatmo(t *testing.T) {
	cat := cim.Default()
	var gotAuth, gotQuery string
	body := readDevice(t, "netatmo-gethomecoachsdata.json")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotQuery = r.Header.Get("Authorization"), r.URL.Query().Get("device_id")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	vals := pollProfile(t, "netatmo-homecoach", device.Config{
		Address: ts.URL, Token: "at-123", Vars: map[string]string{"device_id": "12:34:56:3e:c5:46"}})
	if gotAuth != "Bearer at-123" || gotQuery != "12:34:56:3e:c5:46" {
		t.Errorf("request had Authorization %q, device_id %q", gotAuth, gotQuery)
	}
	near(t, cat, vals, "co2", "", 494)
	near(t, cat, vals, "temperature", "", 20.3)
	near(t, cat, vals, "humidity", "", 63)
	near(t, cat, vals, "noise", "", 42)
	near(t, cat, vals, "pressure", "", 1014.5)
	if want := time.Unix(1572073816, 0); !vals[0].Time.Equal(want) {
		t.Errorf("time %v, want %v", vals[0].Time, want)
	}
}

func TestRecordedHue(t *testing.T) {
	cat := cim.Default()
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(readDevice(t, "hue-v1-sensors.json")), &all); err != nil {
		t.Fatal(err)
	}
	const key = "s3cr3t-app-key"
	ts := serve(t, map[string]string{
		"/api/" + key + "/sensors/6": string(all["6"]),
		"/api/" + key + "/sensors/5": string(all["5"]),
		"/api/" + key + "/sensors/4": string(all["4"]),
	})
	vals := pollProfile(t, "hue-bridge-sensors", device.Config{Address: ts.URL, Username: key,
		Vars: map[string]string{"temp_id": "6", "light_id": "5", "presence_id": "4"}})
	near(t, cat, vals, "temperature", "", 17.44) // 1744 hundredths
	near(t, cat, vals, "device_battery_level", "", 58)
	near(t, cat, vals, "illuminance", "", 0.9997697679981565) // lightlevel 0: 10^(-1/10000) lx
	near(t, cat, vals, "occupancy", "", 0)                    // presence false
	if v, want := find(t, vals, "temperature", ""), time.Date(2020, 2, 6, 7, 26, 26, 0, time.UTC); !v.Time.Equal(want) {
		t.Errorf("temperature time %v, want %v", v.Time, want)
	}
	if v, want := find(t, vals, "occupancy", ""), time.Date(2020, 2, 6, 7, 28, 8, 0, time.UTC); !v.Time.Equal(want) {
		t.Errorf("presence time %v, want %v", v.Time, want)
	}
}

func TestRecordedSmartThings(t *testing.T) {
	cat := cim.Default()
	ts := serve(t, map[string]string{"/v1/devices/dev-1/status": readDevice(t, "smartthings-aeotec-ms6-status.json")})
	vals := pollProfile(t, "smartthings-aeotec-ms6", device.Config{Address: ts.URL, Token: "pat",
		Vars: map[string]string{"device_id": "dev-1"}})
	near(t, cat, vals, "temperature", "", 22.2)
	near(t, cat, vals, "humidity", "", 60)
	near(t, cat, vals, "illuminance", "", 30)
	near(t, cat, vals, "uv_index", "", 0)
	near(t, cat, vals, "device_battery_level", "", 100)
	if v := find(t, vals, "occupancy", ""); v.State != "vacant" {
		t.Errorf("motion inactive read as %+v", v)
	}
}

// TestRecordedPowerwallLoginOverPinnedTLS runs the Powerwall's customer
// login over HTTPS with a pinned self-signed certificate and serves the
// recorded replies only to requests with the session cookie.
func TestRecordedPowerwallLoginOverPinnedTLS(t *testing.T) {
	cat := cim.Default()
	const cookie = "AuthCookie"
	logins := 0
	files := map[string]string{
		"/api/meters/aggregates":         readDevice(t, "powerwall-aggregates.json"),
		"/api/system_status/soe":         readDevice(t, "powerwall-soe.json"),
		"/api/system_status/grid_status": readDevice(t, "powerwall-grid-status.json"),
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/login/Basic" {
			var req map[string]any
			if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil ||
				req["username"] != "customer" || req["email"] != "me@example.com" || req["password"] != `Tr"cky` {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"code":401,"error":"bad credentials","message":"Login Error"}`))
				return
			}
			logins++
			http.SetCookie(w, &http.Cookie{Name: cookie, Value: "abc", Path: "/", Secure: true})
			_, _ = w.Write([]byte(`{"email":"me@example.com","firstname":"Tesla","lastname":"Energy","roles":["Home_Owner"],"token":"abc"}`))
			return
		}
		if c, err := r.Cookie(cookie); err != nil || c.Value != "abc" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(files[r.URL.Path]))
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cfg := device.Config{Address: ts.URL, Username: "me@example.com", Password: `Tr"cky`,
		Fingerprint: strings.ToUpper(colons(Fingerprint(ts.Certificate().Raw)))}
	p, err := NewPoller(embedded(t, "tesla-powerwall2"), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	for range 2 {
		vals, err := p.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		near(t, cat, vals, "active_power", "", 31.8003845214844)
		near(t, cat, vals, "battery_power", "", 8550) // Tesla −8550 (charging) is the catalogue's +8550
		near(t, cat, vals, "pv_power", "", 10489.6596679688)
		near(t, cat, vals, "energy_active_import", "", 4824191.60668611)
		near(t, cat, vals, "energy_active_export", "", 10429451.9916853)
		near(t, cat, vals, "frequency", "", 60)
		near(t, cat, vals, "voltage", "", 120.650001525879)
		near(t, cat, vals, "battery_soc", "", 20.109166592431226)
		if v := find(t, vals, "grid_state", ""); v.State != "connected" {
			t.Errorf("grid_status read as %+v", v)
		}
		if v, want := find(t, vals, "active_power", ""), time.Date(2020, 3, 15, 20, 58, 53, 853784964, time.UTC); !v.Time.Equal(want) {
			t.Errorf("time %v, want %v", v.Time, want)
		}
	}
	if logins != 1 {
		t.Errorf("%d logins for two polls, want 1", logins)
	}

	// A wrong pin is refused before any credential is sent.
	logins = 0
	cfg.Fingerprint = strings.Repeat("ab", 32)
	p2, err := NewPoller(embedded(t, "tesla-powerwall2"), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("poll with a wrong pin: %v, want a fingerprint error", err)
	}
	if logins != 0 {
		t.Error("the login went through despite the wrong pin")
	}

	// Without a pin or a CA the self-signed certificate is refused.
	cfg.Fingerprint = ""
	p3, err := NewPoller(embedded(t, "tesla-powerwall2"), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p3.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("poll without a pin: %v, want a certificate error", err)
	}

	// The certificate as the only CA works too.
	ca := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(ca, pemCert(ts.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.CAFile = ca
	p4, err := NewPoller(embedded(t, "tesla-powerwall2"), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p4.Poll(t.Context()); err != nil {
		t.Errorf("poll with the certificate as CA: %v", err)
	}
}

// colons writes a hex fingerprint the way browsers show it.
func colons(h string) string {
	var parts []string
	for i := 0; i+2 <= len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

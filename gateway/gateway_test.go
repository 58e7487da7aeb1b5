package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/modbus"
	"github.com/gridlink/gridlink/mqtt"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/sqlite"
)

// testPlatform runs the real platform in-process with one site and its
// assets, and returns its URL, an ingest key and the store.
func testPlatform(t *testing.T, site string, assets ...string) (string, string, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.PutSite(ctx, cim.Site{ID: site, Name: site}); err != nil {
		t.Fatal(err)
	}
	for _, a := range assets {
		if err := st.PutAsset(ctx, cim.Asset{Site: site, ID: a, Type: cim.SmartMeter}); err != nil {
			t.Fatal(err)
		}
	}
	secret, k := auth.NewKey(site, string(auth.ScopeIngest), "gateway", time.Now())
	if err := st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	srv, err := platform.New(platform.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); ts.Close() })
	return ts.URL, secret, st
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func getStatus(t *testing.T, addr string) Status {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func deviceOf(s Status, asset string) DeviceStatus {
	for _, d := range s.Devices {
		if d.Asset == asset {
			return d
		}
	}
	return DeviceStatus{}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeviceDownNeverStopsTheOthers starts a gateway whose second device is
// not there: the gateway runs, reads the first, shows the second as down
// with its error, and picks it up once it appears.
func TestDeviceDownNeverStopsTheOthers(t *testing.T) {
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := set.Get("eastron-sdm630")
	url, key, st := testPlatform(t, "s1", "a/up", "a/late")

	startMeter := func(addr string) {
		s, err := modbus.NewSimulator(p, device.Config{}, cat)
		if err != nil {
			t.Fatal(err)
		}
		m := sim.NewModel(sim.ModelConfig{Seed: 1, Channels: sim.ChannelsOf(p), Catalogue: cat})
		if _, err := s.Update(m.Frame(time.Now())); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
	}
	upAddr, lateAddr := freePort(t), freePort(t)
	startMeter(upAddr)

	cfg := Config{
		Site: "s1", Data: filepath.Join(t.TempDir(), "gw"),
		Platform: PlatformConfig{URL: url, Key: key, BatchSize: 100},
		Queue:    QueueConfig{MaxBytes: 1 << 20}, Status: StatusConfig{Listen: "127.0.0.1:0"},
		Devices: []device.Config{
			{Asset: "a/up", Profile: "eastron-sdm630", Address: upAddr, Interval: 200 * time.Millisecond},
			{Asset: "a/late", Profile: "eastron-sdm630", Address: lateAddr, Interval: 200 * time.Millisecond, Timeout: time.Second},
		},
	}
	g, err := Open(t.Context(), cfg, Options{Catalogue: cat, Profiles: set})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	addr := g.StatusAddr()

	waitUntil(t, "a/up read and a/late down", func() bool {
		s := getStatus(t, addr)
		return deviceOf(s, "a/up").Reads >= 3 && deviceOf(s, "a/late").State == StateDown
	})
	s := getStatus(t, addr)
	late := deviceOf(s, "a/late")
	if !strings.Contains(late.LastError, "connect") || late.Failures < MaxFailing || late.NextAttempt == nil {
		t.Errorf("down device: %+v", late)
	}
	if up := deviceOf(s, "a/up"); up.State != StateOK || len(up.Values) != 13 || up.Trend == nil || len(up.Trend.Points) < 2 {
		t.Errorf("working device: state %s, %d values, trend %+v", up.State, len(up.Values), up.Trend)
	}

	// The HTML page names both devices and their states.
	req, _ := http.NewRequest("GET", "http://"+addr+"/status", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"a/up", "a/late", `class="down"`, "energy_active_import", "connect", "<svg", "<polyline"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`gridlink_gateway_device_up{asset="a/late"} 0`, `gridlink_gateway_device_up{asset="a/up"} 1`, "gridlink_uplink_"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// The device appears: the gateway's retry finds it.
	startMeter(lateAddr)
	waitUntil(t, "a/late back", func() bool { return deviceOf(getStatus(t, addr), "a/late").State == StateOK })
	waitUntil(t, "a/late's readings in the platform", func() bool {
		n := 0
		st.Read(context.Background(), store.Selector{Site: "s1", Asset: "a/late"}, func(_ store.Series, ps []cim.Point) error {
			n += len(ps)
			return nil
		})
		return n > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("site: a\ndevices: [{asset: x, profile: y, interval: 1ns}]\n"))
	f.Add([]byte("queue: {max_bytes: 1.5GiB}\n"))
	set, _ := profile.Embedded(cim.Default())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "f.yaml", set)
		if err == nil && (c.Site == "" || len(c.Devices) == 0) {
			t.Fatalf("accepted a config without site or devices: %+v", c)
		}
	})
}

// TestSameTopicTwiceWarns: two devices left with the same Shelly id would
// read each other's values; the gateway says so at start.
func TestSameTopicTwiceWarns(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dev := device.Config{Profile: "shelly-plug-s-mqtt", Address: "embedded", Vars: map[string]string{"id": "shellyplug-s-1"}}
	a, b := dev, dev
	a.Asset, b.Asset = "h/plug-1", "h/plug-2"
	cfg := Config{
		Site: "s1", Data: t.TempDir(), Platform: PlatformConfig{URL: "http://127.0.0.1:1", Key: "k", BatchSize: 10},
		Queue: QueueConfig{MaxBytes: 1 << 20}, Status: StatusConfig{Listen: "off"},
		Broker:  &BrokerConfig{Listen: "127.0.0.1:0", Users: []BrokerUser{{Username: "plug", Password: "password-1"}}},
		Devices: []device.Config{a, b},
	}
	g, err := Open(t.Context(), cfg, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g.closeAll()
	if !strings.Contains(logs.String(), "two devices subscribe to the same topic") || !strings.Contains(logs.String(), "h/plug-1") {
		t.Errorf("no warning about the shared topic:\n%s", logs.String())
	}
}

// TestBrokerDownNeverStopsTheGateway: a device on an outside MQTT broker
// (an emonPi's mosquitto) that is down at start: the gateway starts, reads
// its other device, shows the broker's error on the MQTT device, and takes
// its values once the broker is up.
func TestBrokerDownNeverStopsTheGateway(t *testing.T) {
	cat := cim.Default()
	set, _ := profile.Embedded(cat)
	meter, _ := set.Get("eastron-sdm630")
	url, key, _ := testPlatform(t, "s1", "a/meter", "a/emonpi")
	meterAddr, brokerAddr := freePort(t), freePort(t)
	s, err := modbus.NewSimulator(meter, device.Config{}, cat)
	if err != nil {
		t.Fatal(err)
	}
	m := sim.NewModel(sim.ModelConfig{Seed: 1, Channels: sim.ChannelsOf(meter), Catalogue: cat})
	s.Update(m.Frame(time.Now()))
	if _, err := s.Start(meterAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := Config{
		Site: "s1", Data: t.TempDir(), Platform: PlatformConfig{URL: url, Key: key, BatchSize: 100},
		Queue: QueueConfig{MaxBytes: 1 << 20}, Status: StatusConfig{Listen: "127.0.0.1:0"},
		Devices: []device.Config{
			{Asset: "a/meter", Profile: "eastron-sdm630", Address: meterAddr, Interval: 200 * time.Millisecond},
			{Asset: "a/emonpi", Profile: "emonpi-emonhub", Address: "tcp://" + brokerAddr, Username: "emonpi", Password: "emonpimqtt2016", Interval: time.Second},
		},
	}
	g, err := Open(t.Context(), cfg, Options{Catalogue: cat, Profiles: set})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	addr := g.StatusAddr()
	waitUntil(t, "the meter read while the broker is down", func() bool {
		s := getStatus(t, addr)
		e := deviceOf(s, "a/emonpi")
		return deviceOf(s, "a/meter").Reads >= 2 && e.State == StateDown && strings.Contains(e.LastError, "mqtt broker:")
	})

	// The emonPi's broker comes up; emonhub publishes.
	b, err := mqtt.NewBroker(mqtt.BrokerConfig{Listen: brokerAddr, Users: map[string]string{"emonpi": "emonpimqtt2016"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	waitUntil(t, "the emonPi's power", func() bool {
		b.Publish(t.Context(), "emon/emonpi/power1", []byte("39"), false)
		for _, v := range deviceOf(getStatus(t, addr), "a/emonpi").Values {
			if v.Quantity == "active_power" && v.Value == 39 {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
		return false
	})
	if st := deviceOf(getStatus(t, addr), "a/emonpi"); st.State != StateOK {
		t.Errorf("emonPi after the broker came up: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

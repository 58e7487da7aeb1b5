package mqtt

import (
	"bufio"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// fixtureLines reads "topic payload" lines of a fixture: lines that start
// with prefix, or, with marker, the text after marker.
func fixtureLines(t *testing.T, file, prefix, marker string) [][2]string {
	t.Helper()
	f, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if marker != "" {
			i := strings.Index(line, marker)
			if i < 0 {
				continue
			}
			line = line[i+len(marker):]
		}
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		topic, payload, _ := strings.Cut(line, " ")
		out = append(out, [2]string{topic, strings.TrimSpace(payload)})
	}
	if len(out) == 0 {
		t.Fatalf("no %q lines in %s", prefix, file)
	}
	return out
}

// want is an expected value in the quantity's canonical unit.
type want struct {
	quantity string
	phase    cim.Phase
	value    float64
	state    string
	time     time.Time
}

// expect checks one emitted batch.
func expect(t *testing.T, cat *cim.Catalogue, got []device.Value, ws ...want) {
	t.Helper()
	if len(got) != len(ws) {
		t.Fatalf("got %d values %+v, want %d", len(got), got, len(ws))
	}
	for i, w := range ws {
		g := got[i]
		if g.Quantity != w.quantity || g.Phase != w.phase || g.State != w.state || !g.Time.Equal(w.time) {
			t.Errorf("got %+v, want %+v", g, w)
			continue
		}
		if w.state == "" {
			if c := canonical(t, cat, g); !near(c, w.value) {
				t.Errorf("%s: got %v (%g %s), want %v", w.quantity, c, g.Value, g.Unit, w.value)
			}
		}
	}
}

// TestMosquittoRealPayloads: a real mosquitto, the Client, and the real
// payloads of the fixtures published by mosquitto_pub.
func TestMosquittoRealPayloads(t *testing.T) {
	cat := cim.Default()
	m := startMosquitto(t, "gw", "gwpass")
	addr := m.addr()
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	c, err := Dial(ctx, ClientConfig{URL: "tcp://" + addr, Username: "gw", Password: "gwpass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	publish := func(topic, payload string) { t.Helper(); mustPub(t, addr, "gw", "gwpass", topic, payload) }

	t.Run("emonhub", func(t *testing.T) {
		r := startSubscriber(t, t.Context(), embeddedProfile(t, "emonpi-emonhub"), device.Config{}, c)
		// Every publish of the 2016 emonhub log, in order; the profile
		// reads power1, power2, vrms and t1.
		for _, l := range fixtureLines(t, "emonhub-mqtt.txt", "emon", "Publishing: ") {
			publish(l[0], l[1])
		}
		expect(t, cat, r.next(t), want{quantity: "active_power", value: 39})
		expect(t, cat, r.next(t), want{quantity: "pv_power", value: 0})
		expect(t, cat, r.next(t), want{quantity: "voltage", value: 231.79})
		expect(t, cat, r.next(t), want{quantity: "temperature", value: 0})
		// A bad payload is counted and skipped; the next one flows.
		publish("emon/emonpi/power1", "garbage")
		publish("emon/emonpi/power1", "40")
		expect(t, cat, r.next(t), want{quantity: "active_power", value: 40})
		if n := r.sub.BadPayloads(); n != 1 {
			t.Errorf("BadPayloads = %d, want 1", n)
		}
	})

	t.Run("shelly-plug-s", func(t *testing.T) {
		id := "shellyplug-s-376D1F"
		r := startSubscriber(t, t.Context(), embeddedProfile(t, "shelly-plug-s-mqtt"), device.Config{Vars: map[string]string{"id": id}}, c)
		publish("shellies/"+id+"/online", "true")
		publish("shellies/"+id+"/relay/0", "on")
		expect(t, cat, r.next(t), want{quantity: "relay_state", state: "on"})
		// 6472513 Watt-minutes are 6472513 / 60 = 107875.21666… Wh.
		publish("shellies/"+id+"/relay/0/energy", "6472513")
		expect(t, cat, r.next(t), want{quantity: "energy_active_import", value: 6472513.0 / 60})
		// meters[0] of the real Plug S capture: power 3.75 W, total 9251 Wmin.
		publish("shellies/"+id+"/relay/0/power", "3.75")
		expect(t, cat, r.next(t), want{quantity: "active_power", value: 3.75})
		publish("shellies/"+id+"/relay/0/energy", "9251")
		expect(t, cat, r.next(t), want{quantity: "energy_active_import", value: 154.18333333333334})
		if known, online := r.sub.Online(); !known || !online {
			t.Errorf("Online() = %v, %v; want known and online", known, online)
		}
		// The last will.
		publish("shellies/"+id+"/online", "false")
		publish("shellies/"+id+"/temperature", "41.2")
		expect(t, cat, r.next(t), want{quantity: "temperature", value: 41.2})
		if known, online := r.sub.Online(); !known || online {
			t.Errorf("Online() = %v, %v after the last will; want known and offline", known, online)
		}
	})

	t.Run("shelly-em", func(t *testing.T) {
		id := "shellyem-C45BXXXXX"
		r := startSubscriber(t, t.Context(), embeddedProfile(t, "shelly-em-mqtt"), device.Config{Vars: map[string]string{"id": id}}, c)
		// emeters[0] of the real Shelly EM /status (testdata/shelly-em-status.json).
		publish("shellies/"+id+"/emeter/0/power", "-620.34")
		publish("shellies/"+id+"/emeter/0/reactive_power", "714.48")
		publish("shellies/"+id+"/emeter/0/voltage", "235.68")
		publish("shellies/"+id+"/emeter/0/total", "401472.9")
		publish("shellies/"+id+"/emeter/0/total_returned", "653673.7")
		// emeter 1 is another clamp: not this device's.
		publish("shellies/"+id+"/emeter/1/power", "0.0")
		expect(t, cat, r.next(t), want{quantity: "active_power", value: -620.34})
		expect(t, cat, r.next(t), want{quantity: "reactive_power", value: 714.48})
		expect(t, cat, r.next(t), want{quantity: "voltage", value: 235.68})
		expect(t, cat, r.next(t), want{quantity: "energy_active_import", value: 401472.9})
		expect(t, cat, r.next(t), want{quantity: "energy_active_export", value: 653673.7})
		publish("shellies/"+id+"/emeter/0/power", "1.5")
		expect(t, cat, r.next(t), want{quantity: "active_power", value: 1.5})
	})

	t.Run("shelly-button1", func(t *testing.T) {
		id := "shellybutton1-E8DB84AB335F"
		r := startSubscriber(t, t.Context(), embeddedProfile(t, "shelly-button1-mqtt"), device.Config{Vars: map[string]string{"id": id}}, c)
		publish("shellies/"+id+"/input_event/0", `{"event":"S","event_cnt":2}`)
		expect(t, cat, r.next(t), want{quantity: "button_event", state: "press"})
		publish("shellies/"+id+"/input_event/0", `{"event":"L","event_cnt":3}`)
		expect(t, cat, r.next(t), want{quantity: "button_event", state: "long_press"})
		publish("shellies/"+id+"/sensor/battery", "87")
		expect(t, cat, r.next(t), want{quantity: "device_battery_level", value: 87})
	})

	t.Run("zwave-js-ui", func(t *testing.T) {
		r := startSubscriber(t, t.Context(), embeddedProfile(t, "zwave-aeotec-ms6"), device.Config{Vars: map[string]string{"node": "nodeID_14"}}, c)
		// The documented JSON Time-Value payload, on a real topic string
		// (testdata/zwave-js-ui-mqtt.txt).
		publish("zwave/nodeID_14/49/0/Air_temperature", `{"time": 1548683523859, "value": 10}`)
		expect(t, cat, r.next(t), want{quantity: "temperature", value: 10, time: time.UnixMilli(1548683523859)})
		publish("zwave/nodeID_14/113/0/Home_Security/Motion_sensor_status", `{"time":1548683524000,"value":8}`)
		expect(t, cat, r.next(t), want{quantity: "occupancy", state: "occupied", time: time.UnixMilli(1548683524000)})
	})

	t.Run("venus-os", func(t *testing.T) {
		portal := "7c386655e76b"
		keepalive := collect(t, c, "R/"+portal+"/keepalive")
		r := startSubscriber(t, t.Context(), embeddedProfile(t, "victron-venus-mqtt"), device.Config{Vars: map[string]string{"portal": portal}}, c)
		if m := recv(t, keepalive); m.topic != "R/"+portal+"/keepalive" {
			t.Fatalf("keepalive on %s", m.topic)
		}
		// The real capture of a system with a CAN-bus BMS, in order; the
		// profile reads Current, Power, Soc, State and Voltage.
		for _, l := range fixtureLines(t, "victron-venus-mqtt.txt", "N/"+portal+"/", "") {
			publish(l[0], l[1])
		}
		expect(t, cat, r.next(t), want{quantity: "battery_current", value: 0.30000001192092896})
		expect(t, cat, r.next(t), want{quantity: "battery_power", value: 15})
		expect(t, cat, r.next(t), want{quantity: "battery_soc", value: 100})
		expect(t, cat, r.next(t), want{quantity: "battery_state", value: 0})
		expect(t, cat, r.next(t), want{quantity: "battery_voltage", value: 52.979999542236328})
		// null (invalid) and empty (device gone) are skipped, not bad.
		publish("N/"+portal+"/system/0/Dc/Battery/Soc", `{"value": null}`)
		if out, err := pub(t, addr, "-u", "gw", "-P", "gwpass", "-t", "N/"+portal+"/system/0/Dc/Battery/Soc", "-n"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		publish("N/"+portal+"/system/0/Dc/Battery/Soc", `{"value": 64.699996948242188}`)
		expect(t, cat, r.next(t), want{quantity: "battery_soc", value: 64.699996948242188})
		if n := r.sub.BadPayloads(); n != 0 {
			t.Errorf("BadPayloads = %d, want 0", n)
		}
	})
}

// TestMosquittoReconnect: mosquitto stops and comes back on the same
// port; the Client reconnects, subscribes again, and values flow while
// Subscribe keeps running.
func TestMosquittoReconnect(t *testing.T) {
	cat := cim.Default()
	m := startMosquitto(t, "gw", "gwpass")
	addr := m.addr()
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	c, err := Dial(ctx, ClientConfig{URL: "tcp://" + addr, Username: "gw", Password: "gwpass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := startSubscriber(t, t.Context(), embeddedProfile(t, "emonpi-emonhub"), device.Config{}, c)
	mustPub(t, addr, "gw", "gwpass", "emon/emonpi/power1", "39")
	expect(t, cat, r.next(t), want{quantity: "active_power", value: 39})

	m.stop()
	m.start()
	// Publish until one arrives: those sent before the Client has
	// subscribed again are lost, as MQTT QoS 1 without a session loses
	// them. The hang guard ends the loop.
	deadline := time.Now().Add(hang)
	for i := 1; ; i++ {
		mustPub(t, addr, "gw", "gwpass", "emon/emonpi/power1", strconv.Itoa(1000+i))
		select {
		case v := <-r.values:
			if got := canonical(t, cat, v[0]); got < 1000 {
				t.Fatalf("got %v, want a value published after the restart", got)
			}
			if !c.Connected() {
				t.Error("values flow but Connected() is false")
			}
			return
		case err := <-r.err:
			t.Fatalf("Subscribe ended on a broker restart: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no values after the broker came back")
		}
	}
}

// TestClientV3Broker: a broker that answers an MQTT 5 CONNECT with an
// MQTT 3 "unacceptable protocol version" CONNACK gets a clear error.
func TestClientV3Broker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 512)
				_, _ = conn.Read(buf) // the CONNECT
				// CONNACK, remaining length 2, return code 1.
				_, _ = conn.Write([]byte{0x20, 0x02, 0x00, 0x01})
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	_, err = Dial(ctx, ClientConfig{URL: "tcp://" + l.Addr().String()}, nil)
	if err == nil || !strings.Contains(err.Error(), "MQTT 5") {
		t.Fatalf("Dial to an MQTT 3 broker: %v, want an error saying MQTT 5", err)
	}
}

// TestClientURL checks schemes and default ports.
func TestClientURL(t *testing.T) {
	for in, host := range map[string]string{
		"tcp://emonpi.local":   "emonpi.local:1883",
		"mqtt://10.0.0.2:1884": "10.0.0.2:1884",
		"ssl://gx.local":       "gx.local:8883",
		"tls://[::1]":          "[::1]:8883",
	} {
		u, _, err := brokerURL(ClientConfig{URL: in})
		if err != nil || u.Host != host {
			t.Errorf("brokerURL(%s) = %v, %v; want host %s", in, u, err, host)
		}
	}
	for _, in := range []string{"http://x", "emonpi.local:1883", "", "ws://x"} {
		if _, _, err := brokerURL(ClientConfig{URL: in}); err == nil {
			t.Errorf("brokerURL(%q) accepted", in)
		}
	}
}

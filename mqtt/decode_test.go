package mqtt

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
)

// testDecoders are decoders of every format: the embedded profiles'
// topics plus a csv topic (emonhub's legacy emonhub/rx/<node>/values).
func testDecoders(t testing.TB) []*decoder {
	t.Helper()
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	csv, err := profile.Parse([]byte(`name: emonhub-csv
protocol: mqtt
mqtt:
  topics:
    - topic: emonhub/rx/5/values
      format: csv
      time: {path: "11", format: unix_s}
      points:
        - {path: "0", quantity: active_power, unit: W}
        - {path: "3", quantity: voltage, unit: V}
        - {path: "12", quantity: temperature, optional: true}
`), "emonhub-csv.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	var out []*decoder
	for _, p := range append(set.All(), csv) {
		if p.Protocol != profile.MQTT {
			continue
		}
		// Profile defaults win: emonhub keeps node emonpi.
		vars := mergeVars(testVars, p.MQTT.Vars)
		for i := range p.MQTT.Topics {
			tp := &p.MQTT.Topics[i]
			f, err := Expand(tp.Topic, vars)
			if err != nil {
				t.Fatal(err)
			}
			d, err := newDecoder(tp, f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
	}
	return out
}

func decoderFor(t *testing.T, ds []*decoder, topic string) *decoder {
	t.Helper()
	for _, d := range ds {
		if MatchTopic(d.filter, topic) {
			return d
		}
	}
	t.Fatalf("no decoder for %s", topic)
	return nil
}

func TestDecodePayloads(t *testing.T) {
	cat := cim.Default()
	ms := time.UnixMilli(1548683523859)
	cases := []struct {
		topic, payload string
		want           []want
		err            string
	}{
		{topic: "emon/emonpi/vrms", payload: "231.79", want: []want{{quantity: "voltage", value: 231.79}}},
		{topic: "emon/emonpi/vrms", payload: " 231.79\n", want: []want{{quantity: "voltage", value: 231.79}}},
		{topic: "emon/emonpi/vrms", payload: ""},
		{topic: "emon/emonpi/vrms", payload: "null"},
		{topic: "emon/emonpi/vrms", payload: "NaN", err: "not a number"},
		{topic: "emon/emonpi/vrms", payload: "1e400", err: "not a number"},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/relay/0", payload: "on", want: []want{{quantity: "relay_state", state: "on"}}},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/relay/0", payload: "overpower", want: []want{{quantity: "relay_state", state: "off"}}},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/relay/0", payload: "toggle", err: "not one of the profile's states"},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/input_event/0", payload: `{"event":"","event_cnt":0}`},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/relay/0/energy", payload: "6472513", want: []want{{quantity: "energy_active_import", value: 6472513.0 / 60}}},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/sensor/state", payload: "close", want: []want{{quantity: "door_window_state", state: "closed"}}},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/input_event/0", payload: `{"event":"SSS","event_cnt":57}`, want: []want{{quantity: "button_event", state: "triple_press"}}},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/input_event/0", payload: `{"event_cnt":57}`, err: "no value at event"},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/input_event/0", payload: `{"event":`, err: "not JSON"},
		{topic: "shellies/shellyplug-s-7C87CEB4A3C5/input_event/0", payload: `{"event":"S"} {}`, err: "more than one"},
		{topic: "zwave/nodeID_14/49/0/Air_temperature", payload: `{"time": 1548683523859, "value": 10}`, want: []want{{quantity: "temperature", value: 10, time: ms}}},
		{topic: "zwave/nodeID_14/49/0/Air_temperature", payload: `{"time": 1548683523859, "value": "21.5"}`, want: []want{{quantity: "temperature", value: 21.5, time: ms}}},
		{topic: "zwave/nodeID_14/49/0/Air_temperature", payload: `{"time": 1548683523859, "value": {"a":1}}`, err: "got an object"},
		// A bad time still yields the value, with the gateway's clock.
		{topic: "zwave/nodeID_14/49/0/Air_temperature", payload: `{"time": 99, "value": 10}`, want: []want{{quantity: "temperature", value: 10}}, err: "plausible"},
		{topic: "zwave/nodeID_14/37/0/currentValue", payload: `{"time": 1548683523859, "value": true}`, want: []want{{quantity: "relay_state", state: "on", time: ms}}},
		{topic: "zwave/nodeID_14/113/0/Home_Security/Motion_sensor_status", payload: `{"time": 1548683523859, "value": 0}`, want: []want{{quantity: "occupancy", state: "vacant", time: ms}}},
		{topic: "zwave/nodeID_14/50/0/value/65537", payload: `{"time": 1548683523859, "value": 12.34}`, want: []want{{quantity: "energy_active_import", value: 12340, time: ms}}},
		{topic: "N/7c386655e76b/system/0/Dc/Battery/Soc", payload: `{"value": 100}`, want: []want{{quantity: "battery_soc", value: 100}}},
		{topic: "N/7c386655e76b/system/0/Dc/Battery/Soc", payload: `{"value": null}`},
		{topic: "N/7c386655e76b/system/0/Dc/Battery/State", payload: `{"value": 2}`, want: []want{{quantity: "battery_state", value: 2}}},
		{topic: "N/7c386655e76b/system/0/Ac/Grid/L2/Power", payload: `{"value": -1234}`, want: []want{{quantity: "active_power", phase: "L2", value: -1234}}},
		{topic: "tele/tasmota_A1B2C3/SENSOR",
			payload: `{"Time":"2019-07-13T10:32:56","ENERGY":{"TotalStartTime":"2019-07-12T12:00:00","Total":12.345,"Yesterday":0.1,"Today":0.2,"Power":57,"ApparentPower":60,"ReactivePower":10,"Factor":0.95,"Voltage":231,"Current":0.256}}`,
			want: []want{
				{quantity: "energy_active_import", value: 12345, time: time.Date(2019, 7, 13, 10, 32, 56, 0, time.UTC)},
				{quantity: "active_power", value: 57, time: time.Date(2019, 7, 13, 10, 32, 56, 0, time.UTC)},
				{quantity: "voltage", value: 231, time: time.Date(2019, 7, 13, 10, 32, 56, 0, time.UTC)},
				{quantity: "current", value: 0.256, time: time.Date(2019, 7, 13, 10, 32, 56, 0, time.UTC)},
			}},
		// The legacy emonhub CSV of the 2016 log, stamped by a 12th field.
		{topic: "emonhub/rx/5/values", payload: "39,0,39,231.79,0,0,0,0,0,0,0,1463221555.59",
			want: []want{
				{quantity: "active_power", value: 39, time: time.UnixMilli(1463221555590)},
				{quantity: "voltage", value: 231.79, time: time.UnixMilli(1463221555590)},
			}},
		{topic: "emonhub/rx/5/values", payload: "39,0,39", err: "no value at position 3", want: []want{{quantity: "active_power", value: 39}}},
	}
	ds := testDecoders(t)
	for _, c := range cases {
		d := decoderFor(t, ds, c.topic)
		got, err := d.decode([]byte(c.payload))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %q: %v", c.topic, c.payload, err)
			continue
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %q: error %v, want …%s…", c.topic, c.payload, err, c.err)
			continue
		}
		if len(c.want) == 0 && len(got) == 0 {
			continue
		}
		t.Run(c.topic, func(t *testing.T) { expect(t, cat, got, c.want...) })
	}
}

func TestParseTime(t *testing.T) {
	cases := []struct {
		raw    any
		format string
		want   time.Time
		ok     bool
	}{
		{1548683523859.0, "unix_ms", time.UnixMilli(1548683523859), true},
		{"1463221555.59", "unix_s", time.UnixMilli(1463221555590), true},
		{1463221555.0, "unix_s", time.Unix(1463221555, 0), true},
		{"2024-03-01T10:00:00.5+01:00", "rfc3339", time.Date(2024, 3, 1, 9, 0, 0, 5e8, time.UTC), true},
		{"2024-03-01T10:00:00", "local", time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), true},
		{"2024-03-01 10:00:00", "local", time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), true},
		{1e300, "unix_s", time.Time{}, false},
		{math.Inf(1), "unix_ms", time.Time{}, false},
		{-5.0, "unix_s", time.Time{}, false},
		{"yesterday", "rfc3339", time.Time{}, false},
		{12.0, "rfc3339", time.Time{}, false},
		{"0001-01-01T00:00:00Z", "rfc3339", time.Time{}, false},
	}
	for _, c := range cases {
		tf := &timeField{field: &profile.TimeField{Format: c.format}}
		got, err := tf.parse(c.raw)
		if (err == nil) != c.ok || (c.ok && !got.Equal(c.want)) {
			t.Errorf("parse(%v, %s) = %v, %v; want %v ok=%v", c.raw, c.format, got, err, c.want, c.ok)
		}
	}
}

func TestMatchTopic(t *testing.T) {
	cases := []struct {
		filter, topic string
		match         bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"zwave/+/49/0/Air_temperature", "zwave/nodeID_14/49/0/Air_temperature", true},
		{"shellies/+/relay/0", "shellies/x/relay/0/power", false},
		{"a/b/c", "a/b", false},
		{"", "a", false},
		{"a", "", false},
	}
	for _, c := range cases {
		if got := MatchTopic(c.filter, c.topic); got != c.match {
			t.Errorf("MatchTopic(%q, %q) = %v", c.filter, c.topic, got)
		}
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"id": "shellyem-1", "loc": "Bedroom/MS6", "w": "+"}
	good := map[string]string{
		"shellies/{id}/emeter/0/power": "shellies/shellyem-1/emeter/0/power",
		"zwave/{loc}/49/0/Humidity":    "zwave/Bedroom/MS6/49/0/Humidity",
		"zwave/{w}/49":                 "zwave/+/49",
		"plain/topic":                  "plain/topic",
	}
	for in, want := range good {
		if got, err := Expand(in, vars); err != nil || got != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"shellies/{nope}/x": `var "nope" is not set`,
		"shellies/{id":      "{ without }",
		"shellies/id}":      "} without {",
		"a/{}/b":            "empty placeholder",
		"a/x{w}/b":          "+ must be a whole level",
	}
	for in, msg := range bad {
		if _, err := Expand(in, vars); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Expand(%q) = %v, want …%s…", in, err, msg)
		}
	}
}

// fuzzSeeds are real payloads of the fixtures plus edge cases.
var fuzzSeeds = []string{
	"39", "231.79", "0", "on", "off", "open", "close", "true", "false", "", "null", "6472513", "-620.34",
	`{"event":"S","event_cnt":2}`, `{"event":"L","event_cnt":79}`,
	`{"time": 1548683523859, "value": 10}`, `{"time":1548683523859,"value":true}`,
	`{"value": 100}`, `{"value": 52.979999542236328}`, `{"value": null}`,
	`{"value": "com.victronenergy.battery.socketcan_can1"}`,
	`{"Time":"2019-07-13T10:32:56","ENERGY":{"Total":12.345,"Power":57,"Voltage":231,"Current":0.256}}`,
	"39,0,39,231.79,0,0,0,0,0,0,0", "39,0,39,231.79,0,0,0,0,0,0,0,1463221555.59",
	`{"value": 1e999}`, `[1,2,3]`, `{"ENERGY":[]}`, "\x00\xff", `{"time":"x","value":1}`,
}

// FuzzDecodePayload: no payload panics a decoder of any format, and what
// decodes is a finite number or a catalogue state of the point's
// quantity, with a plausible time or none.
func FuzzDecodePayload(f *testing.F) {
	ds := testDecoders(f)
	for i, s := range fuzzSeeds {
		f.Add(uint8(i), []byte(s))
	}
	cat := cim.Default()
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		d := ds[int(which)%len(ds)]
		vals, _ := d.decode(payload)
		for _, v := range vals {
			q, ok := cat.Lookup(v.Quantity)
			if !ok {
				t.Fatalf("quantity %q not in the catalogue", v.Quantity)
			}
			if v.State != "" {
				found := false
				for _, s := range q.States {
					found = found || s == v.State
				}
				if !found {
					t.Fatalf("state %q is not a state of %s", v.State, v.Quantity)
				}
			} else if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
				t.Fatalf("%s: non-finite %v", v.Quantity, v.Value)
			}
			if !v.Time.IsZero() && !profile.PlausibleTime(v.Time) {
				t.Fatalf("implausible time %v", v.Time)
			}
		}
	})
}

// FuzzMatchTopic: matching never panics; a topic always matches itself
// and "#" (unless it starts with $); a valid filter without wildcards
// matches only itself.
func FuzzMatchTopic(f *testing.F) {
	for _, s := range [][2]string{
		{"shellies/+/relay/0", "shellies/shellyplug-s-376D1F/relay/0"},
		{"emon/#", "emon/emonpi/power1"},
		{"N/+/system/0/Dc/Battery/Soc", "N/7c386655e76b/system/0/Dc/Battery/Soc"},
		{"zwave/{node}/49/0/Air_temperature", "zwave/nodeID_14/49/0/Air_temperature"},
		{"#", "$SYS/x"}, {"a/+/", "a//"}, {"/", "/"}, {"+", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		m := MatchTopic(filter, topic)
		if CheckTopic(topic) == nil {
			if !MatchTopic(topic, topic) {
				t.Fatalf("%q does not match itself", topic)
			}
			if !strings.HasPrefix(topic, "$") && !MatchTopic("#", topic) {
				t.Fatalf("# does not match %q", topic)
			}
			if CheckTopic(filter) == nil && m != (filter == topic) {
				t.Fatalf("MatchTopic(%q, %q) = %v without wildcards", filter, topic, m)
			}
		}
		_, _ = Expand(filter, map[string]string{"node": topic})
	})
}

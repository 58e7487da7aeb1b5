package profile

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

func TestJSONValue(t *testing.T) {
	plain := &Mapping{Quantity: "active_power", Unit: "W"}
	scaled := &Mapping{Quantity: "energy_active_import", Unit: "Wh", Scale: 1000}
	relay := &Mapping{Quantity: "relay_state", States: map[string]string{"on": "on", "off": "off", "true": "on", "false": "off"}}
	occupancy := &Mapping{Quantity: "occupancy", States: map[string]string{"0": "vacant", "8": "occupied"}}
	event := &Mapping{Quantity: "button_event", States: map[string]string{"S": "press"}}
	cases := []struct {
		m     *Mapping
		raw   any
		value float64
		state string
		skip  bool
		err   string
	}{
		{m: plain, raw: nil, skip: true},
		{m: plain, raw: 57.0, value: 57},
		{m: scaled, raw: 12.345, value: 12345},
		{m: plain, raw: " 21.5\n", value: 21.5},
		{m: plain, raw: true, value: 1},
		{m: plain, raw: false, value: 0},
		{m: plain, raw: "true", value: 1},
		{m: plain, raw: "false", value: 0},
		{m: plain, raw: "", skip: true},
		{m: event, raw: " ", skip: true},
		{m: relay, raw: true, state: "on"},
		{m: relay, raw: "off", state: "off"},
		{m: occupancy, raw: 8.0, state: "occupied"},
		{m: event, raw: "S", state: "press"},
		{m: event, raw: "SSSS", err: `button_event: state "SSSS" is not one of the profile's states`},
		{m: occupancy, raw: 3.0, err: `state "3"`},
		{m: plain, raw: "abc", err: `active_power: "abc" is not a number`},
		{m: plain, raw: "NaN", err: "not a number"},
		{m: plain, raw: "TRUE", err: "not a number"},
		{m: scaled, raw: 1e308, err: "energy_active_import: value is not finite"},
		{m: scaled, raw: "1e308", err: "not finite"},
		{m: plain, raw: map[string]any{"v": 1.0}, err: "active_power: want a number, text or bool, got an object"},
		{m: plain, raw: []any{1.0}, err: "got an array"},
		{m: plain, raw: 7, err: "got int"},
	}
	for _, c := range cases {
		v, skip, err := c.m.JSONValue(c.raw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %#v: error %v, want …%s…", c.m.Quantity, c.raw, err, c.err)
			}
			continue
		}
		if err != nil || skip != c.skip {
			t.Errorf("%s %#v: skip %v, error %v; want skip %v", c.m.Quantity, c.raw, skip, err, c.skip)
			continue
		}
		if skip {
			continue
		}
		if v.Quantity != c.m.Quantity || v.State != c.state || (c.state == "" && math.Abs(v.Value-c.value) > 1e-9) {
			t.Errorf("%s %#v = %+v, want value %v state %q", c.m.Quantity, c.raw, v, c.value, c.state)
		}
	}
}

func TestTimeFieldParse(t *testing.T) {
	cases := []struct {
		raw    any
		format string
		want   time.Time // zero with err "": the device gives no time
		err    string
	}{
		// Device times of the fixtures.
		{1548683523859.0, "unix_ms", time.UnixMilli(1548683523859), ""},                       // Z-Wave, exact ms
		{"1463221555.59", "unix_s", time.UnixMilli(1463221555590), ""},                        // emonhub CSV
		{1676110566.0, "unix_s", time.Unix(1676110566, 0), ""},                                // Shelly EM
		{"2020-02-06T07:28:08", "local", time.Date(2020, 2, 6, 7, 28, 8, 0, time.UTC), ""},    // Hue
		{"2019-07-13T10:32:56", "local", time.Date(2019, 7, 13, 10, 32, 56, 0, time.UTC), ""}, // Tasmota
		{"2024-03-01 10:00:00", "local", time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), ""},    // Tasmota
		{"2020-03-15T15:58:53.853784964-05:00", "rfc3339", time.Date(2020, 3, 15, 20, 58, 53, 853784964, time.UTC), ""},
		{" 2025-09-30T15:13:46.521Z ", "rfc3339", time.Date(2025, 9, 30, 15, 13, 46, 521e6, time.UTC), ""},
		// No time.
		{nil, "unix_s", time.Time{}, ""},
		{0.0, "unix_s", time.Time{}, ""}, // Shelly before time sync
		{"0", "unix_ms", time.Time{}, ""},
		{"", "rfc3339", time.Time{}, ""},
		{"none", "local", time.Time{}, ""}, // Hue
		// Bad times.
		{99.0, "unix_ms", time.Time{}, "99 is not a plausible unix_ms time"},
		{-5.0, "unix_s", time.Time{}, "plausible"},
		{1e300, "unix_s", time.Time{}, "plausible"},
		{math.Inf(1), "unix_ms", time.Time{}, "plausible"},
		{math.NaN(), "unix_s", time.Time{}, "plausible"},
		{"soon", "unix_s", time.Time{}, `"soon" is not a number`},
		{true, "unix_s", time.Time{}, "want a number, got a bool"},
		{"yesterday", "rfc3339", time.Time{}, `"yesterday" is not a rfc3339 time`},
		{12.0, "rfc3339", time.Time{}, "want text, got a number"},
		{"0001-01-01T00:00:00Z", "rfc3339", time.Time{}, "plausible"},
		{"2300-01-01T00:00:00", "local", time.Time{}, "plausible"},
		{"2024-03-01T10:00:00", "iso", time.Time{}, `unknown time format "iso"`},
	}
	for _, c := range cases {
		tf := &TimeField{Path: "t", Format: c.format}
		got, ok, err := tf.Parse(c.raw)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) || ok {
				t.Errorf("Parse(%#v, %s) = %v, %v, %v; want error …%s…", c.raw, c.format, got, ok, err, c.err)
			}
		case err != nil || ok == c.want.IsZero() || !got.Equal(c.want):
			t.Errorf("Parse(%#v, %s) = %v, %v, %v; want %v", c.raw, c.format, got, ok, err, c.want)
		case ok && got.Location() != time.UTC:
			t.Errorf("Parse(%#v, %s) = %v, not in UTC", c.raw, c.format, got)
		}
	}
}

// FuzzJSONValue: no JSON value panics the mapping of any embedded profile;
// what maps is a finite number or a catalogue state of the quantity.
func FuzzJSONValue(f *testing.F) {
	for _, s := range []string{
		`57`, `12.345`, `"21.5"`, `true`, `"false"`, `null`, `""`, `"on"`, `"close"`, `"SSS"`,
		`0`, `8`, `1e308`, `-1e308`, `"1e400"`, `{"v":1}`, `[1]`, `"com.victronenergy.battery.socketcan_can1"`,
	} {
		f.Add(uint16(0), []byte(s))
		f.Add(uint16(7), []byte(s))
	}
	cat := cim.Default()
	set, err := Embedded(cat)
	if err != nil {
		f.Fatal(err)
	}
	var ms []*Mapping
	for _, p := range set.All() {
		ms = append(ms, p.Mappings()...)
	}
	f.Fuzz(func(t *testing.T, which uint16, data []byte) {
		var raw any
		if json.Unmarshal(data, &raw) != nil {
			raw = string(data) // a plain MQTT payload or a CSV field
		}
		m := ms[int(which)%len(ms)]
		v, skip, err := m.JSONValue(raw)
		if err != nil || skip {
			return
		}
		if v.Quantity != m.Quantity || v.Phase != m.Phase {
			t.Fatalf("%v mapped as %s %s, want %s %s", raw, v.Quantity, v.Phase, m.Quantity, m.Phase)
		}
		if v.State != "" {
			q, _ := cat.Lookup(v.Quantity)
			if _, err := q.ParseValue(v.State); err != nil {
				t.Fatalf("%v: state %q of %s: %v", raw, v.State, v.Quantity, err)
			}
		} else if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			t.Fatalf("%v: non-finite %v", raw, v.Value)
		}
	})
}

// FuzzTimeParse: no value panics Parse in any format; a time it returns
// is plausible, in UTC, and a unix time is whole milliseconds.
func FuzzTimeParse(f *testing.F) {
	formats := []string{"unix_s", "unix_ms", "rfc3339", "local"}
	for _, s := range []string{
		`1548683523859`, `"1463221555.59"`, `1676110566`, `0`, `null`, `"none"`, `""`,
		`"2020-02-06T07:28:08"`, `"2019-07-13 10:32:56"`, `"2020-03-15T15:58:53.853784964-05:00"`,
		`"2025-09-30T15:13:46.521Z"`, `1e300`, `-5`, `"0001-01-01T00:00:00Z"`, `{}`,
	} {
		for i := range formats {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		var raw any
		if json.Unmarshal(data, &raw) != nil {
			raw = string(data)
		}
		tf := &TimeField{Format: formats[int(which)%len(formats)]}
		tm, ok, err := tf.Parse(raw)
		if err != nil || !ok {
			if !tm.IsZero() {
				t.Fatalf("%v: not ok (%v) yet time %v", raw, err, tm)
			}
			return
		}
		if !PlausibleTime(tm) || tm.Location() != time.UTC {
			t.Fatalf("%v (%s) = %v", raw, tf.Format, tm)
		}
		if strings.HasPrefix(tf.Format, "unix") && tm.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("%v (%s) = %v, not whole milliseconds", raw, tf.Format, tm)
		}
	})
}

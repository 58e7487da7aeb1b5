package profile

import (
	"slices"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
)

func TestEmbeddedProfilesLoad(t *testing.T) {
	s, err := Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.All()) == 0 {
		t.Fatal("no embedded profiles")
	}
}

func TestParseErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"name: x\nprotocol: modbus\nmodbus:\n  points:\n    - {register: 1, type: int16, quantity: nope}\n",
			`x.yaml:5: modbus.points[0].quantity: quantity "nope" is not in the catalogue`},
		{"name: x\nprotocol: modbus\nmodbus:\n  points:\n    - {register: 1, type: int17, quantity: active_power}\n",
			`x.yaml:5: modbus.points[0].type: "int17": want int16`},
		{"name: x\nprotocol: modbus\nbogus: 1\nmodbus: {points: [{register: 1, type: int16, quantity: active_power}]}\n",
			`x.yaml:3: field bogus not found`},
		{"name: x\nprotocol: mqtt\nmqtt:\n  topics:\n    - {topic: a/#/b, quantity: active_power}\n",
			`x.yaml:5: mqtt.topics[0].topic: topic "a/#/b": # must be the whole last level`},
		{"name: x\nprotocol: http\nhttp:\n  requests:\n    - path: /s\n      points: [{path: 'a..b', quantity: active_power, unit: kW}]\n",
			`x.yaml:6: http.requests[0].points[0].path: path "a..b": empty key`},
		{"name: x\nprotocol: http\nhttp:\n  requests:\n    - path: /s\n      points: [{path: a, quantity: active_power, unit: Wh}]\n",
			`unit "Wh" does not fit quantity active_power`},
		{"name: x\nprotocol: kasa\nmodbus: {points: []}\nkasa: {requests: [{command: '{}', points: [{path: a, quantity: door_window_state, states: {open: ajar}}]}]}\n",
			`section modbus does not belong to protocol kasa`},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "x.yaml", cim.Default())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q)\n got %v\nwant …%s…", c.yaml, err, c.want)
		}
	}
}

func TestPath(t *testing.T) {
	for _, s := range []string{"meters.0.total", `["1-0:1.4.0*255"]`, `a.["b.c"].d`, "x"} {
		p, err := ParsePath(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		doc := p.Set(nil, 42.0)
		got, ok := p.Get(doc)
		if !ok || got != 42.0 {
			t.Errorf("%s: Set then Get = %v, %v", s, got, ok)
		}
		if p2, _ := ParsePath(p.String()); len(p2) != len(p) {
			t.Errorf("%s: String %q reads back as %v", s, p.String(), p2)
		}
	}
	for _, bad := range []string{".a", "a.", "a..b", `[a]`, `["a`} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) accepted", bad)
		}
	}
}

func TestMappingRoundTrip(t *testing.T) {
	ms := []Mapping{
		{Quantity: "active_power", Scale: 0.1, Offset: 3, Invert: true},
		{Quantity: "illuminance", Transform: "hue_lightlevel"},
	}
	for _, m := range ms {
		for _, v := range []float64{1, 250, 12345.5} {
			if got := m.Decode(m.Encode(v)); got-v > 1e-9*v || v-got > 1e-9*v {
				t.Errorf("%+v: Decode(Encode(%v)) = %v", m, v, got)
			}
		}
	}
	m := Mapping{Quantity: "door_window_state", States: map[string]string{"open": "open", "close": "closed"}}
	if v, err := m.TextValue("close"); err != nil || v.State != "closed" {
		t.Errorf("TextValue(close) = %+v, %v", v, err)
	}
	if _, err := m.TextValue("ajar"); err == nil || !strings.Contains(err.Error(), `"ajar"`) {
		t.Errorf("TextValue(ajar) = %v", err)
	}
	if m.StateText("closed") != "close" {
		t.Error("StateText")
	}
}

func TestPlaceholders(t *testing.T) {
	set, err := Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	hue, _ := set.Get("hue-bridge-sensors")
	got := hue.Placeholders()
	for _, want := range []string{"light_id", "presence_id", "temp_id"} {
		if !slices.Contains(got, want) {
			t.Errorf("hue placeholders %v lack %s", got, want)
		}
	}
	if slices.Contains(got, "username") {
		t.Errorf("credentials listed as placeholders: %v", got)
	}
	pw, _ := set.Get("tesla-powerwall2")
	if got := pw.Placeholders(); slices.Contains(got, "password") {
		t.Errorf("powerwall: %v", got)
	}
}

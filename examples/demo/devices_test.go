package demo

import (
	"errors"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/examples"
	"github.com/gridlink/gridlink/inventory"
	"github.com/gridlink/gridlink/profile"
)

// TestEmbedded checks the shipped mapping against the shipped pilot sites
// and profiles: every asset is mapped, every profile exists, and each of
// the seed's cases has something to test on the sites it names.
func TestEmbedded(t *testing.T) {
	m, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	sites, err := inventory.LoadDir(examples.Pilots())
	if err != nil {
		t.Fatal(err)
	}
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check("devices.yaml", sites, set); err != nil {
		t.Fatal(err)
	}
	if m.Cycle <= 0 || m.Interval <= 0 || m.Interval > m.Cycle {
		t.Errorf("cycle %v, interval %v: a gateway must poll at least once per cycle", m.Cycle, m.Interval)
	}
	// The asset types the seed's cases test, and where a simulated device
	// (or ledger device) of each must be.
	simulated := map[cim.AssetType]int{}
	ledger := map[cim.AssetType]int{}
	for _, f := range sites {
		for _, a := range f.Assets {
			d, _ := m.Get(f.Site.ID, a.ID)
			if d.None == "" {
				simulated[a.Type]++
			}
			if d.Ledger {
				ledger[a.Type]++
			}
		}
	}
	for _, typ := range []cim.AssetType{cim.SmartMeter, cim.ChargingPoint, cim.CommunityBattery, cim.EnergyAsset,
		cim.EnvironmentalSensor, cim.HomeBattery, cim.Inverter, cim.MVLVTransformer, cim.PhysiologicalSensor} {
		if simulated[typ] == 0 {
			t.Errorf("no simulated %s: its case could not run", typ)
		}
	}
	for _, typ := range []cim.AssetType{cim.SmartMeter, cim.EnergyAsset, cim.EnvironmentalSensor, cim.HomeBattery} {
		if ledger[typ] == 0 {
			t.Errorf("no ledger %s: its ledger case could not run", typ)
		}
	}
	if d, ok := m.Get("athens", "evse-01"); !ok || d.ChargePoint == nil || d.ChargePoint.Quirks[0] != "alfen" {
		t.Errorf("athens evse-01: %+v", d)
	}
	// Both sites have an evse-01; each charger has an OCPP identity of its own.
	if d, ok := m.Get("athens", "evse-01"); !ok || d.ChargePoint.ID != "evse-01" {
		t.Errorf("athens evse-01's identity: %+v", d.ChargePoint)
	}
	if d, ok := m.Get("steinheim", "evse-01"); !ok || d.ChargePoint == nil || d.ChargePoint.ID != "STH-EVSE-01" {
		t.Errorf("steinheim evse-01: %+v", d)
	}
	if d, _ := m.Get("steinheim", "house-02/meter"); d.Vars["device"] != "em420-h02" || d.Interval != m.Interval {
		t.Errorf("steinheim house-02/meter: %+v", d)
	}
}

func TestCheckFindsGaps(t *testing.T) {
	m, err := Parse("d.yaml", []byte("sites:\n  s:\n    a: {profile: nope}\n    z: {none: gone, }\n    w: {profile: wearable-mqtt, ledger: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := inventory.Parse([]byte("site: {id: s, name: S}\nassets:\n  - {id: a, type: smart_meter}\n  - {id: b, type: inverter}\n  - {id: w, type: physiological_sensor}\n"), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	err = m.Check("d.yaml", []inventory.File{f}, set)
	for _, want := range []string{`asset b (inverter) is not mapped`, `d.yaml:3: sites.s.a: profile "nope" does not exist`,
		`d.yaml:4: sites.s.z: no such asset`, `d.yaml:5: sites.s.w: a physiological sensor's health data never goes to the ledger`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v\nwant %q", err, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "x.yaml: empty file"},
		{"cycle: 1s\n", "x.yaml:1: sites: missing"},
		{"sites: {s: {a: {profile: p}}}\ncycle: fast\n", `x.yaml:2: cycle: "fast" is not a positive duration`},
		{"sites:\n  s:\n    a: {profile: p, colour: red}\n", "x.yaml:3: sites.s.a.colour: unknown field"},
		{"sites:\n  s:\n    a: {vars: {id: x}}\n", "x.yaml:3: sites.s.a: give exactly one of profile, chargepoint and none"},
		{"sites:\n  s:\n    a: {profile: p, none: why}\n", "give exactly one"},
		{"sites:\n  s:\n    a: {profile: p}\n    a: {profile: q}\n", "x.yaml:4: sites.s.a: given twice"},
		{"sites:\n  s:\n    a: {chargepoint: {quirks: [tesla]}}\n", `x.yaml:3: sites.s.a.chargepoint.quirks: unknown quirk "tesla"`},
		{"sites:\n  s:\n    a: {profile: p, ledger: yes}\n", "x.yaml:3: sites.s.a.ledger: want true or false"},
		{"sites:\n  s:\n    a: {profile: p, interval: -1s}\n", "sites.s.a.interval"},
		{"sites:\n  S!:\n    a: {profile: p}\n", `site id "S!"`},
		{"sites:\n  s:\n    /a: {profile: p}\n", `asset id "/a"`},
		{"sites: [1, 2]\n", "x.yaml:1: sites: want a mapping"},
		{"sites: {s: {a: {none: ''}}}\n", "say why"},
		{"sites: {s: {a: {none: x, ledger: true}}}\n", "takes no vars and no ledger mark"},
		{"sites: {s: {a: {profile: [p]}}}\n", "sites.s.a.profile: want text"},
		{"sites: {s: {a: {profile: p}}\n", "x.yaml"},
		{"sites:\n  s:\n    a: {chargepoint: {id: CP-1}}\n  t:\n    b: {chargepoint: {id: CP-1}}\n",
			`x.yaml:5: sites.t.b.chargepoint.id: OCPP identity "CP-1" is also sites.s.a's (line 3)`},
		{"sites:\n  s:\n    evse-01: {chargepoint: {}}\n  t:\n    evse-01: {chargepoint: {}}\n",
			`x.yaml:5: sites.t.evse-01.chargepoint.id: OCPP identity "evse-01" is also sites.s.evse-01's (line 3)`},
		{"sites:\n  s:\n    a: {chargepoint: {id: 'CP 1'}}\n", `x.yaml:3: sites.s.a.chargepoint.id: OCPP identity "CP 1": want 1 to 48`},
		{"sites:\n  s:\n    a: {chargepoint: {id: 'user:pw'}}\n", `OCPP identity "user:pw"`},
		{"sites:\n  s:\n    a: {chargepoint: {id: [x]}}\n", `x.yaml:3: sites.s.a.chargepoint.id: want text`},
		{"sites:\n  s:\n    house-01/evse: {chargepoint: {quirks: [alfen]}}\n", `x.yaml:3: sites.s.house-01/evse.chargepoint.id: asset id "house-01/evse" cannot be an OCPP identity`},
		{"sites:\n  s:\n    a: {chargepoint: {serial: x}}\n", "unknown field (known: id, quirks)"},
	}
	for _, tt := range tests {
		_, err := Parse("x.yaml", []byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(devicesYAML)
	f.Add([]byte("sites:\n  s:\n    a: {profile: p, vars: {id: x}, interval: 2s, ledger: true}\n    b: {chargepoint: {quirks: [alfen]}}\n"))
	f.Add([]byte("sites: {s: {a: {none: x}}}\ninterval: 1s\ncycle: 2s\n"))
	f.Add([]byte("sites: {s: {a: {chargepoint: {id: CP-1}}}, t: {a: {chargepoint: {id: CP-2}}, b: {chargepoint: {}}}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, e := range flatten(err) {
				var pe *Error
				if !errors.As(e, &pe) {
					t.Fatalf("error %v is not an *Error", e)
				}
			}
			return
		}
		seen := map[string]bool{}
		identities := map[string]bool{}
		for _, d := range m.Devices {
			if cp := d.ChargePoint; cp != nil {
				if !validChargePointID(cp.ID) || identities[cp.ID] {
					t.Fatalf("accepted charger %+v of %s/%s: identity invalid or shared", cp, d.Site, d.Asset)
				}
				identities[cp.ID] = true
			}
			kinds := 0
			for _, set := range []bool{d.Profile != "", d.ChargePoint != nil, d.None != ""} {
				if set {
					kinds++
				}
			}
			if kinds != 1 || d.Interval <= 0 || seen[d.Site+" "+d.Asset] || !validID(d.Site) || !validAssetID(d.Asset) {
				t.Fatalf("accepted device %+v", d)
			}
			seen[d.Site+" "+d.Asset] = true
		}
	})
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

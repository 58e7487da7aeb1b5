package inventory

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gridlink/gridlink/cim"
)

const goodFile = `# a comment
site: {id: bristol, name: Bristol, country: GB, timezone: Europe/London}
assets:
  - id: house-01/meter
    type: smart_meter
    make: Shelly
    model: EM
    household: house-01
    name: Main meter
    location: {lat: 51.45, lon: -2.59}
  - id: house-01/battery
    type: home_battery
    site: bristol
  - id: community/battery
    type: community_battery
    location: {address: Somewhere}
`

func TestParse(t *testing.T) {
	f, err := Parse([]byte(goodFile), "bristol.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantSite := cim.Site{ID: "bristol", Name: "Bristol", Country: "GB", Timezone: "Europe/London"}
	if f.Site != wantSite {
		t.Errorf("site = %+v, want %+v", f.Site, wantSite)
	}
	if len(f.Assets) != 3 {
		t.Fatalf("%d assets, want 3", len(f.Assets))
	}
	a := f.Assets[0]
	want := cim.Asset{Site: "bristol", ID: "house-01/meter", Type: cim.SmartMeter, Name: "Main meter",
		Make: "Shelly", Model: "EM", Household: "house-01"}
	loc := a.Location
	a.Location = nil
	if a != want || loc == nil || *loc != (cim.Location{Latitude: 51.45, Longitude: -2.59}) {
		t.Errorf("asset = %+v at %+v, want %+v", a, loc, want)
	}
	for _, a := range f.Assets {
		if a.Site != "bristol" {
			t.Errorf("asset %s has site %q, want the file's", a.ID, a.Site)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // each line of the joined error
	}{
		{
			"unknown asset type",
			"site: {id: bristol, name: Bristol}\nassets:\n  - id: house-01/bat\n    type: batery\n",
			[]string{`x.yaml:4: asset "house-01/bat": unknown asset type "batery"`},
		},
		{
			"unknown asset field",
			"site: {id: bristol, name: Bristol}\nassets:\n  - id: a\n    type: gateway\n    colour: red\n",
			[]string{`x.yaml:5: asset "a": unknown field "colour"`},
		},
		{
			"unknown site field",
			"site: {id: bristol, name: Bristol, tz: UTC}\n",
			[]string{`x.yaml:1: unknown field "tz" in site`},
		},
		{
			"unknown top-level field",
			"site: {id: bristol, name: Bristol}\nasset: []\n",
			[]string{`x.yaml:2: unknown field "asset" in mapping with site and assets`},
		},
		{
			"unknown location field",
			"site: {id: b, name: B}\nassets:\n  - id: a\n    type: gateway\n    location: {lat: 1, lng: 2}\n",
			[]string{`x.yaml:5: asset "a": unknown field "lng" in location`},
		},
		{
			"every problem at once",
			"site: {id: b, name: B}\nassets:\n  - id: a\n    type: batery\n  - id: a\n    type: gateway\n    oops: 1\n  - type: gateway\n",
			[]string{
				`x.yaml:7: asset "a": unknown field "oops"`,
				`x.yaml:4: asset "a": unknown asset type "batery"`,
				`x.yaml:5: asset "a": defined twice (first on line 3)`,
				`x.yaml:8: asset 3 has no id`,
			},
		},
		{
			"health data on the ledger",
			"site: {id: b, name: B}\nassets:\n  - id: band\n    type: physiological_sensor\n    ledger: true\n",
			[]string{`x.yaml:5: asset "band": ledger: a physiological sensor's readings are health data and never enter the ledger`},
		},
		{
			"missing type",
			"site: {id: b, name: B}\nassets:\n  - id: a\n",
			[]string{`x.yaml:3: asset "a": no type`},
		},
		{
			"bad asset id",
			"site: {id: b, name: B}\nassets:\n  - id: \"a\\tb\"\n    type: gateway\n",
			[]string{`x.yaml:3: asset "a\tb": invalid id: control character in asset id`},
		},
		{
			"asset of another site",
			"site: {id: b, name: B}\nassets:\n  - id: a\n    type: gateway\n    site: c\n",
			[]string{`x.yaml:5: asset "a": site "c" differs from the file's site "b"`},
		},
		{
			"bad household",
			"site: {id: b, name: B}\nassets:\n  - id: a\n    type: gateway\n    household: House 1\n",
			[]string{`x.yaml:5: asset "a": household "House 1": want lowercase letters, digits and '-'`},
		},
		{
			"bad location",
			"site: {id: b, name: B}\nassets:\n  - id: a\n    type: gateway\n    location: {lat: 91, lon: 0}\n",
			[]string{`x.yaml:5: asset "a": location (91, 0) is not a latitude and longitude`},
		},
		{
			"not a number",
			"site: {id: b, name: B}\nassets:\n  - id: a\n    type: gateway\n    location: {lat: north}\n",
			[]string{"x.yaml:5: asset \"a\": got !!str `north`, want a number"},
		},
		{
			"uppercase site id",
			"site: {id: Bristol, name: Bristol}\n",
			[]string{`x.yaml:1: site id "Bristol": want lowercase letters, digits and '-'`},
		},
		{
			"site without id and name",
			"site: {country: GB}\n",
			[]string{`x.yaml:1: site has no id`, `x.yaml:1: site "" has no name`},
		},
		{
			"bad country and zone",
			"site:\n  id: b\n  name: B\n  country: gb\n  timezone: London time\n",
			[]string{
				`x.yaml:4: site "b": country "gb": want an ISO 3166-1 alpha-2 code such as GB`,
				`x.yaml:5: site "b": timezone "London time": want an IANA name such as Europe/London`,
			},
		},
		{
			"id not a string",
			"site: {id: b, name: B}\nassets:\n  - id: [1]\n    type: gateway\n",
			[]string{"x.yaml:3: got !!seq, want a string", "x.yaml:3: asset 1 has no id"},
		},
		{"no site", "assets: []\n", []string{`x.yaml:1: no site section`}},
		{"empty", "", []string{`x.yaml: empty file: want a site and its assets`}},
		{"only a comment", "# nothing\n", []string{`x.yaml: empty file: want a site and its assets`}},
		{"a list", "- a\n", []string{`x.yaml:1: want a mapping with site and assets`}},
		{"assets not a list", "site: {id: b, name: B}\nassets: {id: a}\n", []string{`x.yaml:2: got !!map, want a list of assets`}},
		{"syntax", "site: {id: b\n", []string{`x.yaml:1: did not find expected ',' or '}'`}},
		{"tab indent", "site:\n\tid: b\n", []string{`x.yaml:2: found character that cannot start any token`}},
		{
			"two documents",
			"site: {id: b, name: B}\n---\nsite: {id: c, name: C}\n",
			[]string{`x.yaml:2: more than one YAML document; want one site per file`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.file), "x.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("error\n%s\nwant\n%s", err, strings.Join(tt.want, "\n"))
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "x.yaml" {
				t.Errorf("error %v is not an *Error naming the file", err)
			}
		})
	}
}

func TestParseCapsErrors(t *testing.T) {
	data := "site: {id: b, name: B}\nassets:\n" + strings.Repeat("  - {id: a, type: toaster}\n", 100)
	_, err := Parse([]byte(data), "x.yaml")
	lines := strings.Split(err.Error(), "\n")
	// 100 bad types and 99 duplicates: 50 reported, then the count.
	if len(lines) != maxErrors+1 || lines[maxErrors] != "x.yaml: 149 more problems" {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse(make([]byte, MaxFileSize+1), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadDir(t *testing.T) {
	fsys := fstest.MapFS{
		"b.yaml":         {Data: []byte("site: {id: b, name: B}\nassets:\n  - {id: x, type: gateway}\n")},
		"a.yml":          {Data: []byte("site: {id: a, name: A}\n")},
		"README.md":      {Data: []byte("not yaml")},
		".hidden.yaml":   {Data: []byte("broken: [")},
		"sub/c.yaml":     {Data: []byte("broken: [")},
		"notes.yaml.bak": {Data: []byte("broken: [")},
	}
	files, err := LoadDir(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Site.ID != "a" || files[1].Site.ID != "b" || len(files[1].Assets) != 1 {
		t.Errorf("files = %+v, want sites a and b in name order", files)
	}
}

func TestLoadDirErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"a.yaml":  {Data: []byte("site: {id: a, name: A}\n")},
		"a2.yaml": {Data: []byte("site: {id: a, name: A again}\n")},
		"b.yaml":  {Data: []byte("site: {id: b, name: B}\nassets:\n  - {id: x, type: toaster}\n")},
		"c.yaml":  {Data: []byte("site: {id: c, name: C}\nassets:\n  - {id: x, type: gateway, oops: 1}\n")},
	}
	_, err := LoadDir(fsys)
	want := `a2.yaml: site "a" is already defined in a.yaml
b.yaml:3: asset "x": unknown asset type "toaster"
c.yaml:3: asset "x": unknown field "oops"`
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

func TestLoadDirEmptyAndMissing(t *testing.T) {
	files, err := LoadDir(fstest.MapFS{})
	if err != nil || len(files) != 0 {
		t.Errorf("empty directory: %v, %v", files, err)
	}
	if _, err := LoadDir(os.DirFS(t.TempDir() + "/missing")); err == nil {
		t.Error("missing directory: no error")
	}
}

// TestPilots loads the shipped pilot inventories, as serve --sites does.
func TestPilots(t *testing.T) {
	files, err := LoadDir(os.DirFS("../examples/pilots"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]File{}
	for _, f := range files {
		got[f.Site.ID] = f
	}
	for _, site := range []string{"athens", "benetutti", "bristol", "steinheim"} {
		f, ok := got[site]
		if !ok {
			t.Errorf("site %s missing", site)
			continue
		}
		if len(f.Assets) == 0 {
			t.Errorf("site %s has no assets", site)
		}
		if f.Site.Name == "" || f.Site.Country == "" || f.Site.Timezone == "" {
			t.Errorf("site %s: incomplete %+v", site, f.Site)
		}
	}
	if len(files) != 4 {
		t.Errorf("%d site files, want 4", len(files))
	}
	// Spot checks against the seed's tables 5-8.
	has := func(site, id string, typ cim.AssetType, make, model string) {
		t.Helper()
		for _, a := range got[site].Assets {
			if a.ID == id {
				if a.Type != typ || a.Make != make || a.Model != model {
					t.Errorf("%s %s = %s %q %q, want %s %q %q", site, id, a.Type, a.Make, a.Model, typ, make, model)
				}
				return
			}
		}
		t.Errorf("%s: asset %s missing", site, id)
	}
	has("bristol", "house-02/battery", cim.HomeBattery, "Tesla", "Powerwall")
	has("bristol", "house-01/plug-01", cim.EnergyAsset, "TP-Link", "Kasa KP115")
	has("steinheim", "transformer-01", cim.MVLVTransformer, "", "")
	has("steinheim", "community/battery", cim.CommunityBattery, "INTILION", "scalebloc")
	has("steinheim", "ev-01", cim.ElectricVehicle, "Honda", "Honda e")
	has("benetutti", "community/battery", cim.CommunityBattery, "Pylontech", "UP2500NB01V00101")
	has("benetutti", "community/inverter", cim.Inverter, "Victron Energy", "MultiPlus Compact C24/1600/40")
	has("athens", "evse-01", cim.ChargingPoint, "Alfen", "Twin 4XL")
	has("athens", "smartthings", cim.Gateway, "Samsung", "SmartThings")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("site: {id: b, name: B}\nassets:\n  - id: a\n    type: batery\n  - id: a\n    oops: 1\n"))
	f.Add([]byte("site: &s {id: b, name: B}\nassets: [*s]\n"))
	f.Add([]byte("- a\n"))
	f.Add([]byte("site: {id: b\n"))
	f.Add([]byte(""))
	for _, name := range []string{"athens", "benetutti", "bristol", "steinheim"} {
		if data, err := os.ReadFile("../examples/pilots/" + name + ".yaml"); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, "fuzz.yaml")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, a := range file.Assets {
			if a.ID == "" || seen[a.ID] || a.Site != file.Site.ID {
				t.Fatalf("accepted asset %+v", a)
			}
			seen[a.ID] = true
			if _, err := cim.ParseAssetType(string(a.Type)); err != nil {
				t.Fatalf("accepted type %q", a.Type)
			}
		}
		if !isLowerID(file.Site.ID) {
			t.Fatalf("accepted site id %q", file.Site.ID)
		}
	})
}

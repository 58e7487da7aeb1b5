package itc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

var seedIDs = []string{"ITC1.01", "ITC1.02", "ITC2.01", "ITC3.01", "ITC4.01", "ITC4.02", "ITC5.01", "ITC5.02",
	"ITC6.01", "ITC6.02", "ITC7.01", "ITC8.01", "ITC9.01", "IT10.01"}

func embeddedCatalogue(t testing.TB) *Catalogue {
	t.Helper()
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEmbeddedHasEveryCaseInDependencyOrder(t *testing.T) {
	c := embeddedCatalogue(t)
	var ids []string
	pos := map[string]int{}
	for i, k := range c.Cases {
		ids = append(ids, k.ID)
		pos[k.ID] = i
	}
	want := append(slices.Clone(seedIDs), "FLT1.01", "FLT2.01", "FLT3.01", "FLT4.01")
	if !slices.Equal(ids, want) {
		t.Fatalf("order %v, want %v", ids, want)
	}
	for _, k := range c.Cases {
		for _, d := range k.Dependencies {
			if pos[d] >= pos[k.ID] {
				t.Errorf("%s comes before its dependency %s", k.ID, d)
			}
		}
		if !strings.HasPrefix(k.Where(), "itc/cases/"+k.ID+".yaml:") {
			t.Errorf("%s: Where() = %q, want its file and line", k.ID, k.Where())
		}
	}
	it10, _ := c.Get("IT10.01")
	if !slices.Equal(it10.Dependencies, []string{"ITC6.01", "ITC9.01"}) {
		t.Errorf("IT10.01 depends on %v, want the source's ITC6.01 and ITC9.01", it10.Dependencies)
	}
}

// TestEmbeddedFollowsTheSource checks what the brief fixes from the source
// document: the table, the check point per integration type, the fixed
// copy-paste slips and the added ledger dependencies.
func TestEmbeddedFollowsTheSource(t *testing.T) {
	c := embeddedCatalogue(t)
	checkOf := map[int]string{1: CheckStore, 2: CheckStore, 3: CheckLedger, 4: CheckStore, 5: CheckStore}
	for i, id := range seedIDs {
		k, ok := c.Get(id)
		if !ok {
			t.Fatalf("%s missing", id)
		}
		if k.Table != 11+i {
			t.Errorf("%s: table %d, want %d", id, k.Table, 11+i)
		}
		if k.Pass.Check != checkOf[k.IntegrationType] {
			t.Errorf("%s: integration %d checked at %q, want %q", id, k.IntegrationType, k.Pass.Check, checkOf[k.IntegrationType])
		}
		if !k.Pass.ValuesEqual || k.Pass.MinCompleteness != 100 || k.Pass.MaxDelayP99 == 0 {
			t.Errorf("%s: pass criteria %+v, want values equal, 100 %% and a delay bound", id, k.Pass)
		}
		if k.Fault != "" {
			t.Errorf("%s: a source case with fault %q", id, k.Fault)
		}
		// An integration 3 case depends on the same asset's store case.
		if k.IntegrationType == 3 {
			store := strings.TrimSuffix(id, "2") + "1"
			if !slices.Contains(k.Dependencies, store) {
				t.Errorf("%s: dependencies %v, want %s", id, k.Dependencies, store)
			}
		}
	}
	fixes := map[string][]string{ // case → words its seed_fix must name
		"ITC4.02": {"Smart meters"},
		"ITC5.01": {"Charging Point"},
		"ITC5.02": {"TC5.02", "Smart meters", "Charging Point"},
		"ITC6.02": {"TC6.02"},
		"ITC7.01": {"Blockchain"},
		"ITC9.01": {"environment measures"},
	}
	for id, words := range fixes {
		k, _ := c.Get(id)
		for _, w := range words {
			if !strings.Contains(k.SeedFix, w) {
				t.Errorf("%s: seed_fix %q does not name %q", id, k.SeedFix, w)
			}
		}
	}
	for _, id := range []string{"ITC5.01", "ITC5.02"} {
		k, _ := c.Get(id)
		if strings.Contains(k.Pass.Text, "Charging Point") || !strings.Contains(k.Pass.Text, "Environmental Sensor") {
			t.Errorf("%s: pass criterion %q", id, k.Pass.Text)
		}
	}
	for _, id := range []string{"ITC4.02", "ITC5.02"} {
		k, _ := c.Get(id)
		if strings.Contains(strings.Join(k.TestedFeatures, " "), "Smart meters") {
			t.Errorf("%s: tested features %q still speak of smart meters", id, k.TestedFeatures)
		}
	}
	k, _ := c.Get("ITC7.01")
	if strings.Contains(strings.Join(k.TestedFeatures, " "), "Blockchain") {
		t.Errorf("ITC7.01: tested features %q", k.TestedFeatures)
	}
	k, _ = c.Get("ITC9.01")
	if strings.Contains(strings.Join(append(k.Steps, k.ExpectedResults...), " "), "environment") {
		t.Errorf("ITC9.01 still speaks of environment measures: %q %q", k.Steps, k.ExpectedResults)
	}
	if got := k.Checked(); !slices.Equal(got, []cim.AssetType{cim.PhysiologicalSensor}) {
		t.Errorf("ITC9.01 checks %v", got)
	}
	it10, _ := c.Get("IT10.01")
	if got := it10.Checked(); slices.Contains(got, cim.Gateway) || !slices.Contains(got, cim.HomeBattery) || !slices.Contains(got, cim.PhysiologicalSensor) {
		t.Errorf("IT10.01 checks %v, want the HEMS's assets", got)
	}
}

func TestEmbeddedFaultCases(t *testing.T) {
	c := embeddedCatalogue(t)
	want := map[string]string{"FLT1.01": FaultPlatformDown, "FLT2.01": FaultDeviceSilent,
		"FLT3.01": FaultCounterReset, "FLT4.01": FaultClockOffset}
	for id, fault := range want {
		k, ok := c.Get(id)
		if !ok {
			t.Fatalf("%s missing", id)
		}
		if k.Fault != fault || len(k.ExpectedResults) == 0 || k.Table != 0 {
			t.Errorf("%s: fault %q, %d expected results, table %d", id, k.Fault, len(k.ExpectedResults), k.Table)
		}
	}
	flt1, _ := c.Get("FLT1.01")
	// The readings held back by the outage are as late as it makes them:
	// their delay is reported, not judged.
	if flt1.FaultFor <= 0 || flt1.Pass.MaxDelayP99 != 0 || !flt1.Pass.ValuesEqual || flt1.Pass.MinCompleteness != 100 {
		t.Errorf("FLT1.01: want a bounded outage, no delay bound, equal values and nothing lost: %+v, fault_for %v", flt1.Pass, flt1.FaultFor)
	}
	if slices.Contains(flt1.Suspension.ComponentDown, ComponentPlatform) {
		t.Error("FLT1.01 would suspend on the outage it causes")
	}
	flt2, _ := c.Get("FLT2.01")
	if slices.Contains(flt2.Suspension.ComponentDown, ComponentDevice) {
		t.Error("FLT2.01 would suspend on the silent device it causes")
	}
	flt4, _ := c.Get("FLT4.01")
	// The offset must stay inside what the platform accepts, or the case
	// would test refusal instead.
	if d := time.Duration(flt4.ClockOffset); d <= 0 || d >= cim.MaxFutureSkew {
		t.Errorf("FLT4.01: clock offset %v, want minutes, below %v", d, cim.MaxFutureSkew)
	}
}

const goodCase = `id: XYZ1.01
name: A case
asset_under_test: smart_meter
responsible: [bristol]
tested_features: [transmission]
integration_type: 1
steps: [read]
pass_criteria:
  text: equal
  check: store
  values_equal: true
  min_completeness: 100
suspension_criteria:
  no_data_within: 30s
`

func TestParseGood(t *testing.T) {
	c, err := Parse("x.yaml", []byte(goodCase))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "XYZ1.01" || c.Where() != "x.yaml:1" || time.Duration(c.Suspension.NoDataWithin) != 30*time.Second {
		t.Errorf("%+v at %s", c, c.Where())
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, edit string // edit replaces goodCase's line with the same key, or is appended
		want       []string
	}{
		{"unknown field", "colour: red", []string{"x.yaml:15: colour: unknown field"}},
		{"unknown nested field", "pass_criteria:\n  text: t\n  check: store\n  values_equal: true\n  wobble: 1",
			[]string{"x.yaml:12: wobble: unknown field"}},
		{"missing name", "name: \"\"", []string{"x.yaml:2: name: missing"}},
		{"bad check", "pass_criteria: {text: t, check: database, values_equal: true}", []string{"x.yaml:8: pass_criteria.check: \"database\": want store, ledger or gateway"}},
		{"bad asset", "asset_under_test: toaster", []string{"x.yaml:3: asset_under_test: \"toaster\" is not an asset type"}},
		{"bad type", "integration_type: 6", []string{"x.yaml:6: integration_type: 6: want 1"}},
		{"type not a number", "integration_type: one", []string{"x.yaml:6: cannot unmarshal"}},
		{"bad duration", "suspension_criteria:\n  no_data_within: 30 seconds", []string{"x.yaml:14: suspension_criteria.no_data_within: duration \"30 seconds\""}},
		{"negative duration", "suspension_criteria:\n  no_data_within: -1s", []string{"x.yaml:14: suspension_criteria.no_data_within: duration \"-1s\" is negative"}},
		{"no bound", "suspension_criteria:\n  text: none", []string{"suspension_criteria.no_data_within: missing"}},
		{"completeness", "pass_criteria: {text: t, check: store, min_completeness: 101}", []string{"pass_criteria.min_completeness: 101: want a percentage"}},
		{"nothing measured", "pass_criteria: {text: t, check: store}", []string{"pass_criteria: nothing is measured"}},
		{"self dependency", "dependencies: [XYZ1.01]", []string{"x.yaml:15: dependencies[0]: XYZ1.01 depends on itself"}},
		{"twice", "dependencies: [ITC1.01, ITC1.01]", []string{"dependencies[1]: ITC1.01 is listed twice"}},
		{"bad component", "suspension_criteria: {no_data_within: 1s, component_down: [toaster]}", []string{"suspension_criteria.component_down[0]: \"toaster\""}},
		{"bad site", "responsible: [Bristol]", []string{"x.yaml:4: responsible[0]: \"Bristol\""}},
		{"bad id", "id: ITC 1", []string{"x.yaml:1: id: \"ITC 1\""}},
		{"bad fault", "fault: meteor", []string{"fault: \"meteor\""}},
		{"clock without offset", "fault: clock_offset", []string{"clock_offset: missing"}},
		{"offset without fault", "clock_offset: 5m", []string{"clock_offset: only a clock_offset fault"}},
		{"two documents", "---\nid: b", []string{"more than one YAML document"}},
		{"empty entry", "steps: [read, \"\"]", []string{"steps[1]: empty entry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(edit(goodCase, tc.edit)))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "x.yaml" {
				t.Errorf("error %v is no *Error of x.yaml", err)
			}
		})
	}
	for name, data := range map[string]string{
		"empty":      "",
		"a list":     "- a\n",
		"syntax":     "id: [\n",
		"too large":  strings.Repeat("#", MaxCaseFileSize+1),
		"only space": "   \n",
	} {
		if _, err := Parse("x.yaml", []byte(data)); err == nil || !strings.HasPrefix(err.Error(), "x.yaml") {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

// edit replaces the top-level key of the first line of e in doc (and the
// indented lines under it), or appends e.
func edit(doc, e string) string {
	key, _, _ := strings.Cut(e, ":")
	lines := strings.Split(strings.TrimSuffix(doc, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, key+":") && !strings.HasPrefix(key, "---") {
			j := i + 1
			for j < len(lines) && strings.HasPrefix(lines[j], " ") {
				j++
			}
			out := slices.Concat(lines[:i], strings.Split(e, "\n"), lines[j:])
			return strings.Join(out, "\n") + "\n"
		}
	}
	return doc + e + "\n"
}

func writeCases(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func caseWith(id string, deps ...string) string {
	doc := strings.Replace(goodCase, "id: XYZ1.01", "id: "+id, 1)
	if len(deps) > 0 {
		doc += "dependencies: [" + strings.Join(deps, ", ") + "]\n"
	}
	return doc
}

func TestLoad(t *testing.T) {
	dir := writeCases(t, map[string]string{
		"c.yaml":    caseWith("ITC3.01", "ITC1.01", "ITC2.01"),
		"b.yml":     caseWith("ITC2.01", "ITC1.01"),
		"a.yaml":    caseWith("ITC1.01"),
		"f.yaml":    caseWith("FLT1.01"),
		"i.yaml":    caseWith("ITC10.01"),
		"notes.txt": "not a case",
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range c.Cases {
		ids = append(ids, k.ID)
	}
	if want := []string{"ITC1.01", "ITC2.01", "ITC3.01", "ITC10.01", "FLT1.01"}; !slices.Equal(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
}

func TestLoadErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"duplicate": {map[string]string{"a.yaml": caseWith("ITC1.01"), "b.yaml": caseWith("ITC1.01")},
			[]string{"b.yaml:1: id: ITC1.01 is also the id of", "a.yaml:1"}},
		"missing dependency": {map[string]string{"a.yaml": caseWith("ITC1.01", "ITC9.99")},
			[]string{"a.yaml:15: dependencies[0]: ITC9.99 is not in the catalogue"}},
		"cycle": {map[string]string{"a.yaml": caseWith("ITC1.01", "ITC3.01"), "b.yaml": caseWith("ITC2.01", "ITC1.01"),
			"c.yaml": caseWith("ITC3.01", "ITC2.01"), "d.yaml": caseWith("ITC4.01", "ITC3.01"), "e.yaml": caseWith("ITC0.01")},
			[]string{"dependency cycle: ITC1.01 → ITC3.01 → ITC2.01 → ITC1.01"}},
		"bad file": {map[string]string{"a.yaml": caseWith("ITC1.01") + "colour: red\n", "b.yaml": "id: [\n"},
			[]string{"a.yaml:15: colour: unknown field", "b.yaml"}},
		"empty folder": {map[string]string{"x.txt": "x"}, []string{"holds no case file"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeCases(t, tc.files))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
}

func TestSelect(t *testing.T) {
	c := embeddedCatalogue(t)
	got, err := c.Select([]string{"IT10.01", "ITC1.01", "ITC6.01", "ITC1.01"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if want := []string{"ITC1.01", "ITC6.01", "IT10.01"}; !slices.Equal(ids, want) {
		t.Errorf("Select = %v, want %v (dependency order, nothing extra)", ids, want)
	}
	all, err := c.Select(nil)
	if err != nil || len(all) != len(c.Cases) {
		t.Errorf("Select(nil) = %d cases, %v", len(all), err)
	}
	_, err = c.Select([]string{"ITC1.01", "ITC11.01", "itc2.01"})
	if err == nil || !strings.Contains(err.Error(), `"ITC11.01", "itc2.01"`) {
		t.Errorf("unknown ids: %v", err)
	}
	if _, ok := c.Get("nope"); ok {
		t.Error("Get found an unknown id")
	}
}

func BenchmarkEmbedded(b *testing.B) {
	for b.Loop() {
		if _, err := Embedded(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	entries, err := fs.ReadDir(embedded, "cases")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(embedded, "cases/"+e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(goodCase))
	f.Add([]byte("id: A1.01\npass_criteria: {max_delay_p99: [x]}\n"))
	f.Add([]byte("- 1\n"))
	f.Add([]byte("id: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if !caseIDRE.MatchString(c.ID) || c.IntegrationType < 1 || c.IntegrationType > 5 ||
			c.Suspension.NoDataWithin <= 0 || len(c.Steps) == 0 || len(c.Responsible) == 0 {
			t.Fatalf("accepted a case that breaks the rules: %+v", c)
		}
		switch c.Pass.Check {
		case CheckStore, CheckLedger, CheckGateway:
		default:
			t.Fatalf("accepted check %q", c.Pass.Check)
		}
		if _, err := cim.ParseAssetType(string(c.AssetUnderTest)); err != nil {
			t.Fatalf("accepted asset type %q", c.AssetUnderTest)
		}
		if len(c.depLines) != len(c.Dependencies) {
			t.Fatalf("%d dependency lines for %d dependencies", len(c.depLines), len(c.Dependencies))
		}
	})
}

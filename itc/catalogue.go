package itc

import (
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/yamlpos"
	"go.yaml.in/yaml/v3"
)

//go:embed cases/*.yaml
var embedded embed.FS

// MaxCaseFileSize bounds one case file; real ones are a few kilobytes.
const MaxCaseFileSize = 256 << 10

// The check points of Pass.Check.
const (
	CheckStore   = "store"
	CheckLedger  = "ledger"
	CheckGateway = "gateway"
)

// The faults of Case.Fault.
const (
	FaultPlatformDown = "platform_down"
	FaultDeviceSilent = "device_silent"
	FaultCounterReset = "counter_reset"
	FaultClockOffset  = "clock_offset"
)

// The components of Suspend.ComponentDown.
const (
	ComponentPlatform = "platform"
	ComponentGateway  = "gateway"
	ComponentDevice   = "device"
)

// Catalogue is a set of test cases, in dependency order: every case comes
// after the cases it depends on.
type Catalogue struct{ Cases []*Case }

// Error is one problem at one place of a case file.
type Error = yamlpos.Error

// Embedded returns the catalogue shipped with gridlink: the source
// document's cases and the fault cases.
func Embedded() (*Catalogue, error) {
	sub, err := fs.Sub(embedded, "cases")
	if err != nil {
		return nil, fmt.Errorf("itc: embedded cases: %w", err)
	}
	return loadFS(sub, "itc/cases")
}

// Load reads every *.yaml and *.yml file of dir (not its subfolders) as one
// case each, with the same checks as the embedded catalogue.
func Load(dir string) (*Catalogue, error) {
	return loadFS(os.DirFS(dir), dir)
}

func loadFS(fsys fs.FS, dir string) (*Catalogue, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("itc: read case folder %s: %w", dir, err)
	}
	var cases []*Case
	var errs []error
	for _, e := range entries {
		ext := path.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		name := path.Join(dir, e.Name())
		data, err := readBounded(fsys, e.Name())
		if err != nil {
			errs = append(errs, &Error{File: name, Msg: err.Error()})
			continue
		}
		c, err := Parse(name, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cases = append(cases, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("itc: %s holds no case file (*.yaml)", dir)
	}
	return newCatalogue(cases)
}

// readBounded reads a file, refusing one larger than MaxCaseFileSize
// before reading it whole.
func readBounded(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCaseFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxCaseFileSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxCaseFileSize)
	}
	return data, nil
}

// newCatalogue checks the cases as a set (unique ids, dependencies that
// exist, no cycle) and orders them.
func newCatalogue(cases []*Case) (*Catalogue, error) {
	byID := make(map[string]*Case, len(cases))
	var errs []error
	for _, c := range cases {
		if prev, ok := byID[c.ID]; ok {
			errs = append(errs, &Error{File: c.file, Line: c.line, Field: "id",
				Msg: fmt.Sprintf("%s is also the id of %s", c.ID, prev.Where())})
			continue
		}
		byID[c.ID] = c
	}
	for _, c := range cases {
		for i, d := range c.Dependencies {
			if _, ok := byID[d]; !ok {
				errs = append(errs, &Error{File: c.file, Line: c.depLine(i), Field: yamlpos.Field("dependencies", i),
					Msg: fmt.Sprintf("%s is not in the catalogue", d)})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ordered, err := order(byID)
	if err != nil {
		return nil, err
	}
	return &Catalogue{Cases: ordered}, nil
}

// order sorts the cases so that each comes after its dependencies (Kahn's
// algorithm), taking the case with the lowest id among those ready so the
// order is the source's where dependencies allow it.
func order(byID map[string]*Case) ([]*Case, error) {
	waiting := make(map[string]int, len(byID)) // id → dependencies not yet placed
	dependents := make(map[string][]string, len(byID))
	for id, c := range byID {
		waiting[id] = len(c.Dependencies)
		for _, d := range c.Dependencies {
			dependents[d] = append(dependents[d], id)
		}
	}
	var ready []string
	for id, n := range waiting {
		if n == 0 {
			ready = append(ready, id)
		}
	}
	out := make([]*Case, 0, len(byID))
	for len(ready) > 0 {
		slices.SortFunc(ready, compareIDs)
		id := ready[0]
		ready = ready[1:]
		out = append(out, byID[id])
		for _, dep := range dependents[id] {
			waiting[dep]--
			if waiting[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	if len(out) < len(byID) {
		return nil, cycleError(byID, waiting)
	}
	return out, nil
}

// cycleError names one dependency cycle among the cases that could not be
// placed, following dependencies from the lowest such id until one repeats.
func cycleError(byID map[string]*Case, waiting map[string]int) error {
	var stuck []string
	for id, n := range waiting {
		if n > 0 {
			stuck = append(stuck, id)
		}
	}
	slices.SortFunc(stuck, compareIDs)
	seen := map[string]int{}
	var walk []string
	id := stuck[0]
	for {
		if at, ok := seen[id]; ok {
			cyc := append(walk[at:], id)
			c := byID[cyc[0]]
			return &Error{File: c.file, Line: c.line, Field: "dependencies",
				Msg: "dependency cycle: " + strings.Join(cyc, " → ")}
		}
		seen[id] = len(walk)
		walk = append(walk, id)
		// Every stuck case has a stuck dependency: else it would be placed.
		next := ""
		for _, d := range byID[id].Dependencies {
			if waiting[d] > 0 {
				if next == "" || compareIDs(d, next) < 0 {
					next = d
				}
			}
		}
		id = next
	}
}

var idParts = regexp.MustCompile(`^([A-Za-z]+)(\d+)\.(\d+)$`)

// compareIDs orders ids as the source numbers them: the source's cases
// (ITC…, IT…) by number, then the fault cases (FLT…), then any other.
func compareIDs(a, b string) int {
	ka, kb := idKey(a), idKey(b)
	if c := cmp.Compare(ka.group, kb.group); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.major, kb.major); c != 0 {
		return c
	}
	if c := cmp.Compare(ka.minor, kb.minor); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

type idSortKey struct{ group, major, minor int }

func idKey(id string) idSortKey {
	m := idParts.FindStringSubmatch(id)
	if m == nil {
		return idSortKey{group: 3}
	}
	k := idSortKey{group: 2}
	switch strings.ToUpper(m[1]) {
	case "ITC", "IT":
		k.group = 0
	case "FLT":
		k.group = 1
	}
	// Atoi cannot fail on \d+ but for overflow; the string compare decides then.
	k.major, _ = strconv.Atoi(m[2])
	k.minor, _ = strconv.Atoi(m[3])
	return k
}

// Get returns the case with this id.
func (c *Catalogue) Get(id string) (*Case, bool) {
	for _, k := range c.Cases {
		if k.ID == id {
			return k, true
		}
	}
	return nil, false
}

// Select returns the cases with these ids, in the catalogue's dependency
// order, and nothing else (a selected case's dependencies are not added:
// the run reports it not run if they are missing). No ids selects every
// case. An unknown id is an error that names it.
func (c *Catalogue) Select(ids []string) ([]*Case, error) {
	if len(ids) == 0 {
		return slices.Clone(c.Cases), nil
	}
	want := make(map[string]bool, len(ids))
	var unknown []string
	for _, id := range ids {
		if _, ok := c.Get(id); !ok {
			if !slices.Contains(unknown, id) {
				unknown = append(unknown, id)
			}
			continue
		}
		want[id] = true
	}
	if len(unknown) > 0 {
		known := make([]string, len(c.Cases))
		for i, k := range c.Cases {
			known[i] = k.ID
		}
		return nil, fmt.Errorf("itc: no case %s in the catalogue (it has %s)",
			strings.Join(quoteAll(unknown), ", "), strings.Join(known, ", "))
	}
	out := make([]*Case, 0, len(want))
	for _, k := range c.Cases {
		if want[k.ID] {
			out = append(out, k)
		}
	}
	return out, nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}

// Checked returns the asset types whose readings the case checks:
// ReadingsOf, or else the asset under test.
func (c *Case) Checked() []cim.AssetType {
	if len(c.ReadingsOf) > 0 {
		return c.ReadingsOf
	}
	return []cim.AssetType{c.AssetUnderTest}
}

func (c *Case) depLine(i int) int {
	if i < len(c.depLines) {
		return c.depLines[i]
	}
	return c.line
}

var (
	caseIDRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,15}[0-9]\.[0-9]{2}$`)
	siteRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	// unknownField matches yaml's message for a key KnownFields refuses.
	unknownField = regexp.MustCompile(`^field (.+) not found in type \S+$`)
)

// Parse decodes and checks one case file strictly: an unknown field, a
// missing required field or a bad value is an error naming the file, line
// and field ("cases/ITC1.01.yaml:12: pass_criteria.check: …"). Every
// problem found is reported, joined. name is the file name used in errors.
func Parse(name string, data []byte) (*Case, error) {
	if len(data) > MaxCaseFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("larger than %d bytes", MaxCaseFileSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(name, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "empty file"}
	}
	if top := root.Content[0]; top.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: top.Line, Msg: "want a mapping of the case's fields (id, name, …)"}
	}
	// Durations are checked first: their parse error would otherwise stop
	// the decoder with no line to show.
	if errs := durationErrors(name, &root); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Case
	if err := dec.Decode(&c); err != nil {
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Line: extra.Line, Msg: "more than one YAML document: want one case per file"}
	}
	c.file = name
	c.line = yamlpos.Line(&root, "id")
	for i := range c.Dependencies {
		c.depLines = append(c.depLines, yamlpos.Line(&root, "dependencies", i))
	}
	k := caseChecker{file: name, root: &root}
	k.check(&c)
	if len(k.errs) > 0 {
		return nil, errors.Join(k.errs...)
	}
	return &c, nil
}

// durationFields are the paths of the case's Duration fields.
var durationFields = [][]any{
	{"pass_criteria", "max_delay_p99"},
	{"suspension_criteria", "no_data_within"},
	{"fault_for"},
	{"clock_offset"},
}

func durationErrors(file string, root *yaml.Node) []error {
	var errs []error
	for _, p := range durationFields {
		n := lookup(root, p...)
		if n == nil {
			continue
		}
		var d Duration
		err := d.UnmarshalText([]byte(n.Value))
		if n.Kind != yaml.ScalarNode {
			err = errors.New("want a duration such as 30s")
		}
		if err != nil {
			errs = append(errs, &Error{File: file, Line: n.Line, Field: yamlpos.Field(p...), Msg: err.Error()})
		}
	}
	return errs
}

// lookup returns the node at a path of map keys, or nil.
func lookup(root *yaml.Node, path ...any) *yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	n := root.Content[0]
	for _, k := range path {
		key, _ := k.(string)
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func syntaxError(file string, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		e := &Error{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Msg = g[2]
		}
		// "field foo not found in type itc.Case" speaks of Go, not of the file.
		if g := unknownField.FindStringSubmatch(e.Msg); g != nil {
			e.Field, e.Msg = g[1], "unknown field (see itc/case.go for the fields of a case)"
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// caseChecker collects the problems of one case.
type caseChecker struct {
	file string
	root *yaml.Node
	errs []error
}

func (k *caseChecker) fail(msg string, path ...any) {
	k.errs = append(k.errs, &Error{File: k.file, Line: yamlpos.Line(k.root, path...), Field: yamlpos.Field(path...), Msg: msg})
}

// text checks a required line of prose.
func (k *caseChecker) text(s string, path ...any) {
	if strings.TrimSpace(s) == "" {
		k.fail("missing (required)", path...)
	}
}

// list checks a list of prose lines; required says it may not be empty.
func (k *caseChecker) list(s []string, required bool, field string) {
	if required && len(s) == 0 {
		k.fail("missing (required): want a list of at least one entry", field)
	}
	for i, v := range s {
		if strings.TrimSpace(v) == "" {
			k.fail("empty entry", field, i)
		}
	}
}

func (k *caseChecker) check(c *Case) {
	switch {
	case c.ID == "":
		k.fail("missing (required)", "id")
	case !caseIDRE.MatchString(c.ID):
		k.fail(fmt.Sprintf("%q: want a code such as ITC1.01 (letters, a number, a dot, two digits)", c.ID), "id")
	}
	k.text(c.Name, "name")
	if c.Table < 0 {
		k.fail(fmt.Sprintf("%d: want the source's table number, or leave it out", c.Table), "table")
	}
	k.assetType(c.AssetUnderTest, "asset_under_test")
	k.list(c.AlsoUnderTest, false, "also_under_test")
	for i, t := range c.ReadingsOf {
		k.assetType(t, "readings_of", i)
	}
	if len(c.Responsible) == 0 {
		k.fail("missing (required): want the pilot site ids responsible for the case", "responsible")
	}
	for i, s := range c.Responsible {
		if !siteRE.MatchString(s) {
			k.fail(fmt.Sprintf("%q: want a site id (lower-case letters, digits and dashes)", s), "responsible", i)
		}
	}
	k.list(c.Requirements, false, "requirements")
	k.list(c.TestedFeatures, true, "tested_features")
	k.list(c.NotTestedFeatures, false, "not_tested_features")
	if c.IntegrationType < 1 || c.IntegrationType > 5 {
		k.fail(fmt.Sprintf("%d: want 1 (asset → HEMS), 2 (HEMS → platform), 3 (asset → ledger), 4 (community asset → platform) or 5 (charging point → platform)", c.IntegrationType), "integration_type")
	}
	k.list(c.Steps, true, "steps")
	for i, d := range c.Dependencies {
		switch {
		case d == c.ID:
			k.fail(fmt.Sprintf("%s depends on itself", d), "dependencies", i)
		case !caseIDRE.MatchString(d):
			k.fail(fmt.Sprintf("%q: want a case id such as ITC1.01", d), "dependencies", i)
		case slices.Index(c.Dependencies, d) < i:
			k.fail(fmt.Sprintf("%s is listed twice", d), "dependencies", i)
		}
	}
	k.list(c.ExpectedResults, false, "expected_results")
	k.pass(&c.Pass)
	k.suspend(&c.Suspension)
	k.fault(c)
}

func (k *caseChecker) assetType(t cim.AssetType, path ...any) {
	if t == "" {
		k.fail("missing (required)", path...)
		return
	}
	if _, err := cim.ParseAssetType(string(t)); err != nil {
		names := make([]string, 0, 12)
		for _, a := range cim.AssetTypes() {
			names = append(names, string(a))
		}
		k.fail(fmt.Sprintf("%q is not an asset type (want one of %s)", t, strings.Join(names, ", ")), path...)
	}
}

func (k *caseChecker) pass(p *Pass) {
	k.text(p.Text, "pass_criteria", "text")
	switch p.Check {
	case CheckStore, CheckLedger, CheckGateway:
	case "":
		k.fail("missing (required): want store, ledger or gateway", "pass_criteria", "check")
	default:
		k.fail(fmt.Sprintf("%q: want store, ledger or gateway", p.Check), "pass_criteria", "check")
	}
	if math.IsNaN(p.MinCompleteness) || p.MinCompleteness < 0 || p.MinCompleteness > 100 {
		k.fail(fmt.Sprintf("%v: want a percentage from 0 to 100", p.MinCompleteness), "pass_criteria", "min_completeness")
	}
	if !p.ValuesEqual && p.MinCompleteness == 0 && p.MaxDelayP99 == 0 && !p.EnergyDelta {
		k.fail("nothing is measured: set values_equal, min_completeness, max_delay_p99 or energy_delta", "pass_criteria")
	}
	if p.EnergyDelta && p.Check != CheckStore {
		k.fail(fmt.Sprintf("true with check %q: the platform's energy figures are read from the store, want check: store", p.Check), "pass_criteria", "energy_delta")
	}
}

func (k *caseChecker) suspend(s *Suspend) {
	// The source's template makes the text optional; the bound is not: it
	// is what keeps a run from waiting for data forever.
	if s.NoDataWithin <= 0 {
		k.fail("missing (required): want how long to wait for a first value before suspending, e.g. 30s", "suspension_criteria", "no_data_within")
	}
	for i, comp := range s.ComponentDown {
		switch {
		case comp != ComponentPlatform && comp != ComponentGateway && comp != ComponentDevice:
			k.fail(fmt.Sprintf("%q: want platform, gateway or device", comp), "suspension_criteria", "component_down", i)
		case slices.Index(s.ComponentDown, comp) < i:
			k.fail(fmt.Sprintf("%s is listed twice", comp), "suspension_criteria", "component_down", i)
		}
	}
}

func (k *caseChecker) fault(c *Case) {
	switch c.Fault {
	case "", FaultPlatformDown, FaultDeviceSilent, FaultCounterReset, FaultClockOffset:
	default:
		k.fail(fmt.Sprintf("%q: want platform_down, device_silent, counter_reset or clock_offset (or leave it out)", c.Fault), "fault")
	}
	if c.FaultFor > 0 && c.Fault != FaultPlatformDown && c.Fault != FaultDeviceSilent {
		k.fail("only a platform_down or device_silent fault lasts for a time", "fault_for")
	}
	switch {
	case c.Fault == FaultClockOffset && c.ClockOffset <= 0:
		k.fail("missing (required for a clock_offset fault): how far ahead the gateway's clock runs, e.g. 5m", "clock_offset")
	case c.Fault != FaultClockOffset && c.ClockOffset > 0:
		k.fail("only a clock_offset fault has a clock offset", "clock_offset")
	}
}

package itc

import (
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// Case is one integration test case, with the fields of the source
// document's template (table 10) and what a machine needs to run it.
type Case struct {
	ID    string `yaml:"id"`    // e.g. "ITC1.01"
	Name  string `yaml:"name"`  // e.g. "Smart Meter Integration"
	Table int    `yaml:"table"` // the source document's table
	// AssetUnderTest is the asset type whose readings the case checks.
	AssetUnderTest cim.AssetType `yaml:"asset_under_test"`
	// AlsoUnderTest names the other components the case involves, as the
	// source lists them ("HEMS", "CDMP", "blockchain").
	AlsoUnderTest     []string `yaml:"also_under_test,omitempty"`
	Responsible       []string `yaml:"responsible"` // pilot site ids
	Requirements      []string `yaml:"requirements,omitempty"`
	TestedFeatures    []string `yaml:"tested_features"`
	NotTestedFeatures []string `yaml:"not_tested_features,omitempty"`
	// IntegrationType is 1 (asset → HEMS), 2 (HEMS gateway → platform),
	// 3 (asset → ledger), 4 (asset → platform directly) or 5 (charging
	// point over OCPP → platform), as the source's figure 9 defines them.
	IntegrationType int      `yaml:"integration_type"`
	Steps           []string `yaml:"steps"`
	Dependencies    []string `yaml:"dependencies,omitempty"` // case ids
	ExpectedResults []string `yaml:"expected_results,omitempty"`
	Pass            Pass     `yaml:"pass_criteria"`
	Suspension      Suspend  `yaml:"suspension_criteria"`
	// SeedFix says where the case corrects a plain slip in the source's
	// text (e.g. a criterion copied from another case), and how.
	SeedFix string `yaml:"seed_fix,omitempty"`
	// Fault names a fault case beyond the source: what is done to the
	// system while the case runs ("platform_down", "device_silent",
	// "counter_reset", "clock_offset"); "" for the source's cases.
	Fault string `yaml:"fault,omitempty"`
	// FaultFor is how long an injected fault lasts before it is undone
	// (platform_down); 0 = until the observation window ends.
	FaultFor Duration `yaml:"fault_for,omitempty"`
	// ClockOffset is how far ahead of true time the gateway's clock runs
	// in a clock_offset case.
	ClockOffset Duration `yaml:"clock_offset,omitempty"`
	// ReadingsOf lists the asset types whose readings the case checks when
	// the asset under test has no register of its own (the HEMS gateway of
	// IT10.01 relays the others' readings); empty = AssetUnderTest. See
	// Case.Checked.
	ReadingsOf []cim.AssetType `yaml:"readings_of,omitempty"`

	file     string // where the case was read from, for messages
	line     int
	depLines []int // line of each dependency, for messages
}

// Where is the file and line the case was read from.
func (c *Case) Where() string { return fmt.Sprintf("%s:%d", c.file, c.line) }

// Pass holds a case's pass criteria: the source's words and the measured
// thresholds that decide them.
type Pass struct {
	Text string `yaml:"text"`
	// Where the values are checked: "store" (the operational database,
	// GET /api/v1/readings), "ledger" (GET /api/v1/ledger/entries) or
	// "gateway" (the HEMS's own view, its status page).
	Check string `yaml:"check"`
	// ValuesEqual: per measuring cycle, the value checked equals the
	// register the device held (exactly for integers, to the device's
	// resolution for floats).
	ValuesEqual bool `yaml:"values_equal"`
	// MinCompleteness is the share of measuring cycles, in percent, whose
	// value must have arrived.
	MinCompleteness float64 `yaml:"min_completeness"`
	// MaxDelayP99 bounds the 99th percentile of the delay from the
	// device's reading to the value being queryable; 0 = not checked.
	MaxDelayP99 Duration `yaml:"max_delay_p99,omitempty"`
	// EnergyDelta: for each cumulative register (an energy meter's), the
	// platform's 15-minute energy (GET /api/v1/readings?agg=delta) over
	// the window adds up to the register's increase, a drop counting as
	// a restart from zero, and is never negative. Only with check: store.
	EnergyDelta bool `yaml:"energy_delta,omitempty"`
}

// Suspend holds a case's suspension criteria: conditions under which
// going on is pointless, which stop the case with a reason instead of
// letting it hang.
type Suspend struct {
	Text string `yaml:"text"`
	// NoDataWithin stops the case when no value of the asset under test
	// has reached the check point for this long.
	NoDataWithin Duration `yaml:"no_data_within"`
	// ComponentDown lists components whose failure stops the case:
	// "platform" (its /readyz), "gateway" (its status page), "device"
	// (the simulator or device answers no more).
	ComponentDown []string `yaml:"component_down,omitempty"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Status is the outcome of one case in one run.
type Status string

// The outcomes.
const (
	Passed    Status = "passed"
	Failed    Status = "failed"
	Suspended Status = "suspended" // a suspension criterion stopped it
	NotRun    Status = "not_run"   // a dependency did not pass, or it was not selected
)

// Result is the outcome of one case, with what was measured.
type Result struct {
	Case   string    `json:"case"`
	Name   string    `json:"name"`
	Site   string    `json:"site"`
	Status Status    `json:"status"`
	Reason string    `json:"reason,omitempty"` // why it failed, was suspended or not run, in words a pilot engineer understands
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Assets are the assets under test, each with its own measures.
	Assets []AssetResult `json:"assets"`
}

// AssetResult is what was measured for one asset of a case.
type AssetResult struct {
	Asset   string `json:"asset"`
	Profile string `json:"profile,omitempty"`
	// Cycles is the number of measuring cycles the device recorded in the
	// window; Arrived how many of them the check point holds; Equal how
	// many of those hold the device's value.
	Cycles       int     `json:"cycles"`
	Arrived      int     `json:"arrived"`
	Equal        int     `json:"equal"`
	Completeness float64 `json:"completeness"` // percent
	// Delay from the device's reading to the value being queryable.
	DelayP50 time.Duration `json:"delay_p50_ns"`
	DelayP99 time.Duration `json:"delay_p99_ns"`
	DelayMax time.Duration `json:"delay_max_ns"`
	// Mismatches are a few examples of values that differ.
	Mismatches []Mismatch `json:"mismatches,omitempty"`
	// Series holds device and platform values over time for the report's
	// plot, one entry per quantity and phase.
	Series []PlotSeries `json:"series,omitempty"`
}

// Mismatch is one cycle whose checked value differs from the device's.
type Mismatch struct {
	Quantity string    `json:"quantity"`
	Phase    string    `json:"phase"`
	Time     time.Time `json:"time"`
	Device   float64   `json:"device"`
	Platform float64   `json:"platform"`
}

// PlotSeries is one quantity of one asset: what the device held and what
// the check point held, per cycle.
type PlotSeries struct {
	Quantity string      `json:"quantity"`
	Phase    string      `json:"phase"`
	Unit     string      `json:"unit"`
	Device   []PlotPoint `json:"device"`
	Platform []PlotPoint `json:"platform"`
}

// PlotPoint is a time (Unix ms) and a value.
type PlotPoint struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// Run is one run of the catalogue (or of some cases) against a platform.
type Run struct {
	ID       string    `json:"id"`
	Platform string    `json:"platform"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Results  []Result  `json:"results"`
}

// Counts returns how many results have each status.
func (r *Run) Counts() map[Status]int {
	out := map[Status]int{}
	for _, res := range r.Results {
		out[res.Status]++
	}
	return out
}

package cim

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxFutureSkew is how far past the receiver's clock a reading may be
// stamped. Device clocks drift by seconds; an hour ahead is a wrong clock or
// a local time sent as UTC.
const MaxFutureSkew = time.Hour

// EarliestTime is the earliest accepted reading time, 2000-01-01T00:00:00Z
// in Unix milliseconds. Older stamps come from devices whose clock was never
// set (1970) and would land in the wrong rollups.
const EarliestTime int64 = 946684800000

// MaxAssetIDLen is the longest asset id, in bytes.
const MaxAssetIDLen = 200

// Input is a reading as received, before validation: text fields as sent.
type Input struct {
	Asset, Quantity, Phase, Unit string
	Time                         int64 // UTC Unix milliseconds
	Value                        float64
}

// FieldError says which field of a reading is wrong, with the offending value.
type FieldError struct{ Field, Value, Reason string }

// Error renders the error as `field "value": reason`.
func (e *FieldError) Error() string {
	return e.Field + " " + strconv.Quote(e.Value) + ": " + e.Reason
}

// Normalize validates a reading and returns it with its value in the
// quantity's canonical unit. It checks, in this order, the asset id, the
// quantity, the phase, the unit, the value (after conversion, against
// Quantity.CheckValue) and the time, which must lie in
// [EarliestTime, now+MaxFutureSkew]. The error is always a *FieldError.
//
// Normalize is on the ingest hot path: it does not allocate unless it fails.
func (c *Catalogue) Normalize(in Input, now time.Time) (Reading, error) {
	if r := assetIDProblem(in.Asset); r != "" {
		return Reading{}, &FieldError{Field: "asset", Value: in.Asset, Reason: r}
	}
	q := c.lookup(in.Quantity)
	if q == nil {
		return Reading{}, &FieldError{Field: "quantity", Value: in.Quantity, Reason: c.unknownQuantity(in.Quantity)}
	}
	p, err := ParsePhase(in.Phase)
	if err != nil {
		return Reading{}, &FieldError{Field: "phase", Value: in.Phase,
			Reason: "unknown phase (want total, L1, L2, L3, N, L12, L23 or L31)"}
	}
	if !q.AllowsPhase(p) {
		return Reading{}, &FieldError{Field: "phase", Value: in.Phase, Reason: q.phaseProblem()}
	}
	v, err := q.Convert(in.Value, in.Unit)
	if err != nil {
		return Reading{}, err
	}
	if q.CheckValue(v) != nil {
		return Reading{}, &FieldError{Field: "value", Value: strconv.FormatFloat(in.Value, 'g', -1, 64),
			Reason: q.valueProblem(v)}
	}
	if in.Time < EarliestTime {
		return Reading{}, &FieldError{Field: "time", Value: formatMillis(in.Time), Reason: "before 2000-01-01T00:00:00Z"}
	}
	if latest := now.UnixMilli() + MaxFutureSkew.Milliseconds(); in.Time > latest {
		return Reading{}, &FieldError{Field: "time", Value: formatMillis(in.Time),
			Reason: "more than " + MaxFutureSkew.String() + " after the receiver's clock (" + formatMillis(now.UnixMilli()) + ")"}
	}
	return Reading{
		SeriesKey: SeriesKey{Asset: in.Asset, Quantity: q.Name, Phase: p},
		Point:     Point{Time: in.Time, Value: v},
	}, nil
}

// CheckAssetID checks that id can name an asset: non-empty, at most
// MaxAssetIDLen bytes of printable UTF-8, no control characters and no
// leading or trailing space.
func CheckAssetID(id string) error {
	if r := assetIDProblem(id); r != "" {
		return &FieldError{Field: "asset", Value: id, Reason: r}
	}
	return nil
}

// assetIDProblem returns why id is not a valid asset id, or "". It returns
// constant strings only, so the success path does not allocate.
func assetIDProblem(id string) string {
	switch {
	case id == "":
		return "empty asset id"
	case len(id) > MaxAssetIDLen:
		return "asset id longer than 200 bytes"
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return "leading or trailing space"
	}
	for i := 0; i < len(id); {
		b := id[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return "control character in asset id"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(id[i:])
		if r == utf8.RuneError && size == 1 {
			return "asset id is not valid UTF-8"
		}
		if !unicode.IsPrint(r) {
			return "non-printable character in asset id"
		}
		i += size
	}
	return ""
}

// AllowsPhase reports whether readings of q may carry phase p. The total is
// always allowed. A Phased quantity also takes L1, L2 and L3; of those,
// currents and voltages (canonical unit A or V) also take N, and voltages
// the line-to-line phases L12, L23 and L31.
func (q Quantity) AllowsPhase(p Phase) bool {
	switch p {
	case PhaseTotal:
		return true
	case PhaseL1, PhaseL2, PhaseL3:
		return q.Phased
	case PhaseN:
		return q.Phased && (q.Unit == "A" || q.Unit == "V")
	case PhaseL12, PhaseL23, PhaseL31:
		return q.Phased && q.Unit == "V"
	}
	return false
}

// Phases lists the phases that AllowsPhase accepts, the total first.
func (q Quantity) Phases() []Phase {
	var out []Phase
	for _, p := range []Phase{PhaseTotal, PhaseL1, PhaseL2, PhaseL3, PhaseN, PhaseL12, PhaseL23, PhaseL31} {
		if q.AllowsPhase(p) {
			out = append(out, p)
		}
	}
	return out
}

func (q Quantity) phaseProblem() string {
	if !q.Phased {
		return q.Name + " has no phases (want total)"
	}
	names := make([]string, 0, 8)
	for _, p := range q.Phases() {
		names = append(names, p.String())
	}
	return "not a phase of " + q.Name + " (want " + strings.Join(names, ", ") + ")"
}

// valueProblem explains why CheckValue refused v (in the canonical unit).
func (q Quantity) valueProblem(v float64) string {
	g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	switch {
	case math.IsNaN(v):
		return "not a number"
	case math.IsInf(v, 0):
		return "infinite (after conversion to " + q.Unit + ")"
	case len(q.States) > 0:
		return "not a state code of " + q.Name + " (0.." + strconv.Itoa(len(q.States)-1) +
			": " + strings.Join(q.States, ", ") + ")"
	case (q.Min != 0 || q.Max != 0) && (v < q.Min || v > q.Max):
		return g(v) + " " + q.Unit + " is outside the plausible range of " + q.Name +
			" [" + g(q.Min) + ", " + g(q.Max) + "] " + q.Unit
	}
	if err := q.CheckValue(v); err != nil {
		return err.Error()
	}
	return "invalid"
}

func formatMillis(ms int64) string {
	return TimeOf(ms).Format("2006-01-02T15:04:05.000Z07:00")
}

// unknownQuantity explains an unknown quantity name and, where there is an
// obvious candidate, suggests it. Only the error path pays for the search.
func (c *Catalogue) unknownQuantity(name string) string {
	const reason = "unknown quantity"
	if name == "" {
		return "empty quantity"
	}
	// Per-phase names (voltage_l1) are a habit from flat tag models; here
	// the phase is a field of its own.
	lower := strings.ToLower(name)
	for _, p := range []Phase{PhaseL12, PhaseL23, PhaseL31, PhaseL1, PhaseL2, PhaseL3, PhaseN} {
		base, ok := strings.CutSuffix(lower, "_"+strings.ToLower(string(p)))
		if !ok {
			continue
		}
		if q := c.lookup(base); q != nil && q.AllowsPhase(p) {
			return reason + ` (use "` + q.Name + `" with phase ` + string(p) + ")"
		}
	}
	if alt := legacyName(lower); alt != "" && c.lookup(alt) != nil {
		return reason + ` (did you mean "` + alt + `"?)`
	}
	if c.lookup(lower) != nil {
		return reason + ` (did you mean "` + lower + `"?)`
	}
	best, bestDist, tie := "", 3, false // a suggestion is at most two edits away
	for i := range c.qs {
		// The limit is one past the best so far, so that d == bestDist
		// is a true tie, not a cut-off search.
		d := editDistance(lower, c.qs[i].Name, bestDist+1)
		switch {
		case d < bestDist:
			best, bestDist, tie = c.qs[i].Name, d, false
		case d == bestDist && best != "":
			tie = true
		}
	}
	if best != "" && !tie && bestDist <= len(name)/2 {
		return reason + ` (did you mean "` + best + `"?)`
	}
	return reason
}

// legacyName maps names from other vocabularies (DEVICES.md's connector
// notes, OCPP-style word order) to the catalogue's.
func legacyName(s string) string {
	switch s {
	case "power", "power_active":
		return "active_power"
	case "power_reactive":
		return "reactive_power"
	case "power_apparent":
		return "apparent_power"
	case "energy", "energy_import":
		return "energy_active_import"
	case "energy_export":
		return "energy_active_export"
	case "soc", "state_of_charge":
		return "battery_soc"
	case "soh", "state_of_health":
		return "battery_soh"
	case "contact":
		return "door_window_state"
	case "motion", "presence":
		return "occupancy"
	case "battery_level":
		return "device_battery_level"
	case "pm25", "pm2.5":
		return "pm2_5"
	case "lux", "light":
		return "illuminance"
	case "hr":
		return "heart_rate"
	case "hrv":
		return "heart_rate_variability"
	case "rh", "relative_humidity":
		return "humidity"
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b in bytes, or limit if
// it is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}

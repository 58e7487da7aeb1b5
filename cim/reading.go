package cim

import (
	"fmt"
	"time"
)

// Phase names the electrical phase a value belongs to. The empty Phase is the
// total (or a quantity that has no phase).
type Phase string

// The phases. PhaseTotal is the zero value and is written "total" in text.
const (
	PhaseTotal Phase = ""
	PhaseL1    Phase = "L1"
	PhaseL2    Phase = "L2"
	PhaseL3    Phase = "L3"
	PhaseN     Phase = "N"
	PhaseL12   Phase = "L12"
	PhaseL23   Phase = "L23"
	PhaseL31   Phase = "L31"
)

// ParsePhase reads a phase as written by people and devices: "", "total",
// "L1".."L3", "N", "L12", "L23", "L31" (case-insensitive).
func ParsePhase(s string) (Phase, error) {
	if s == "" || len(s) == len("total") && equalFold(s, "total") {
		return PhaseTotal, nil
	}
	for _, p := range []Phase{PhaseL1, PhaseL2, PhaseL3, PhaseN, PhaseL12, PhaseL23, PhaseL31} {
		if len(s) == len(p) && equalFold(s, string(p)) {
			return p, nil
		}
	}
	return PhaseTotal, fmt.Errorf("unknown phase %q (want total, L1, L2, L3, N, L12, L23 or L31)", s)
}

// String returns the phase as text; the total is "total".
func (p Phase) String() string {
	if p == PhaseTotal {
		return "total"
	}
	return string(p)
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// SeriesKey identifies a series inside one site.
type SeriesKey struct {
	Asset    string // asset id, unique in its site, e.g. "house-01/meter"
	Quantity string // catalogue name, e.g. "active_power"
	Phase    Phase
}

// Point is one value at one instant. Value is in the canonical unit of the
// series' quantity.
type Point struct {
	Time  int64 // UTC Unix milliseconds
	Value float64
}

// Reading is one point of one series of a site.
type Reading struct {
	SeriesKey
	Point
}

// TimeOf converts Unix milliseconds to a UTC time.
func TimeOf(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

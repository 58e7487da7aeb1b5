package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// Tolerance says how closely Compare matches readings to the truth.
type Tolerance struct {
	// Boundary: a reading stamped less than this from a cycle boundary may
	// match the cycle on the other side of it too: a poll takes time, and
	// the device may switch between the gateway's time stamp and its read.
	// E.g. 100 ms.
	Boundary time.Duration
	// Relative is the relative difference allowed for values held with
	// float32 precision; zero means 1e-6. Other values must agree within
	// 1e-9 relative.
	Relative float64
}

// Mismatch is a reading that disagrees with what the device held.
type Mismatch struct {
	Asset    string
	Quantity string
	Phase    cim.Phase
	Time     time.Time // the reading's time
	Cycle    int64     // the cycle whose value is Want
	Want     float64   // what the device held
	Got      float64   // what the platform holds
}

// String describes the mismatch in one line.
func (m Mismatch) String() string {
	return fmt.Sprintf("%s %s %s at %s (cycle %d): want %g, got %g",
		m.Asset, m.Quantity, m.Phase, m.Time.Format(time.RFC3339Nano), m.Cycle, m.Want, m.Got)
}

// CycleCoverage is how well the readings cover one recorded cycle.
type CycleCoverage struct {
	Asset    string
	Cycle    int64
	Start    time.Time
	Held     int // distinct series the device held
	Covered  int // of those, how many a reading matched
	Readings int // readings that fell in the cycle or matched it
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Readings   int        // readings compared
	Matched    int        // readings equal to what the device held
	Mismatches []Mismatch // readings that differ
	// Unexpected are readings of a series the device did not hold in the
	// cycle they fall in (Want is NaN).
	Unexpected []Mismatch
	// Outside counts readings in no recorded cycle (another asset, or
	// before or after the truth's span).
	Outside int
	// Missing lists the cycles no reading fell in.
	Missing []CycleCoverage
	// Coverage has every recorded cycle, in truth order.
	Coverage []CycleCoverage
	// Completeness is the percentage of held (cycle, series) values that a
	// reading matched.
	Completeness float64
}

// OK reports whether every reading agreed with the truth (coverage aside).
func (c Comparison) OK() bool { return len(c.Mismatches) == 0 && len(c.Unexpected) == 0 }

// String summarises the comparison, naming the first few problems.
func (c Comparison) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d readings: %d matched, %d mismatched, %d unexpected, %d outside; %d of %d cycles missing; completeness %.1f %%",
		c.Readings, c.Matched, len(c.Mismatches), len(c.Unexpected), c.Outside, len(c.Missing), len(c.Coverage), c.Completeness)
	for i, m := range c.Mismatches {
		if i == 5 {
			fmt.Fprintf(&b, "\n  … %d more mismatches", len(c.Mismatches)-i)
			break
		}
		b.WriteString("\n  mismatch: " + m.String())
	}
	for i, m := range c.Unexpected {
		if i == 5 {
			fmt.Fprintf(&b, "\n  … %d more unexpected", len(c.Unexpected)-i)
			break
		}
		fmt.Fprintf(&b, "\n  unexpected: %s %s %s at %s = %g", m.Asset, m.Quantity, m.Phase, m.Time.Format(time.RFC3339Nano), m.Got)
	}
	return b.String()
}

type seriesKey struct {
	quantity string
	phase    cim.Phase
}

// cycleIndex is one recorded cycle prepared for matching.
type cycleIndex struct {
	rec     *CycleRecord
	cov     *CycleCoverage
	values  map[seriesKey][]HeldValue
	covered map[seriesKey]bool
}

// Compare checks platform readings against the truth: each reading must
// equal what its asset's device held in the cycle containing the reading's
// time (or, within tol.Boundary of a boundary, in the cycle on its other
// side). It
// reports mismatches, readings of series the device did not hold, cycles
// no reading fell in and how completely the readings cover the truth. Pass
// only the truth of the span the readings should cover.
func Compare(truth []CycleRecord, got []cim.Reading, tol Tolerance) Comparison {
	rel := tol.Relative
	if !(rel > 0) {
		rel = 1e-6
	}
	var c Comparison
	c.Coverage = make([]CycleCoverage, len(truth))
	idx := make([]cycleIndex, len(truth))
	byAsset := map[string][]*cycleIndex{}
	for i := range truth {
		r := &truth[i]
		ci := &idx[i]
		ci.rec, ci.cov = r, &c.Coverage[i]
		ci.values = make(map[seriesKey][]HeldValue, len(r.Values))
		ci.covered = map[seriesKey]bool{}
		for _, v := range r.Values {
			k := seriesKey{v.Quantity, v.Phase}
			ci.values[k] = append(ci.values[k], v)
		}
		*ci.cov = CycleCoverage{Asset: r.Asset, Cycle: r.Cycle, Start: r.Start, Held: len(ci.values)}
		byAsset[r.Asset] = append(byAsset[r.Asset], ci)
	}
	for _, list := range byAsset {
		slices.SortStableFunc(list, func(a, b *cycleIndex) int { return a.rec.Start.Compare(b.rec.Start) })
	}

	for _, rd := range got {
		c.Readings++
		t := cim.TimeOf(rd.Time)
		cands := candidates(byAsset[rd.Asset], t, tol.Boundary)
		if len(cands) == 0 {
			c.Outside++
			continue
		}
		k := seriesKey{rd.Quantity, rd.Phase}
		var want *HeldValue
		var wantCycle *cycleIndex
		matched := false
		for _, ci := range cands {
			for i, hv := range ci.values[k] {
				if want == nil {
					want, wantCycle = &ci.values[k][i], ci
				}
				if agrees(hv, rd.Value, rel) {
					matched = true
					ci.covered[k] = true
					ci.cov.Readings++
					break
				}
			}
			if matched {
				break
			}
		}
		switch {
		case matched:
			c.Matched++
		case want == nil:
			cands[0].cov.Readings++
			c.Unexpected = append(c.Unexpected, Mismatch{Asset: rd.Asset, Quantity: rd.Quantity, Phase: rd.Phase,
				Time: t, Cycle: cands[0].rec.Cycle, Want: math.NaN(), Got: rd.Value})
		default:
			wantCycle.cov.Readings++
			c.Mismatches = append(c.Mismatches, Mismatch{Asset: rd.Asset, Quantity: rd.Quantity, Phase: rd.Phase,
				Time: t, Cycle: wantCycle.rec.Cycle, Want: want.Value, Got: rd.Value})
		}
	}

	held, covered := 0, 0
	for i := range idx {
		ci := &idx[i]
		ci.cov.Covered = len(ci.covered)
		held += ci.cov.Held
		covered += ci.cov.Covered
		if ci.cov.Readings == 0 {
			c.Missing = append(c.Missing, *ci.cov)
		}
	}
	if held > 0 {
		c.Completeness = 100 * float64(covered) / float64(held)
	}
	return c
}

// candidates are the cycles a reading at t may belong to: the one
// containing t first, then one that ended less than boundary before t.
func candidates(list []*cycleIndex, t time.Time, boundary time.Duration) []*cycleIndex {
	// i is the first cycle starting after t.
	i := sort.Search(len(list), func(i int) bool { return list[i].rec.Start.After(t) })
	var out []*cycleIndex
	for j := i - 1; j >= 0 && j >= i-2; j-- {
		ci := list[j]
		switch {
		case t.Before(ci.rec.End):
			out = append(out, ci)
		case t.Sub(ci.rec.End) < boundary:
			out = append(out, ci)
		}
	}
	if i < len(list) && list[i].rec.Start.Sub(t) < boundary {
		out = append(out, list[i])
	}
	return out
}

// agrees reports whether a reading's value v agrees with a held value.
func agrees(hv HeldValue, v, rel float64) bool {
	tol := 1e-9
	if hv.Float32 {
		tol = max(rel, tol)
	}
	return math.Abs(hv.Value-v) <= tol*max(math.Abs(hv.Value), math.Abs(v), 1)
}

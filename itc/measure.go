package itc

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/sim"
)

// Limits of what a result keeps for the report.
const (
	maxMismatches = 5
	maxPlotPoints = 200
)

// boundary is how close to a cycle boundary a reading may be stamped and
// still match the cycle on the other side: a poll takes time.
const boundary = 250 * time.Millisecond

// measured is one asset's measures and what a reason needs to name.
type measured struct {
	AssetResult
	mismatched int  // readings that differ from the device in cycles not equal
	delays     bool // whether any delay was measured
	// derived counts readings of series the device never held in any
	// cycle: quantities the platform derives (an OCPP session's energy),
	// which no register can confirm or refute.
	derived int
	// firstUnequal is the first window cycle that arrived but is not
	// equal, for a reason when no reading-level mismatch explains it.
	firstUnequal *sim.CycleRecord
	// lost names the series the device held in the window of which no
	// reading reached the check point, for a completeness reason.
	lost []string
}

// measure compares what a check point holds of one asset with what its
// device held, cycle by cycle, and times the arrivals. truth may reach
// past [from, to) by a few cycles on either side: readings stamped near
// the window's edges then meet the cycle they belong to rather than its
// neighbour. Only cycles starting in [from, to) are counted and judged.
func measure(asset string, from, to time.Time, truth []sim.CycleRecord, got []cim.Reading, arrivals []arrival, cat *cim.Catalogue) measured {
	// Only cycles wholly inside the window are judged: the polls of a cycle
	// that runs past the window's end may come after a fault is undone.
	inWindow := func(rec *sim.CycleRecord) bool { return !rec.Start.Before(from) && !rec.End.After(to) }
	var window []sim.CycleRecord
	held := map[cim.SeriesKey]bool{}
	for i := range truth {
		for _, v := range truth[i].Values {
			held[cim.SeriesKey{Asset: asset, Quantity: v.Quantity, Phase: v.Phase}] = true
		}
		if inWindow(&truth[i]) {
			window = append(window, truth[i])
		}
	}
	m := measured{AssetResult: AssetResult{Asset: asset, Cycles: len(window)}}

	// Series the device never held are the platform's own derivations:
	// set aside, not mismatches.
	kept := make([]cim.Reading, 0, len(got))
	for _, r := range got {
		if r.Asset != asset || !held[r.SeriesKey] || math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			if r.Asset == asset && !held[r.SeriesKey] {
				m.derived++
			}
			continue
		}
		kept = append(kept, r)
	}
	got = kept
	cmp := sim.Compare(truth, got, sim.Tolerance{Boundary: boundary, Relative: 1e-6})

	// A cycle arrived when a reading of each series the device held falls
	// in it — from its start to just past its end: a reading stamped just
	// before the start belongs to the previous cycle as far as arrival goes
	// (else the last cycle of a window looks arrived before any of its
	// readings did); it is equal when each of those matched the device's value and
	// no reading well inside it (away from either boundary) differs.
	bySeries := map[cim.SeriesKey][]int64{}
	for _, r := range got {
		bySeries[r.SeriesKey] = append(bySeries[r.SeriesKey], r.Time)
	}
	for _, ts := range bySeries {
		slices.Sort(ts)
	}
	unequal := map[int64]bool{} // cycle numbers in the window not equal
	for i := range truth {
		rec := &truth[i]
		if !inWindow(rec) {
			continue
		}
		all := len(rec.Values) > 0
		lo, hi := rec.Start.UnixMilli(), rec.End.Add(boundary).UnixMilli()
		for _, v := range rec.Values {
			ts := bySeries[cim.SeriesKey{Asset: asset, Quantity: v.Quantity, Phase: v.Phase}]
			j := sort.Search(len(ts), func(k int) bool { return ts[k] >= lo })
			if j == len(ts) || ts[j] >= hi {
				all = false
				break
			}
		}
		if !all {
			continue
		}
		m.Arrived++
		equal := cmp.Coverage[i].Covered == cmp.Coverage[i].Held
		if equal {
			inner0, inner1 := rec.Start.Add(boundary), rec.End.Add(-boundary)
			for _, mm := range cmp.Mismatches {
				if !mm.Time.Before(inner0) && mm.Time.Before(inner1) {
					equal = false
					break
				}
			}
		}
		if equal {
			m.Equal++
			continue
		}
		unequal[rec.Cycle] = true
		if m.firstUnequal == nil {
			m.firstUnequal = rec
		}
	}
	if m.Cycles > 0 {
		m.Completeness = 100 * float64(m.Arrived) / float64(m.Cycles)
	}
	lost := map[string]bool{}
	for _, rec := range window {
		for _, v := range rec.Values {
			if len(bySeries[cim.SeriesKey{Asset: asset, Quantity: v.Quantity, Phase: v.Phase}]) == 0 {
				lost[v.Quantity+" "+v.Phase.String()] = true
			}
		}
	}
	m.lost = slices.Sorted(maps.Keys(lost))

	// Reading-level mismatches are evidence only for cycles not equal.
	// Unexpected readings (a series the device held in other cycles but
	// not this one) carry no device value and are left out: a NaN would
	// break the run's JSON.
	for _, mm := range cmp.Mismatches {
		if !unequal[mm.Cycle] || math.IsNaN(mm.Want) || math.IsInf(mm.Want, 0) {
			continue
		}
		m.mismatched++
		if len(m.Mismatches) < maxMismatches {
			m.Mismatches = append(m.Mismatches, Mismatch{Quantity: mm.Quantity, Phase: mm.Phase.String(), Time: mm.Time, Device: mm.Want, Platform: mm.Got})
		}
	}

	// Delays: first arrival per series and time, minus the reading's time.
	var ds []time.Duration
	for _, a := range arrivals {
		if a.series.Asset != asset {
			continue
		}
		ds = append(ds, max(a.at.Sub(cim.TimeOf(a.time)), 0))
	}
	if len(ds) > 0 {
		m.delays = true
		slices.Sort(ds)
		m.DelayP50, m.DelayP99, m.DelayMax = percentile(ds, 50), percentile(ds, 99), ds[len(ds)-1]
	}
	m.Series = plotSeries(window, inSpan(got, from, to), cat)
	return m
}

// percentile is the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// plotSeries builds the report's device and platform series per quantity
// and phase, thinned to maxPlotPoints each.
func plotSeries(truth []sim.CycleRecord, got []cim.Reading, cat *cim.Catalogue) []PlotSeries {
	type key struct {
		q string
		p cim.Phase
	}
	idx := map[key]int{}
	var out []PlotSeries
	get := func(q string, p cim.Phase) *PlotSeries {
		k := key{q, p}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			unit := ""
			if qq, ok := cat.Lookup(q); ok {
				unit = qq.Unit
			}
			out = append(out, PlotSeries{Quantity: q, Phase: p.String(), Unit: unit, Device: []PlotPoint{}, Platform: []PlotPoint{}})
		}
		return &out[i]
	}
	for _, rec := range truth {
		for _, v := range rec.Values {
			s := get(v.Quantity, v.Phase)
			s.Device = append(s.Device, PlotPoint{T: rec.Start.UnixMilli(), V: v.Value})
		}
	}
	for _, r := range got {
		s := get(r.Quantity, r.Phase)
		s.Platform = append(s.Platform, PlotPoint{T: r.Time, V: r.Value})
	}
	for i := range out {
		slices.SortFunc(out[i].Platform, func(a, b PlotPoint) int { return int(a.T - b.T) })
		out[i].Device = thin(out[i].Device)
		out[i].Platform = thin(out[i].Platform)
	}
	slices.SortFunc(out, func(a, b PlotSeries) int {
		return strings.Compare(a.Quantity+"\x00"+a.Phase, b.Quantity+"\x00"+b.Phase)
	})
	return out
}

// thin keeps at most maxPlotPoints, evenly spread, the last one included.
func thin(ps []PlotPoint) []PlotPoint {
	if len(ps) <= maxPlotPoints {
		return ps
	}
	out := make([]PlotPoint, 0, maxPlotPoints)
	step := float64(len(ps)-1) / float64(maxPlotPoints-1)
	for i := range maxPlotPoints {
		out = append(out, ps[int(math.Round(float64(i)*step))])
	}
	return out
}

// judge decides one asset against the pass criteria; "" means it passed.
func judge(c *Case, site string, m measured) string {
	where := site + "/" + m.Asset
	if strings.Contains(m.Asset, "/") || site == "" {
		where = m.Asset
	}
	p := c.Pass
	if m.Cycles == 0 {
		return fmt.Sprintf("the device of %s recorded no measuring cycle in the window", where)
	}
	if p.ValuesEqual && m.Equal < m.Arrived {
		note := ""
		if m.derived > 0 {
			note = fmt.Sprintf("; %d readings of series the device never held set aside", m.derived)
		}
		if len(m.Mismatches) > 0 {
			mm := m.Mismatches[0]
			return fmt.Sprintf("%s %s %s at %s: the device held %.7g, the %s holds %.7g (%d of %d arrived cycles equal, %d readings differ%s)",
				where, mm.Quantity, mm.Phase, mm.Time.UTC().Format("15:04:05.000"), mm.Device, checkName(p.Check), mm.Platform, m.Equal, m.Arrived, m.mismatched, note)
		}
		return fmt.Sprintf("%s: the cycle from %s holds a value no reading in the %s equals (%d of %d arrived cycles equal%s)",
			where, m.firstUnequal.Start.UTC().Format("15:04:05.000"), checkName(p.Check), m.Equal, m.Arrived, note)
	}
	if m.Completeness < p.MinCompleteness {
		lost := ""
		if len(m.lost) > 0 {
			lost = "; no reading at all of " + strings.Join(m.lost, ", ")
		}
		return fmt.Sprintf("%s: %d of %d measuring cycles reached the %s (%.1f %%, at least %.1f %% required%s)",
			where, m.Arrived, m.Cycles, checkName(p.Check), m.Completeness, p.MinCompleteness, lost)
	}
	if max := time.Duration(p.MaxDelayP99); max > 0 {
		if !m.delays {
			return fmt.Sprintf("%s: no delay measured (no reading of it came on the platform's live feed), so the p99 bound %v is not shown", where, max)
		}
		if m.DelayP99 > max {
			return fmt.Sprintf("%s: delay from the device's reading to the platform p99 %v exceeds %v (p50 %v, max %v)",
				where, m.DelayP99.Round(time.Millisecond), max, m.DelayP50.Round(time.Millisecond), m.DelayMax.Round(time.Millisecond))
		}
	}
	return ""
}

func checkName(check string) string {
	switch check {
	case "ledger":
		return "ledger"
	case "gateway":
		return "platform (from the gateway)"
	}
	return "platform"
}

package itc

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store/rollup"
)

// energyStep is the interval of the energy figures checked: the European
// imbalance settlement period, what a supplier bills by.
const energyStep = "15m"

// checkEnergy checks, for each cumulative register of got (the platform's
// raw readings of one asset in the window), that the platform's 15-minute
// energy (agg=delta) over the readings' span equals the register's
// increase counted from those readings, a drop counting as a restart from
// zero, and that no interval's energy is negative. It returns a reason ("" when
// every register passes) and how many drops the readings hold.
func (c *client) checkEnergy(ctx context.Context, site, asset string, got []cim.Reading, cat *cim.Catalogue) (why string, resets int, err error) {
	bySeries := map[cim.SeriesKey][]cim.Point{}
	for _, r := range got {
		if q, ok := cat.Lookup(r.Quantity); ok && q.Kind == cim.Cumulative && r.Asset == asset {
			bySeries[r.SeriesKey] = append(bySeries[r.SeriesKey], r.Point)
		}
	}
	keys := slices.SortedFunc(maps.Keys(bySeries), func(a, b cim.SeriesKey) int {
		return cmp.Or(cmp.Compare(a.Quantity, b.Quantity), cmp.Compare(a.Phase, b.Phase))
	})
	for _, k := range keys {
		pts := bySeries[k]
		slices.SortFunc(pts, func(a, b cim.Point) int { return cmp.Compare(a.Time, b.Time) })
		if len(pts) < 2 {
			continue
		}
		want, drops := 0.0, 0
		for i := 1; i < len(pts); i++ {
			want += rollup.Increase(pts[i-1].Value, pts[i].Value)
			if pts[i].Value < pts[i-1].Value {
				drops++
			}
		}
		resets += drops
		// From just after the first reading: the platform counts from it.
		from, to := pts[0].Time+1, pts[len(pts)-1].Time+1
		intervals, err := c.energy(ctx, site, k, from, to)
		if err != nil {
			return "", resets, err
		}
		sum := 0.0
		for _, p := range intervals {
			if p.Value < 0 {
				return fmt.Sprintf("%s/%s %s %s: the platform's %s energy from %s is %.7g, negative (%s)",
					site, asset, k.Quantity, k.Phase.String(), energyStep, cim.TimeOf(p.Time).UTC().Format(time.TimeOnly), p.Value, resetNote(drops)), resets, nil
			}
			sum += p.Value
		}
		if math.Abs(sum-want) > 1e-6*math.Max(1, math.Abs(want)) {
			return fmt.Sprintf("%s/%s %s %s: the platform's %s energy from %s to %s adds up to %.7g, its readings increase by %.7g (%s)",
				site, asset, k.Quantity, k.Phase.String(), energyStep,
				cim.TimeOf(pts[0].Time).UTC().Format(time.TimeOnly), cim.TimeOf(pts[len(pts)-1].Time).UTC().Format(time.TimeOnly),
				sum, want, resetNote(drops)), resets, nil
		}
	}
	return "", resets, nil
}

func resetNote(n int) string {
	if n == 1 {
		return "the register reset once in the span"
	}
	return fmt.Sprintf("the register reset %d times in the span", n)
}

// energy reads the platform's 15-minute energy of one series over
// [from, to): GET /api/v1/readings with agg=delta.
func (c *client) energy(ctx context.Context, site string, k cim.SeriesKey, from, to int64) ([]cim.Point, error) {
	q := url.Values{"site": {site}, "asset": {k.Asset}, "quantity": {k.Quantity}, "phase": {k.Phase.String()},
		"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)},
		"step": {energyStep}, "agg": {"delta"}}
	var out struct {
		Series []struct {
			Points [][2]float64 `json:"points"`
		} `json:"series"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/readings", q, nil, &out); err != nil {
		return nil, fmt.Errorf("%s energy of %s/%s %s: %w", energyStep, site, k.Asset, k.Quantity, err)
	}
	var pts []cim.Point
	for _, s := range out.Series {
		for _, p := range s.Points {
			pts = append(pts, cim.Point{Time: int64(p[0]), Value: p[1]})
		}
	}
	return pts, nil
}

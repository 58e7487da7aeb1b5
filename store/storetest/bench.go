package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// BenchAggregateDay writes one day of a 1 s energy register of site "s"
// (with a reset at noon) into r, calls settle (a driver's flush into its
// rollups; nil for none), then measures aggregating the whole day with
// 15-minute and 1-minute steps, delta (the reset-aware increase) against
// avg. The site must exist where the driver needs it.
func BenchAggregateDay(b *testing.B, r store.Readings, settle func() error) {
	ctx := b.Context()
	const n = 86_400
	key := cim.SeriesKey{Asset: "m1", Quantity: "energy_active_import"}
	rs := make([]cim.Reading, n)
	v := 1e6
	for i := range rs {
		v += float64(i%7) / 4
		if i == n/2 {
			v = 0
		}
		rs[i] = cim.Reading{SeriesKey: key, Point: cim.Point{Time: t0 + int64(i)*1000, Value: v}}
	}
	if _, err := r.Write(ctx, "s", rs); err != nil {
		b.Fatal(err)
	}
	if settle != nil {
		if err := settle(); err != nil {
			b.Fatal(err)
		}
	}
	sel := store.Selector{Site: "s", From: t0, To: t0 + n*1000}
	for _, c := range []struct {
		step time.Duration
		agg  store.Agg
	}{{15 * time.Minute, store.AggDelta}, {15 * time.Minute, store.AggAvg}, {time.Minute, store.AggDelta}, {time.Minute, store.AggAvg}} {
		b.Run(fmt.Sprintf("%v/%s", c.step, c.agg), func(b *testing.B) {
			for b.Loop() {
				pts := 0
				if err := r.Aggregate(ctx, sel, c.step, c.agg, func(_ store.Series, ps []cim.Point) error {
					pts += len(ps)
					return nil
				}); err != nil || pts != int(n*time.Second/c.step) {
					b.Fatalf("%d points, %v", pts, err)
				}
			}
		})
	}
}

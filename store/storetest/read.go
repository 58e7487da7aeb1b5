package storetest

import (
	"context"
	"errors"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

var readTests = []test{
	{"Filters", testReadFilters},
	{"Bounds", testReadBounds},
	{"Order", testReadOrder},
	{"Blocks", testReadBlocks},
	{"FnErrorAborts", testReadFnError},
	{"ContextCanceled", testReadCanceled},
	{"UnknownSite", testReadUnknownSite},
}

func phase(p cim.Phase) *cim.Phase { return &p }

// filterData writes two assets with several quantities and phases.
func (f *fixture) filterData() {
	var rs []cim.Reading
	v := 0.0
	for _, a := range []string{"a2", "a1"} {
		for _, s := range []struct {
			q string
			p cim.Phase
		}{
			{"active_power", cim.PhaseTotal}, {"active_power", cim.PhaseL1}, {"active_power", cim.PhaseL2},
			{"voltage", cim.PhaseL1}, {"voltage", cim.PhaseL2}, {"voltage", cim.PhaseL3},
			{"energy_import", cim.PhaseTotal},
		} {
			for i := range int64(10) {
				v++
				rs = append(rs, rd(a, s.q, s.p, t0+i*minute, v))
			}
		}
	}
	f.write("s", rs)
}

func testReadFilters(f *fixture) {
	f.filterData()
	sels := []store.Selector{
		{Site: "s"},
		{Site: "s", Asset: "a1"},
		{Site: "s", Quantity: "voltage"},
		{Site: "s", Phase: phase(cim.PhaseTotal)},
		{Site: "s", Phase: phase(cim.PhaseL1)},
		{Site: "s", Asset: "a2", Quantity: "active_power", Phase: phase(cim.PhaseL2)},
		{Site: "s", Asset: "a1", Phase: phase(cim.PhaseL3), From: t0 + 3*minute, To: t0 + 5*minute},
		{Site: "s", Asset: "nope"},
		{Site: "s", Quantity: "nope"},
		{Site: "s", Phase: phase(cim.PhaseN)},
		{Site: "s", Asset: "a"},
	}
	for _, sel := range sels {
		f.checkRead(sel)
	}
	// Numbers written here check the model too.
	for _, c := range []struct {
		sel    store.Selector
		series int
	}{
		{store.Selector{Site: "s"}, 14},
		{store.Selector{Site: "s", Phase: phase(cim.PhaseTotal)}, 4},
		{store.Selector{Site: "s", Phase: phase(cim.PhaseL1)}, 4},
		{store.Selector{Site: "s", Asset: "a1", Quantity: "voltage"}, 3},
	} {
		if got := f.read(c.sel); len(got) != c.series {
			f.t.Errorf("Read %s: got %d series, want %d", selName(c.sel), len(got), c.series)
		}
	}
}

func testReadBounds(f *fixture) {
	var rs []cim.Reading
	for _, d := range []int64{-1000, -1, 0, 1, 2, 998, 999, 1000, 1001, day} {
		rs = append(rs, rd("m1", "active_power", cim.PhaseTotal, t0+d, float64(d)))
	}
	f.write("s", rs)
	for _, r := range [][2]int64{
		{0, 0}, {t0, 0}, {t0 + 1, 0}, {t0 + day, 0}, {t0 + day + 1, 0},
		{t0, t0 + 1}, {t0, t0 + 999}, {t0 - 1, t0 + 1000}, {t0 + 1, t0 + 2}, {t0 + 999, t0 + 1001},
		{t0, t0}, {t0 + 3, t0 + 998}, {1, t0 - 1000}, {1, t0 - 999},
	} {
		f.checkRead(store.Selector{Site: "s", From: r[0], To: r[1]})
	}
	got := f.read(store.Selector{Site: "s", From: t0, To: t0 + 999})
	if len(got) != 1 || len(got[0].P) != 4 || got[0].P[0].Time != t0 || got[0].P[3].Time != t0+998 {
		f.t.Errorf("Read [t0, t0+999): got %v, want the 4 points at t0, t0+1, t0+2, t0+998", got)
	}
}

func testReadOrder(f *fixture) {
	r := newRand(6)
	phases := []cim.Phase{cim.PhaseN, cim.PhaseL31, cim.PhaseL3, cim.PhaseL23, cim.PhaseL2, cim.PhaseL12, cim.PhaseL1, cim.PhaseTotal}
	var rs []cim.Reading
	for _, a := range orderedIDs {
		for _, q := range []string{"x_y", "xy", "x", "X"} {
			for _, p := range phases[:1+r.IntN(len(phases))] {
				for i := range int64(3) {
					rs = append(rs, rd(a, q, p, t0+i*second, exactValue(r)))
				}
			}
		}
	}
	r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	f.write("s", rs)
	f.checkRead(all("s")) // stream checks the order
	f.checkLatest("s")
	f.checkAggregate(all("s"), time.Hour, store.AggMax)
}

func testReadBlocks(f *fixture) {
	var rs []cim.Reading
	for _, a := range []string{"m1", "m2", "m3"} {
		for i := range int64(20000) {
			rs = append(rs, rd(a, "active_power", cim.PhaseTotal, t0+i*100, float64(i%1000)))
		}
	}
	f.write("s", rs)
	f.checkRead(all("s"))
	f.checkRead(store.Selector{Site: "s", From: t0 + 1000*100, To: t0 + 15000*100})
}

var errStop = errors.New("storetest: stop")

// streamers are the two methods that call a SeriesFunc.
func (f *fixture) streamers() map[string]func(ctx context.Context, sel store.Selector, fn store.SeriesFunc) error {
	return map[string]func(ctx context.Context, sel store.Selector, fn store.SeriesFunc) error{
		"Read": f.s.Read,
		"Aggregate": func(ctx context.Context, sel store.Selector, fn store.SeriesFunc) error {
			return f.s.Aggregate(ctx, sel, time.Minute, store.AggAvg, fn)
		},
	}
}

// testReadFnError checks that an error from fn stops Read and Aggregate and
// comes back from them.
func testReadFnError(f *fixture) {
	f.filterData()
	for name, call := range f.streamers() {
		calls := 0
		err := call(f.ctx, all("s"), func(store.Series, []cim.Point) error {
			calls++
			return errStop
		})
		if !errors.Is(err, errStop) {
			f.t.Errorf("%s: fn returned an error, %s returned %v, want that error", name, name, err)
		}
		if calls != 1 {
			f.t.Errorf("%s: fn returned an error on its first call, but was called %d times", name, calls)
		}
	}
}

// testReadCanceled checks that a canceled context stops Read and Aggregate,
// before they start and while they stream.
func testReadCanceled(f *fixture) {
	f.filterData()
	for name, call := range f.streamers() {
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		err := call(ctx, all("s"), func(store.Series, []cim.Point) error { return nil })
		if !errors.Is(err, context.Canceled) {
			f.t.Errorf("%s with a canceled context: got %v, want context.Canceled", name, err)
		}

		ctx, cancel = context.WithCancel(f.ctx)
		calls := 0
		err = call(ctx, all("s"), func(store.Series, []cim.Point) error {
			calls++
			cancel()
			return nil
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			f.t.Errorf("%s with the context canceled by fn: got %v after %d calls of 14 series, want context.Canceled", name, err, calls)
		}
	}
}

func testReadUnknownSite(f *fixture) {
	f.filterData()
	f.ensure("empty", nil)
	for _, site := range []string{"empty", "nowhere", "S", ""} {
		for name, call := range f.streamers() {
			err := call(f.ctx, all(site), func(s store.Series, pts []cim.Point) error {
				if len(pts) > 0 {
					f.t.Errorf("%s of site %q: delivered %d points of %s", name, site, len(pts), seriesName(s))
				}
				return nil
			})
			// Selector.Site is required: "" may be refused with any error.
			if err != nil && !errors.Is(err, store.ErrNotFound) && site != "" {
				f.t.Errorf("%s of site %q: %v, want no error or ErrNotFound", name, site, err)
			}
		}
		lp, err := f.s.Latest(f.ctx, site)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			f.t.Errorf("Latest of site %q: %v, want no error or ErrNotFound", site, err)
		}
		if len(lp) != 0 {
			f.t.Errorf("Latest of site %q: got %d points, want none", site, len(lp))
		}
	}
}

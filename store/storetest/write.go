package storetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

var writeTests = []test{
	{"Empty", testWriteEmpty},
	{"CountsAcrossCalls", testWriteCountsAcross},
	{"CountsWithinCall", testWriteCountsWithin},
	{"ManySeries", testWriteManySeries},
	{"SitesIsolated", testWriteSitesIsolated},
	{"PhasesDistinct", testWritePhases},
	{"Milliseconds", testWriteMilliseconds},
	{"Values", testWriteValues},
	{"LargeBatch", testWriteLarge},
	{"OutOfOrder", testWriteOutOfOrder},
	{"CorrectionAfterNewerData", testWriteOldCorrection},
	{"ManySmallCalls", testWriteSmallCalls},
	{"Concurrent", testWriteConcurrent},
}

// t0 is 2024-03-01T00:00:00Z in Unix milliseconds: midnight, so aligned to
// every step of a day or less that divides a day, but not to 7 minutes.
const t0 int64 = 1709251200000

const (
	second = int64(time.Second / time.Millisecond)
	minute = 60 * second
	hour   = 60 * minute
	day    = 24 * hour
)

// rd makes a reading.
func rd(asset, quantity string, phase cim.Phase, t int64, v float64) cim.Reading {
	return cim.Reading{SeriesKey: cim.SeriesKey{Asset: asset, Quantity: quantity, Phase: phase}, Point: cim.Point{Time: t, Value: v}}
}

// exactValue returns a random value that float64 sums exactly: a multiple
// of 1/8 below 2^20 in magnitude.
func exactValue(r *rand.Rand) float64 {
	return float64(r.IntN(1<<23)-1<<22) / 8
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

func all(site string) store.Selector { return store.Selector{Site: site} }

func testWriteEmpty(f *fixture) {
	f.ensure("s", nil)
	for _, rs := range [][]cim.Reading{nil, {}} {
		res, err := f.s.Write(f.ctx, "s", rs)
		if err != nil {
			f.t.Fatalf("Write of no readings: %v", err)
		}
		f.expectResult(res, 0, 0, 0)
	}
	f.checkRead(all("s"))
	f.checkLatest("s")
}

func testWriteCountsAcross(f *fixture) {
	m := func(t int64, v float64) cim.Reading { return rd("m1", "active_power", cim.PhaseTotal, t0+t*second, v) }
	f.expectResult(f.write("s", []cim.Reading{m(0, 1), m(1, 2), m(2, 3)}), 3, 0, 0)
	f.expectResult(f.write("s", []cim.Reading{m(0, 1), m(1, 2), m(2, 3)}), 0, 3, 0)
	f.expectResult(f.write("s", []cim.Reading{m(1, 20), m(3, 4)}), 1, 0, 1)
	f.expectResult(f.write("s", []cim.Reading{m(1, 2), m(2, 3), m(3, 4), m(4, 5)}), 1, 2, 1)
	f.checkRead(all("s"))
	f.checkLatest("s")
}

func testWriteCountsWithin(f *fixture) {
	m := func(t int64, v float64) cim.Reading { return rd("m1", "active_power", cim.PhaseTotal, t0+t*second, v) }
	// The last value wins, and each reading counts against what is stored
	// when it is applied, including readings earlier in the same call.
	f.expectResult(f.write("s", []cim.Reading{m(1, 1), m(1, 2)}), 1, 0, 1)
	f.expectResult(f.write("s", []cim.Reading{m(2, 5), m(2, 5)}), 1, 1, 0)
	f.expectResult(f.write("s", []cim.Reading{m(1, 1), m(1, 2)}), 0, 0, 2)
	f.expectResult(f.write("s", []cim.Reading{m(3, 1), m(3, 2), m(3, 1)}), 1, 0, 2)
	f.expectResult(f.write("s", []cim.Reading{m(2, 5), m(4, 7), m(2, 6), m(4, 7), m(2, 5)}), 1, 2, 2)
	got := f.read(all("s"))
	want := []cim.Point{{Time: t0 + 1*second, Value: 2}, {Time: t0 + 2*second, Value: 5}, {Time: t0 + 3*second, Value: 1}, {Time: t0 + 4*second, Value: 7}}
	f.diff("Read after writes with repeated times", []seriesPoints{{S: store.Series{Site: "s", SeriesKey: m(0, 0).SeriesKey}, P: want}}, got, exact)
	f.checkRead(all("s"))
	f.checkLatest("s")
}

func testWriteManySeries(f *fixture) {
	r := newRand(1)
	var rs []cim.Reading
	for a := range 20 {
		for _, q := range []string{"active_power", "energy_import", "voltage"} {
			for i := range 30 {
				rs = append(rs, rd(fmt.Sprintf("house-%02d/meter", a), q, cim.PhaseTotal, t0+int64(i)*10*second+int64(a), exactValue(r)))
			}
		}
	}
	r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	f.expectResult(f.write("s", rs), len(rs), 0, 0)
	f.checkRead(all("s"))
	f.checkRead(store.Selector{Site: "s", Asset: "house-07/meter"})
	f.checkRead(store.Selector{Site: "s", Quantity: "voltage", From: t0 + 100*second, To: t0 + 200*second})
	f.checkLatest("s")
}

func testWriteSitesIsolated(f *fixture) {
	r := newRand(2)
	for _, site := range []string{"athens", "bristol", "pilot-3"} {
		var rs []cim.Reading
		for i := range 50 {
			for _, a := range []string{"m1", "m2"} {
				rs = append(rs, rd(a, "active_power", cim.PhaseTotal, t0+int64(i)*minute, exactValue(r)))
			}
		}
		f.write(site, rs)
	}
	for _, site := range []string{"athens", "bristol", "pilot-3", "nowhere"} {
		f.checkRead(all(site))
		f.checkRead(store.Selector{Site: site, Asset: "m2", From: t0 + 10*minute, To: t0 + 20*minute})
		f.checkLatest(site)
		for _, agg := range []store.Agg{store.AggSum, store.AggCount, store.AggDelta} {
			f.checkAggregate(all(site), 15*time.Minute, agg)
		}
	}
}

func testWritePhases(f *fixture) {
	var rs []cim.Reading
	phases := []cim.Phase{cim.PhaseL3, cim.PhaseTotal, cim.PhaseL1, cim.PhaseN, cim.PhaseL2, cim.PhaseL12, cim.PhaseL23, cim.PhaseL31}
	for i := range 10 {
		for j, p := range phases {
			rs = append(rs, rd("m1", "voltage", p, t0+int64(i)*second, float64(230+j)+float64(i)/4))
		}
	}
	f.expectResult(f.write("s", rs), len(rs), 0, 0)
	f.checkRead(all("s"))
	for _, p := range phases {
		got := f.read(store.Selector{Site: "s", Phase: &p})
		if len(got) != 1 || got[0].S.Phase != p || len(got[0].P) != 10 {
			f.t.Errorf("Read phase %s: got %d series, want the one series of that phase with 10 points", p, len(got))
		}
		f.checkRead(store.Selector{Site: "s", Phase: &p})
	}
	f.checkLatest("s")
}

func testWriteMilliseconds(f *fixture) {
	var rs []cim.Reading
	for i := range int64(1000) {
		rs = append(rs, rd("m1", "current", cim.PhaseL1, t0+i, float64(i)))
	}
	rs = append(rs, rd("m1", "current", cim.PhaseL1, t0-1, -1), rd("m1", "current", cim.PhaseL1, t0+day+1, 1e6))
	f.expectResult(f.write("s", rs), len(rs), 0, 0)
	f.checkRead(all("s"))
	f.checkRead(store.Selector{Site: "s", From: t0 + 1, To: t0 + 999})
	f.checkRead(store.Selector{Site: "s", From: t0 + 499, To: t0 + 500})
	f.checkAggregate(all("s"), time.Millisecond, store.AggSum)
	f.checkAggregate(all("s"), time.Second, store.AggCount)
	f.checkLatest("s")
}

func testWriteValues(f *fixture) {
	values := []float64{0, -1, -0.5, 1e-300, -1e300, 123456789.123456789, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, 0.1, 1.0 / 3, -273.15, 4.9e-324 * 3, math.Nextafter(1, 2)}
	var rs []cim.Reading
	for i, v := range values {
		rs = append(rs, rd("m1", "temperature", cim.PhaseTotal, t0+int64(i)*second, v))
	}
	f.expectResult(f.write("s", rs), len(rs), 0, 0)
	f.checkRead(all("s"))
	f.expectResult(f.write("s", rs), 0, len(rs), 0)
	for i := range rs {
		if rs[i].Value == 0 {
			rs[i].Value = 1
		} else {
			rs[i].Value = -rs[i].Value
		}
	}
	f.expectResult(f.write("s", rs), 0, 0, len(rs))
	f.checkRead(all("s"))
	f.checkLatest("s")
}

// testWriteLarge writes 200,000 readings of 100 series in one call, in time
// order across series as a gateway would send them, then writes them again
// with every tenth value changed.
func testWriteLarge(f *fixture) {
	const nSeries, nPoints = 100, 2000
	r := newRand(3)
	rs := make([]cim.Reading, 0, nSeries*nPoints)
	for i := range int64(nPoints) {
		for s := range int64(nSeries) {
			rs = append(rs, rd(fmt.Sprintf("a%02d", s/4), fmt.Sprintf("q%d", s%4), cim.PhaseTotal, t0+s*37*second+i*second, exactValue(r)))
		}
	}
	f.expectResult(f.write("s", rs), len(rs), 0, 0)
	f.checkRead(all("s"))
	f.checkAggregate(all("s"), 15*time.Minute, store.AggSum)
	f.checkAggregate(all("s"), time.Hour, store.AggCount)
	for i := range rs {
		if i%10 == 3 {
			rs[i].Value += 0.5
		}
	}
	f.expectResult(f.write("s", rs), 0, len(rs)-len(rs)/10, len(rs)/10)
	f.checkRead(all("s"))
	f.checkAggregate(all("s"), 15*time.Minute, store.AggSum)
	f.checkAggregate(all("s"), 5*time.Minute, store.AggMax)
	f.checkLatest("s")
}

func testWriteOutOfOrder(f *fixture) {
	r := newRand(4)
	var rs []cim.Reading
	for i := range int64(600) {
		for _, a := range []string{"m1", "m2", "m3", "m4", "m5"} {
			rs = append(rs, rd(a, "active_power", cim.PhaseTotal, t0+i*7*second+r.Int64N(5*second), exactValue(r)))
		}
	}
	r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	for len(rs) > 0 {
		n := min(len(rs), 1+r.IntN(200))
		f.write("s", rs[:n])
		rs = rs[n:]
	}
	f.checkRead(all("s"))
	f.checkRead(store.Selector{Site: "s", Asset: "m3", From: t0 + hour/3, To: t0 + hour/2})
	for _, agg := range []store.Agg{store.AggFirst, store.AggLast, store.AggDelta, store.AggAvg} {
		f.checkAggregate(all("s"), 15*time.Minute, agg)
	}
	f.checkLatest("s")
}

// testWriteOldCorrection corrects points of the first of three days after
// all of them are stored.
func testWriteOldCorrection(f *fixture) {
	r := newRand(5)
	var rs []cim.Reading
	for i := range int64(3 * 24 * 60) {
		rs = append(rs, rd("m1", "energy_import", cim.PhaseTotal, t0+i*minute, float64(i*8)+float64(r.IntN(8))/4))
		rs = append(rs, rd("m1", "active_power", cim.PhaseTotal, t0+i*minute, exactValue(r)))
	}
	f.write("s", rs)
	f.checkAggregate(all("s"), 15*time.Minute, store.AggDelta)
	fix := []cim.Reading{
		rd("m1", "energy_import", cim.PhaseTotal, t0, -50),
		rd("m1", "energy_import", cim.PhaseTotal, t0+61*minute, 1e6),
		rd("m1", "active_power", cim.PhaseTotal, t0+15*minute, 1e7),
		rd("m1", "active_power", cim.PhaseTotal, t0+29*minute, -1e7),
		rd("m1", "active_power", cim.PhaseTotal, t0+12*hour+30*second, 42),
	}
	f.expectResult(f.write("s", fix), 1, 0, 4)
	f.checkRead(all("s"))
	for _, step := range []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour, 7 * time.Minute} {
		for _, agg := range allAggs {
			f.checkAggregate(all("s"), step, agg)
		}
	}
	f.checkLatest("s")
}

// testWriteSmallCalls makes many calls of one or two readings, the pattern
// of live ingestion.
func testWriteSmallCalls(f *fixture) {
	for i := range int64(150) {
		rs := []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0+i*second, float64(i))}
		if i%2 == 0 {
			rs = append(rs, rd("m2", "voltage", cim.PhaseL1, t0+i*second, 230+float64(i%7)))
		}
		f.write("s", rs)
	}
	f.checkRead(all("s"))
	f.checkLatest("s")
}

// testWriteConcurrent runs 16 writers at once. Each writes points of its
// own and points that every writer writes with the same value, so the final
// content is known whatever the order of the commits.
func testWriteConcurrent(f *fixture) {
	const writers, calls, perCall = 16, 12, 40
	shared := func(k int64) cim.Reading { return rd("m0", "energy_import", cim.PhaseTotal, t0-k*second, float64(k)) }
	var probe []cim.Reading
	for g := range writers {
		probe = append(probe, rd(fmt.Sprintf("m%d", g%5), "x", cim.PhaseTotal, 0, 0))
	}
	f.ensure("s", probe)
	batches := make([][][]cim.Reading, writers)
	total := 0
	for g := range writers {
		for c := range calls {
			var rs []cim.Reading
			for j := range perCall {
				n := int64((c*perCall + j) * writers)
				q := []string{"active_power", "voltage"}[j%2]
				rs = append(rs, rd(fmt.Sprintf("m%d", (g+j)%5), q, cim.PhaseTotal, t0+(n+int64(g))*second, float64(g*1000+c*perCall+j)))
			}
			for k := range int64(5) {
				rs = append(rs, shared(k+int64(c)))
			}
			batches[g] = append(batches[g], rs)
			total += len(rs)
		}
	}
	results := make([]store.WriteResult, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for _, rs := range batches[g] {
				res, err := f.s.Write(f.ctx, "s", rs)
				if err != nil {
					f.t.Errorf("writer %d: Write: %v", g, err)
					return
				}
				results[g] = results[g].Add(res)
			}
		})
	}
	wg.Wait()
	if f.t.Failed() {
		return
	}
	var sum store.WriteResult
	for g := range writers {
		for _, rs := range batches[g] {
			f.m.write("s", rs)
		}
		sum = sum.Add(results[g])
	}
	distinct := 0
	for _, pts := range f.m.series {
		distinct += len(pts)
	}
	if want := (store.WriteResult{Accepted: distinct, Duplicate: total - distinct}); sum != want {
		f.t.Errorf("concurrent writes: results add up to %+v, want %+v", sum, want)
	}
	f.checkRead(all("s"))
	f.checkLatest("s")
	f.checkAggregate(all("s"), time.Hour, store.AggCount)
}

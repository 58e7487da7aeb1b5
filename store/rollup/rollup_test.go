package rollup_test

import (
	"math"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/rollup"
)

func pts(tv ...float64) []cim.Point {
	var out []cim.Point
	for i := 0; i < len(tv); i += 2 {
		out = append(out, cim.Point{Time: int64(tv[i]), Value: tv[i+1]})
	}
	return out
}

func of(p []cim.Point) rollup.Rollup {
	var r rollup.Rollup
	for _, q := range p {
		r.Add(q)
	}
	return r
}

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []cim.Point
		want rollup.Rollup
	}{
		{"none", nil, rollup.Rollup{}},
		{"one", pts(5, 2), rollup.Rollup{N: 1, Sum: 2, Min: 2, Max: 2, FirstT: 5, First: 2, LastT: 5, Last: 2}},
		// 3 → -1 is a drop, counted as a restart at -1.
		{"ascending", pts(1, 3, 2, -1, 3, 4), rollup.Rollup{N: 3, Sum: 6, Min: -1, Max: 4, FirstT: 1, First: 3, LastT: 3, Last: 4, Inc: -1 + 5}},
		{"negative times", pts(-30, 2, -20, 3, -10, 1), rollup.Rollup{N: 3, Sum: 6, Min: 1, Max: 3, FirstT: -30, First: 2, LastT: -10, Last: 1, Inc: 1 + 1}},
		{"first point zero", pts(0, 0, 7, 5), rollup.Rollup{N: 2, Sum: 5, Min: 0, Max: 5, FirstT: 0, First: 0, LastT: 7, Last: 5, Inc: 5}},
		{"counter", pts(1, 100, 2, 110, 3, 110, 4, 125), rollup.Rollup{N: 4, Sum: 445, Min: 100, Max: 125, FirstT: 1, First: 100, LastT: 4, Last: 125, Inc: 25}},
		{"counter reset", pts(1, 100, 2, 110, 3, 4, 4, 9), rollup.Rollup{N: 4, Sum: 223, Min: 4, Max: 110, FirstT: 1, First: 100, LastT: 4, Last: 9, Inc: 10 + 4 + 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := of(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []cim.Point
	}{
		{"both empty", nil, nil},
		{"into empty", nil, pts(1, 2, 3, 4)},
		{"empty in", pts(1, 2, 3, 4), nil},
		{"later", pts(1, 2, 3, 4), pts(5, -6, 7, 8)},
		{"counter", pts(1, 10, 3, 14), pts(5, 15, 7, 20)},
		{"reset at the seam", pts(1, 10, 3, 14), pts(5, 2, 7, 3)},
		{"negative times", pts(-9, 3, -5, 1), pts(-1, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := of(tc.a)
			got.Merge(of(tc.b))
			want := of(append(append([]cim.Point(nil), tc.a...), tc.b...))
			if got != want {
				t.Errorf("got %+v, want %+v (all points added)", got, want)
			}
		})
	}
}

func TestValue(t *testing.T) {
	r := of(pts(10, 4, 20, -2, 30, 7, 40, 3)) // first 4, last 3
	for _, tc := range []struct {
		agg     store.Agg
		prev    float64
		hasPrev bool
		want    float64
	}{
		{store.AggAvg, 0, false, 3},
		{store.AggMin, 0, false, -2},
		{store.AggMax, 0, false, 7},
		{store.AggSum, 0, false, 12},
		{store.AggFirst, 0, false, 4},
		{store.AggLast, 0, false, 3},
		{store.AggCount, 0, false, 4},
		// 4 → -2 and 7 → 3 are resets: the counter restarted at -2 and 3.
		{store.AggDelta, 0, false, -2 + 9 + 3},
		{store.AggDelta, 3, true, 1 + -2 + 9 + 3},
		{store.AggDelta, 10, true, 4 + -2 + 9 + 3}, // a reset before the interval too
		{store.AggDelta, 0, true, 4 + -2 + 9 + 3},  // a previous value of 0 counts
		{store.AggAvg, 100, true, 3},               // prev only matters for delta
		{store.AggCount, 100, true, 4},             // prev only matters for delta
		{store.AggFirst, 100, true, 4},             // prev only matters for delta
		{store.AggLast, -100, true, 3},             // prev only matters for delta
		{store.AggMin, -100, true, -2},             // prev only matters for delta
		{store.AggMax, 100, true, 7},               // prev only matters for delta
		{store.AggSum, 100, true, 12},              // prev only matters for delta
	} {
		if got := r.Value(tc.agg, tc.prev, tc.hasPrev); got != tc.want {
			t.Errorf("Value(%s, %v, %v) = %v, want %v", tc.agg, tc.prev, tc.hasPrev, got, tc.want)
		}
	}
	if got := r.Value("median", 0, false); !math.IsNaN(got) {
		t.Errorf("Value(median) = %v, want NaN", got)
	}
	counter := of(pts(10, 100, 20, 110, 30, 130))
	if got := counter.Value(store.AggDelta, 95, true); got != 35 {
		t.Errorf("delta of a counter = %v, want last - prev = 35", got)
	}
	one := of(pts(5, 9))
	if got := one.Value(store.AggDelta, 0, false); got != 0 {
		t.Errorf("delta of one point without prev = %v, want 0", got)
	}
}

func TestIncrease(t *testing.T) {
	for _, c := range []struct{ from, to, want float64 }{
		{10, 15, 5},
		{10, 10, 0},
		{10, 3, 3}, // reset: restarted at zero
		{10, 0, 0},
		{0, 0, 0},
	} {
		if got := rollup.Increase(c.from, c.to); got != c.want {
			t.Errorf("Increase(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestFloor(t *testing.T) {
	for _, tc := range []struct {
		t, step, want int64
	}{
		{0, 10, 0},
		{1, 10, 0},
		{9, 10, 0},
		{10, 10, 10},
		{25, 10, 20},
		{-1, 10, -10},
		{-9, 10, -10},
		{-10, 10, -10},
		{-11, 10, -20},
		{-25, 10, -30},
		{-900_001, 900_000, -1_800_000},
		{-900_000, 900_000, -900_000},
		{1_709_251_234_567, 900_000, 1_709_251_200_000},
		{7, 1, 7},
		{-7, 1, -7},
	} {
		if got := rollup.Floor(tc.t, tc.step); got != tc.want {
			t.Errorf("Floor(%d, %d) = %d, want %d", tc.t, tc.step, got, tc.want)
		}
	}
}

func TestWhole(t *testing.T) {
	for _, c := range []struct {
		from, to, lo, hi int64
		ok               bool
	}{
		{0, 900, 0, 900, true},
		{1, 1800, 900, 1800, true},
		{1, 1799, 900, 900, false},
		{-901, 0, -900, 0, true},
		{100, math.MaxInt64, 900, math.MaxInt64, true},
		{100, 800, 900, 0, false},
	} {
		lo, hi, ok := rollup.Whole(c.from, c.to, 900)
		if lo != c.lo || hi != c.hi || ok != c.ok {
			t.Errorf("rollup.Whole(%d, %d, 900) = %d, %d, %v; want %d, %d, %v", c.from, c.to, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}

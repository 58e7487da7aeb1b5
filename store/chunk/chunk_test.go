package chunk

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gridlink/gridlink/cim"
)

func roundTrip(t *testing.T, pts []cim.Point) []byte {
	t.Helper()
	b := Append(nil, pts)
	got, err := Decode(nil, b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(pts) {
		t.Fatalf("decoded %d points, want %d", len(got), len(pts))
	}
	for i := range pts {
		if got[i].Time != pts[i].Time || math.Float64bits(got[i].Value) != math.Float64bits(pts[i].Value) {
			t.Fatalf("point %d: got %+v, want %+v", i, got[i], pts[i])
		}
	}
	if n, err := Len(b); err != nil || n != len(pts) {
		t.Fatalf("Len = %d, %v; want %d", n, err, len(pts))
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]cim.Point{
		"empty":     nil,
		"one":       {{Time: 1764237600123, Value: 42.5}},
		"negzero":   {{Time: 1, Value: math.Copysign(0, -1)}, {Time: 2, Value: 0}},
		"irregular": {{Time: -5, Value: 1}, {Time: 0, Value: 2}, {Time: 7, Value: 3}, {Time: 1 << 40, Value: -4.25}},
		"extremes":  {{Time: 1, Value: math.MaxFloat64}, {Time: 2, Value: -math.MaxFloat64}, {Time: 3, Value: math.SmallestNonzeroFloat64}},
	}
	var watts, noisy, counter []cim.Point
	e := 1.5e6
	for i := range 3600 {
		ts := int64(1764237600000 + i*1000)
		watts = append(watts, cim.Point{Time: ts, Value: math.Round(2000 + 500*math.Sin(float64(i)/600) + rng.NormFloat64()*20)})
		noisy = append(noisy, cim.Point{Time: ts, Value: rng.NormFloat64() * 1e3})
		e += math.Round(rng.Float64() * 2)
		counter = append(counter, cim.Point{Time: ts, Value: e})
	}
	cases["watts"], cases["noisy"], cases["counter"] = watts, noisy, counter
	for name, pts := range cases {
		t.Run(name, func(t *testing.T) { roundTrip(t, pts) })
	}
	if b := roundTrip(t, watts); float64(len(b))/float64(len(watts)) > 1.5 {
		t.Errorf("watts: %.2f bytes per point, want at most 1.5", float64(len(b))/float64(len(watts)))
	}
}

func TestCorrupt(t *testing.T) {
	pts := []cim.Point{{Time: 10, Value: 1.5}, {Time: 20, Value: 2.5}, {Time: 35, Value: 1e300}}
	b := Append(nil, pts)
	for i := range b {
		if _, err := Decode(nil, b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: %v does not wrap ErrCorrupt", i, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, []cim.Point{{Time: 1, Value: 1.5}, {Time: 2, Value: 2}}))
	f.Add(Append(nil, []cim.Point{{Time: 1, Value: math.Pi}, {Time: 3, Value: math.E}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := Decode(nil, b)
		if err != nil {
			return
		}
		if n, _ := Len(b); n != len(pts) {
			t.Fatalf("Len %d != decoded %d", n, len(pts))
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	pts := make([]cim.Point, 7200)
	for i := range pts {
		pts[i] = cim.Point{Time: int64(i) * 1000, Value: math.Round(2000 + 500*math.Sin(float64(i)/600))}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], pts)
	}
	b.ReportMetric(float64(len(buf))/float64(len(pts)), "bytes/point")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
}

func BenchmarkDecode(b *testing.B) {
	pts := make([]cim.Point, 7200)
	for i := range pts {
		pts[i] = cim.Point{Time: int64(i) * 1000, Value: math.Round(2000 + 500*math.Sin(float64(i)/600))}
	}
	buf := Append(nil, pts)
	out := make([]cim.Point, 0, len(pts))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = Decode(out[:0], buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
}

package sqlite

import (
	"testing"

	"github.com/gridlink/gridlink/cim"
)

func TestWALRoundTrip(t *testing.T) {
	a := &groupSeries{st: &seriesState{id: 7}}
	b := &groupSeries{st: &seriesState{id: 300}}
	changes := [][]cim.Point{{{Time: 1, Value: 1.5}, {Time: 5, Value: -2}}, {{Time: 1764237600000, Value: 230.1}}}
	rec := encodeWAL([]*groupSeries{a, b}, changes)
	got := map[int64][]cim.Point{}
	if err := decodeWAL(rec, func(id int64, pts []cim.Point) { got[id] = append([]cim.Point(nil), pts...) }); err != nil {
		t.Fatal(err)
	}
	if len(got[7]) != 2 || got[7][1] != changes[0][1] || len(got[300]) != 1 || got[300][0] != changes[1][0] {
		t.Fatalf("decoded %+v", got)
	}
	if encodeWAL([]*groupSeries{a}, [][]cim.Point{nil}) != nil {
		t.Fatal("a group without changes should make no record")
	}
}

// FuzzDecodeWAL checks that a damaged write-ahead record gives an error,
// never a panic.
func FuzzDecodeWAL(f *testing.F) {
	f.Add(encodeWAL([]*groupSeries{{st: &seriesState{id: 1}}}, [][]cim.Point{{{Time: 1, Value: 2}}}))
	f.Add([]byte{walVersion, 1, 200})
	f.Fuzz(func(t *testing.T, rec []byte) {
		decodeWAL(rec, func(int64, []cim.Point) {})
	})
}

package storetest

import (
	"github.com/gridlink/gridlink/cim"
)

var latestTests = []test{
	{"Newest", testLatestNewest},
	{"AfterCorrection", testLatestCorrection},
	{"OlderWrittenLater", testLatestOlderLater},
	{"SitesIsolated", testLatestSites},
}

func testLatestNewest(f *fixture) {
	r := newRand(9)
	var rs []cim.Reading
	for i, a := range orderedIDs {
		for j, q := range []string{"voltage", "active_power"} {
			for _, p := range []cim.Phase{cim.PhaseL2, cim.PhaseTotal} {
				for k := range int64(1 + (i+j)%4) {
					rs = append(rs, rd(a, q, p, t0+k*minute+int64(i), exactValue(r)))
				}
			}
		}
	}
	r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	f.write("s", rs)
	f.checkLatest("s")
}

func testLatestCorrection(f *fixture) {
	f.write("s", []cim.Reading{
		rd("m1", "active_power", cim.PhaseTotal, t0, 1),
		rd("m1", "active_power", cim.PhaseTotal, t0+minute, 2),
	})
	f.checkLatest("s")
	f.expectResult(f.write("s", []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0+minute, 3)}), 0, 0, 1)
	f.checkLatest("s")
	f.expectResult(f.write("s", []cim.Reading{
		rd("m1", "active_power", cim.PhaseTotal, t0+2*minute, 4),
		rd("m1", "active_power", cim.PhaseTotal, t0+2*minute, 5),
	}), 1, 0, 1)
	f.checkLatest("s")
	lp, err := f.s.Latest(f.ctx, "s")
	if err != nil {
		f.t.Fatalf("Latest: %v", err)
	}
	if len(lp) != 1 || lp[0].Time != t0+2*minute || lp[0].Value != 5 {
		f.t.Errorf("Latest: got %+v, want 5 at %s", lp, fmtTime(t0+2*minute))
	}
}

func testLatestOlderLater(f *fixture) {
	f.write("s", []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0+hour, 10)})
	f.write("s", []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0, 20)})
	f.write("s", []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0+hour-1, 30), rd("m1", "active_power", cim.PhaseTotal, t0+2, 40)})
	f.checkLatest("s")
	lp, err := f.s.Latest(f.ctx, "s")
	if err != nil {
		f.t.Fatalf("Latest: %v", err)
	}
	if len(lp) != 1 || lp[0].Time != t0+hour || lp[0].Value != 10 {
		f.t.Errorf("Latest: got %+v, want 10 at %s", lp, fmtTime(t0+hour))
	}
}

func testLatestSites(f *fixture) {
	f.write("a", []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0, 1)})
	f.write("b", []cim.Reading{rd("m1", "active_power", cim.PhaseTotal, t0+hour, 2), rd("m2", "voltage", cim.PhaseL3, t0-hour, 3)})
	f.ensure("c", nil)
	for _, site := range []string{"a", "b", "c", "d"} {
		f.checkLatest(site)
	}
}

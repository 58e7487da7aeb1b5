package itc

import (
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/sim"
)

// FuzzReadSSE: any bytes from a live feed parse without a panic, and
// every event delivered has a non-empty type.
func FuzzReadSSE(f *testing.F) {
	f.Add(": gridlink live feed of site bristol\nretry: 3000\n\nevent: reading\ndata: {\"asset\":\"a\",\"quantity\":\"active_power\",\"phase\":\"total\",\"time\":1,\"value\":2}\n\n")
	f.Add("data: a\ndata: b\n\nevent: heartbeat\ndata: {\"time\":1}\n\n")
	f.Add("event\n\ndata\n\n:\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = readSSE(strings.NewReader(s), func(event, data string) {
			if event == "" {
				t.Fatalf("event with no type, data %q", data)
			}
		})
	})
}

// TestReadSSE parses the platform's event format.
func TestReadSSE(t *testing.T) {
	var got []string
	err := readSSE(strings.NewReader(": c\nretry: 3000\n\nevent: reading\ndata: {\"x\":1}\n\ndata: a\ndata: b\n\n"), func(e, d string) {
		got = append(got, e+"="+d)
	})
	if err != nil || len(got) != 2 || got[0] != `reading={"x":1}` || got[1] != "message=a\nb" {
		t.Errorf("%v %q", err, got)
	}
}

// FuzzSplitTruth: a truth entry splits into a site and the rest, and a
// plain URL keeps whole.
func FuzzSplitTruth(f *testing.F) {
	f.Add("bristol=http://127.0.0.1:9100")
	f.Add("http://h/truth?a=b")
	f.Fuzz(func(t *testing.T, s string) {
		site, base := SplitTruth(s)
		if site == "" && base != s || site != "" && site+"="+base != s {
			t.Fatalf("SplitTruth(%q) = %q, %q", s, site, base)
		}
	})
}

func TestSplitTruth(t *testing.T) {
	for in, want := range map[string][2]string{
		"bristol=http://x:1":  {"bristol", "http://x:1"},
		"http://x:1/?a=b":     {"", "http://x:1/?a=b"},
		"http://x:1":          {"", "http://x:1"},
		"=http://x:1":         {"", "=http://x:1"},
		"athens=http://x/?q=": {"athens", "http://x/?q="},
	} {
		if s, b := SplitTruth(in); s != want[0] || b != want[1] {
			t.Errorf("SplitTruth(%q) = %q, %q; want %q", in, s, b, want)
		}
	}
}

// TestPercentile checks nearest-rank percentiles.
func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	if p := percentile(ds, 50); p != 50 {
		t.Errorf("p50 %v", p)
	}
	if p := percentile(ds, 99); p != 99 {
		t.Errorf("p99 %v", p)
	}
	if p := percentile(ds[:1], 99); p != 1 {
		t.Errorf("p99 of one %v", p)
	}
}

// BenchmarkMeasure times the comparison of one asset's window: 20 cycles
// of 13 series read twice a cycle.
func BenchmarkMeasure(b *testing.B) {
	truth, got, arr := benchWindow(20, 13)
	cat := testCat()
	from, to := truth[0].Start, truth[len(truth)-1].End
	b.ResetTimer()
	for b.Loop() {
		measure("house-01/meter", from, to, truth, got, arr, cat)
	}
}

func testCat() *cim.Catalogue { return cim.Default() }

// benchWindow makes a window of cycles, readings twice a cycle and their
// arrivals.
func benchWindow(cycles, series int) ([]sim.CycleRecord, []cim.Reading, []arrival) {
	quantities := []string{"voltage", "current", "active_power"}
	phases := []cim.Phase{cim.PhaseL1, cim.PhaseL2, cim.PhaseL3, cim.PhaseTotal, cim.PhaseN}
	start := time.Now().Truncate(time.Second)
	var truth []sim.CycleRecord
	var got []cim.Reading
	var arr []arrival
	for c := range cycles {
		t0 := start.Add(time.Duration(c) * time.Second)
		rec := sim.CycleRecord{Asset: "house-01/meter", Cycle: int64(c), Start: t0, End: t0.Add(time.Second)}
		for s := range series {
			q, p := quantities[s%len(quantities)], phases[s/len(quantities)%len(phases)]
			v := float64(c*100 + s)
			rec.Values = append(rec.Values, sim.HeldValue{Quantity: q, Phase: p, Value: v})
			for _, off := range []time.Duration{100 * time.Millisecond, 600 * time.Millisecond} {
				rd := cim.Reading{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: q, Phase: p}, Point: cim.Point{Time: t0.Add(off).UnixMilli(), Value: v}}
				got = append(got, rd)
				arr = append(arr, arrival{series: rd.SeriesKey, time: rd.Time, at: t0.Add(off + 300*time.Millisecond)})
			}
		}
		truth = append(truth, rec)
	}
	return truth, got, arr
}

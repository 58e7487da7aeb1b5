package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// fakeSink records the batches it is given. It fails the test if it is
// called concurrently.
type fakeSink struct {
	mu      sync.Mutex
	busy    atomic.Bool
	batches [][]cim.Reading
	fail    int // fail the call with this 1-based number
	block   bool
	result  func([]cim.Reading) store.WriteResult
	t       *testing.T
}

func (s *fakeSink) write(ctx context.Context, rs []cim.Reading) (store.WriteResult, error) {
	if !s.busy.CompareAndSwap(false, true) {
		s.t.Error("sink called concurrently")
	}
	defer s.busy.Store(false)
	s.mu.Lock()
	s.batches = append(s.batches, slices.Clone(rs))
	n := len(s.batches)
	s.mu.Unlock()
	if s.block {
		<-ctx.Done()
		return store.WriteResult{}, ctx.Err()
	}
	if n == s.fail {
		return store.WriteResult{}, errors.New("disk full")
	}
	if s.result != nil {
		return s.result(rs), nil
	}
	return store.WriteResult{Accepted: len(rs)}, nil
}

func (s *fakeSink) sizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches {
		out = append(out, len(b))
	}
	return out
}

func testOptions() Options {
	return Options{Catalogue: cim.Default(), Now: func() time.Time { return testNow }}
}

// csvRows returns n valid CSV rows, one second apart.
func csvRows(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "house-%02d/meter,active_power,%d,%d\n", i%7, t0+int64(i)*1000, i)
	}
	return b.String()
}

// checkNoLeak fails the test if goroutines started during it are still
// running shortly after.
func checkNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for range 100 {
			if runtime.NumGoroutine() <= before {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("%d goroutines before, %d after", before, runtime.NumGoroutine())
	})
}

func TestRunBatches(t *testing.T) {
	checkNoLeak(t)
	sink := &fakeSink{t: t}
	opts := testOptions()
	opts.BatchSize = 3
	var progress []int64
	opts.Progress = func(rows int64) { progress = append(progress, rows) }
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(csvRows(10))), sink.write, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := sink.sizes(); !slices.Equal(got, []int{3, 3, 3, 1}) {
		t.Errorf("batch sizes %v, want [3 3 3 1]", got)
	}
	if rep.Rows != 10 || rep.Accepted != 10 || rep.Rejected != 0 {
		t.Errorf("report %+v", rep)
	}
	if !slices.Equal(progress, []int64{3, 6, 9, 10}) {
		t.Errorf("progress %v", progress)
	}
	var all []cim.Reading
	for _, b := range sink.batches {
		all = append(all, b...)
	}
	for i, r := range all {
		if r.Time != t0+int64(i)*1000 || r.Value != float64(i) || r.Quantity != "active_power" {
			t.Fatalf("reading %d = %+v, out of order or wrong", i, r)
		}
	}
}

func TestRunSmallInputWritesOnce(t *testing.T) {
	sink := &fakeSink{t: t}
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(csvRows(5))), sink.write, testOptions())
	if err != nil || rep.Accepted != 5 {
		t.Fatalf("%+v %v", rep, err)
	}
	if got := sink.sizes(); !slices.Equal(got, []int{5}) {
		t.Errorf("batch sizes %v", got)
	}
	rep, err = Run(context.Background(), NewCSV(strings.NewReader("")), sink.write, testOptions())
	if err != nil || rep.Rows != 0 || len(sink.sizes()) != 1 {
		t.Errorf("empty input: %+v %v, %d sink calls", rep, err, len(sink.sizes()))
	}
}

func TestRunValidation(t *testing.T) {
	in := "asset,quantity,time,value,unit,phase\n" +
		"house-01/meter,active_power,2026-11-27T10:00:00Z,1.5,kW,L1\n" + // 2: good, converted
		"house-01/meter,power_active,2026-11-27T10:00:00Z,1,,\n" + // 3: unknown quantity
		"house-01/meter,active_power,2026-11-27T10:00:00Z,1,furlong,\n" + // 4: unknown unit
		"house-01/meter,active_power,2026-11-27T10:00:00Z,NaN,,\n" + // 5: NaN
		"house-01/meter,active_power,2026-11-27T10:00:00Z,Inf,,\n" + // 6: infinite
		"house-01/meter,active_power,2030-01-01T00:00:00Z,1,,\n" + // 7: far in the future
		",active_power,2026-11-27T10:00:00Z,1,,\n" + // 8: empty asset
		"house-99/meter,active_power,2026-11-27T10:00:00Z,1,,\n" + // 9: unknown asset
		"house-01/door,door_window_state,2026-11-27T10:00:00Z,open,,\n" + // 10: good, state name
		"house-01/door,door_window_state,2026-11-27T10:00:00Z,ajar,,\n" + // 11: bad state name
		"house-01/meter,active_power,2026-11-27T10:00:00Z,lots,,\n" + // 12: text for a number
		"house-01/meter,active_power,2026-13-27T10:00:00Z,1,,\n" + // 13: bad time (decoder)
		"house-01/meter,voltage,2026-11-27T10:00:00Z,230,V,L7\n" + // 14: bad phase
		"house-01/meter,active_power,1999-12-31T23:59:59Z,1,,\n" // 15: too old
	sink := &fakeSink{t: t}
	opts := testOptions()
	opts.AssetExists = func(a string) bool { return strings.HasPrefix(a, "house-01/") }
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(in)), sink.write, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 14 || rep.Accepted != 2 || rep.Rejected != 12 || len(rep.Errors) != 12 {
		t.Errorf("report %+v", rep)
	}
	wantErrs := []struct {
		line  int
		field string
	}{{3, "quantity"}, {4, "unit"}, {5, "value"}, {6, "value"}, {7, "time"}, {8, "asset"},
		{9, "asset"}, {11, "value"}, {12, "value"}, {13, "time"}, {14, "phase"}, {15, "time"}}
	for i, w := range wantErrs {
		if i >= len(rep.Errors) {
			break
		}
		e := rep.Errors[i]
		if e.Pos != w.line || e.PosKind != PosLine || e.Field != w.field || e.Reason == "" {
			t.Errorf("error %d = %+v, want line %d field %q", i, e, w.line, w.field)
		}
		t.Log(e.Error())
	}
	if e := rep.Errors[6]; e.Error() != `line 9: field "asset": value "house-99/meter": unknown asset` {
		t.Errorf("unknown asset: %s", e.Error())
	}
	if e := rep.Errors[7]; e.Error() != `line 11: field "value": value "ajar": neither a number nor one of closed, open` {
		t.Errorf("bad state: %s", e.Error())
	}
	got := sink.batches[0]
	wantReadings := []cim.Reading{
		{SeriesKey: cim.SeriesKey{Asset: "house-01/meter", Quantity: "active_power", Phase: cim.PhaseL1}, Point: cim.Point{Time: ms("2026-11-27T10:00:00Z"), Value: 1500}},
		{SeriesKey: cim.SeriesKey{Asset: "house-01/door", Quantity: "door_window_state"}, Point: cim.Point{Time: ms("2026-11-27T10:00:00Z"), Value: 1}},
	}
	if !slices.Equal(got, wantReadings) {
		t.Errorf("readings %+v, want %+v", got, wantReadings)
	}
}

func TestRunJSONIndexes(t *testing.T) {
	in := `{"readings":[{"asset":"m","quantity":"active_power","time":"2026-11-27T10:00:00Z","value":1},` +
		`{"asset":"m","quantity":"active_power","time":"2026-11-27T10:00:00Z","value":1,"unit":"parsec"},` +
		`{"asset":"m","quantity":"relay_state","time":"2026-11-27T10:00:00Z","value":"ON"},` +
		`{"asset":"m","quantity":"active_power","time":"2026-11-27T10:00:00Z","value":"12.5"}]}`
	sink := &fakeSink{t: t}
	rep, err := Run(context.Background(), NewJSON(strings.NewReader(in)), sink.write, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 3 || len(rep.Errors) != 1 || rep.Errors[0].Pos != 1 || rep.Errors[0].PosKind != PosIndex ||
		!strings.HasPrefix(rep.Errors[0].Error(), `readings[1]: field "unit": value "parsec": `) {
		t.Errorf("report %+v", rep)
	}
	if b := sink.batches[0]; b[1].Value != 1 || b[2].Value != 12.5 {
		t.Errorf("readings %+v", b)
	}
}

func TestRunDryRun(t *testing.T) {
	opts := testOptions()
	opts.DryRun = true
	in := csvRows(20) + "m,active_power,x,1\n"
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(in)), nil, opts)
	if err != nil || rep.Rows != 21 || rep.Accepted != 20 || rep.Rejected != 1 {
		t.Errorf("%+v %v", rep, err)
	}
}

func TestRunMaxErrors(t *testing.T) {
	in := strings.Repeat("m,active_power,x,1\n", 25) + csvRows(3)
	for _, tc := range []struct{ max, kept, truncated int }{{0, 25, 0}, {10, 10, 15}, {-1, 0, 25}} {
		opts := testOptions()
		opts.MaxErrors = tc.max
		sink := &fakeSink{t: t}
		rep, err := Run(context.Background(), NewCSV(strings.NewReader(in)), sink.write, opts)
		if err != nil || rep.Rejected != 25 || len(rep.Errors) != tc.kept ||
			rep.ErrorsTruncated != int64(tc.truncated) || rep.Accepted != 3 {
			t.Errorf("MaxErrors %d: %+v %v", tc.max, rep, err)
		}
	}
}

func TestRunWriteResults(t *testing.T) {
	sink := &fakeSink{t: t, result: func(rs []cim.Reading) store.WriteResult {
		return store.WriteResult{Accepted: len(rs) - 2, Duplicate: 1, Corrected: 1}
	}}
	opts := testOptions()
	opts.BatchSize = 4
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(csvRows(12))), sink.write, opts)
	if err != nil || rep.Accepted != 6 || rep.Duplicate != 3 || rep.Corrected != 3 {
		t.Errorf("%+v %v", rep, err)
	}
}

func TestRunSinkError(t *testing.T) {
	checkNoLeak(t)
	sink := &fakeSink{t: t, fail: 3}
	opts := testOptions()
	opts.BatchSize = 10
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(csvRows(1000))), sink.write, opts)
	if err == nil || !strings.Contains(err.Error(), "write readings: disk full") {
		t.Fatalf("error %v", err)
	}
	if rep.Accepted != 20 {
		t.Errorf("accepted %d, want the 20 of the two batches before the failure", rep.Accepted)
	}
	if n := len(sink.sizes()); n != 3 {
		t.Errorf("sink called %d times after failing, want 3", n)
	}
	if rep.Rows >= 1000 {
		t.Errorf("decoded all %d rows after the sink failed", rep.Rows)
	}
}

func TestRunSinkErrorSmall(t *testing.T) {
	sink := &fakeSink{t: t, fail: 1}
	rep, err := Run(context.Background(), NewCSV(strings.NewReader(csvRows(5))), sink.write, testOptions())
	if err == nil || rep.Accepted != 0 || rep.Rows != 5 {
		t.Errorf("%+v %v", rep, err)
	}
}

func TestRunDecodeError(t *testing.T) {
	// A malformed body writes nothing when it fits in one batch.
	sink := &fakeSink{t: t}
	in := `{"readings":[{"asset":"m","quantity":"active_power","time":1764237600123,"value":1},{"asset":}]}`
	rep, err := Run(context.Background(), NewJSON(strings.NewReader(in)), sink.write, testOptions())
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "byte 93") {
		t.Errorf("error %v, want an *InputError naming the byte", err)
	}
	if rep.Rows != 1 || rep.Accepted != 0 || len(sink.batches) != 0 {
		t.Errorf("%+v, %d batches", rep, len(sink.batches))
	}
	// A bad CSV header stops the run.
	_, err = Run(context.Background(), NewCSV(strings.NewReader("asset,quantity,when,value\n")), sink.write, testOptions())
	if !errors.As(err, &ie) {
		t.Errorf("error %v, want an *InputError", err)
	}
}

func TestRunCancel(t *testing.T) {
	checkNoLeak(t)
	t.Run("while the sink blocks", func(t *testing.T) {
		sink := &fakeSink{t: t, block: true}
		opts := testOptions()
		opts.BatchSize = 10
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		rep, err := Run(ctx, NewCSV(strings.NewReader(csvRows(100_000))), sink.write, opts)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if rep.Accepted != 0 || rep.Rows == 100_000 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("while decoding", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		opts := testOptions()
		opts.BatchSize = 100
		calls := 0
		sink := func(ctx context.Context, rs []cim.Reading) (store.WriteResult, error) {
			if calls++; calls == 2 {
				cancel()
			}
			return store.WriteResult{Accepted: len(rs)}, ctx.Err()
		}
		rep, err := Run(ctx, NewCSV(strings.NewReader(csvRows(100_000))), sink, opts)
		if !errors.Is(err, context.Canceled) || rep.Rows == 100_000 {
			t.Errorf("%+v %v", rep, err)
		}
	})
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		sink := &fakeSink{t: t}
		rep, err := Run(ctx, NewCSV(strings.NewReader(csvRows(10))), sink.write, testOptions())
		if !errors.Is(err, context.Canceled) || len(sink.batches) != 0 || rep.Rows != 0 {
			t.Errorf("%+v %v", rep, err)
		}
	})
}

// slowReader delays every read, so that decoding and writing overlap.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	if len(p) > 4096 {
		p = p[:4096]
	}
	return s.r.Read(p)
}

// TestRunOverlap checks under -race that batches are not touched while the
// sink holds them: the sink checks its batch is unchanged after a pause.
func TestRunOverlap(t *testing.T) {
	checkNoLeak(t)
	opts := testOptions()
	opts.BatchSize = 50
	var total atomic.Int64
	sink := func(_ context.Context, rs []cim.Reading) (store.WriteResult, error) {
		c := slices.Clone(rs)
		time.Sleep(2 * time.Millisecond)
		if !slices.Equal(c, rs) {
			t.Error("batch changed while the sink held it")
		}
		total.Add(int64(len(rs)))
		return store.WriteResult{Accepted: len(rs)}, nil
	}
	rep, err := Run(context.Background(), NewCSV(slowReader{strings.NewReader(csvRows(2000))}), sink, opts)
	if err != nil || rep.Accepted != 2000 || total.Load() != 2000 {
		t.Errorf("%+v %v", rep, err)
	}
}

func TestRunOptions(t *testing.T) {
	sink := (&fakeSink{t: t}).write
	dec := NewCSV(strings.NewReader(""))
	if _, err := Run(context.Background(), dec, sink, Options{}); err == nil {
		t.Error("no catalogue: no error")
	}
	if _, err := Run(context.Background(), dec, nil, testOptions()); err == nil {
		t.Error("no sink: no error")
	}
	opts := testOptions()
	opts.BatchSize = -1
	if _, err := Run(context.Background(), dec, sink, opts); err == nil {
		t.Error("negative batch size: no error")
	}
}

// TestRunAllocs guards the steady state: decoding, validating and batching a
// row allocates nothing; what a run allocates does not grow with its rows.
func TestRunAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts need a normal build")
	}
	const rows = 20_000
	inputs := map[string]func() Decoder{
		"csv":    func() Decoder { return NewCSV(strings.NewReader(csvRows(rows))) },
		"ndjson": func() Decoder { return NewNDJSON(&rowSource{n: rows, format: fmtNDJSON}) },
		"json":   func() Decoder { return NewJSON(&rowSource{n: rows, format: fmtJSON}) },
	}
	sink := func(_ context.Context, rs []cim.Reading) (store.WriteResult, error) {
		return store.WriteResult{Accepted: len(rs)}, nil
	}
	opts := testOptions()
	opts.BatchSize = 1000
	opts.Now = func() time.Time { return time.UnixMilli(t0 + rows*1000) }
	for name, open := range inputs {
		allocs := testing.AllocsPerRun(3, func() { open() })
		total := testing.AllocsPerRun(3, func() {
			rep, err := Run(context.Background(), open(), sink, opts)
			if err != nil || rep.Accepted != rows {
				t.Fatalf("%s: %+v %v", name, rep, err)
			}
		})
		t.Logf("%s: %.0f allocations to open, %.0f for the run", name, allocs, total)
		// Fixed costs: the input itself (csvRows builds a string), the
		// read buffer, interned names, two batches, the goroutine.
		if got := total - allocs; got > 1500 {
			t.Errorf("%s: a run of %d rows made %.0f allocations", name, rows, got)
		}
	}
}

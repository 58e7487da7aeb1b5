package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/logbuf"
)

func newLogger() (*slog.Logger, *logbuf.Buffer) {
	lb := new(logbuf.Buffer)
	return lb.Logger(slog.LevelDebug), lb
}

// readings makes n readings numbered from start: the number is in the time
// and the value, so that order and content can be checked.
func readings(start, n int) []cim.Reading {
	out := make([]cim.Reading, n)
	phases := []cim.Phase{cim.PhaseTotal, cim.PhaseL1, cim.PhaseL2, cim.PhaseL3}
	for i := range out {
		k := start + i
		out[i] = cim.Reading{
			SeriesKey: cim.SeriesKey{Asset: fmt.Sprintf("house-%02d/meter", k%7), Quantity: "active_power", Phase: phases[k%4]},
			Point:     cim.Point{Time: 1_780_000_000_000 + int64(k)*1000, Value: float64(k) + 0.25},
		}
	}
	return out
}

func open(t testing.TB, dir string, opts Options) *Queue {
	t.Helper()
	q, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func mustAppend(t testing.TB, q *Queue, rs []cim.Reading) {
	t.Helper()
	if err := q.Append(rs); err != nil {
		t.Fatalf("append: %v", err)
	}
}

// drain peeks and acknowledges everything in batches of n.
func drain(t testing.TB, q *Queue, n int) []cim.Reading {
	t.Helper()
	var all []cim.Reading
	for {
		rs, c, err := q.Peek(n)
		if err != nil {
			t.Fatalf("peek: %v", err)
		}
		if len(rs) == 0 {
			return all
		}
		all = append(all, rs...)
		if err := q.Ack(c); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
}

func equalReadings(t testing.TB, got, want []cim.Reading) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d readings, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.SeriesKey != w.SeriesKey || g.Time != w.Time || math.Float64bits(g.Value) != math.Float64bits(w.Value) {
			t.Fatalf("reading %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Options{})
	want := readings(0, 10_000)
	// Odd batch sizes and a batch larger than one record.
	mustAppend(t, q, want[:1])
	mustAppend(t, q, want[1:100])
	mustAppend(t, q, want[100:])
	if n := q.Len(); n != 10_000 {
		t.Fatalf("Len = %d", n)
	}
	st := q.Stats()
	if st.Readings != 10_000 || st.OldestTime != cim.TimeOf(want[0].Time) || st.Bytes <= 0 || st.Segments != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Peek twice gives the same; a partial record is resumed exactly.
	a, _, err := q.Peek(333)
	if err != nil {
		t.Fatal(err)
	}
	b, c, err := q.Peek(333)
	if err != nil {
		t.Fatal(err)
	}
	equalReadings(t, a, b)
	equalReadings(t, a, want[:333])
	if err := q.Ack(c); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(c); err != nil { // again: nothing
		t.Fatal(err)
	}
	if st := q.Stats(); st.OldestTime != cim.TimeOf(want[333].Time) {
		t.Fatalf("oldest after ack: %v", st.OldestTime)
	}
	got := drain(t, q, 777)
	equalReadings(t, got, want[333:])
	if q.Len() != 0 {
		t.Fatalf("Len after drain = %d", q.Len())
	}
	rs, _, err := q.Peek(10)
	if err != nil || len(rs) != 0 {
		t.Fatalf("peek empty: %v %v", rs, err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Acknowledged readings stay acknowledged; new ones continue.
	q = open(t, dir, Options{})
	if q.Len() != 0 {
		t.Fatalf("Len after reopen = %d", q.Len())
	}
	more := readings(10_000, 50)
	mustAppend(t, q, more)
	equalReadings(t, drain(t, q, 1000), more)
}

func TestReopenKeepsUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Options{SegmentBytes: 8 << 10})
	want := readings(0, 5000)
	for i := 0; i < len(want); i += 50 {
		mustAppend(t, q, want[i:i+50])
	}
	rs, c, err := q.Peek(1234)
	if err != nil || len(rs) != 1234 {
		t.Fatalf("peek: %d %v", len(rs), err)
	}
	if err := q.Ack(c); err != nil {
		t.Fatal(err)
	}
	segs := q.Stats().Segments
	if segs < 3 {
		t.Fatalf("want several segments, got %d", segs)
	}
	q.Close()
	q = open(t, dir, Options{SegmentBytes: 8 << 10})
	if st := q.Stats(); st.Readings != 5000-1234 || st.Dropped != 0 || st.Segments != segs {
		t.Fatalf("stats after reopen: %+v (segments before %d)", st, segs)
	}
	equalReadings(t, drain(t, q, 500), want[1234:])
	if st := q.Stats(); st.Segments != 1 {
		t.Fatalf("acknowledged segments not deleted: %+v", st)
	}
}

func TestCursorErrors(t *testing.T) {
	q := open(t, t.TempDir(), Options{})
	mustAppend(t, q, readings(0, 10))
	if err := q.Ack(Cursor{seq: 11}); err == nil {
		t.Fatal("ack past the tail: no error")
	}
	if err := q.Ack(Cursor{}); err != nil {
		t.Fatalf("zero cursor: %v", err)
	}
	// A cursor without a position hint works (scan from the segment start).
	if err := q.Ack(Cursor{seq: 4}); err != nil {
		t.Fatal(err)
	}
	equalReadings(t, drain(t, q, 3), readings(4, 6))
	q.Close()
	if err := q.Append(readings(0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, _, err := q.Peek(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("peek after close: %v", err)
	}
}

func TestStrings(t *testing.T) {
	q := open(t, t.TempDir(), Options{})
	long := strings.Repeat("é", 150)
	want := []cim.Reading{
		{SeriesKey: cim.SeriesKey{Asset: long, Quantity: "q\"\n\x00", Phase: "L31"}, Point: cim.Point{Time: -5, Value: math.NaN()}},
		{SeriesKey: cim.SeriesKey{Asset: "", Quantity: "", Phase: ""}, Point: cim.Point{Time: math.MaxInt64, Value: math.Inf(-1)}},
		{SeriesKey: cim.SeriesKey{Asset: long, Quantity: "q\"\n\x00", Phase: "L31"}, Point: cim.Point{Time: math.MinInt64, Value: -0.0}},
	}
	// More distinct strings than one record's table holds.
	for i := range 600 {
		want = append(want, cim.Reading{SeriesKey: cim.SeriesKey{Asset: fmt.Sprint("a", i), Quantity: "energy"}, Point: cim.Point{Time: int64(i)}})
	}
	want = append(want, want[:3]...)
	mustAppend(t, q, want)
	equalReadings(t, drain(t, q, 100), want)
}

func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Options{SegmentBytes: 16 << 10})
	const writers, per = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				r := readings(w*per+i, 1)
				if err := q.Append(r); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	// A consumer runs at the same time.
	var got []cim.Reading
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < writers*per {
			ch := q.Appended()
			rs, c, err := q.Peek(64)
			if err != nil {
				t.Errorf("peek: %v", err)
				return
			}
			if len(rs) == 0 {
				<-ch
				continue
			}
			got = append(got, rs...)
			if err := q.Ack(c); err != nil {
				t.Errorf("ack: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	// Each writer's readings arrive once and in its order.
	seen := make(map[int64]bool)
	last := make([]int64, writers)
	for _, r := range got {
		k := (r.Time - 1_780_000_000_000) / 1000
		if seen[k] {
			t.Fatalf("reading %d twice", k)
		}
		seen[k] = true
		w := k / per
		if k < last[w] {
			t.Fatalf("writer %d out of order", w)
		}
		last[w] = k
	}
	if len(seen) != writers*per {
		t.Fatalf("got %d distinct readings", len(seen))
	}
}

func TestBoundDropsOldest(t *testing.T) {
	dir := t.TempDir()
	log, lb := newLogger()
	opts := Options{MaxBytes: 40 << 10, SegmentBytes: 8 << 10, Logger: log}
	q := open(t, dir, opts)
	const total = 20_000
	for i := 0; i < total; i += 100 {
		mustAppend(t, q, readings(i, 100))
		if b := q.Stats().Bytes; b > opts.MaxBytes {
			t.Fatalf("queue holds %d bytes, more than %d", b, opts.MaxBytes)
		}
	}
	st := q.Stats()
	if st.Dropped == 0 || st.Dropped+st.Readings != total {
		t.Fatalf("stats %+v: dropped + readings != %d", st, total)
	}
	if !strings.Contains(lb.String(), "dropped the oldest readings") {
		t.Fatalf("no warning logged: %s", lb.String())
	}
	// The newest survive, in order.
	q.Close()
	q = open(t, dir, opts)
	if st2 := q.Stats(); st2.Dropped != st.Dropped || st2.Readings != st.Readings {
		t.Fatalf("after reopen %+v, before %+v", st2, st)
	}
	equalReadings(t, drain(t, q, 1000), readings(int(st.Dropped), int(st.Readings)))

	// Dropping partly acknowledged segments counts only the rest.
	mustAppend(t, q, readings(total, 1000))
	rs, c, _ := q.Peek(10)
	if err := q.Ack(c); err != nil || len(rs) != 10 {
		t.Fatal(err)
	}
	before := q.Stats()
	for i := 0; i < 5000; i += 100 {
		mustAppend(t, q, readings(total+1000+i, 100))
	}
	after := q.Stats()
	if after.Dropped-before.Dropped+after.Readings != before.Readings+5000 {
		t.Fatalf("before %+v after %+v", before, after)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, o := range []Options{{MaxBytes: -1}, {Sync: 7}, {MaxBytes: 10 << 10, SegmentBytes: 8 << 10}} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	q := open(t, t.TempDir(), Options{MaxBytes: 16 << 10, SegmentBytes: 8 << 10})
	big := readings(0, 2000) // about 26 KB in one record
	if err := q.Append(big[:1000]); err == nil {
		t.Fatal("record larger than the queue: no error")
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Options{})
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

func TestSyncNever(t *testing.T) {
	dir := t.TempDir()
	q := open(t, dir, Options{Sync: SyncNever, SegmentBytes: 4 << 10})
	want := readings(0, 3000)
	mustAppend(t, q, want)
	q.Close()
	q = open(t, dir, Options{Sync: SyncNever})
	equalReadings(t, drain(t, q, 999), want)
}

// segFiles lists the segment files of dir, oldest first.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		hurt func(b []byte, last int) []byte // last: length of the last record
	}{
		{"cut in payload", func(b []byte, _ int) []byte { return b[:len(b)-5] }},
		{"cut in header", func(b []byte, last int) []byte { return b[:len(b)-last+3] }},
		{"zero filled", func(b []byte, last int) []byte {
			clear(b[len(b)-last:])
			return append(b, make([]byte, 4096)...)
		}},
		{"payload never written", func(b []byte, last int) []byte {
			clear(b[len(b)-last+recHeaderLen:])
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			log, lb := newLogger()
			q := open(t, dir, Options{Logger: log})
			mustAppend(t, q, readings(0, 100))
			mustAppend(t, q, readings(100, 10))
			q.Close()
			f := segFiles(t, dir)[0]
			b, _ := os.ReadFile(f)
			if err := os.WriteFile(f, tc.hurt(b, recordLenFrom(t, b, 1)), 0o640); err != nil {
				t.Fatal(err)
			}
			q = open(t, dir, Options{Logger: log})
			if st := q.Stats(); st.Readings != 100 || st.Dropped != 0 {
				t.Fatalf("stats %+v", st)
			}
			if !strings.Contains(lb.String(), "unfinished record") {
				t.Fatalf("no warning: %s", lb.String())
			}
			// Appends continue after the cut.
			mustAppend(t, q, readings(100, 10))
			q.Close()
			q = open(t, dir, Options{Logger: log})
			equalReadings(t, drain(t, q, 1000), readings(0, 110))
		})
	}
}

// recordLenFrom returns the length of record i (0-based) of a segment.
func recordLenFrom(t testing.TB, b []byte, i int) int {
	t.Helper()
	off := segHeaderLen
	for {
		n, _ := recordHeader(b[off:])
		if i == 0 {
			return recHeaderLen + int(n)
		}
		off += recHeaderLen + int(n)
		i--
	}
}

func TestRecoverCorruptMiddle(t *testing.T) {
	t.Run("non-last segment", func(t *testing.T) {
		dir := t.TempDir()
		log, lb := newLogger()
		opts := Options{Logger: log, SegmentBytes: 4 << 10}
		q := open(t, dir, opts)
		for i := 0; i < 2000; i += 100 {
			mustAppend(t, q, readings(i, 100))
		}
		q.Close()
		segs := segFiles(t, dir)
		if len(segs) < 3 {
			t.Fatalf("%d segments", len(segs))
		}
		// Flip a byte in the second record of the first segment: the
		// first record survives, the rest of the segment is lost, and the
		// next segment's name says exactly how much.
		b, _ := os.ReadFile(segs[0])
		off := segHeaderLen + recordLenFrom(t, b, 0) + recHeaderLen + 20
		b[off] ^= 0x40
		os.WriteFile(segs[0], b, 0o640)
		next, _ := parseSegName(filepath.Base(segs[1]))
		q = open(t, dir, opts)
		st := q.Stats()
		if st.Dropped != int64(next)-100 || st.Readings != 2000-st.Dropped {
			t.Fatalf("stats %+v, next segment at %d", st, next)
		}
		if !strings.Contains(lb.String(), "damaged record") {
			t.Fatalf("no error logged: %s", lb.String())
		}
		got := drain(t, q, 500)
		equalReadings(t, got[:100], readings(0, 100))
		equalReadings(t, got[100:], readings(int(next), 2000-int(next)))
		// The loss stays counted.
		q.Close()
		q = open(t, dir, opts)
		if q.Stats().Dropped != st.Dropped {
			t.Fatalf("dropped after reopen %d, want %d", q.Stats().Dropped, st.Dropped)
		}
	})
	t.Run("last segment", func(t *testing.T) {
		dir := t.TempDir()
		log, lb := newLogger()
		q := open(t, dir, Options{Logger: log})
		for i := 0; i < 500; i += 100 {
			mustAppend(t, q, readings(i, 100))
		}
		q.Close()
		f := segFiles(t, dir)[0]
		b, _ := os.ReadFile(f)
		off := segHeaderLen + recordLenFrom(t, b, 0) + recordLenFrom(t, b, 1) + 30
		b[off] ^= 1
		os.WriteFile(f, b, 0o640)
		q = open(t, dir, Options{Logger: log})
		st := q.Stats()
		if st.Readings != 200 || st.Dropped < 100 || st.Dropped > 600 {
			t.Fatalf("stats %+v (about 300 lost)", st)
		}
		if !strings.Contains(lb.String(), "estimated_readings") {
			t.Fatalf("no error logged: %s", lb.String())
		}
		equalReadings(t, drain(t, q, 1000), readings(0, 200))
		// New readings continue the sequence after the good part.
		mustAppend(t, q, readings(1000, 3))
		equalReadings(t, drain(t, q, 1000), readings(1000, 3))
	})
}

func TestRecoverDamagedHead(t *testing.T) {
	dir := t.TempDir()
	log, lb := newLogger()
	q := open(t, dir, Options{Logger: log})
	mustAppend(t, q, readings(0, 100))
	rs, c, _ := q.Peek(40)
	q.Ack(c)
	q.Close()
	os.WriteFile(filepath.Join(dir, headFile), []byte("garbage"), 0o640)
	q = open(t, dir, Options{Logger: log})
	// Everything is offered again: sending twice is harmless, losing is not.
	if q.Len() != 100 || len(rs) != 40 {
		t.Fatalf("Len %d", q.Len())
	}
	if !strings.Contains(lb.String(), "head file damaged") {
		t.Fatalf("no warning: %s", lb.String())
	}
}

func TestRecoverMissingSegments(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4 << 10}
	q := open(t, dir, opts)
	for i := 0; i < 1000; i += 50 {
		mustAppend(t, q, readings(i, 50))
	}
	q.Close()
	segs := segFiles(t, dir)
	os.Remove(segs[1])
	second, _ := parseSegName(filepath.Base(segs[1]))
	third, _ := parseSegName(filepath.Base(segs[2]))
	q = open(t, dir, opts)
	if st := q.Stats(); st.Dropped != int64(third-second) || st.Readings != 1000-st.Dropped {
		t.Fatalf("stats %+v", st)
	}
	// Every segment gone but the head file: numbering continues after it.
	q.Close()
	for _, s := range segFiles(t, dir) {
		os.Remove(s)
	}
	q = open(t, dir, opts)
	mustAppend(t, q, readings(5, 1))
	equalReadings(t, drain(t, q, 10), readings(5, 1))
}

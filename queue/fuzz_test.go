package queue

import (
	"os"
	"path/filepath"
	"testing"
)

// seedSegment returns the bytes of a real segment holding the readings of
// batches of the given sizes.
func seedSegment(f *testing.F, sizes ...int) []byte {
	f.Helper()
	dir := f.TempDir()
	q, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	for _, s := range sizes {
		if err := q.Append(readings(n, s)); err != nil {
			f.Fatal(err)
		}
		n += s
	}
	q.Close()
	b, err := os.ReadFile(filepath.Join(dir, "00000000000000000000.seg"))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzRecover opens a queue whose only segment holds arbitrary bytes: Open
// must not fail or panic, Peek must return only readings of whole checked
// records, the repaired file must scan clean, and the queue must work on.
func FuzzRecover(f *testing.F) {
	good := seedSegment(f, 3, 1, 20)
	f.Add(good, uint16(0))
	f.Add(good[:len(good)-7], uint16(0))
	f.Add(append(good[:len(good):len(good)], make([]byte, 100)...), uint16(0))
	flipped := append([]byte(nil), good...)
	flipped[30] ^= 0xff
	f.Add(flipped, uint16(0))
	f.Add(good, uint16(7)) // named after another sequence number than it holds
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("GLQ"), uint16(0))
	f.Add([]byte("GLQ1\x00\x00\x00\x00\x00\x00\x00\x00"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, first uint16) {
		dir := t.TempDir()
		name := filepath.Join(dir, (&Queue{dir: dir}).segPath(uint64(first))[len(dir)+1:])
		if err := os.WriteFile(name, data, 0o640); err != nil {
			t.Fatal(err)
		}
		q, err := Open(dir, Options{Sync: SyncNever})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer q.Close()
		st := q.Stats()
		if st.Readings < 0 || st.Dropped < 0 || st.Segments != 1 {
			t.Fatalf("stats %+v", st)
		}
		var got int64
		for {
			rs, c, err := q.Peek(7)
			if err != nil {
				t.Fatalf("peek after recovery: %v", err)
			}
			if len(rs) == 0 {
				break
			}
			got += int64(len(rs))
			if err := q.Ack(c); err != nil {
				t.Fatal(err)
			}
		}
		if got != st.Readings {
			t.Fatalf("peeked %d readings, stats said %d", got, st.Readings)
		}
		repaired, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, dmg := scanSegment(repaired, uint64(first), &decoder{}); dmg != nil {
			t.Fatalf("repaired segment still damaged at %d: %s", dmg.off, dmg.reason)
		}
		want := readings(0, 5)
		if err := q.Append(want); err != nil {
			t.Fatal(err)
		}
		q.Close()
		q2, err := Open(dir, Options{Sync: SyncNever})
		if err != nil {
			t.Fatal(err)
		}
		defer q2.Close()
		equalReadings(t, drain(t, q2, 100), want)
	})
}

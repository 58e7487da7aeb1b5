package store

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

var t0 = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

func TestIDTagKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"04e1a2b3", "04E1A2B3"},
		{"Ab-C_d.1", "AB-C_D.1"},
		{strings.Repeat("z", MaxIDTagLen), strings.Repeat("Z", MaxIDTagLen)},
		{"a b", "A B"},
	} {
		got, err := IDTagKey(c.in)
		if err != nil || got != c.want {
			t.Errorf("IDTagKey(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", strings.Repeat("z", MaxIDTagLen+1), "ä", "a\x00", " a", "a ", "\x7f"} {
		var fe *cim.FieldError
		if _, err := IDTagKey(in); !errors.As(err, &fe) || fe.Field != "idTag" {
			t.Errorf("IDTagKey(%q): %v, want an idTag field error", in, err)
		}
	}
}

func TestEnergyWh(t *testing.T) {
	s := Session{Start: t0, MeterStartWh: 100}
	if s.EnergyWh() != 0 || !s.Running() {
		t.Errorf("running: EnergyWh %g Running %v", s.EnergyWh(), s.Running())
	}
	s.Stop, s.MeterStopWh = t0.Add(time.Hour), 7100
	if s.EnergyWh() != 7000 || s.Running() {
		t.Errorf("stopped: EnergyWh %g Running %v", s.EnergyWh(), s.Running())
	}
	s.Start = time.Time{}
	if s.EnergyWh() != 0 || s.Running() || !s.OrderTime().Equal(s.Stop) {
		t.Errorf("stop only: EnergyWh %g Running %v OrderTime %s", s.EnergyWh(), s.Running(), s.OrderTime())
	}
}

func TestMergeSession(t *testing.T) {
	start := Session{Site: "s", ChargePoint: "cp", TransactionID: 1, Connector: 2, IDTag: "A",
		Start: t0, MeterStartWh: 10, Updated: t0}
	stop := Session{Site: "s", ChargePoint: "cp", TransactionID: 1, IDTag: "B",
		Stop: t0.Add(time.Hour), MeterStopWh: 20, StopReason: "Local", Updated: t0.Add(time.Hour)}
	want := Session{Site: "s", ChargePoint: "cp", TransactionID: 1, Connector: 2, IDTag: "A",
		Start: t0, MeterStartWh: 10, Stop: t0.Add(time.Hour), MeterStopWh: 20, StopReason: "Local", Updated: t0.Add(time.Hour)}
	for name, pair := range map[string][2]Session{"start first": {start, stop}, "stop first": {stop, start}} {
		got, err := MergeSession(pair[0], pair[1])
		if err != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, err, want)
		}
	}
}

func TestPrepareSession(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 123456789, time.UTC)
	s, err := PrepareSession(Session{Site: "s", ChargePoint: "cp", Start: t0.Add(1500 * time.Microsecond).In(time.FixedZone("x", 3600))}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Start.Equal(t0.Add(time.Millisecond)) || s.Start.Location() != time.UTC || !s.Updated.Equal(now.Truncate(time.Millisecond)) {
		t.Errorf("PrepareSession: start %s updated %s", s.Start, s.Updated)
	}
}

func TestFilterMatch(t *testing.T) {
	run := Session{Site: "s", ChargePoint: "cp", Start: t0}
	f := SessionFilter{Site: "s", From: t0.Add(100 * time.Hour)}
	if !f.Match(run) {
		t.Errorf("running session not matched by a later From")
	}
	f.To = t0
	if f.Match(run) {
		t.Errorf("session starting at To matched")
	}
}

// FuzzIDTagKey checks that tag keys never panic, keep the length, are
// upper case, and that every case variant of a tag has the same key.
func FuzzIDTagKey(f *testing.F) {
	for _, s := range []string{"04E1A2B3", "abc", "", "ä", strings.Repeat("x", 21), "D2A9F3C1B0", " x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		key, err := IDTagKey(tag)
		if err != nil {
			return
		}
		if len(key) != len(tag) || len(key) > MaxIDTagLen || strings.ToUpper(key) != key {
			t.Fatalf("IDTagKey(%q) = %q", tag, key)
		}
		if k2, err := IDTagKey(strings.ToLower(tag)); err != nil || k2 != key {
			t.Fatalf("IDTagKey(lower %q) = %q, %v; want %q", tag, k2, err, key)
		}
	})
}

// FuzzSession feeds two arbitrary puts of one session through
// PrepareSession and MergeSession, as a driver does, and checks the
// invariants every stored session keeps: a stop never before its start, a
// meter stop never below its meter start, and no half lost by a later put
// that lacks it.
func FuzzSession(f *testing.F) {
	f.Add(int64(0), int64(3600_000), 10.0, 20.0, "A", 1, int64(-1), int64(1800_000), 0.0, 15.0, "", 0)
	f.Add(int64(-1), int64(60_000), 0.0, 5.0, "", 0, int64(0), int64(-1), 1.0, 0.0, "B", 2)
	f.Add(int64(5), int64(1), 10.0, 20.0, "", 0, int64(0), int64(9), 30.0, 2.0, "tag", 1)
	f.Fuzz(func(t *testing.T, start1, stop1 int64, m1a, m1b float64, tag1 string, conn1 int,
		start2, stop2 int64, m2a, m2b float64, tag2 string, conn2 int) {
		mk := func(start, stop int64, ma, mb float64, tag string, conn int) Session {
			s := Session{Site: "s", ChargePoint: "cp", TransactionID: 1, IDTag: tag, Connector: conn}
			if start >= 0 {
				s.Start, s.MeterStartWh = t0.Add(time.Duration(start%1e12)*time.Millisecond), ma
			}
			if stop >= 0 {
				s.Stop, s.MeterStopWh, s.StopReason = t0.Add(time.Duration(stop%1e12)*time.Millisecond), mb, "Local"
			}
			return s
		}
		a, err := PrepareSession(mk(start1, stop1, m1a, m1b, tag1, conn1), t0)
		if err != nil {
			return
		}
		checkInvariants(t, a)
		b, err := PrepareSession(mk(start2, stop2, m2a, m2b, tag2, conn2), t0)
		if err != nil {
			return
		}
		m, err := MergeSession(a, b)
		if err != nil {
			if m != a {
				t.Fatalf("failed merge changed the stored session: %+v → %+v", a, m)
			}
			return
		}
		checkInvariants(t, m)
		if !a.Start.IsZero() && m.Start.IsZero() || !a.Stop.IsZero() && m.Stop.IsZero() ||
			a.IDTag != "" && m.IDTag == "" || a.Connector != 0 && m.Connector == 0 {
			t.Fatalf("merge lost a field: %+v + %+v = %+v", a, b, m)
		}
	})
}

func checkInvariants(t *testing.T, s Session) {
	t.Helper()
	if s.Start.IsZero() && s.Stop.IsZero() {
		t.Fatalf("session without start or stop: %+v", s)
	}
	if math.IsNaN(s.MeterStartWh) || math.IsNaN(s.MeterStopWh) || s.MeterStartWh < 0 || s.MeterStopWh < 0 {
		t.Fatalf("bad meter: %+v", s)
	}
	if !s.Start.IsZero() && !s.Stop.IsZero() && (s.Stop.Before(s.Start) || s.EnergyWh() < 0) {
		t.Fatalf("stop before start: %+v", s)
	}
}

// FuzzCheckID checks that ids are never refused with a panic and that an
// accepted id is valid UTF-8 within the length bound.
func FuzzCheckID(f *testing.F) {
	for _, s := range []string{"cp-1", "", " a", "a\xffb", "ä", "386285", "CKcharger", "a\u2028b"} { // 386285, CKcharger: chargeBoxSerialNumber of the Wallbox and Alfen fixtures
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if CheckID("chargePoint", id) != nil {
			return
		}
		if id == "" || len(id) > maxIDLen || !strings.ContainsRune(id, []rune(id)[0]) || strings.TrimSpace(id) == "" {
			t.Fatalf("CheckID accepted %q", id)
		}
		for _, r := range id {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("CheckID accepted control character in %q", id)
			}
		}
	})
}

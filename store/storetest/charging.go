package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

var sessionTests = []test{
	{"PutGet", testSessionPutGet},
	{"StopUpdatesStart", testSessionStop},
	{"StopBeforeStart", testSessionOutOfOrder},
	{"RepeatedPuts", testSessionRepeat},
	{"NotFound", testSessionNotFound},
	{"MissingSite", testSessionMissingSite},
	{"Invalid", testSessionInvalid},
	{"InconsistentMerge", testSessionInconsistent},
	{"TransactionIDs", testSessionTxIDs},
	{"ListOrdered", testSessionOrder},
	{"ListOverlap", testSessionOverlap},
	{"ListLimit", testSessionLimit},
	{"ListInvalid", testSessionListInvalid},
	{"ConcurrentStartStop", testSessionConcurrent},
}

var chargePointTests = []test{
	{"PutGet", testSecretPutGet},
	{"Asset", testSecretAsset},
	{"OtherSiteConflict", testSecretConflict},
	{"Delete", testSecretDelete},
	{"MissingSite", testSecretMissingSite},
	{"Invalid", testSecretInvalid},
}

var idTagTests = []test{
	{"PutGet", testTagPutGet},
	{"CaseInsensitive", testTagCase},
	{"ListOrderedPerSite", testTagList},
	{"Delete", testTagDelete},
	{"MissingSite", testTagMissingSite},
	{"Invalid", testTagInvalid},
}

// sessT0 is a session time in whole milliseconds.
var sessT0 = time.Date(2025, 6, 2, 10, 0, 0, 250e6, time.UTC)

func at(d time.Duration) time.Time { return sessT0.Add(d) }

func equalSession(a, b store.Session) bool {
	utc := func(t time.Time) bool { return t.IsZero() || t.Location() == time.UTC }
	return a.Site == b.Site && a.ChargePoint == b.ChargePoint && a.Connector == b.Connector &&
		a.TransactionID == b.TransactionID && a.IDTag == b.IDTag && a.Start.Equal(b.Start) &&
		a.Stop.Equal(b.Stop) && a.MeterStartWh == b.MeterStartWh && a.MeterStopWh == b.MeterStopWh &&
		a.StopReason == b.StopReason && a.Updated.Equal(b.Updated) &&
		utc(a.Start) && utc(a.Stop) && utc(a.Updated)
}

func fmtSession(s store.Session) string {
	tm := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{%s/%s tx %d conn %d tag %q start %s (%g Wh) stop %s (%g Wh) %q updated %s}",
		s.Site, s.ChargePoint, s.TransactionID, s.Connector, s.IDTag, tm(s.Start), s.MeterStartWh,
		tm(s.Stop), s.MeterStopWh, s.StopReason, tm(s.Updated))
}

func fmtSessions(list []store.Session) string {
	var b strings.Builder
	for _, s := range list {
		b.WriteString("\n\t" + fmtSession(s))
	}
	return b.String()
}

// startOf is what StartTransaction tells about a session.
func startOf(site, cp string, tx int64, start time.Time, meter float64) store.Session {
	return store.Session{Site: site, ChargePoint: cp, Connector: 1, TransactionID: tx, IDTag: "04e1a2b3",
		Start: start, MeterStartWh: meter, Updated: start}
}

// stopOf is what StopTransaction tells about a session.
func stopOf(site, cp string, tx int64, stop time.Time, meter float64) store.Session {
	return store.Session{Site: site, ChargePoint: cp, TransactionID: tx, Stop: stop, MeterStopWh: meter,
		StopReason: "EVDisconnected", Updated: stop}
}

// both is a session with start and stop.
func both(site, cp string, tx int64, start, stop time.Time, meterStart, meterStop float64) store.Session {
	s := startOf(site, cp, tx, start, meterStart)
	s.Stop, s.MeterStopWh, s.StopReason, s.Updated = stop, meterStop, "EVDisconnected", stop
	return s
}

func (f *fixture) putSession(s store.Session) {
	f.t.Helper()
	if err := f.s.PutSession(f.ctx, s); err != nil {
		f.t.Fatalf("PutSession %s: %v", fmtSession(s), err)
	}
}

func (f *fixture) expectSession(want store.Session) {
	f.t.Helper()
	got, err := f.s.GetSession(f.ctx, want.Site, want.ChargePoint, want.TransactionID)
	if err != nil {
		f.t.Fatalf("GetSession %q/%q/%d: %v", want.Site, want.ChargePoint, want.TransactionID, err)
	}
	if !equalSession(got, want) {
		f.t.Errorf("GetSession %q/%q/%d:\n\tgot  %s\n\twant %s", want.Site, want.ChargePoint, want.TransactionID,
			fmtSession(got), fmtSession(want))
	}
}

func (f *fixture) expectSessions(fl store.SessionFilter, want ...store.Session) {
	f.t.Helper()
	got, err := f.s.ListSessions(f.ctx, fl)
	if err != nil {
		f.t.Fatalf("ListSessions %+v: %v", fl, err)
	}
	if !slices.EqualFunc(got, want, equalSession) {
		f.t.Errorf("ListSessions %+v:\ngot%s\nwant%s", fl, fmtSessions(got), fmtSessions(want))
	}
}

// expectFieldError checks that err names the field (as a *cim.FieldError).
func (f *fixture) expectFieldError(what string, err error, field string) {
	f.t.Helper()
	var fe *cim.FieldError
	switch {
	case err == nil:
		f.t.Errorf("%s: no error, want one naming field %q", what, field)
	case !errors.As(err, &fe):
		f.t.Errorf("%s: got error %v, want a *cim.FieldError naming field %q", what, err, field)
	case fe.Field != field:
		f.t.Errorf("%s: got error %v naming field %q, want field %q", what, err, fe.Field, field)
	}
}

func testSessionPutGet(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	s := startOf("bristol", "cp-1", 7, sessT0, 1234.5)
	f.putSession(s)
	f.expectSession(s)
	got, _ := f.s.GetSession(f.ctx, "bristol", "cp-1", 7)
	if !got.Running() || got.EnergyWh() != 0 {
		f.t.Errorf("running session: Running %v, EnergyWh %g; want true, 0", got.Running(), got.EnergyWh())
	}
	// Times in another zone and below the millisecond come back in UTC,
	// truncated to the millisecond.
	zone := time.FixedZone("UTC+2", 2*60*60)
	s2 := startOf("bristol", "cp-2", 8, sessT0.Add(999*time.Microsecond).In(zone), 0)
	f.putSession(s2)
	s2.Start, s2.Updated = sessT0, sessT0
	f.expectSession(s2)
}

func testSessionStop(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	start := startOf("bristol", "cp-1", 7, sessT0, 1000)
	f.putSession(start)
	f.putSession(stopOf("bristol", "cp-1", 7, at(90*time.Minute), 12500))
	want := both("bristol", "cp-1", 7, sessT0, at(90*time.Minute), 1000, 12500)
	f.expectSession(want)
	got, _ := f.s.GetSession(f.ctx, "bristol", "cp-1", 7)
	if got.Running() || got.EnergyWh() != 11500 {
		f.t.Errorf("stopped session: Running %v, EnergyWh %g; want false, 11500", got.Running(), got.EnergyWh())
	}
	// A stop carrying another tag (stopped by another card) keeps the
	// tag that started the session.
	stop := stopOf("bristol", "cp-1", 7, at(90*time.Minute), 12500)
	stop.IDTag = "OTHER"
	f.putSession(stop)
	f.expectSession(want)
}

func testSessionOutOfOrder(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	stop := stopOf("bristol", "cp-1", 7, at(time.Hour), 5000)
	stop.IDTag = "STOPPER"
	f.putSession(stop)
	f.expectSession(stop)
	got, _ := f.s.GetSession(f.ctx, "bristol", "cp-1", 7)
	if got.Running() || got.EnergyWh() != 0 {
		f.t.Errorf("session known only by its stop: Running %v, EnergyWh %g; want false, 0", got.Running(), got.EnergyWh())
	}
	// The late start fills the start fields, connector and tag, keeps the
	// stop fields and the later Updated.
	start := startOf("bristol", "cp-1", 7, sessT0, 1000)
	start.Connector = 2
	f.putSession(start)
	want := both("bristol", "cp-1", 7, sessT0, at(time.Hour), 1000, 5000)
	want.Connector = 2
	f.expectSession(want)
	// A start without tag or connector keeps the ones stored.
	start.Connector, start.IDTag = 0, ""
	f.putSession(start)
	f.expectSession(want)
}

func testSessionRepeat(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	s := both("bristol", "cp-1", 1, sessT0, at(time.Hour), 10, 20)
	start, stop := startOf("bristol", "cp-1", 1, sessT0, 10), stopOf("bristol", "cp-1", 1, at(time.Hour), 20)
	for range 2 { // a charger replaying its queue sends both again
		f.putSession(stop)
		f.putSession(start)
	}
	f.expectSession(s)
	// An older Updated does not move it back; a zero one means now.
	start.Updated = sessT0.Add(-time.Hour)
	f.putSession(start)
	f.expectSession(s)
	before := time.Now().Add(-time.Second)
	start.Updated = time.Time{}
	f.putSession(start)
	got, err := f.s.GetSession(f.ctx, "bristol", "cp-1", 1)
	if err != nil {
		f.t.Fatalf("GetSession: %v", err)
	}
	if got.Updated.Before(before) || got.Updated.Location() != time.UTC {
		f.t.Errorf("Updated after a put with zero Updated: got %s, want about now, in UTC", got.Updated)
	}
}

func testSessionNotFound(f *fixture) {
	_, err := f.s.GetSession(f.ctx, "bristol", "cp-1", 1)
	f.expectNotFound("GetSession in an empty store", err)
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.putSession(startOf("bristol", "cp-1", 1, sessT0, 0))
	for _, k := range []struct {
		site, cp string
		tx       int64
	}{{"bristol", "cp-1", 2}, {"bristol", "CP-1", 1}, {"athens", "cp-1", 1}, {"bristol", "cp-2", 1}} {
		_, err := f.s.GetSession(f.ctx, k.site, k.cp, k.tx)
		f.expectNotFound(fmt.Sprintf("GetSession %q/%q/%d", k.site, k.cp, k.tx), err)
	}
	f.expectSessions(store.SessionFilter{Site: "athens"})
	f.expectSessions(store.SessionFilter{Site: "nowhere"})
}

func testSessionMissingSite(f *fixture) {
	err := f.s.PutSession(f.ctx, startOf("nowhere", "cp-1", 1, sessT0, 0))
	f.expectNotFound("PutSession of a site that does not exist", err)
	_, err = f.s.GetSession(f.ctx, "nowhere", "cp-1", 1)
	f.expectNotFound("GetSession after a refused PutSession", err)
}

func testSessionInvalid(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	ok := both("bristol", "cp-1", 1, sessT0, at(time.Hour), 100, 200)
	cases := []struct {
		name  string
		field string
		edit  func(s *store.Session)
	}{
		{"empty site", "site", func(s *store.Session) { s.Site = "" }},
		{"empty charge point", "chargePoint", func(s *store.Session) { s.ChargePoint = "" }},
		{"control character in charge point", "chargePoint", func(s *store.Session) { s.ChargePoint = "cp\n1" }},
		{"charge point too long", "chargePoint", func(s *store.Session) { s.ChargePoint = strings.Repeat("c", 201) }},
		{"negative connector", "connector", func(s *store.Session) { s.Connector = -1 }},
		{"id tag of 21 characters", "idTag", func(s *store.Session) { s.IDTag = strings.Repeat("A", 21) }},
		{"neither start nor stop", "start", func(s *store.Session) {
			s.Start, s.Stop, s.MeterStartWh, s.MeterStopWh, s.StopReason = time.Time{}, time.Time{}, 0, 0, ""
		}},
		{"stop before start", "stop", func(s *store.Session) { s.Stop = s.Start.Add(-time.Millisecond) }},
		{"negative meter start", "meterStartWh", func(s *store.Session) { s.MeterStartWh = -1 }},
		{"NaN meter stop", "meterStopWh", func(s *store.Session) { s.MeterStopWh = math.NaN() }},
		{"infinite meter start", "meterStartWh", func(s *store.Session) { s.MeterStartWh = math.Inf(1) }},
		{"meter stop below meter start", "meterStopWh", func(s *store.Session) { s.MeterStopWh = 99 }},
		{"meter start without start", "meterStartWh", func(s *store.Session) { s.Start = time.Time{} }},
		{"meter stop without stop", "meterStopWh", func(s *store.Session) { s.Stop, s.StopReason = time.Time{}, "" }},
		{"stop reason without stop", "stopReason", func(s *store.Session) { s.Stop, s.MeterStopWh = time.Time{}, 0 }},
		{"start before 1970", "start", func(s *store.Session) { s.Start = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }},
	}
	for _, c := range cases {
		s := ok
		c.edit(&s)
		err := f.s.PutSession(f.ctx, s)
		f.expectFieldError("PutSession with "+c.name, err, c.field)
	}
	f.expectSessions(store.SessionFilter{Site: "bristol"})
	f.putSession(ok) // the base case is valid
	f.expectSession(ok)
}

func testSessionInconsistent(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	start := startOf("bristol", "cp-1", 1, sessT0, 1000)
	f.putSession(start)
	err := f.s.PutSession(f.ctx, stopOf("bristol", "cp-1", 1, at(-time.Second), 2000))
	f.expectFieldError("PutSession of a stop before the stored start", err, "stop")
	err = f.s.PutSession(f.ctx, stopOf("bristol", "cp-1", 1, at(time.Hour), 999))
	f.expectFieldError("PutSession of a meter stop below the stored meter start", err, "meterStopWh")
	f.expectSession(start)

	stop := stopOf("bristol", "cp-1", 2, sessT0, 500)
	f.putSession(stop)
	err = f.s.PutSession(f.ctx, startOf("bristol", "cp-1", 2, at(time.Second), 100))
	f.expectFieldError("PutSession of a start after the stored stop", err, "stop")
	err = f.s.PutSession(f.ctx, startOf("bristol", "cp-1", 2, at(-time.Hour), 501))
	f.expectFieldError("PutSession of a meter start above the stored meter stop", err, "meterStopWh")
	f.expectSession(stop)
}

func testSessionTxIDs(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	var want []store.Session
	for i, tx := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
		s := startOf("bristol", "cp-1", tx, at(time.Duration(i)*time.Minute), float64(i))
		f.putSession(s)
		want = append(want, s)
	}
	for _, s := range want {
		f.expectSession(s)
	}
	f.expectSessions(store.SessionFilter{Site: "bristol"}, want...)
}

func testSessionOrder(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	var want []store.Session
	// Same start: by charge point byte-wise, then transaction id.
	for _, cp := range orderedIDs {
		for _, tx := range []int64{3, -2, 1} {
			f.putSession(startOf("bristol", cp, tx, sessT0, 0))
		}
	}
	for _, cp := range sortedIDs {
		for _, tx := range []int64{-2, 1, 3} {
			want = append(want, startOf("bristol", cp, tx, sessT0, 0))
		}
	}
	// A session known only by its stop is placed at its stop.
	early := stopOf("bristol", "z", 1, at(-time.Minute), 10)
	late := stopOf("bristol", "a", 9, at(time.Minute), 10)
	mid := both("bristol", "m", 5, at(30*time.Second), at(2*time.Hour), 1, 2)
	f.putSession(late)
	f.putSession(mid)
	f.putSession(early)
	f.putSession(startOf("athens", "a", 1, at(-time.Hour), 0)) // another site
	want = append(append([]store.Session{early}, want...), mid, late)
	f.expectSessions(store.SessionFilter{Site: "bristol"}, want...)
}

func testSessionOverlap(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	h := time.Hour
	var (
		d  = both("bristol", "cp-2", 4, at(-h), at(-h/2), 0, 1) // [09:00, 09:30)
		a  = both("bristol", "cp-1", 1, at(0), at(h), 0, 1)     // [10:00, 11:00)
		c  = stopOf("bristol", "cp-1", 3, at(h/2), 5)           // instant 10:30
		e  = both("bristol", "cp-3", 5, at(h), at(h), 7, 7)     // instant 11:00
		b  = startOf("bristol", "cp-2", 2, at(2*h), 0)          // running from 12:00
		ot = startOf("athens", "cp-9", 1, at(-h), 0)            // another site
	)
	for _, s := range []store.Session{a, b, c, d, e, ot} {
		f.putSession(s)
	}
	fl := func(from, to time.Duration) store.SessionFilter {
		r := store.SessionFilter{Site: "bristol"}
		if from != math.MinInt64 {
			r.From = at(from)
		}
		if to != math.MaxInt64 {
			r.To = at(to)
		}
		return r
	}
	const none, inf = time.Duration(math.MinInt64), time.Duration(math.MaxInt64)
	f.expectSessions(fl(none, inf), d, a, c, e, b)
	f.expectSessions(fl(h/2, 2*h), a, c, e)
	f.expectSessions(fl(h, inf), e, b)
	f.expectSessions(fl(h+time.Millisecond, inf), b)
	f.expectSessions(fl(none, 0), d)
	f.expectSessions(fl(none, time.Millisecond), d, a)
	f.expectSessions(fl(3*h, 4*h), b)
	f.expectSessions(fl(-h/2, 0))
	f.expectSessions(fl(-h/2-time.Millisecond, -h/2), d)
	f.expectSessions(fl(h/2, h/2), a) // From == To: what runs at that instant
	cp1 := fl(none, inf)
	cp1.ChargePoint = "cp-1"
	f.expectSessions(cp1, a, c)
	cp1.From = at(h / 2)
	f.expectSessions(cp1, a, c)
	cp1.From = at(h/2 + time.Millisecond)
	f.expectSessions(cp1, a)
	f.expectSessions(store.SessionFilter{Site: "athens", ChargePoint: "cp-1"})
}

func testSessionLimit(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	var all []store.Session
	for i := range 7 {
		start := at(time.Duration(i/2) * time.Minute)
		s := both("bristol", fmt.Sprintf("cp-%d", i%3), int64(i), start, start.Add(30*time.Second), 0, 0)
		f.putSession(s)
		all = append(all, s)
	}
	slices.SortFunc(all, store.CompareSessions)
	f.expectSessions(store.SessionFilter{Site: "bristol"}, all...)
	f.expectSessions(store.SessionFilter{Site: "bristol", Limit: 3}, all[:3]...)
	f.expectSessions(store.SessionFilter{Site: "bristol", Limit: 7}, all...)
	f.expectSessions(store.SessionFilter{Site: "bristol", Limit: 100}, all...)
	f.expectSessions(store.SessionFilter{Site: "bristol", Limit: 1, From: at(time.Minute)}, all[2])
}

func testSessionListInvalid(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	_, err := f.s.ListSessions(f.ctx, store.SessionFilter{})
	f.expectFieldError("ListSessions without a site", err, "site")
	_, err = f.s.ListSessions(f.ctx, store.SessionFilter{Site: "bristol", Limit: -1})
	f.expectFieldError("ListSessions with a negative limit", err, "limit")
	_, err = f.s.ListSessions(f.ctx, store.SessionFilter{Site: "bristol", From: sessT0, To: at(-time.Millisecond)})
	f.expectFieldError("ListSessions with To before From", err, "to")
}

// testSessionConcurrent puts the start and the stop of each session from
// two goroutines at once, as two platform nodes may when a charger
// reconnects elsewhere: every session must keep both halves.
func testSessionConcurrent(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	const n = 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	put := func(s store.Session) {
		defer wg.Done()
		if err := f.s.PutSession(f.ctx, s); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("PutSession %s: %w", fmtSession(s), err))
			mu.Unlock()
		}
	}
	for i := range n {
		tx := int64(i)
		wg.Add(2)
		go put(startOf("bristol", "cp-1", tx, at(time.Duration(i)*time.Minute), float64(i)))
		go put(stopOf("bristol", "cp-1", tx, at(time.Duration(i)*time.Minute+time.Hour), float64(i)+100))
	}
	wg.Wait()
	for _, err := range errs {
		f.t.Error(err)
	}
	for i := range n {
		f.expectSession(both("bristol", "cp-1", int64(i), at(time.Duration(i)*time.Minute),
			at(time.Duration(i)*time.Minute+time.Hour), float64(i), float64(i)+100))
	}
}

func secret(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func (f *fixture) expectSecret(cp, site, asset string, hash [32]byte) {
	f.t.Helper()
	gotSite, gotAsset, gotHash, err := f.s.ChargePointSecret(f.ctx, cp)
	if err != nil {
		f.t.Fatalf("ChargePointSecret %q: %v", cp, err)
	}
	if gotSite != site || gotAsset != asset || gotHash != hash {
		f.t.Errorf("ChargePointSecret %q: got site %q asset %q hash %x, want site %q asset %q hash %x",
			cp, gotSite, gotAsset, gotHash, site, asset, hash)
	}
}

func (f *fixture) putSecret(site, cp, asset string, hash [32]byte) {
	f.t.Helper()
	if err := f.s.PutChargePointSecret(f.ctx, site, cp, asset, hash); err != nil {
		f.t.Fatalf("PutChargePointSecret %q/%q asset %q: %v", site, cp, asset, err)
	}
}

func testSecretPutGet(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	_, _, _, err := f.s.ChargePointSecret(f.ctx, "cp-1")
	f.expectNotFound("ChargePointSecret in an empty store", err)
	// Without an asset, the charge point's id is its asset.
	f.putSecret("bristol", "cp-1", "", secret("one"))
	f.expectSecret("cp-1", "bristol", "cp-1", secret("one"))
	// The same site may change the password.
	f.putSecret("bristol", "cp-1", "", secret("two"))
	f.expectSecret("cp-1", "bristol", "cp-1", secret("two"))
	_, _, _, err = f.s.ChargePointSecret(f.ctx, "CP-1")
	f.expectNotFound(`ChargePointSecret "CP-1" (ids are case-sensitive)`, err)
}

// testSecretAsset checks that a charge point's OCPP identity and its asset
// are separate: the asset is kept as given, a put replaces it, and two
// sites may file their chargers under the same asset id.
func testSecretAsset(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.putSecret("bristol", "ALF-2217345", "house-01/evse-01", secret("one"))
	f.expectSecret("ALF-2217345", "bristol", "house-01/evse-01", secret("one"))
	// Re-registering the id with another asset replaces it.
	f.putSecret("bristol", "ALF-2217345", "evse-02", secret("one"))
	f.expectSecret("ALF-2217345", "bristol", "evse-02", secret("one"))
	// And without one, the asset is the id again.
	f.putSecret("bristol", "ALF-2217345", "", secret("two"))
	f.expectSecret("ALF-2217345", "bristol", "ALF-2217345", secret("two"))
	// Asset ids are per site: both sites' chargers may be "evse-01".
	f.putSecret("bristol", "ALF-2217345", "evse-01", secret("one"))
	f.putSecret("athens", "STH-EVSE-01", "evse-01", secret("three"))
	f.expectSecret("ALF-2217345", "bristol", "evse-01", secret("one"))
	f.expectSecret("STH-EVSE-01", "athens", "evse-01", secret("three"))
	// One site may file two chargers under one asset (a charger replaced
	// and its successor registered before the old one is deleted).
	f.putSecret("athens", "STH-EVSE-01b", "evse-01", secret("four"))
	f.expectSecret("STH-EVSE-01b", "athens", "evse-01", secret("four"))
	f.expectSecret("STH-EVSE-01", "athens", "evse-01", secret("three"))
}

func testSecretConflict(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.putSecret("bristol", "cp-1", "evse-01", secret("one"))
	err := f.s.PutChargePointSecret(f.ctx, "athens", "cp-1", "evse-09", secret("mine"))
	if !errors.Is(err, store.ErrConflict) {
		f.t.Errorf("PutChargePointSecret of an id another site holds: got %v, want an error matching store.ErrConflict", err)
	}
	f.expectSecret("cp-1", "bristol", "evse-01", secret("one"))
	f.putSecret("athens", "cp-2", "", secret("mine"))
	f.expectSecret("cp-2", "athens", "cp-2", secret("mine"))
}

func testSecretDelete(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.putSecret("bristol", "cp-1", "evse-01", secret("one"))
	err := f.s.DeleteChargePointSecret(f.ctx, "athens", "cp-1")
	f.expectNotFound("DeleteChargePointSecret by a site that does not hold the id", err)
	f.expectSecret("cp-1", "bristol", "evse-01", secret("one"))
	if err := f.s.DeleteChargePointSecret(f.ctx, "bristol", "cp-1"); err != nil {
		f.t.Fatalf("DeleteChargePointSecret: %v", err)
	}
	_, _, _, err = f.s.ChargePointSecret(f.ctx, "cp-1")
	f.expectNotFound("ChargePointSecret after deleting it", err)
	err = f.s.DeleteChargePointSecret(f.ctx, "bristol", "cp-1")
	f.expectNotFound("DeleteChargePointSecret twice", err)
	// Once released, the id may move to another site, with its own asset.
	f.putSecret("athens", "cp-1", "", secret("new"))
	f.expectSecret("cp-1", "athens", "cp-1", secret("new"))
}

func testSecretMissingSite(f *fixture) {
	err := f.s.PutChargePointSecret(f.ctx, "nowhere", "cp-1", "evse-01", secret("one"))
	f.expectNotFound("PutChargePointSecret of a site that does not exist", err)
	_, _, _, err = f.s.ChargePointSecret(f.ctx, "cp-1")
	f.expectNotFound("ChargePointSecret after a refused put", err)
}

func testSecretInvalid(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	for _, cp := range []string{"", " cp", "cp\x00", "a\xffb", strings.Repeat("x", 201)} {
		err := f.s.PutChargePointSecret(f.ctx, "bristol", cp, "evse-01", secret("one"))
		f.expectFieldError(fmt.Sprintf("PutChargePointSecret %q", cp), err, "chargePoint")
	}
	f.putSecret("bristol", "cp-1", "evse-01", secret("one"))
	for _, asset := range []string{" evse", "evse\x00", "a\xffb", strings.Repeat("x", 201)} {
		err := f.s.PutChargePointSecret(f.ctx, "bristol", "cp-1", asset, secret("two"))
		f.expectFieldError(fmt.Sprintf("PutChargePointSecret asset %q", asset), err, "asset")
	}
	// A refused put changes nothing.
	f.expectSecret("cp-1", "bristol", "evse-01", secret("one"))
}

func (f *fixture) putTag(site, tag string, expires time.Time) {
	f.t.Helper()
	if err := f.s.PutIDTag(f.ctx, site, tag, expires); err != nil {
		f.t.Fatalf("PutIDTag %q/%q: %v", site, tag, err)
	}
}

func (f *fixture) expectTag(site, tag string, found bool, expires time.Time) {
	f.t.Helper()
	gotExp, gotFound, err := f.s.IDTag(f.ctx, site, tag)
	if err != nil {
		f.t.Fatalf("IDTag %q/%q: %v", site, tag, err)
	}
	if gotFound != found || !gotExp.Equal(expires) || !gotExp.IsZero() && gotExp.Location() != time.UTC {
		f.t.Errorf("IDTag %q/%q: got found %v expires %s, want found %v expires %s (UTC)", site, tag, gotFound, gotExp, found, expires)
	}
}

func (f *fixture) expectTags(site string, want ...store.IDTagEntry) {
	f.t.Helper()
	got, err := f.s.ListIDTags(f.ctx, site)
	if err != nil {
		f.t.Fatalf("ListIDTags %q: %v", site, err)
	}
	eq := func(a, b store.IDTagEntry) bool {
		return a.Tag == b.Tag && a.Expires.Equal(b.Expires) && (a.Expires.IsZero() || a.Expires.Location() == time.UTC)
	}
	if !slices.EqualFunc(got, want, eq) {
		f.t.Errorf("ListIDTags %q: got %v, want %v", site, got, want)
	}
}

func testTagPutGet(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.expectTag("bristol", "04A2B3C4", false, time.Time{})
	f.putTag("bristol", "04A2B3C4", time.Time{})
	f.expectTag("bristol", "04A2B3C4", true, time.Time{})
	zone := time.FixedZone("UTC+2", 2*60*60)
	f.putTag("bristol", "EXPIRING", sessT0.Add(500*time.Microsecond).In(zone))
	f.expectTag("bristol", "EXPIRING", true, sessT0)
	// An expired tag is still found: the caller judges expiry.
	f.putTag("bristol", "OLD", time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	f.expectTag("bristol", "OLD", true, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	// Replacing changes the expiry.
	f.putTag("bristol", "EXPIRING", time.Time{})
	f.expectTag("bristol", "EXPIRING", true, time.Time{})
	f.expectTag("nowhere", "04A2B3C4", false, time.Time{})
}

func testTagCase(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putTag("bristol", "ab12cd", sessT0)
	for _, tag := range []string{"ab12cd", "AB12CD", "Ab12cD"} {
		f.expectTag("bristol", tag, true, sessT0)
	}
	f.expectTag("bristol", "ab12ce", false, time.Time{})
	// Another spelling replaces the entry rather than adding one.
	f.putTag("bristol", "AB12CD", at(time.Hour))
	f.expectTags("bristol", store.IDTagEntry{Tag: "AB12CD", Expires: at(time.Hour)})
	if err := f.s.DeleteIDTag(f.ctx, "bristol", "aB12Cd"); err != nil {
		f.t.Fatalf("DeleteIDTag in another case: %v", err)
	}
	f.expectTags("bristol")
}

func testTagList(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.expectTags("bristol")
	for i, tag := range []string{"b", "A", "_x", "a1", "Z", "~"} {
		f.putTag("bristol", tag, at(time.Duration(i)*time.Hour))
	}
	f.putTag("athens", "ONLY-ATHENS", time.Time{})
	// Ordered by the upper-case form, byte-wise: "A" "A1" "B" "Z" "_X" "~".
	f.expectTags("bristol",
		store.IDTagEntry{Tag: "A", Expires: at(time.Hour)},
		store.IDTagEntry{Tag: "a1", Expires: at(3 * time.Hour)},
		store.IDTagEntry{Tag: "b", Expires: at(0)},
		store.IDTagEntry{Tag: "Z", Expires: at(4 * time.Hour)},
		store.IDTagEntry{Tag: "_x", Expires: at(2 * time.Hour)},
		store.IDTagEntry{Tag: "~", Expires: at(5 * time.Hour)},
	)
	f.expectTags("athens", store.IDTagEntry{Tag: "ONLY-ATHENS"})
	f.expectTag("athens", "A", false, time.Time{})
	f.expectTags("nowhere")
}

func testTagDelete(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.putTag("bristol", "T1", time.Time{})
	f.putTag("athens", "T1", time.Time{})
	err := f.s.DeleteIDTag(f.ctx, "bristol", "T2")
	f.expectNotFound("DeleteIDTag of an unknown tag", err)
	if err := f.s.DeleteIDTag(f.ctx, "bristol", "T1"); err != nil {
		f.t.Fatalf("DeleteIDTag: %v", err)
	}
	f.expectTag("bristol", "T1", false, time.Time{})
	f.expectTag("athens", "T1", true, time.Time{})
	err = f.s.DeleteIDTag(f.ctx, "bristol", "T1")
	f.expectNotFound("DeleteIDTag twice", err)
}

func testTagMissingSite(f *fixture) {
	err := f.s.PutIDTag(f.ctx, "nowhere", "T1", time.Time{})
	f.expectNotFound("PutIDTag of a site that does not exist", err)
	f.expectTags("nowhere")
}

func testTagInvalid(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	max := strings.Repeat("A", store.MaxIDTagLen)
	f.putTag("bristol", max, time.Time{})
	f.expectTag("bristol", strings.ToLower(max), true, time.Time{})
	for _, tag := range []string{"", max + "B", "ä", " T1", "T1 ", "T\t1"} {
		err := f.s.PutIDTag(f.ctx, "bristol", tag, time.Time{})
		f.expectFieldError(fmt.Sprintf("PutIDTag %q", tag), err, "idTag")
		_, _, err = f.s.IDTag(f.ctx, "bristol", tag)
		f.expectFieldError(fmt.Sprintf("IDTag %q", tag), err, "idTag")
		err = f.s.DeleteIDTag(f.ctx, "bristol", tag)
		f.expectFieldError(fmt.Sprintf("DeleteIDTag %q", tag), err, "idTag")
	}
	err := f.s.PutIDTag(f.ctx, "bristol", "T1", time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC))
	f.expectFieldError("PutIDTag expiring before 1970", err, "expires")
	f.expectTags("bristol", store.IDTagEntry{Tag: max})
}

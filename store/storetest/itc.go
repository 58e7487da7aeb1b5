package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/store"
)

// RunITC runs the conformance suite of store.ITCRuns. open must return a
// fresh, empty store each time; the suite closes it (when it has a
// Close() error method) as the subtest ends. Subtests run in parallel.
//
// Where the contract leaves room, the suite reads it as follows:
//   - Start times come back at millisecond precision, in UTC.
//   - A body comes back byte for byte from GetITCRun, a summary from
//     ListITCRuns; nil and empty are alike. A listing carries no body
//     (ITCRunInfo has no field for one) and returns each run's summary as
//     put, never the body in its place.
//   - An id that CheckITCRunID refuses is refused by PutITCRun and not
//     found by GetITCRun (ErrNotFound, never another error).
//   - A canceled context makes every method fail.
func RunITC(t *testing.T, open func(t *testing.T) store.ITCRuns) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.ITCRuns)
	}{
		{"Empty", testITCEmpty},
		{"PutGet", testITCPutGet},
		{"Replace", testITCReplace},
		{"ListOrder", testITCListOrder},
		{"BadID", testITCBadID},
		{"LargeBody", testITCLargeBody},
		{"Concurrent", testITCConcurrent},
		{"Canceled", testITCCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			if c, ok := s.(io.Closer); ok {
				t.Cleanup(func() {
					if err := c.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
			}
			tc.fn(t, s)
		})
	}
}

// itcT0 is a run's start in whole milliseconds, in another zone than UTC
// so that a driver must convert it.
var itcT0 = time.UnixMilli(1_714_564_800_123).In(time.FixedZone("CEST", 2*3600))

func itcBody(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"platform":"http://p","results":[]}`, id)
}

// itcSummary differs from itcBody(id), so that a driver listing bodies
// in place of summaries fails.
func itcSummary(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"cases":0}`, id)
}

func testITCEmpty(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	runs, err := s.ListITCRuns(ctx, 10)
	if err != nil || len(runs) != 0 {
		t.Errorf("ListITCRuns of an empty store: %d runs, %v; want none, nil", len(runs), err)
	}
	if _, err := s.GetITCRun(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetITCRun of an unknown id: %v, want ErrNotFound", err)
	}
}

func testITCPutGet(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	ids := []string{"run-1", "2024-05-01T12:00:00Z", "ünï/cøde run #3"}
	for _, id := range ids {
		if err := s.PutITCRun(ctx, id, itcT0, itcSummary(id), itcBody(id)); err != nil {
			t.Fatalf("PutITCRun(%q): %v", id, err)
		}
	}
	for _, id := range ids {
		got, err := s.GetITCRun(ctx, id)
		if err != nil || !bytes.Equal(got, itcBody(id)) {
			t.Errorf("GetITCRun(%q) = %q, %v; want %q", id, got, err, itcBody(id))
		}
	}
	runs, err := s.ListITCRuns(ctx, 0)
	if err != nil || len(runs) != len(ids) {
		t.Fatalf("ListITCRuns = %d runs, %v; want %d", len(runs), err, len(ids))
	}
	for _, r := range runs {
		if !bytes.Equal(r.Summary, itcSummary(r.ID)) {
			t.Errorf("ListITCRuns: run %q summary %q, want %q", r.ID, r.Summary, itcSummary(r.ID))
		}
	}
	if _, err := s.GetITCRun(ctx, "run-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetITCRun of an unknown id: %v, want ErrNotFound", err)
	}
	// A body or summary handed back must not alias the store's copy.
	got, _ := s.GetITCRun(ctx, "run-1")
	if len(got) > 0 {
		got[0] = 'X'
	}
	if again, _ := s.GetITCRun(ctx, "run-1"); !bytes.Equal(again, itcBody("run-1")) {
		t.Errorf("changing a returned body changed the stored run: %q", again)
	}
	for _, r := range runs {
		if len(r.Summary) > 0 {
			r.Summary[0] = 'X'
		}
	}
	again, _ := s.ListITCRuns(ctx, 0)
	for _, r := range again {
		if !bytes.Equal(r.Summary, itcSummary(r.ID)) {
			t.Errorf("changing a returned summary changed the stored run %q: %q", r.ID, r.Summary)
		}
	}
	// A summary and a body may each be nil: a caller that has no summary
	// (the platform summarises such a run itself).
	if err := s.PutITCRun(ctx, "empty", itcT0, nil, nil); err != nil {
		t.Fatalf("PutITCRun with a nil summary and body: %v", err)
	}
	if got, err := s.GetITCRun(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("GetITCRun of a nil body = %q, %v; want empty", got, err)
	}
	if err := s.PutITCRun(ctx, "no-summary", itcT0, nil, itcBody("no-summary")); err != nil {
		t.Fatalf("PutITCRun with a nil summary: %v", err)
	}
	runs, err = s.ListITCRuns(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if (r.ID == "empty" || r.ID == "no-summary") && len(r.Summary) != 0 {
			t.Errorf("ListITCRuns: run %q put with a nil summary lists %q, want empty", r.ID, r.Summary)
		}
	}
	if got, err := s.GetITCRun(ctx, "no-summary"); err != nil || !bytes.Equal(got, itcBody("no-summary")) {
		t.Errorf("GetITCRun of a run without summary = %q, %v; want its body", got, err)
	}
}

func testITCReplace(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	if err := s.PutITCRun(ctx, "r", itcT0, []byte(`{"cases":1}`), []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	later := itcT0.Add(time.Hour)
	if err := s.PutITCRun(ctx, "r", later, []byte(`{"cases":2}`), []byte(`{"v":2}`)); err != nil {
		t.Fatalf("PutITCRun of the same id again: %v", err)
	}
	got, err := s.GetITCRun(ctx, "r")
	if err != nil || string(got) != `{"v":2}` {
		t.Errorf("GetITCRun after replacing = %q, %v; want the second body", got, err)
	}
	runs, err := s.ListITCRuns(ctx, 0)
	if err != nil || len(runs) != 1 || !runs[0].Start.Equal(later) || string(runs[0].Summary) != `{"cases":2}` {
		t.Errorf("ListITCRuns after replacing = %+v, %v; want one run starting %s with the second summary", runs, err, later)
	}
	// Replacing with no summary leaves none, not the old one: the old
	// summary would describe another body.
	if err := s.PutITCRun(ctx, "r", later, nil, []byte(`{"v":3}`)); err != nil {
		t.Fatal(err)
	}
	runs, err = s.ListITCRuns(ctx, 0)
	if err != nil || len(runs) != 1 || len(runs[0].Summary) != 0 {
		t.Errorf("ListITCRuns after replacing with no summary = %+v, %v; want an empty summary", runs, err)
	}
}

func testITCListOrder(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	// Put in a scrambled order, two runs sharing a start.
	starts := map[string]time.Duration{"a": 0, "b": 3 * time.Second, "c": time.Second, "d": 3 * time.Second, "e": -time.Hour}
	for _, id := range []string{"c", "a", "e", "d", "b"} {
		if err := s.PutITCRun(ctx, id, itcT0.Add(starts[id]), itcSummary(id), itcBody(id)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"d", "b", "c", "a", "e"} // newest first; equal starts: greater id first
	for _, limit := range []int{0, -1, 1, 3, 5, 9} {
		runs, err := s.ListITCRuns(ctx, limit)
		if err != nil {
			t.Fatalf("ListITCRuns(%d): %v", limit, err)
		}
		w := want
		if limit > 0 && limit < len(w) {
			w = w[:limit]
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
		}
		if strings.Join(ids, ",") != strings.Join(w, ",") {
			t.Errorf("ListITCRuns(%d) ids = %v, want %v", limit, ids, w)
			continue
		}
		for _, r := range runs {
			wantStart := itcT0.Add(starts[r.ID])
			if !r.Start.Equal(wantStart) || r.Start.Location() != time.UTC {
				t.Errorf("ListITCRuns(%d): run %s starts %s (%s), want %s in UTC", limit, r.ID, r.Start, r.Start.Location(), wantStart)
			}
			if !bytes.Equal(r.Summary, itcSummary(r.ID)) {
				t.Errorf("ListITCRuns(%d): run %s summary %q, want %q", limit, r.ID, r.Summary, itcSummary(r.ID))
			}
		}
	}
}

func testITCBadID(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	for _, id := range []string{"", strings.Repeat("x", store.MaxITCRunID+1), "a\x00b", "line\nbreak", "bad\xffutf8"} {
		if err := s.PutITCRun(ctx, id, itcT0, itcSummary("x"), itcBody("x")); err == nil {
			t.Errorf("PutITCRun(%q): no error", id)
		}
		if _, err := s.GetITCRun(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetITCRun(%q): %v, want ErrNotFound", id, err)
		}
	}
	long := strings.Repeat("é", store.MaxITCRunID/2) // exactly the limit in bytes
	if err := s.PutITCRun(ctx, long, itcT0, itcSummary("x"), itcBody("x")); err != nil {
		t.Errorf("PutITCRun of an id of %d bytes: %v", len(long), err)
	}
	if runs, err := s.ListITCRuns(ctx, 0); err != nil || len(runs) != 1 {
		t.Errorf("ListITCRuns after refused puts: %d runs, %v; want 1", len(runs), err)
	}
}

func testITCLargeBody(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	body := bytes.Repeat([]byte(`{"t":1714564800123,"v":-12.5},`), 4<<20/30) // 4 MiB
	if err := s.PutITCRun(ctx, "big", itcT0, itcSummary("big"), body); err != nil {
		t.Fatalf("PutITCRun of %d bytes: %v", len(body), err)
	}
	got, err := s.GetITCRun(ctx, "big")
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("GetITCRun of %d bytes: %d bytes back, %v", len(body), len(got), err)
	}
	// The listing carries the small summary, not the body.
	runs, err := s.ListITCRuns(ctx, 1)
	if err != nil || len(runs) != 1 || !bytes.Equal(runs[0].Summary, itcSummary("big")) {
		t.Errorf("ListITCRuns of a run of %d bytes = %d runs, %v; want its summary %q", len(body), len(runs), err, itcSummary("big"))
	}
}

func testITCConcurrent(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%02d", w, i)
				if err := s.PutITCRun(ctx, id, itcT0.Add(time.Duration(i)*time.Second), itcSummary(id), itcBody(id)); err != nil {
					errs <- fmt.Errorf("PutITCRun(%s): %w", id, err)
				}
				if _, err := s.ListITCRuns(ctx, 5); err != nil {
					errs <- fmt.Errorf("ListITCRuns: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	runs, err := s.ListITCRuns(ctx, 0)
	if err != nil || len(runs) != writers*each {
		t.Errorf("ListITCRuns after concurrent puts: %d runs, %v; want %d", len(runs), err, writers*each)
	}
}

func testITCCanceled(t *testing.T, s store.ITCRuns) {
	if err := s.PutITCRun(t.Context(), "r", itcT0, itcSummary("r"), itcBody("r")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.PutITCRun(ctx, "r2", itcT0, itcSummary("r2"), itcBody("r2")); err == nil {
		t.Error("PutITCRun with a canceled context: no error")
	}
	if _, err := s.ListITCRuns(ctx, 0); err == nil {
		t.Error("ListITCRuns with a canceled context: no error")
	}
	if _, err := s.GetITCRun(ctx, "r"); err == nil {
		t.Error("GetITCRun with a canceled context: no error")
	}
}

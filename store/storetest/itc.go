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
//   - A body comes back byte for byte; nil and empty are alike.
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
	for _, id := range []string{"run-1", "2024-05-01T12:00:00Z", "ünï/cøde run #3"} {
		if err := s.PutITCRun(ctx, id, itcT0, itcBody(id)); err != nil {
			t.Fatalf("PutITCRun(%q): %v", id, err)
		}
	}
	for _, id := range []string{"run-1", "2024-05-01T12:00:00Z", "ünï/cøde run #3"} {
		got, err := s.GetITCRun(ctx, id)
		if err != nil || !bytes.Equal(got, itcBody(id)) {
			t.Errorf("GetITCRun(%q) = %q, %v; want %q", id, got, err, itcBody(id))
		}
	}
	if _, err := s.GetITCRun(ctx, "run-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetITCRun of an unknown id: %v, want ErrNotFound", err)
	}
	// A body handed back must not alias the store's copy.
	got, _ := s.GetITCRun(ctx, "run-1")
	if len(got) > 0 {
		got[0] = 'X'
	}
	if again, _ := s.GetITCRun(ctx, "run-1"); !bytes.Equal(again, itcBody("run-1")) {
		t.Errorf("changing a returned body changed the stored run: %q", again)
	}
	if err := s.PutITCRun(ctx, "empty", itcT0, nil); err != nil {
		t.Fatalf("PutITCRun with a nil body: %v", err)
	}
	if got, err := s.GetITCRun(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("GetITCRun of a nil body = %q, %v; want empty", got, err)
	}
}

func testITCReplace(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	if err := s.PutITCRun(ctx, "r", itcT0, []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	later := itcT0.Add(time.Hour)
	if err := s.PutITCRun(ctx, "r", later, []byte(`{"v":2}`)); err != nil {
		t.Fatalf("PutITCRun of the same id again: %v", err)
	}
	got, err := s.GetITCRun(ctx, "r")
	if err != nil || string(got) != `{"v":2}` {
		t.Errorf("GetITCRun after replacing = %q, %v; want the second body", got, err)
	}
	runs, err := s.ListITCRuns(ctx, 0)
	if err != nil || len(runs) != 1 || !runs[0].Start.Equal(later) {
		t.Errorf("ListITCRuns after replacing = %+v, %v; want one run starting %s", runs, err, later)
	}
}

func testITCListOrder(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	// Put in a scrambled order, two runs sharing a start.
	starts := map[string]time.Duration{"a": 0, "b": 3 * time.Second, "c": time.Second, "d": 3 * time.Second, "e": -time.Hour}
	for _, id := range []string{"c", "a", "e", "d", "b"} {
		if err := s.PutITCRun(ctx, id, itcT0.Add(starts[id]), itcBody(id)); err != nil {
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
			if !bytes.Equal(r.Body, itcBody(r.ID)) {
				t.Errorf("ListITCRuns(%d): run %s body %q, want %q", limit, r.ID, r.Body, itcBody(r.ID))
			}
		}
	}
}

func testITCBadID(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	for _, id := range []string{"", strings.Repeat("x", store.MaxITCRunID+1), "a\x00b", "line\nbreak", "bad\xffutf8"} {
		if err := s.PutITCRun(ctx, id, itcT0, itcBody("x")); err == nil {
			t.Errorf("PutITCRun(%q): no error", id)
		}
		if _, err := s.GetITCRun(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetITCRun(%q): %v, want ErrNotFound", id, err)
		}
	}
	long := strings.Repeat("é", store.MaxITCRunID/2) // exactly the limit in bytes
	if err := s.PutITCRun(ctx, long, itcT0, itcBody("x")); err != nil {
		t.Errorf("PutITCRun of an id of %d bytes: %v", len(long), err)
	}
	if runs, err := s.ListITCRuns(ctx, 0); err != nil || len(runs) != 1 {
		t.Errorf("ListITCRuns after refused puts: %d runs, %v; want 1", len(runs), err)
	}
}

func testITCLargeBody(t *testing.T, s store.ITCRuns) {
	ctx := t.Context()
	body := bytes.Repeat([]byte(`{"t":1714564800123,"v":-12.5},`), 4<<20/30) // 4 MiB
	if err := s.PutITCRun(ctx, "big", itcT0, body); err != nil {
		t.Fatalf("PutITCRun of %d bytes: %v", len(body), err)
	}
	got, err := s.GetITCRun(ctx, "big")
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("GetITCRun of %d bytes: %d bytes back, %v", len(body), len(got), err)
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
				if err := s.PutITCRun(ctx, id, itcT0.Add(time.Duration(i)*time.Second), itcBody(id)); err != nil {
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
	if err := s.PutITCRun(t.Context(), "r", itcT0, itcBody("r")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.PutITCRun(ctx, "r2", itcT0, itcBody("r2")); err == nil {
		t.Error("PutITCRun with a canceled context: no error")
	}
	if _, err := s.ListITCRuns(ctx, 0); err == nil {
		t.Error("ListITCRuns with a canceled context: no error")
	}
	if _, err := s.GetITCRun(ctx, "r"); err == nil {
		t.Error("GetITCRun with a canceled context: no error")
	}
}

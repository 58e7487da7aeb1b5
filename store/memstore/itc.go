package memstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/store"
)

// itcRuns keeps the integration test runs under a lock of their own. The
// zero value is empty and ready.
type itcRuns struct {
	mu   sync.RWMutex
	runs map[string]itcRun
}

// itcRun is one stored run: what a listing returns, and the body apart.
type itcRun struct {
	info store.ITCRunInfo
	body []byte
}

var _ store.ITCRuns = (*Store)(nil)

// PutITCRun implements store.ITCRuns.
func (s *Store) PutITCRun(ctx context.Context, id string, start time.Time, summary, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.CheckITCRunID(id); err != nil {
		return fmt.Errorf("put itc run: %w", err)
	}
	s.itc.mu.Lock()
	defer s.itc.mu.Unlock()
	if s.itc.runs == nil {
		s.itc.runs = make(map[string]itcRun)
	}
	// Kept at millisecond precision in UTC, as the durable drivers keep it.
	s.itc.runs[id] = itcRun{
		info: store.ITCRunInfo{ID: id, Start: time.UnixMilli(start.UnixMilli()).UTC(), Summary: bytes.Clone(summary)},
		body: bytes.Clone(body),
	}
	return nil
}

// ListITCRuns implements store.ITCRuns.
func (s *Store) ListITCRuns(ctx context.Context, limit int) ([]store.ITCRunInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.itc.mu.RLock()
	out := make([]store.ITCRunInfo, 0, len(s.itc.runs))
	for _, r := range s.itc.runs {
		info := r.info
		info.Summary = bytes.Clone(info.Summary)
		out = append(out, info)
	}
	s.itc.mu.RUnlock()
	slices.SortFunc(out, func(a, b store.ITCRunInfo) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// GetITCRun implements store.ITCRuns.
func (s *Store) GetITCRun(ctx context.Context, id string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.itc.mu.RLock()
	defer s.itc.mu.RUnlock()
	r, ok := s.itc.runs[id]
	if !ok {
		return nil, fmt.Errorf("itc run %q: %w", strings.ToValidUTF8(id, "?"), store.ErrNotFound)
	}
	return bytes.Clone(r.body), nil
}

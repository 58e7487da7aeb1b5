package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gridlink/gridlink/store"
)

// sessionKey identifies a session.
type sessionKey struct {
	site, chargePoint string
	tx                int64
}

// chargePointSecret is the stored credential of a charge point and the
// asset its readings are filed under.
type chargePointSecret struct {
	site, asset string
	hash        [32]byte
}

// PutSession implements store.Sessions.
func (s *Store) PutSession(ctx context.Context, sess store.Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	put, err := store.PrepareSession(sess, time.Now())
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[put.Site]; !ok {
		return fmt.Errorf("put session %d of charge point %q: site %q: %w", put.TransactionID, put.ChargePoint, put.Site, store.ErrNotFound)
	}
	k := sessionKey{put.Site, put.ChargePoint, put.TransactionID}
	stored, ok := s.sessions[k]
	if !ok {
		s.sessions[k] = put
		return nil
	}
	merged, err := store.MergeSession(stored, put)
	if err != nil {
		return fmt.Errorf("put session: %w", err)
	}
	s.sessions[k] = merged
	return nil
}

// GetSession implements store.Sessions.
func (s *Store) GetSession(ctx context.Context, site, chargePoint string, tx int64) (store.Session, error) {
	if err := ctx.Err(); err != nil {
		return store.Session{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	sess, ok := s.sessions[sessionKey{site, chargePoint, tx}]
	if !ok {
		return store.Session{}, fmt.Errorf("session %d of charge point %q of site %q: %w", tx, chargePoint, site, store.ErrNotFound)
	}
	return sess, nil
}

// ListSessions implements store.Sessions.
func (s *Store) ListSessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := f.Prepare()
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	s.mu.RLock()
	var out []store.Session
	for _, sess := range s.sessions {
		if f.Match(sess) {
			out = append(out, sess)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, store.CompareSessions)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// PutChargePointSecret implements store.ChargePoints.
func (s *Store) PutChargePointSecret(ctx context.Context, site, chargePoint, asset string, hash [32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	asset, err := store.PrepareChargePoint(chargePoint, asset)
	if err != nil {
		return fmt.Errorf("put charge point secret: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[site]; !ok {
		return fmt.Errorf("put secret of charge point %q: site %q: %w", chargePoint, site, store.ErrNotFound)
	}
	if o, ok := s.secrets[chargePoint]; ok && o.site != site {
		return fmt.Errorf("put secret of charge point %q of site %q: the id belongs to another site: %w", chargePoint, site, store.ErrConflict)
	}
	s.secrets[chargePoint] = chargePointSecret{site: site, asset: asset, hash: hash}
	return nil
}

// ChargePointSecret implements store.ChargePoints.
func (s *Store) ChargePointSecret(ctx context.Context, chargePoint string) (string, string, [32]byte, error) {
	if err := ctx.Err(); err != nil {
		return "", "", [32]byte{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.secrets[chargePoint]
	if !ok {
		return "", "", [32]byte{}, fmt.Errorf("charge point %q: %w", chargePoint, store.ErrNotFound)
	}
	return c.site, c.asset, c.hash, nil
}

// DeleteChargePointSecret implements store.ChargePoints.
func (s *Store) DeleteChargePointSecret(ctx context.Context, site, chargePoint string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.secrets[chargePoint]; !ok || c.site != site {
		return fmt.Errorf("delete secret of charge point %q of site %q: %w", chargePoint, site, store.ErrNotFound)
	}
	delete(s.secrets, chargePoint)
	return nil
}

// PutIDTag implements store.IDTags.
func (s *Store) PutIDTag(ctx context.Context, site, tag string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := store.IDTagKey(tag)
	if err != nil {
		return fmt.Errorf("put id tag: %w", err)
	}
	if expires, err = store.CheckTime("expires", expires); err != nil {
		return fmt.Errorf("put id tag %q: %w", tag, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sites[site]; !ok {
		return fmt.Errorf("put id tag %q: site %q: %w", tag, site, store.ErrNotFound)
	}
	if s.tags[site] == nil {
		s.tags[site] = make(map[string]store.IDTagEntry)
	}
	s.tags[site][key] = store.IDTagEntry{Tag: tag, Expires: expires}
	return nil
}

// DeleteIDTag implements store.IDTags.
func (s *Store) DeleteIDTag(ctx context.Context, site, tag string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := store.IDTagKey(tag)
	if err != nil {
		return fmt.Errorf("delete id tag: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tags[site][key]; !ok {
		return fmt.Errorf("id tag %q of site %q: %w", tag, site, store.ErrNotFound)
	}
	delete(s.tags[site], key)
	return nil
}

// IDTag implements store.IDTags.
func (s *Store) IDTag(ctx context.Context, site, tag string) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	key, err := store.IDTagKey(tag)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("look up id tag: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.tags[site][key]
	return e.Expires, ok, nil
}

// ListIDTags implements store.IDTags.
func (s *Store) ListIDTags(ctx context.Context, site string) ([]store.IDTagEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	keys := make([]string, 0, len(s.tags[site]))
	for k := range s.tags[site] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]store.IDTagEntry, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.tags[site][k])
	}
	s.mu.RUnlock()
	return out, nil
}

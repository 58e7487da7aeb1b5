package postgres

import "context"

// EraseSubjectInChunks is EraseSubject with chunks of a given size, for
// tests.
func (s *Store) EraseSubjectInChunks(ctx context.Context, site, asset string, chunk int64) (int64, error) {
	return s.eraseSubject(ctx, site, asset, chunk)
}

//go:build !edge

package main

import (
	"testing"

	"github.com/gridlink/gridlink/internal/pgtest"
)

// testPostgresDB creates a fresh database on the server named by
// GRIDLINK_TEST_POSTGRES and returns its URL. Without that variable the
// test is skipped, except in CI, where it fails.
func testPostgresDB(t *testing.T) string {
	t.Helper()
	return pgtest.Database(t)
}

// Package pgtest is test support for PostgreSQL-backed tests: it finds the
// test server and gives each test a database of its own.
//
// The server is named by the environment variable GRIDLINK_TEST_POSTGRES, a
// PostgreSQL URL such as
// postgres://user:pass@127.0.0.1:5432/gridlink_test?sslmode=disable. When it
// is unset, tests that need the server are skipped, except in CI (the
// variable CI is non-empty), where they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that names the test server.
const EnvURL = "GRIDLINK_TEST_POSTGRES"

// URL returns the test server's URL from GRIDLINK_TEST_POSTGRES. It skips
// the test when the variable is unset, except in CI, where it fails.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal(EnvURL + " must be set in CI")
		}
		tb.Skip(EnvURL + " is not set")
	}
	return u
}

// Database creates a fresh database on the test server (see URL), drops it
// when the test ends, and returns its URL.
func Database(tb testing.TB) string {
	tb.Helper()
	base := URL(tb)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse %s: %v", EnvURL, err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", base, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	name := "gridlink_test_" + hex.EncodeToString(b)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	DropAtCleanup(tb, base, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	u.Path = "/" + name
	return u.String()
}

// DropAtCleanup runs stmt, a statement that drops what a test created, on
// the server at URL server when the test ends. A failure is reported as a test
// error.
func DropAtCleanup(tb testing.TB, server, stmt string) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			tb.Errorf("%s: %v", stmt, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			tb.Errorf("%s: %v", stmt, err)
		}
	})
}

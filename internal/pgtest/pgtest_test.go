package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/internal/pgtest"
)

// TestDatabase checks that Database gives a database of its own that
// exists during the test and is gone after it.
func TestDatabase(t *testing.T) {
	base := pgtest.URL(t)
	var name string
	t.Run("use", func(t *testing.T) {
		u := pgtest.Database(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect to the new database: %v", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name == "" {
			t.Fatal("current_database() is empty")
		}
		if other := pgtest.Database(t); other == u {
			t.Errorf("Database returned %s twice", u)
		}
	})
	if name == "" {
		return
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after the test", name)
	}
}

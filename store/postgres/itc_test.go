package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/pgtest"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/storetest"
)

func TestITCConformance(t *testing.T) {
	url := pgtest.URL(t)
	storetest.RunITC(t, func(t *testing.T) store.ITCRuns { return open(t, url, newSchema(t, url)) })
}

// TestMigrateITC turns a schema back into what migrations 0001 to 0003
// made and checks that Open applies 0004, keeping the sites.
func TestMigrateITC(t *testing.T) {
	url := pgtest.URL(t)
	schema := newSchema(t, url)
	ctx := t.Context()
	s := open(t, url, schema)
	if err := s.PutSite(ctx, cim.Site{ID: "s", Name: "S"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range undoITC(schema) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s = open(t, url, schema)
	defer s.Close()
	if _, err := s.Site(ctx, "s"); err != nil {
		t.Errorf("site after migrating: %v", err)
	}
	if err := s.PutITCRun(ctx, "r1", time.UnixMilli(1000), []byte(`{}`)); err != nil {
		t.Errorf("PutITCRun after migrating: %v", err)
	}
}

// undoITC takes a schema back to before migration 0004.
func undoITC(schema string) []string {
	return append(append(undoRollupInc(schema), undoChargePointAsset(schema)...),
		"DROP TABLE "+pgx.Identifier{schema, "itc_runs"}.Sanitize(),
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 4",
	)
}

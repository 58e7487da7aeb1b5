package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/store/storetest"
)

// undoRollupInc takes a schema back to before migration 0006 (and 0007).
func undoRollupInc(schema string) []string {
	return append(undoITCSummary(schema),
		"ALTER TABLE "+pgx.Identifier{schema, "rollups_15m"}.Sanitize()+" DROP COLUMN inc",
		"DELETE FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 6",
	)
}

// TestMigrateRollupInc turns a schema back into what it was before the
// rollups kept the counter's increase, and checks that Open computes it
// for the stored rollups: the delta over counter resets, answered from the
// rollups, is the reset-aware one.
func TestMigrateRollupInc(t *testing.T) {
	url, schema, s := openWithSite(t)
	storetest.WriteCounterResets(t, s)
	s.Close()
	rewind(t, url, undoRollupInc(schema))
	s = open(t, url, schema)
	defer s.Close()
	storetest.CheckCounterResets(t, s)
}

// BenchmarkAggregateDay is storetest.BenchAggregateDay on PostgreSQL.
func BenchmarkAggregateDay(b *testing.B) {
	s, _, _ := benchStore(b)
	storetest.BenchAggregateDay(b, s, nil)
}

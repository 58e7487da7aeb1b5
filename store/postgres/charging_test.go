package postgres_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/jackc/pgx/v5"
)

// undoChargePointAsset takes a schema back to before migration 0005.
func undoChargePointAsset(schema string) []string {
	return []string{
		"ALTER TABLE " + pgx.Identifier{schema, "charge_point_secrets"}.Sanitize() + " DROP COLUMN asset",
		"DELETE FROM " + pgx.Identifier{schema, "schema_version"}.Sanitize() + " WHERE version = 5",
	}
}

// TestMigrateChargePointAsset turns a schema back into what migrations 0001
// to 0004 made, whose charge points have no asset of their own, and checks
// that Open applies 0005: each charge point gets its id as its asset (what
// the central system used until then), keeping its site and password.
func TestMigrateChargePointAsset(t *testing.T) {
	ctx := t.Context()
	url, schema, s := openWithSite(t)
	hash := sha256.Sum256([]byte("0123456789abcdef"))
	if err := s.PutChargePointSecret(ctx, "s", "evse-01", "house-01/evse", hash); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Later migrations go too: Open applies those above the highest
	// version recorded.
	rewind(t, url, append(undoChargePointAsset(schema), undoRollupInc(schema)...))
	s = open(t, url, schema)
	defer s.Close()
	site, asset, got, err := s.ChargePointSecret(ctx, "evse-01")
	if err != nil || site != "s" || asset != "evse-01" || got != hash {
		t.Errorf("charge point after migrating: site %q asset %q hash match %v, %v; want s, evse-01, true", site, asset, got == hash, err)
	}
	if err := s.PutChargePointSecret(ctx, "s", "evse-01", "house-01/evse", hash); err != nil {
		t.Fatalf("PutChargePointSecret after migrating: %v", err)
	}
	if _, asset, _, err := s.ChargePointSecret(ctx, "evse-01"); err != nil || asset != "house-01/evse" {
		t.Errorf("asset after re-registering: %q, %v", asset, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" WHERE version = 5").Scan(&n); err != nil || n != 1 {
		t.Errorf("schema_version rows of 0005: %d, %v; want 1", n, err)
	}
}

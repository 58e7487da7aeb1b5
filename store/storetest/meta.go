package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

var siteTests = []test{
	{"PutGet", testSitePutGet},
	{"NotFound", testSiteNotFound},
	{"ReplaceAttributes", testSiteReplace},
	{"ListOrdered", testSiteList},
}

var assetTests = []test{
	{"PutGet", testAssetPutGet},
	{"MissingSite", testAssetMissingSite},
	{"NotFound", testAssetNotFound},
	{"ReplaceAttributes", testAssetReplace},
	{"ListOrderedPerSite", testAssetList},
	{"LocationRoundTrip", testAssetLocation},
}

var keyTests = []test{
	{"CreateFind", testKeyCreateFind},
	{"NotFound", testKeyNotFound},
	{"ListOrderedByCreation", testKeyList},
	{"RevokeTwiceKeepsFirst", testKeyRevoke},
	{"RevokedFoundByHash", testKeyRevokedFound},
	{"DuplicateRejected", testKeyDuplicate},
	{"TimesUTC", testKeyUTC},
}

// orderedIDs are ids whose byte-wise order differs from case-insensitive
// and locale collations; sortedIDs is their byte-wise order.
var (
	orderedIDs = []string{"ab", "a-b", "Zeta", "aB", "ä", "a/b", "a", "b", "B1", "a b"}
	sortedIDs  = []string{"B1", "Zeta", "a", "a b", "a-b", "a/b", "aB", "ab", "b", "ä"}
)

func (f *fixture) putSite(s cim.Site) {
	f.t.Helper()
	if err := f.s.PutSite(f.ctx, s); err != nil {
		f.t.Fatalf("PutSite %+v: %v", s, err)
	}
}

func (f *fixture) putAsset(a cim.Asset) {
	f.t.Helper()
	if err := f.s.PutAsset(f.ctx, a); err != nil {
		f.t.Fatalf("PutAsset %s: %v", fmtAsset(a), err)
	}
}

func (f *fixture) expectSite(id string, want cim.Site) {
	f.t.Helper()
	got, err := f.s.Site(f.ctx, id)
	if err != nil {
		f.t.Fatalf("Site %q: %v", id, err)
	}
	if got != want {
		f.t.Errorf("Site %q: got %+v, want %+v", id, got, want)
	}
}

func (f *fixture) expectAsset(want cim.Asset) {
	f.t.Helper()
	got, err := f.s.Asset(f.ctx, want.Site, want.ID)
	if err != nil {
		f.t.Fatalf("Asset %q/%q: %v", want.Site, want.ID, err)
	}
	if !equalAsset(got, want) {
		f.t.Errorf("Asset %q/%q: got %s, want %s", want.Site, want.ID, fmtAsset(got), fmtAsset(want))
	}
}

func (f *fixture) expectNotFound(what string, err error) {
	f.t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("%s: got error %v, want one that matches store.ErrNotFound", what, err)
	}
}

func testSitePutGet(f *fixture) {
	s := cim.Site{ID: "bristol", Name: "Bristol", Country: "GB", Timezone: "Europe/London"}
	f.putSite(s)
	f.expectSite("bristol", s)
}

func testSiteNotFound(f *fixture) {
	_, err := f.s.Site(f.ctx, "nowhere")
	f.expectNotFound(`Site "nowhere" in an empty store`, err)
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	_, err = f.s.Site(f.ctx, "Athens")
	f.expectNotFound(`Site "Athens" (ids are case-sensitive)`, err)
}

func testSiteReplace(f *fixture) {
	f.putSite(cim.Site{ID: "pilot", Name: "Old", Country: "GR", Timezone: "Europe/Athens"})
	s := cim.Site{ID: "pilot", Name: "New"}
	f.putSite(s)
	f.expectSite("pilot", s)
	list, err := f.s.ListSites(f.ctx)
	if err != nil {
		f.t.Fatalf("ListSites: %v", err)
	}
	if len(list) != 1 || list[0] != s {
		f.t.Errorf("ListSites after replacing: got %+v, want [%+v]", list, s)
	}
}

func testSiteList(f *fixture) {
	list, err := f.s.ListSites(f.ctx)
	if err != nil {
		f.t.Fatalf("ListSites on an empty store: %v", err)
	}
	if len(list) != 0 {
		f.t.Errorf("ListSites on an empty store: got %+v, want none", list)
	}
	for _, id := range orderedIDs {
		f.putSite(cim.Site{ID: id, Name: "Site " + id, Country: "DE"})
	}
	list, err = f.s.ListSites(f.ctx)
	if err != nil {
		f.t.Fatalf("ListSites: %v", err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
		if want := (cim.Site{ID: s.ID, Name: "Site " + s.ID, Country: "DE"}); s != want {
			f.t.Errorf("ListSites: got %+v, want %+v", s, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(sortedIDs) {
		f.t.Errorf("ListSites: got ids %q, want %q (byte-wise order)", got, sortedIDs)
	}
}

func fullAsset(site, id string) cim.Asset {
	return cim.Asset{
		Site: site, ID: id, Type: cim.SmartMeter, Name: "Meter of house 1",
		Make: "Landis+Gyr", Model: "E450", Household: "hh-01",
		Location: &cim.Location{Latitude: 51.454513, Longitude: -2.587910, Address: "1 Harbour Rd, Bristol"},
	}
}

func testAssetPutGet(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	a := fullAsset("bristol", "house-01/meter")
	f.putAsset(a)
	f.expectAsset(a)
	b := cim.Asset{Site: "bristol", ID: "house-01/pv", Type: cim.Inverter}
	f.putAsset(b)
	f.expectAsset(b)
	// The ledger mark round-trips, and replacing the asset clears it.
	c := fullAsset("bristol", "house-02/meter")
	c.Ledger = true
	f.putAsset(c)
	f.expectAsset(c)
	list, err := f.s.ListAssets(f.ctx, "bristol")
	if err != nil {
		f.t.Fatalf("ListAssets: %v", err)
	}
	for _, got := range list {
		if got.Ledger != (got.ID == c.ID) {
			f.t.Errorf("ListAssets: asset %q has Ledger %v", got.ID, got.Ledger)
		}
	}
	c.Ledger = false
	f.putAsset(c)
	f.expectAsset(c)
}

func testAssetMissingSite(f *fixture) {
	err := f.s.PutAsset(f.ctx, fullAsset("nowhere", "m1"))
	f.expectNotFound(`PutAsset for site "nowhere" that does not exist`, err)
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	if _, err := f.s.Asset(f.ctx, "nowhere", "m1"); err == nil {
		f.t.Errorf(`Asset "nowhere"/"m1": stored although PutAsset failed`)
	}
	list, err := f.s.ListAssets(f.ctx, "bristol")
	if err != nil {
		f.t.Fatalf("ListAssets: %v", err)
	}
	if len(list) != 0 {
		f.t.Errorf("ListAssets %q: got %d assets, want none", "bristol", len(list))
	}
}

func testAssetNotFound(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putSite(cim.Site{ID: "athens", Name: "Athens"})
	f.putAsset(fullAsset("bristol", "m1"))
	_, err := f.s.Asset(f.ctx, "bristol", "m2")
	f.expectNotFound(`Asset "bristol"/"m2"`, err)
	_, err = f.s.Asset(f.ctx, "athens", "m1")
	f.expectNotFound(`Asset "athens"/"m1" (the asset is in another site)`, err)
	_, err = f.s.Asset(f.ctx, "nowhere", "m1")
	f.expectNotFound(`Asset "nowhere"/"m1" (no such site)`, err)
}

func testAssetReplace(f *fixture) {
	f.putSite(cim.Site{ID: "bristol", Name: "Bristol"})
	f.putAsset(fullAsset("bristol", "m1"))
	a := cim.Asset{Site: "bristol", ID: "m1", Type: cim.HomeBattery, Name: "Battery"}
	f.putAsset(a) // no location: the old one must go
	f.expectAsset(a)
	b := a
	b.Location = &cim.Location{Latitude: -33.5, Longitude: 151.25}
	f.putAsset(b)
	f.expectAsset(b)
	list, err := f.s.ListAssets(f.ctx, "bristol")
	if err != nil {
		f.t.Fatalf("ListAssets: %v", err)
	}
	if len(list) != 1 || !equalAsset(list[0], b) {
		f.t.Errorf("ListAssets after replacing: got %d assets %v, want [%s]", len(list), list, fmtAsset(b))
	}
}

func testAssetList(f *fixture) {
	f.putSite(cim.Site{ID: "s1", Name: "One"})
	f.putSite(cim.Site{ID: "s2", Name: "Two"})
	f.putSite(cim.Site{ID: "s3", Name: "Three"})
	for i, id := range orderedIDs {
		a := cim.Asset{Site: "s1", ID: id, Type: cim.AssetTypes()[i%len(cim.AssetTypes())], Name: "a " + id}
		f.putAsset(a)
	}
	other := cim.Asset{Site: "s2", ID: "ab", Type: cim.Gateway, Name: "same id, other site"}
	f.putAsset(other)

	list, err := f.s.ListAssets(f.ctx, "s1")
	if err != nil {
		f.t.Fatalf("ListAssets s1: %v", err)
	}
	var got []string
	for i, a := range list {
		got = append(got, a.ID)
		want := cim.Asset{Site: "s1", ID: a.ID, Name: "a " + a.ID}
		for j, id := range orderedIDs {
			if id == a.ID {
				want.Type = cim.AssetTypes()[j%len(cim.AssetTypes())]
			}
		}
		if !equalAsset(a, want) {
			f.t.Errorf("ListAssets s1 [%d]: got %s, want %s", i, fmtAsset(a), fmtAsset(want))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(sortedIDs) {
		f.t.Errorf("ListAssets s1: got ids %q, want %q (byte-wise order)", got, sortedIDs)
	}

	list, err = f.s.ListAssets(f.ctx, "s2")
	if err != nil {
		f.t.Fatalf("ListAssets s2: %v", err)
	}
	if len(list) != 1 || !equalAsset(list[0], other) {
		f.t.Errorf("ListAssets s2: got %v, want only %s", list, fmtAsset(other))
	}
	f.expectAsset(other)

	list, err = f.s.ListAssets(f.ctx, "s3")
	if err != nil {
		f.t.Fatalf("ListAssets s3: %v", err)
	}
	if len(list) != 0 {
		f.t.Errorf("ListAssets of a site without assets: got %v, want none", list)
	}
}

func testAssetLocation(f *fixture) {
	f.putSite(cim.Site{ID: "s", Name: "S"})
	locs := []*cim.Location{
		nil,
		{Latitude: 37.983810, Longitude: 23.727539, Address: "Πλατεία Συντάγματος, Αθήνα"},
		{Latitude: -89.999999999, Longitude: -179.123456789012},
		{Latitude: 0.1, Longitude: 0.2, Address: "floats that are not exact in binary"},
		{Address: "only an address, 'quoted' \"twice\""},
	}
	for i, l := range locs {
		a := cim.Asset{Site: "s", ID: fmt.Sprintf("a%d", i), Type: cim.EnvironmentalSensor, Location: l}
		f.putAsset(a)
	}
	for i, l := range locs {
		f.expectAsset(cim.Asset{Site: "s", ID: fmt.Sprintf("a%d", i), Type: cim.EnvironmentalSensor, Location: l})
	}
}

func equalAsset(a, b cim.Asset) bool {
	la, lb := a.Location, b.Location
	a.Location, b.Location = nil, nil
	if a != b || (la == nil) != (lb == nil) {
		return false
	}
	return la == nil || *la == *lb
}

func fmtAsset(a cim.Asset) string {
	loc := "<nil>"
	if a.Location != nil {
		loc = fmt.Sprintf("%+v", *a.Location)
	}
	a.Location = nil
	return fmt.Sprintf("%+v location %s", a, loc)
}

// keyT0 is a creation time in whole milliseconds.
var keyT0 = time.Date(2024, 3, 1, 9, 30, 15, 123e6, time.UTC)

func newKey(id, secret, site, scope string, created time.Time) store.Key {
	h := sha256.Sum256([]byte(secret))
	return store.Key{ID: id, Hash: h[:], Site: site, Scope: scope, Name: "label of " + id, CreatedAt: created}
}

func (f *fixture) createKey(k store.Key) {
	f.t.Helper()
	if err := f.s.CreateKey(f.ctx, k); err != nil {
		f.t.Fatalf("CreateKey %q: %v", k.ID, err)
	}
}

func (f *fixture) expectKey(want store.Key) {
	f.t.Helper()
	got, err := f.s.KeyByHash(f.ctx, want.Hash)
	if err != nil {
		f.t.Fatalf("KeyByHash of key %q: %v", want.ID, err)
	}
	if !equalKey(got, want) {
		f.t.Errorf("KeyByHash of key %q: got %s, want %s", want.ID, fmtKey(got), fmtKey(want))
	}
}

func equalKey(a, b store.Key) bool {
	return a.ID == b.ID && bytes.Equal(a.Hash, b.Hash) && a.Site == b.Site && a.Scope == b.Scope &&
		a.Name == b.Name && a.CreatedAt.Equal(b.CreatedAt) && a.RevokedAt.Equal(b.RevokedAt) &&
		a.CreatedAt.Location() == time.UTC && (a.RevokedAt.IsZero() || a.RevokedAt.Location() == time.UTC)
}

func fmtKey(k store.Key) string {
	rev := "never"
	if !k.RevokedAt.IsZero() {
		rev = k.RevokedAt.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{ID:%q Hash:%x Site:%q Scope:%q Name:%q CreatedAt:%s RevokedAt:%s}",
		k.ID, k.Hash, k.Site, k.Scope, k.Name, k.CreatedAt.Format(time.RFC3339Nano), rev)
}

func testKeyCreateFind(f *fixture) {
	k := newKey("k1", "secret-1", "bristol", "ingest", keyT0)
	f.createKey(k)
	f.expectKey(k)
	admin := newKey("admin", "secret-admin", "", "admin", keyT0.Add(time.Second))
	f.createKey(admin)
	f.expectKey(admin)
	if k.Revoked() || admin.Revoked() {
		f.t.Errorf("new keys revoked")
	}
}

func testKeyNotFound(f *fixture) {
	h := sha256.Sum256([]byte("unknown"))
	_, err := f.s.KeyByHash(f.ctx, h[:])
	f.expectNotFound("KeyByHash in an empty store", err)
	f.createKey(newKey("k1", "secret-1", "bristol", "read", keyT0))
	_, err = f.s.KeyByHash(f.ctx, h[:])
	f.expectNotFound("KeyByHash of an unknown secret", err)
	err = f.s.RevokeKey(f.ctx, "k2", keyT0)
	f.expectNotFound(`RevokeKey "k2"`, err)
}

func testKeyList(f *fixture) {
	list, err := f.s.ListKeys(f.ctx)
	if err != nil {
		f.t.Fatalf("ListKeys on an empty store: %v", err)
	}
	if len(list) != 0 {
		f.t.Errorf("ListKeys on an empty store: got %d keys, want none", len(list))
	}
	keys := []store.Key{
		newKey("c", "s-c", "bristol", "read", keyT0.Add(2*time.Hour)),
		newKey("a", "s-a", "bristol", "ingest", keyT0.Add(3*time.Hour)),
		newKey("b", "s-b", "", "admin", keyT0),
		newKey("d", "s-d", "athens", "read:restricted", keyT0.Add(time.Millisecond)),
	}
	for _, k := range keys {
		f.createKey(k)
	}
	want := []store.Key{keys[2], keys[3], keys[0], keys[1]}
	list, err = f.s.ListKeys(f.ctx)
	if err != nil {
		f.t.Fatalf("ListKeys: %v", err)
	}
	if len(list) != len(want) {
		f.t.Fatalf("ListKeys: got %d keys, want %d", len(list), len(want))
	}
	for i := range want {
		if !equalKey(list[i], want[i]) {
			f.t.Errorf("ListKeys [%d]: got %s, want %s (ordered by creation time)", i, fmtKey(list[i]), fmtKey(want[i]))
		}
	}
}

func testKeyRevoke(f *fixture) {
	k := newKey("k1", "secret-1", "bristol", "ingest", keyT0)
	other := newKey("k2", "secret-2", "bristol", "ingest", keyT0.Add(time.Minute))
	f.createKey(k)
	f.createKey(other)
	first := keyT0.Add(5 * time.Minute)
	if err := f.s.RevokeKey(f.ctx, "k1", first); err != nil {
		f.t.Fatalf("RevokeKey: %v", err)
	}
	if err := f.s.RevokeKey(f.ctx, "k1", first.Add(time.Hour)); err != nil {
		f.t.Fatalf("RevokeKey of a revoked key: %v", err)
	}
	k.RevokedAt = first
	f.expectKey(k)
	f.expectKey(other)
	list, err := f.s.ListKeys(f.ctx)
	if err != nil {
		f.t.Fatalf("ListKeys: %v", err)
	}
	if len(list) != 2 || !equalKey(list[0], k) || !equalKey(list[1], other) {
		f.t.Errorf("ListKeys after revoking: got %d keys, want %s and %s", len(list), fmtKey(k), fmtKey(other))
		for _, l := range list {
			f.t.Logf("got %s", fmtKey(l))
		}
	}
}

func testKeyRevokedFound(f *fixture) {
	k := newKey("k1", "secret-1", "", "admin", keyT0)
	f.createKey(k)
	at := keyT0.Add(24 * time.Hour)
	if err := f.s.RevokeKey(f.ctx, "k1", at); err != nil {
		f.t.Fatalf("RevokeKey: %v", err)
	}
	got, err := f.s.KeyByHash(f.ctx, k.Hash)
	if err != nil {
		f.t.Fatalf("KeyByHash of a revoked key: %v", err)
	}
	if !got.Revoked() || !got.RevokedAt.Equal(at) {
		f.t.Errorf("KeyByHash of a revoked key: got %s, want revoked at %s", fmtKey(got), at.Format(time.RFC3339Nano))
	}
}

func testKeyDuplicate(f *fixture) {
	k := newKey("k1", "secret-1", "bristol", "ingest", keyT0)
	f.createKey(k)
	sameID := newKey("k1", "secret-other", "athens", "admin", keyT0.Add(time.Hour))
	if err := f.s.CreateKey(f.ctx, sameID); err == nil {
		f.t.Errorf("CreateKey with an ID already stored: no error")
	}
	sameHash := newKey("k9", "secret-1", "athens", "admin", keyT0.Add(time.Hour))
	if err := f.s.CreateKey(f.ctx, sameHash); err == nil {
		f.t.Errorf("CreateKey with a Hash already stored: no error")
	}
	f.expectKey(k)
	list, err := f.s.ListKeys(f.ctx)
	if err != nil {
		f.t.Fatalf("ListKeys: %v", err)
	}
	if len(list) != 1 {
		f.t.Errorf("ListKeys after refused duplicates: got %d keys, want 1", len(list))
	}
}

func testKeyUTC(f *fixture) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	k := newKey("k1", "secret-1", "athens", "read", keyT0.In(zone))
	f.createKey(k)
	if err := f.s.RevokeKey(f.ctx, "k1", keyT0.Add(time.Hour).In(zone)); err != nil {
		f.t.Fatalf("RevokeKey: %v", err)
	}
	k.CreatedAt = keyT0
	k.RevokedAt = keyT0.Add(time.Hour)
	f.expectKey(k) // equalKey also wants the times in UTC
}

// Package store is the storage contract of the platform: sites, assets, API
// keys, readings, and for charging points their sessions, credentials and
// RFID tags. Two drivers implement it, store/sqlite (the embedded
// default) and store/postgres (for scale); store/storetest is the one
// conformance suite both must pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// ErrNotFound is returned (possibly wrapped) when a site, asset, key,
// session, charge point or RFID tag does not exist.
var ErrNotFound = errors.New("not found")

// Store is the storage contract. Every method is safe for concurrent use.
type Store interface {
	Sites
	Assets
	Keys
	Readings
	Sessions
	ChargePoints
	IDTags
	// Close flushes what is buffered and releases the store. Readings that
	// Write had acknowledged are durable whether or not Close is called.
	// Calling Close again does nothing.
	Close() error
}

// Sites holds the tenants.
type Sites interface {
	// PutSite creates the site or replaces its attributes.
	PutSite(ctx context.Context, s cim.Site) error
	// Site returns one site or ErrNotFound.
	Site(ctx context.Context, id string) (cim.Site, error)
	// ListSites returns every site ordered by id.
	ListSites(ctx context.Context) ([]cim.Site, error)
}

// Assets holds each site's assets.
type Assets interface {
	// PutAsset creates the asset or replaces its attributes. The site must
	// exist (else ErrNotFound).
	PutAsset(ctx context.Context, a cim.Asset) error
	// Asset returns one asset or ErrNotFound.
	Asset(ctx context.Context, site, id string) (cim.Asset, error)
	// ListAssets returns the site's assets ordered by id.
	ListAssets(ctx context.Context, site string) ([]cim.Asset, error)
}

// Key is an API key as stored: only the SHA-256 of the secret is kept.
type Key struct {
	ID        string    // public identifier, shown in listings
	Hash      []byte    // SHA-256 of the secret
	Site      string    // empty for admin keys that span every site
	Scope     string    // ingest, read, read:restricted, admin
	Name      string    // a label chosen by the operator, e.g. "gw-1"
	CreatedAt time.Time // UTC
	RevokedAt time.Time // zero while the key is valid
}

// Revoked reports whether the key was revoked.
func (k Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Keys holds API keys.
type Keys interface {
	// CreateKey stores a new key; its ID and Hash must be unique.
	CreateKey(ctx context.Context, k Key) error
	// KeyByHash finds a key, revoked or not, by the hash of its secret, or
	// returns ErrNotFound.
	KeyByHash(ctx context.Context, hash []byte) (Key, error)
	// ListKeys returns every key ordered by creation time.
	ListKeys(ctx context.Context) ([]Key, error)
	// RevokeKey marks a key revoked at the given time; ErrNotFound if there is
	// no such key. Revoking twice keeps the first time.
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// WriteResult counts what a Write did with its readings.
type WriteResult struct {
	Accepted  int // new (series, time) pairs stored
	Duplicate int // same (series, time) and same value as already stored: nothing changed
	Corrected int // same (series, time) with another value: the new value replaced the old
}

// Add sums two results.
func (r WriteResult) Add(o WriteResult) WriteResult {
	return WriteResult{r.Accepted + o.Accepted, r.Duplicate + o.Duplicate, r.Corrected + o.Corrected}
}

// Series names one stored series.
type Series struct {
	Site string
	cim.SeriesKey
}

// Selector picks series and a time range. Empty strings match everything.
type Selector struct {
	Site     string     // required
	Asset    string     // "" = every asset
	Quantity string     // "" = every quantity
	Phase    *cim.Phase // nil = every phase
	From, To int64      // [From, To) in UTC Unix milliseconds; To == 0 means no upper bound
}

// Match reports whether the selector picks the series (ignoring time).
func (s Selector) Match(se Series) bool {
	return se.Site == s.Site &&
		(s.Asset == "" || s.Asset == se.Asset) &&
		(s.Quantity == "" || s.Quantity == se.Quantity) &&
		(s.Phase == nil || *s.Phase == se.Phase)
}

// Agg is an aggregation function over the points of an interval.
type Agg string

// The aggregations. Delta is the increase of a cumulative counter over the
// interval, counted from the last value before the interval starts (or from
// the first value in the interval when the series has no earlier point) to
// the last value in it. A drop is a counter reset: the counter restarted
// from zero and grew by the value after the drop, so delta is never
// negative for a counter that is never negative. Without a reset it is the
// last value minus the one before the interval.
const (
	AggAvg   Agg = "avg"
	AggMin   Agg = "min"
	AggMax   Agg = "max"
	AggSum   Agg = "sum"
	AggFirst Agg = "first"
	AggLast  Agg = "last"
	AggCount Agg = "count"
	AggDelta Agg = "delta"
)

// ParseAgg checks an aggregation name.
func ParseAgg(s string) (Agg, error) {
	switch a := Agg(s); a {
	case AggAvg, AggMin, AggMax, AggSum, AggFirst, AggLast, AggCount, AggDelta:
		return a, nil
	}
	return "", fmt.Errorf("unknown aggregation %q (want avg, min, max, sum, first, last, count or delta)", s)
}

// RollupStep is the period of the stored rollups: the European imbalance
// settlement period. Aggregates whose step is a multiple of it are answered
// from rollups.
const RollupStep = 15 * time.Minute

// SeriesFunc receives a block of points of one series in ascending time
// order. It may be called several times for one series, with consecutive
// blocks; series come one after another, never interleaved. The points slice
// is only valid during the call.
type SeriesFunc func(s Series, points []cim.Point) error

// Readings holds the time series.
type Readings interface {
	// Write stores readings of one site. When it returns nil every reading
	// is durable (it survives a crash of the process, and with fsync on a
	// power cut). Readings must already be valid and in canonical units.
	// Within one call and across calls, the last value written for a
	// (series, time) wins, and each reading is counted against what is
	// stored at that moment: [t=1, t=1'] into an empty series is one
	// accepted and one corrected. Concurrent calls may share one commit.
	// Write does not check that the site or assets exist. When ctx ends
	// while the write waits, Write returns its error, yet the readings may
	// still be committed: writes are idempotent, so a retry is safe.
	Write(ctx context.Context, site string, readings []cim.Reading) (WriteResult, error)

	// Read streams the raw points of every selected series, ordered by
	// series (asset, quantity, phase, compared byte-wise) and then by time.
	// Series without points in range are left out. A cancelled context
	// ends the stream with an error wrapping context.Canceled.
	Read(ctx context.Context, sel Selector, fn SeriesFunc) error

	// Aggregate streams one point per non-empty interval of length step,
	// with intervals aligned to the Unix epoch (UTC), the point's time being
	// the interval's start. Only points inside [From, To) count, so the
	// first and last intervals may be partial. For AggDelta the value before
	// an interval is the series' last point before the interval's first
	// counted instant (max(interval start, From)), looked up before From
	// when needed. Series are ordered as in Read.
	Aggregate(ctx context.Context, sel Selector, step time.Duration, agg Agg, fn SeriesFunc) error

	// Latest returns the newest point of every series of the site, ordered
	// as in Read.
	Latest(ctx context.Context, site string) ([]LatestPoint, error)
}

// LatestPoint is the newest point of one series.
type LatestPoint struct {
	Series
	cim.Point
}

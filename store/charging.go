package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gridlink/gridlink/cim"
)

// ErrConflict is returned (possibly wrapped) when a write contradicts what
// another tenant stored: a charge point id that another site already uses.
var ErrConflict = errors.New("conflict")

// Session is one charging transaction of a charge point, as the OCPP
// StartTransaction and StopTransaction messages describe it. Either may
// arrive first (a charger replays its queue after being offline), so either
// half may be missing: Start is zero until the start is known, Stop is zero
// while the session runs.
//
// Stores keep times at millisecond precision and return them in UTC.
type Session struct {
	Site          string
	ChargePoint   string // the OCPP charge point id, unique across sites
	Connector     int    // 1, 2, ...; 0 while unknown (StopTransaction does not carry it)
	TransactionID int64
	IDTag         string    // the RFID tag that started the session; "" while unknown
	Start         time.Time // zero until the start is known
	Stop          time.Time // zero while running
	MeterStartWh  float64   // energy import register at Start; valid when Start is set
	MeterStopWh   float64   // energy import register at Stop; valid when Stop is set
	StopReason    string    // the OCPP Reason, e.g. "Local", "EVDisconnected"; "" when not given
	Updated       time.Time // when the session last changed; PutSession keeps the latest
}

// EnergyWh is the energy delivered: the meter register at Stop minus the one
// at Start, or 0 while either is unknown.
func (s Session) EnergyWh() float64 {
	if s.Start.IsZero() || s.Stop.IsZero() {
		return 0
	}
	return s.MeterStopWh - s.MeterStartWh
}

// Running reports whether the session has started and not stopped.
func (s Session) Running() bool { return !s.Start.IsZero() && s.Stop.IsZero() }

// OrderTime is the time a session is listed and filtered by: its Start, or
// its Stop while the start is not known.
func (s Session) OrderTime() time.Time {
	if s.Start.IsZero() {
		return s.Stop
	}
	return s.Start
}

// SessionFilter picks sessions for ListSessions.
type SessionFilter struct {
	Site        string // required
	ChargePoint string // "" = every charge point of the site
	// From and To pick the sessions that overlap [From, To); a zero time is
	// no bound. A session spans [Start, Stop), a running one everything from
	// its Start on; one whose start is unknown is the instant of its Stop,
	// as is one that stopped when it started. From == To picks what runs at
	// that instant. Both are taken at millisecond precision.
	From, To time.Time
	Limit    int // the most sessions returned; 0 = no limit
}

// Prepare checks the filter and returns it as stores apply it: From and To
// in UTC at millisecond precision, as stored times are.
func (f SessionFilter) Prepare() (SessionFilter, error) {
	if f.Site == "" {
		return f, &cim.FieldError{Field: "site", Value: f.Site, Reason: "required"}
	}
	if f.Limit < 0 {
		return f, &cim.FieldError{Field: "limit", Value: strconv.Itoa(f.Limit), Reason: "negative"}
	}
	var err error
	if f.From, err = CheckTime("from", f.From); err != nil {
		return f, err
	}
	if f.To, err = CheckTime("to", f.To); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, &cim.FieldError{Field: "to", Value: f.To.Format(time.RFC3339Nano), Reason: "before from"}
	}
	return f, nil
}

// Match reports whether the prepared filter picks the session (ignoring
// Limit). It defines the filter for drivers that cannot express it in a
// query.
func (f SessionFilter) Match(s Session) bool {
	if s.Site != f.Site || f.ChargePoint != "" && s.ChargePoint != f.ChargePoint {
		return false
	}
	at := s.OrderTime()
	if !f.To.IsZero() && !at.Before(f.To) {
		return false
	}
	if f.From.IsZero() || !at.Before(f.From) {
		return true
	}
	return s.Stop.IsZero() && !s.Start.IsZero() || s.Stop.After(f.From)
}

// CompareSessions orders sessions as ListSessions returns them: by
// OrderTime, then charge point (byte-wise), then transaction id.
func CompareSessions(a, b Session) int {
	return cmp.Or(a.OrderTime().Compare(b.OrderTime()), cmp.Compare(a.ChargePoint, b.ChargePoint),
		cmp.Compare(a.TransactionID, b.TransactionID))
}

// Sessions holds charging sessions. Sessions are metadata: small writes in
// plain transactions, shared by every platform node on the same store.
type Sessions interface {
	// PutSession creates or updates the session keyed by (Site,
	// ChargePoint, TransactionID). A put with Start set fills the start
	// fields (Start, MeterStartWh, and Connector and IDTag when given); one
	// with Stop set fills the stop fields (Stop, MeterStopWh, StopReason);
	// neither clears what an earlier put filled, so a stop that arrives
	// before its start, or concurrently with it, keeps both. A put without
	// Start fills Connector and IDTag only while they are unknown. Updated
	// becomes the later of the stored and the given time (now when zero).
	// Invalid input, or a put that would leave Stop before Start or
	// MeterStopWh below MeterStartWh, is an error naming the field (a
	// *cim.FieldError) and changes nothing. The site must exist (else
	// ErrNotFound).
	PutSession(ctx context.Context, s Session) error
	// GetSession returns one session or ErrNotFound.
	GetSession(ctx context.Context, site, chargePoint string, tx int64) (Session, error)
	// ListSessions returns the sessions the filter picks, ordered as
	// CompareSessions orders them.
	ListSessions(ctx context.Context, f SessionFilter) ([]Session, error)
}

// ChargePoints holds the credentials of charge points (OCPP security
// profile 1 and 2: HTTP basic auth with the charge point's own password)
// and the asset each one's readings are filed under. Only the SHA-256 of a
// password is stored.
//
// A charge point's id is its OCPP identity, often the charger's serial
// number; its asset is an asset id of its site. They are separate because
// identities are one namespace on a central system while asset ids are per
// site: two sites may both have an asset "evse-01".
type ChargePoints interface {
	// PutChargePointSecret sets or replaces the password hash and the asset
	// of a charge point of the site; asset "" means the charge point's id.
	// Charge point ids are unique across sites, since a charger connects
	// at /ocpp/{id} without naming its site: an id that another site holds
	// is an error matching ErrConflict. The site must exist (else
	// ErrNotFound); the asset is checked as an asset id (a *cim.FieldError
	// naming "asset"), not for existence: that is the caller's inventory.
	PutChargePointSecret(ctx context.Context, site, chargePoint, asset string, sha256 [32]byte) error
	// ChargePointSecret returns the site, asset and password hash of a
	// charge point, or ErrNotFound.
	ChargePointSecret(ctx context.Context, chargePoint string) (site, asset string, sha256 [32]byte, err error)
	// DeleteChargePointSecret removes the credentials of a charge point of
	// the site, after which it can no longer connect; ErrNotFound if the
	// site holds no such charge point.
	DeleteChargePointSecret(ctx context.Context, site, chargePoint string) error
}

// PrepareChargePoint checks the ids given to PutChargePointSecret and
// returns the asset as stores keep it: the charge point's id when "".
func PrepareChargePoint(chargePoint, asset string) (string, error) {
	if err := CheckID("chargePoint", chargePoint); err != nil {
		return "", err
	}
	if asset == "" {
		return chargePoint, nil
	}
	if err := cim.CheckAssetID(asset); err != nil {
		return "", err
	}
	return asset, nil
}

// IDTagEntry is one RFID tag (an OCPP IdToken) allowed to charge at a site.
type IDTagEntry struct {
	Tag     string    // as last put
	Expires time.Time // zero = never; UTC, millisecond precision
}

// IDTags holds the RFID tags allowed to charge at each site. Tags are
// compared case-insensitively, as OCPP compares an IdToken: putting "ab12"
// replaces "AB12". A tag is 1 to MaxIDTagLen printable ASCII characters.
type IDTags interface {
	// PutIDTag adds the tag to the site or replaces its spelling and
	// expiry. The site must exist (else ErrNotFound).
	PutIDTag(ctx context.Context, site, tag string, expires time.Time) error
	// DeleteIDTag removes the tag from the site; ErrNotFound if absent.
	DeleteIDTag(ctx context.Context, site, tag string) error
	// IDTag looks the tag up: found is false, with a nil error, when the
	// site does not hold it. An expired tag is found; the caller compares
	// expires with its clock.
	IDTag(ctx context.Context, site, tag string) (expires time.Time, found bool, err error)
	// ListIDTags returns the site's tags ordered by IDTagKey.
	ListIDTags(ctx context.Context, site string) ([]IDTagEntry, error)
}

// MaxIDTagLen is the longest RFID tag: OCPP 1.6 IdToken is CiString20.
const MaxIDTagLen = 20

// maxIDLen is the longest site or charge point id, in bytes, as for asset
// ids.
const maxIDLen = cim.MaxAssetIDLen

// maxStopReasonLen bounds StopReason; the OCPP Reason values are short.
const maxStopReasonLen = 64

// maxUnixMilli is 9999-12-31T23:59:59.999Z.
const maxUnixMilli = 253402300799999

// CheckID checks a site or charge point id the way asset ids are checked
// (cim.CheckAssetID): non-empty, at most 200 bytes of printable UTF-8, no
// leading or trailing space. field names the id in the error.
func CheckID(field, id string) error {
	if r := idProblem(id); r != "" {
		return &cim.FieldError{Field: field, Value: id, Reason: r}
	}
	return nil
}

func idProblem(id string) string {
	switch {
	case id == "":
		return "empty"
	case len(id) > maxIDLen:
		return "longer than " + strconv.Itoa(maxIDLen) + " bytes"
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return "leading or trailing space"
	}
	for i, r := range id {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(id[i:]); size == 1 {
				return "not valid UTF-8"
			}
		}
		if !unicode.IsPrint(r) {
			return "control or non-printable character"
		}
	}
	return ""
}

// IDTagKey checks an RFID tag and returns the form tags are compared in:
// ASCII upper case.
func IDTagKey(tag string) (string, error) {
	switch {
	case tag == "":
		return "", &cim.FieldError{Field: "idTag", Value: tag, Reason: "empty"}
	case len(tag) > MaxIDTagLen:
		return "", &cim.FieldError{Field: "idTag", Value: tag, Reason: "longer than " + strconv.Itoa(MaxIDTagLen) + " characters"}
	case tag[0] == ' ' || tag[len(tag)-1] == ' ':
		return "", &cim.FieldError{Field: "idTag", Value: tag, Reason: "leading or trailing space"}
	}
	b := []byte(tag)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			return "", &cim.FieldError{Field: "idTag", Value: tag, Reason: "not printable ASCII"}
		}
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b), nil
}

// CheckTime checks a time a store keeps: zero (unset) or between 1970 and
// 9999, and returns it in UTC truncated to milliseconds, as stores keep it.
func CheckTime(field string, t time.Time) (time.Time, error) {
	if t.IsZero() {
		return t, nil
	}
	ms := t.UnixMilli()
	if ms < 0 || ms > maxUnixMilli {
		return t, &cim.FieldError{Field: field, Value: t.UTC().Format(time.RFC3339Nano), Reason: "outside 1970 to 9999"}
	}
	return time.UnixMilli(ms).UTC(), nil
}

func checkMeter(field string, v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return &cim.FieldError{Field: field, Value: strconv.FormatFloat(v, 'g', -1, 64), Reason: "not a finite number"}
	case v < 0:
		return &cim.FieldError{Field: field, Value: strconv.FormatFloat(v, 'g', -1, 64), Reason: "negative"}
	}
	return nil
}

// PrepareSession checks a session given to PutSession and returns it as
// stores keep it: times in UTC at millisecond precision, Updated set to now
// when zero. Drivers call it first, then MergeSession with what is stored.
func PrepareSession(s Session, now time.Time) (Session, error) {
	if err := CheckID("site", s.Site); err != nil {
		return s, err
	}
	if err := CheckID("chargePoint", s.ChargePoint); err != nil {
		return s, err
	}
	if s.Connector < 0 {
		return s, &cim.FieldError{Field: "connector", Value: strconv.Itoa(s.Connector), Reason: "negative"}
	}
	if s.IDTag != "" {
		if _, err := IDTagKey(s.IDTag); err != nil {
			return s, err
		}
	}
	var err error
	if s.Start, err = CheckTime("start", s.Start); err != nil {
		return s, err
	}
	if s.Stop, err = CheckTime("stop", s.Stop); err != nil {
		return s, err
	}
	if s.Updated.IsZero() {
		s.Updated = now
	}
	if s.Updated, err = CheckTime("updated", s.Updated); err != nil {
		return s, err
	}
	if s.Start.IsZero() && s.Stop.IsZero() {
		return s, &cim.FieldError{Field: "start", Value: "", Reason: "a session needs a start or a stop time"}
	}
	if err := checkMeter("meterStartWh", s.MeterStartWh); err != nil {
		return s, err
	}
	if err := checkMeter("meterStopWh", s.MeterStopWh); err != nil {
		return s, err
	}
	if s.Start.IsZero() && s.MeterStartWh != 0 {
		return s, &cim.FieldError{Field: "meterStartWh", Value: strconv.FormatFloat(s.MeterStartWh, 'g', -1, 64), Reason: "given without a start time"}
	}
	if s.Stop.IsZero() {
		if s.MeterStopWh != 0 {
			return s, &cim.FieldError{Field: "meterStopWh", Value: strconv.FormatFloat(s.MeterStopWh, 'g', -1, 64), Reason: "given without a stop time"}
		}
		if s.StopReason != "" {
			return s, &cim.FieldError{Field: "stopReason", Value: s.StopReason, Reason: "given without a stop time"}
		}
	}
	if len(s.StopReason) > maxStopReasonLen || s.StopReason != "" && idProblem(s.StopReason) != "" {
		return s, &cim.FieldError{Field: "stopReason", Value: s.StopReason, Reason: "not a short printable text"}
	}
	return s, checkSessionOrder(s)
}

// checkSessionOrder checks that a session's stop does not precede its start,
// in time and in meter register.
func checkSessionOrder(s Session) error {
	if s.Start.IsZero() || s.Stop.IsZero() {
		return nil
	}
	if s.Stop.Before(s.Start) {
		return &cim.FieldError{Field: "stop", Value: s.Stop.Format(time.RFC3339Nano),
			Reason: "before the session's start " + s.Start.Format(time.RFC3339Nano)}
	}
	if s.MeterStopWh < s.MeterStartWh {
		return &cim.FieldError{Field: "meterStopWh", Value: strconv.FormatFloat(s.MeterStopWh, 'g', -1, 64),
			Reason: "below the session's meterStartWh " + strconv.FormatFloat(s.MeterStartWh, 'g', -1, 64)}
	}
	return nil
}

// MergeSession applies a prepared put (see PrepareSession) to the stored
// session with the same key, as PutSession describes, and checks the result.
func MergeSession(stored, put Session) (Session, error) {
	m := stored
	if !put.Start.IsZero() {
		m.Start, m.MeterStartWh = put.Start, put.MeterStartWh
		if put.Connector != 0 {
			m.Connector = put.Connector
		}
		if put.IDTag != "" {
			m.IDTag = put.IDTag
		}
	} else {
		if m.Connector == 0 {
			m.Connector = put.Connector
		}
		if m.IDTag == "" {
			m.IDTag = put.IDTag
		}
	}
	if !put.Stop.IsZero() {
		m.Stop, m.MeterStopWh, m.StopReason = put.Stop, put.MeterStopWh, put.StopReason
	}
	if put.Updated.After(m.Updated) {
		m.Updated = put.Updated
	}
	if err := checkSessionOrder(m); err != nil {
		return stored, fmt.Errorf("session %d of charge point %q: %w", put.TransactionID, put.ChargePoint, err)
	}
	return m, nil
}

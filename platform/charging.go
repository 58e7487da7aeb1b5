package platform

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// sessionView is a charging session as the API shows it.
type sessionView struct {
	Site          string     `json:"site"`
	ChargePoint   string     `json:"charge_point"`
	Connector     int        `json:"connector"`
	TransactionID int64      `json:"transaction_id"`
	IDTag         string     `json:"id_tag,omitempty"`
	Start         *time.Time `json:"start,omitempty"`
	Stop          *time.Time `json:"stop,omitempty"`
	MeterStartWh  float64    `json:"meter_start_wh"`
	MeterStopWh   *float64   `json:"meter_stop_wh,omitempty"`
	EnergyWh      float64    `json:"energy_wh"`
	StopReason    string     `json:"stop_reason,omitempty"`
	Running       bool       `json:"running"`
	// Asset is where the session's readings are stored.
	Asset string `json:"asset"`
	// MeterValues are the readings of the session's connector from its
	// start to its stop; only when asked for (they can be many).
	MeterValues []meterSeries `json:"meter_values,omitempty"`
}

// viewSession shows a session of a charge point whose readings are filed
// under asset.
func viewSession(s store.Session, asset string) sessionView {
	v := sessionView{Site: s.Site, ChargePoint: s.ChargePoint, Connector: s.Connector, TransactionID: s.TransactionID,
		IDTag: s.IDTag, MeterStartWh: s.MeterStartWh, EnergyWh: s.EnergyWh(), StopReason: s.StopReason, Running: s.Running(),
		Asset: sessionAsset(s, asset)}
	if !s.Start.IsZero() {
		t := s.Start.UTC()
		v.Start = &t
	}
	if !s.Stop.IsZero() {
		t, m := s.Stop.UTC(), s.MeterStopWh
		v.Stop, v.MeterStopWh = &t, &m
	}
	return v
}

// handleListSessions serves GET /api/v1/sites/{site}/sessions: the
// charging sessions overlapping [from, to), optionally of one charge point.
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := readableSite(r, p)
	if err == nil {
		err = onlyParams(r.URL.Query(), "charge_point", "from", "to", "limit", "meter_values")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := r.URL.Query()
	f := store.SessionFilter{Site: site, ChargePoint: v.Get("charge_point")}
	for _, tp := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if raw := v.Get(tp.name); raw != "" {
			ms, err := parseTimeParam(raw)
			if err != nil {
				s.writeError(w, r, badParam(tp.name, clip(raw), "%s", err))
				return
			}
			*tp.dst = time.UnixMilli(ms).UTC()
		}
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100000 {
			s.writeError(w, r, badParam("limit", clip(raw), "want 1 to 100000"))
			return
		}
		f.Limit = n
	}
	if _, err := s.lookupSite(r.Context(), site, ""); err != nil {
		s.writeError(w, r, err)
		return
	}
	ss, err := s.store.ListSessions(r.Context(), f)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list sessions of site %q: %w", site, err))
		return
	}
	withValues := false
	if raw := v.Get("meter_values"); raw != "" {
		if withValues, err = strconv.ParseBool(raw); err != nil {
			s.writeError(w, r, badParam("meter_values", clip(raw), "want true or false"))
			return
		}
	}
	out := make([]sessionView, 0, len(ss))
	assets := map[string]string{} // charge point → asset, looked up once each
	for _, x := range ss {
		asset, ok := assets[x.ChargePoint]
		if !ok {
			if asset, err = s.chargePointAsset(r.Context(), site, x.ChargePoint); err != nil {
				s.writeError(w, r, err)
				return
			}
			assets[x.ChargePoint] = asset
		}
		sv := viewSession(x, asset)
		if withValues {
			if sv.MeterValues, err = s.meterValues(r.Context(), p, x, asset); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		out = append(out, sv)
	}
	writeList(w, "sessions", out)
}

// adminSite reads the {site} of an admin route and checks the site exists.
func (s *Server) adminSite(r *http.Request, p auth.Principal) (string, error) {
	site, err := pathSite(r)
	if err == nil {
		err = requireAdmin(p)
	}
	if err == nil {
		_, err = s.lookupSite(r.Context(), site, "")
	}
	return site, err
}

// OCPP security profiles 1 and 2 take an AuthorizationKey of 16 to 40
// characters.
const minChargePointPassword, maxChargePointPassword = 16, 40

// chargePointView is a registered charge point as the API shows it: its
// OCPP identity and the asset of its site its readings are filed under.
type chargePointView struct {
	Site  string `json:"site"`
	ID    string `json:"id"`
	Asset string `json:"asset"`
}

// handlePutChargePoint serves POST /api/v1/sites/{site}/chargepoints: it
// registers a charge point's OCPP identity and password (kept as a SHA-256
// only), and the asset of the site its readings are filed under (default:
// the asset whose id is the identity).
func (s *Server) handlePutChargePoint(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		ID       string `json:"id"`
		Password string `json:"password"`
		Asset    string `json:"asset"`
	}
	if err := s.decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := store.CheckID("id", req.ID); err != nil {
		s.writeError(w, r, invalidField("id", req.ID, "%s", reasonOf(err)))
		return
	}
	if n := len(req.Password); n < minChargePointPassword || n > maxChargePointPassword {
		s.writeError(w, r, invalidField("password", "…", "%d characters: OCPP's AuthorizationKey has %d to %d", n, minChargePointPassword, maxChargePointPassword))
		return
	}
	defaulted := req.Asset == ""
	if defaulted {
		req.Asset = req.ID
	}
	if err := s.checkChargerAsset(r.Context(), site, req.Asset, defaulted); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.PutChargePointSecret(r.Context(), site, req.ID, req.Asset, sha256.Sum256([]byte(req.Password))); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, chargePointView{Site: site, ID: req.ID, Asset: req.Asset})
}

// checkChargerAsset checks that asset is a charging point of the site:
// the charge point's readings are written under it. defaulted says the
// body gave no asset, so the charge point's id stands for it.
func (s *Server) checkChargerAsset(ctx context.Context, site, asset string, defaulted bool) error {
	what := ""
	if defaulted {
		what = " (the id, as no asset was given)"
	}
	if err := cim.CheckAssetID(asset); err != nil {
		return invalidField("asset", asset, "%s%s", reasonOf(err), what)
	}
	a, err := s.store.Asset(ctx, site, asset)
	if errors.Is(err, store.ErrNotFound) {
		hint := ""
		if defaulted {
			hint = `, or give the charger's asset in "asset"`
		}
		return errorf(http.StatusNotFound, CodeNotFound,
			"field asset=%q%s: asset %q does not exist in site %q; register it with POST /api/v1/sites/%s/assets%s",
			clip(asset), what, clip(asset), site, site, hint)
	}
	if err != nil {
		return fmt.Errorf("look up asset %q of site %q: %w", asset, site, err)
	}
	if a.Type != cim.ChargingPoint {
		return invalidField("asset", asset, "an asset of type %s%s; a charge point's readings go to an asset of type %s",
			a.Type, what, cim.ChargingPoint)
	}
	return nil
}

// chargePointAsset is the asset the readings of a charge point of the site
// are filed under: its registered asset, or its id when it is not (or no
// longer) registered in the site, as it was before charge points had an
// asset of their own.
func (s *Server) chargePointAsset(ctx context.Context, site, chargePoint string) (string, error) {
	owner, asset, _, err := s.store.ChargePointSecret(ctx, chargePoint)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && owner != site:
		return chargePoint, nil
	case err != nil:
		return "", fmt.Errorf("look up charge point %q: %w", chargePoint, err)
	}
	return asset, nil
}

func (s *Server) handleDeleteChargePoint(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := s.adminSite(r, p)
	if err == nil {
		err = s.store.DeleteChargePointSecret(r.Context(), site, r.PathValue("id"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"site": site, "id": r.PathValue("id")})
}

// idTagView is an RFID tag of a site.
type idTagView struct {
	Tag     string     `json:"tag"`
	Expires *time.Time `json:"expires,omitempty"`
}

func (s *Server) handleListIDTags(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tags, err := s.store.ListIDTags(r.Context(), site)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list id tags of site %q: %w", site, err))
		return
	}
	out := make([]idTagView, 0, len(tags))
	for _, t := range tags {
		v := idTagView{Tag: t.Tag}
		if !t.Expires.IsZero() {
			e := t.Expires.UTC()
			v.Expires = &e
		}
		out = append(out, v)
	}
	writeList(w, "id_tags", out)
}

func (s *Server) handlePutIDTag(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req idTagView
	if err := s.decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	var exp time.Time
	if req.Expires != nil {
		exp = *req.Expires
	}
	if err := s.store.PutIDTag(r.Context(), site, req.Tag, exp); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (s *Server) handleDeleteIDTag(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := s.adminSite(r, p)
	if err == nil {
		err = s.store.DeleteIDTag(r.Context(), site, r.PathValue("tag"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"tag": r.PathValue("tag")})
}

// Chargers sends commands to connected charge points: the OCPP central
// system, set with Server.SetChargers.
type Chargers interface {
	// Command sends cmd to the charge point and returns its answer as a
	// JSON-able value. A charge point that is not connected is
	// ErrNotConnected.
	Command(ctx context.Context, chargePoint string, cmd ChargerCommand) (any, error)
}

// ErrNotConnected is the error of a command to a charge point that is not
// connected to this platform node.
var ErrNotConnected = errors.New("charge point not connected")

// ChargerCommand is one command of POST …/chargepoints/{id}/commands.
type ChargerCommand struct {
	// Action: RemoteStartTransaction, RemoteStopTransaction,
	// ChangeConfiguration, GetConfiguration, TriggerMessage or Reset.
	Action        string   `json:"action"`
	IDTag         string   `json:"id_tag,omitempty"`         // RemoteStartTransaction
	Connector     int      `json:"connector,omitempty"`      // RemoteStartTransaction, TriggerMessage
	TransactionID int64    `json:"transaction_id,omitempty"` // RemoteStopTransaction
	Key           string   `json:"key,omitempty"`            // ChangeConfiguration
	Value         string   `json:"value,omitempty"`          // ChangeConfiguration
	Keys          []string `json:"keys,omitempty"`           // GetConfiguration; none: all
	Message       string   `json:"message,omitempty"`        // TriggerMessage
	Hard          bool     `json:"hard,omitempty"`           // Reset
}

// check names what a command lacks.
func (c ChargerCommand) check() error {
	switch c.Action {
	case "RemoteStartTransaction":
		if c.IDTag == "" {
			return invalidField("id_tag", "", "RemoteStartTransaction needs the RFID tag to start for")
		}
	case "RemoteStopTransaction":
		if c.TransactionID == 0 {
			return invalidField("transaction_id", "0", "RemoteStopTransaction needs the transaction to stop")
		}
	case "ChangeConfiguration":
		if c.Key == "" {
			return invalidField("key", "", "ChangeConfiguration needs a configuration key")
		}
	case "TriggerMessage":
		switch c.Message {
		case "BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StatusNotification":
		default:
			return invalidField("message", c.Message, "want BootNotification, Heartbeat, MeterValues, StatusNotification, DiagnosticsStatusNotification or FirmwareStatusNotification")
		}
	case "GetConfiguration", "Reset":
	default:
		return invalidField("action", c.Action, "want RemoteStartTransaction, RemoteStopTransaction, ChangeConfiguration, GetConfiguration, TriggerMessage or Reset")
	}
	if c.Connector < 0 {
		return invalidField("connector", strconv.Itoa(c.Connector), "negative")
	}
	return nil
}

// SetChargers connects the server to the OCPP central system, so that the
// admin API can send commands to charge points.
func (s *Server) SetChargers(c Chargers) { s.chargers.Store(&c) }

// handleChargerCommand serves POST /api/v1/sites/{site}/chargepoints/{id}/commands.
func (s *Server) handleChargerCommand(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := s.adminSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	var cmd ChargerCommand
	if err := s.decodeBody(w, r, &cmd); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := cmd.check(); err != nil {
		s.writeError(w, r, err)
		return
	}
	c := s.chargers.Load()
	if c == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "this platform node runs no OCPP central system (serve --ocpp-listen)"))
		return
	}
	owner, _, _, err := s.store.ChargePointSecret(r.Context(), id)
	if err == nil && owner != site {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "charge point %q is not registered in site %q", clip(id), site))
		return
	} else if err != nil {
		s.writeError(w, r, fmt.Errorf("look up charge point %q: %w", id, err))
		return
	}
	res, err := (*c).Command(r.Context(), id, cmd)
	if errors.Is(err, ErrNotConnected) {
		s.writeError(w, r, errorf(http.StatusConflict, CodeConflict, "charge point %q is not connected to this platform node", clip(id)))
		return
	} else if err != nil {
		s.writeError(w, r, errorf(http.StatusBadGateway, CodeChargerError, "%s to %q: %s", cmd.Action, clip(id), err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"charge_point": id, "action": cmd.Action, "result": res})
}

package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// meterSeries is one series of a session's meter values, in the shape of
// GET /api/v1/readings: points are [time in Unix ms, value].
type meterSeries struct {
	Asset    string       `json:"asset"`
	Quantity string       `json:"quantity"`
	Phase    string       `json:"phase"`
	Unit     string       `json:"unit"`
	Points   []pointArray `json:"points"`
}

type pointArray cim.Point

func (p pointArray) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 32), '[')
	b = strconv.AppendInt(b, p.Time, 10)
	b = append(b, ',')
	b = appendJSONFloat(b, p.Value)
	return append(b, ']'), nil
}

// sessionAsset is the asset a session's readings are stored under: asset,
// the charge point's (see Server.chargePointAsset), or for connector N ≥ 2
// its "connector-N" sub-asset, as the OCPP central system writes them.
func sessionAsset(s store.Session, asset string) string {
	if s.Connector >= 2 {
		return asset + "/connector-" + strconv.Itoa(s.Connector)
	}
	return asset
}

// ofSession reports whether a series' asset belongs to the session's
// connector: its asset or a measuring location under it ("/inlet", "/ev",
// …), but not another connector.
func ofSession(asset, base string) bool {
	if asset == base {
		return true
	}
	rest, ok := strings.CutPrefix(asset, base+"/")
	return ok && !strings.HasPrefix(rest, "connector-")
}

// meterValues reads the readings of a session's connector from its start to
// its stop (both included), or to now while it runs; asset is the charge
// point's. A session whose start is unknown has none.
func (s *Server) meterValues(ctx context.Context, p auth.Principal, ss store.Session, asset string) ([]meterSeries, error) {
	out := []meterSeries{}
	if ss.Start.IsZero() {
		return out, nil
	}
	base := sessionAsset(ss, asset)
	latest, err := s.store.Latest(ctx, ss.Site)
	if err != nil {
		return nil, fmt.Errorf("series of charge point %q: %w", ss.ChargePoint, err)
	}
	from, to := ss.Start.UnixMilli(), int64(0)
	if !ss.Stop.IsZero() {
		to = ss.Stop.UnixMilli() + 1
	}
	for _, lp := range latest {
		if !ofSession(lp.Asset, base) || lp.Time < from {
			continue
		}
		unit, ok := s.visible(p, lp.Quantity)
		if !ok {
			continue
		}
		phase := lp.Phase
		sel := store.Selector{Site: ss.Site, Asset: lp.Asset, Quantity: lp.Quantity, Phase: &phase, From: from, To: to}
		ms := meterSeries{Asset: lp.Asset, Quantity: lp.Quantity, Phase: lp.Phase.String(), Unit: unit}
		err := s.store.Read(ctx, sel, func(_ store.Series, pts []cim.Point) error {
			for _, pt := range pts {
				ms.Points = append(ms.Points, pointArray(pt))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("meter values of %s %s: %w", lp.Asset, lp.Quantity, err)
		}
		if len(ms.Points) > 0 {
			out = append(out, ms)
		}
	}
	return out, nil
}

// handleGetSession serves GET
// /api/v1/sites/{site}/sessions/{charge_point}/{transaction_id}: one session
// with its meter values.
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := readableSite(r, p)
	if err == nil {
		err = onlyParams(r.URL.Query())
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cp, rawTx := r.PathValue("charge_point"), r.PathValue("transaction_id")
	tx, err := strconv.ParseInt(rawTx, 10, 64)
	if err != nil {
		s.writeError(w, r, badParam("transaction_id", clip(rawTx), "not an integer"))
		return
	}
	ss, err := s.store.GetSession(r.Context(), site, cp, tx)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "site %q has no session %d of charge point %q", site, tx, clip(cp)))
		return
	}
	if err != nil {
		s.writeError(w, r, fmt.Errorf("session %d of charge point %q: %w", tx, cp, err))
		return
	}
	asset, err := s.chargePointAsset(r.Context(), site, cp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := viewSession(ss, asset)
	if v.MeterValues, err = s.meterValues(r.Context(), p, ss, asset); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

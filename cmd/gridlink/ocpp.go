//go:build !edge

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ocpp"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/store"
)

// ocppDeps connects the OCPP central system to the platform: chargers and
// their passwords, RFID tags and sessions live in the store (so a charger
// may reconnect to another platform node), readings go through the
// platform's write path (durable, idempotent, published live).
type ocppDeps struct {
	st  store.Store
	api *platform.Server
	now func() time.Time
}

func (d ocppDeps) ChargePoint(ctx context.Context, id string) (ocpp.ChargePoint, bool, error) {
	site, asset, sum, err := d.st.ChargePointSecret(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ocpp.ChargePoint{}, false, nil
	}
	if err != nil {
		return ocpp.ChargePoint{}, false, err
	}
	// Readings go to the registered asset, not the OCPP identity: asset ids
	// are per site, identities are one namespace.
	return ocpp.ChargePoint{ID: id, Site: site, Asset: asset, PasswordSHA256: sum}, true, nil
}

// Write stores a charge point's readings; those of ledger assets are
// signed with the log key and logged (the platform took them itself).
func (d ocppDeps) Write(ctx context.Context, site string, rs []cim.Reading) error {
	_, err := d.api.WriteOwn(ctx, site, rs)
	return err
}

func (d ocppDeps) PutSession(ctx context.Context, s ocpp.Session) error {
	return d.st.PutSession(ctx, store.Session{
		Site: s.Site, ChargePoint: s.ChargePoint, Connector: s.Connector, TransactionID: s.TransactionID,
		IDTag: s.IDTag, Start: s.Start, Stop: s.Stop, MeterStartWh: s.MeterStart, MeterStopWh: s.MeterStop,
		StopReason: s.Reason,
	})
}

func (d ocppDeps) Session(ctx context.Context, site, chargePoint string, tx int64) (ocpp.Session, bool, error) {
	s, err := d.st.GetSession(ctx, site, chargePoint, tx)
	if errors.Is(err, store.ErrNotFound) {
		return ocpp.Session{}, false, nil
	}
	if err != nil {
		return ocpp.Session{}, false, err
	}
	return ocpp.Session{Site: s.Site, ChargePoint: s.ChargePoint, Connector: s.Connector, TransactionID: s.TransactionID,
		IDTag: s.IDTag, Start: s.Start, Stop: s.Stop, MeterStart: s.MeterStartWh, MeterStop: s.MeterStopWh,
		Reason: s.StopReason, EnergyWh: s.EnergyWh()}, true, nil
}

func (d ocppDeps) Authorize(ctx context.Context, site, idTag string) (bool, error) {
	exp, found, err := d.st.IDTag(ctx, site, idTag)
	if err != nil || !found {
		return false, err
	}
	return exp.IsZero() || exp.After(d.now()), nil
}

// ocppCommands lets the admin API send commands through the central system.
type ocppCommands struct{ cs *ocpp.CentralSystem }

func (o ocppCommands) Command(ctx context.Context, id string, c platform.ChargerCommand) (any, error) {
	var res any
	var err error
	switch c.Action {
	case "RemoteStartTransaction":
		res, err = o.cs.RemoteStartTransaction(ctx, id, c.IDTag, c.Connector)
	case "RemoteStopTransaction":
		res, err = o.cs.RemoteStopTransaction(ctx, id, c.TransactionID)
	case "ChangeConfiguration":
		res, err = o.cs.ChangeConfiguration(ctx, id, c.Key, c.Value)
	case "GetConfiguration":
		var conf ocpp.Configuration
		if conf, err = o.cs.GetConfiguration(ctx, id, c.Keys...); err == nil {
			type key struct {
				Key      string `json:"key"`
				Value    string `json:"value"`
				Readonly bool   `json:"readonly"`
			}
			keys := make([]key, 0, len(conf.Keys))
			for _, k := range conf.Keys {
				keys = append(keys, key{k.Key, k.Value, k.Readonly})
			}
			res = map[string]any{"keys": keys, "unknown": conf.Unknown}
		}
	case "TriggerMessage":
		res, err = o.cs.TriggerMessage(ctx, id, c.Message, c.Connector)
	case "Reset":
		res, err = o.cs.Reset(ctx, id, c.Hard)
	default:
		return nil, fmt.Errorf("action %q is not supported", c.Action)
	}
	if errors.Is(err, ocpp.ErrNotConnected) {
		err = platform.ErrNotConnected
	}
	return res, err
}

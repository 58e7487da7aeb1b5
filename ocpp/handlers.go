package ocpp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
	"github.com/lorenzodonini/ocpp-go/ocppj"

	"github.com/gridlink/gridlink/cim"
)

// coreHandler answers the core-profile messages of chargers
// (core.CentralSystemHandler). ocpp-go calls it on a goroutine per message.
type coreHandler struct{ c *CentralSystem }

// statusStates maps OCPP ChargePointStatus to ev_session_state; the
// catalogue's states are OCPP 1.6's, one to one.
var statusStates = map[core.ChargePointStatus]string{
	core.ChargePointStatusAvailable: "available", core.ChargePointStatusPreparing: "preparing",
	core.ChargePointStatusCharging: "charging", core.ChargePointStatusSuspendedEV: "suspended_ev",
	core.ChargePointStatusSuspendedEVSE: "suspended_evse", core.ChargePointStatusFinishing: "finishing",
	core.ChargePointStatusReserved: "reserved", core.ChargePointStatusUnavailable: "unavailable",
	core.ChargePointStatusFaulted: "faulted",
}

// errorStates maps OCPP ChargePointErrorCode to ev_error_code.
var errorStates = map[core.ChargePointErrorCode]string{
	core.ConnectorLockFailure: "connector_lock_failure", core.EVCommunicationError: "ev_communication_error",
	core.GroundFailure: "ground_failure", core.HighTemperature: "high_temperature",
	core.InternalError: "internal_error", core.LocalListConflict: "local_list_conflict",
	core.NoError: "no_error", core.OtherError: "other_error", core.OverCurrentFailure: "over_current_failure",
	core.PowerMeterFailure: "power_meter_failure", core.PowerSwitchFailure: "power_switch_failure",
	core.ReaderFailure: "reader_failure", core.ResetFailure: "reset_failure",
	core.UnderVoltage: "under_voltage", core.OverVoltage: "over_voltage", core.WeakSignal: "weak_signal",
}

// state returns what a handler needs about the charger, or an error the
// charger gets as an InternalError CALLERROR.
func (h *coreHandler) charger(id string) (*charger, ChargePoint, error) {
	ch := h.c.lookup(id)
	if ch == nil {
		return nil, ChargePoint{}, ocpp.NewError(ocppj.InternalError, "charge point not registered", "")
	}
	ch.mu.Lock()
	cp := ch.cp
	ch.mu.Unlock()
	return ch, cp, nil
}

func (h *coreHandler) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.c.ctx, h.c.cfg.StoreTimeout)
}

// internal logs a failure of the platform side and turns it into the
// CALLERROR that makes the charger retry a transaction message later.
func (h *coreHandler) internal(id, what string, err error) error {
	h.c.log.Error("OCPP message not handled", "charge_point", id, "message", what, "err", err)
	return ocpp.NewError(ocppj.InternalError, what+": "+err.Error(), "")
}

func (h *coreHandler) write(ctx context.Context, site string, rs []cim.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	return h.c.deps.Sink.Write(ctx, site, rs)
}

func (h *coreHandler) logSkipped(id, what string, skipped []error) {
	for _, err := range skipped {
		h.c.log.Warn("OCPP value not stored", "charge_point", id, "message", what, "reason", err.Error())
	}
}

// OnBootNotification accepts every registered charger and keeps what it says.
func (h *coreHandler) OnBootNotification(id string, req *core.BootNotificationRequest) (*core.BootNotificationConfirmation, error) {
	ch, _, err := h.charger(id)
	if err != nil {
		return nil, err
	}
	now := h.c.now()
	vendor := req.ChargePointVendor
	if vendor == emptyVendor {
		vendor = ""
	}
	boot := BootNotification{
		Time: now, Vendor: vendor, Model: req.ChargePointModel,
		ChargePointSerialNumber: req.ChargePointSerialNumber, ChargeBoxSerialNumber: req.ChargeBoxSerialNumber,
		FirmwareVersion: req.FirmwareVersion, ICCID: req.Iccid, IMSI: req.Imsi,
		MeterType: req.MeterType, MeterSerial: req.MeterSerialNumber,
	}
	ch.mu.Lock()
	ch.boot = &boot
	ch.mu.Unlock()
	h.c.log.Info("charge point booted", "charge_point", id, "vendor", vendor, "model", boot.Model,
		"firmware", boot.FirmwareVersion, "serial", boot.ChargePointSerialNumber)
	return core.NewBootNotificationConfirmation(types.NewDateTime(now.UTC()),
		int(h.c.cfg.HeartbeatInterval/time.Second), core.RegistrationStatusAccepted), nil
}

// OnHeartbeat answers the current time.
func (h *coreHandler) OnHeartbeat(id string, _ *core.HeartbeatRequest) (*core.HeartbeatConfirmation, error) {
	return core.NewHeartbeatConfirmation(types.NewDateTime(h.c.now().UTC())), nil
}

// OnStatusNotification keeps the connector's status and writes it as
// ev_session_state and ev_error_code readings. A status of connector 0 (the
// whole charger) is written only when it is Unavailable or Faulted, the
// states that stop every connector: otherwise it would contradict the
// status of connector 1 on the same asset at the same instant.
func (h *coreHandler) OnStatusNotification(id string, req *core.StatusNotificationRequest) (*core.StatusNotificationConfirmation, error) {
	ch, cp, err := h.charger(id)
	if err != nil {
		return nil, err
	}
	now := h.c.now()
	t := now
	if req.Timestamp != nil && !req.Timestamp.IsZero() {
		t = req.Timestamp.Time
	}
	st := ConnectorStatus{
		Connector: req.ConnectorId, Status: string(req.Status), ErrorCode: string(req.ErrorCode),
		Info: req.Info, VendorID: req.VendorId, VendorErrorCode: req.VendorErrorCode, Time: t,
	}
	ch.mu.Lock()
	ch.connectors[req.ConnectorId] = st
	ch.mu.Unlock()
	level := h.c.log.Info
	if req.ErrorCode != core.NoError {
		level = h.c.log.Warn
	}
	level("charge point status", "charge_point", id, "connector", req.ConnectorId, "status", st.Status,
		"error_code", st.ErrorCode, "info", st.Info, "vendor_error_code", st.VendorErrorCode)

	if req.ConnectorId == 0 && req.Status != core.ChargePointStatusUnavailable && req.Status != core.ChargePointStatusFaulted {
		return core.NewStatusNotificationConfirmation(), nil
	}
	asset := connectorAsset(cp.Asset, req.ConnectorId)
	var rs []cim.Reading
	for _, p := range []struct{ quantity, state string }{
		{"ev_session_state", statusStates[req.Status]},
		{"ev_error_code", errorStates[req.ErrorCode]},
	} {
		r, err := h.stateReading(asset, p.quantity, p.state, t, now)
		if err != nil {
			h.logSkipped(id, "StatusNotification", []error{err})
			continue
		}
		rs = append(rs, r)
	}
	ctx, cancel := h.context()
	defer cancel()
	if err := h.write(ctx, cp.Site, rs); err != nil {
		return nil, h.internal(id, "StatusNotification", err)
	}
	return core.NewStatusNotificationConfirmation(), nil
}

func (h *coreHandler) stateReading(asset, quantity, state string, t, now time.Time) (cim.Reading, error) {
	q, _ := h.c.cat.Lookup(quantity)
	code := slices.Index(q.States, state)
	if code < 0 {
		return cim.Reading{}, fmt.Errorf("%s: no state %q", quantity, state)
	}
	r, err := h.c.cat.Normalize(cim.Input{Asset: asset, Quantity: quantity, Time: t.UnixMilli(), Value: float64(code)}, now)
	if err != nil {
		return cim.Reading{}, fmt.Errorf("%s: %w", quantity, err)
	}
	return r, nil
}

// authorize checks a tag against the site's list; without IDTags every
// tag is accepted.
func (h *coreHandler) authorize(ctx context.Context, site, tag string) (types.AuthorizationStatus, error) {
	if h.c.deps.IDTags == nil {
		return types.AuthorizationStatusAccepted, nil
	}
	ok, err := h.c.deps.IDTags.Authorize(ctx, site, tag)
	if err != nil {
		return "", err
	}
	if ok {
		return types.AuthorizationStatusAccepted, nil
	}
	return types.AuthorizationStatusInvalid, nil
}

// OnAuthorize checks an id tag.
func (h *coreHandler) OnAuthorize(id string, req *core.AuthorizeRequest) (*core.AuthorizeConfirmation, error) {
	_, cp, err := h.charger(id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.context()
	defer cancel()
	status, err := h.authorize(ctx, cp.Site, req.IdTag)
	if err != nil {
		return nil, h.internal(id, "Authorize", err)
	}
	h.c.log.Info("id tag authorization", "charge_point", id, "id_tag", req.IdTag, "status", string(status))
	return core.NewAuthorizationConfirmation(types.NewIdTagInfo(status)), nil
}

// OnStartTransaction assigns a transaction id and records the session.
// Transaction ids are the Unix time in seconds, or the charger's last id
// + 1: unique and increasing per charger, and within int32, which many
// chargers store them in, until 2038.
func (h *coreHandler) OnStartTransaction(id string, req *core.StartTransactionRequest) (*core.StartTransactionConfirmation, error) {
	ch, cp, err := h.charger(id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := h.context()
	defer cancel()
	status, err := h.authorize(ctx, cp.Site, req.IdTag)
	if err != nil {
		return nil, h.internal(id, "StartTransaction", err)
	}
	now := h.c.now()
	start := req.Timestamp.Time

	ch.mu.Lock()
	var tx int64
	for _, s := range ch.starts {
		if s.connector == req.ConnectorId && s.idTag == req.IdTag && s.meterStart == req.MeterStart && s.time.Equal(start) {
			tx = s.tx // a resent StartTransaction: same answer
		}
	}
	resent := tx != 0
	if !resent {
		tx = max(now.Unix(), ch.lastTx+1)
		ch.lastTx = tx
		ch.starts = append(ch.starts, startRecord{req.ConnectorId, req.IdTag, req.MeterStart, start, tx})
		if len(ch.starts) > 8 {
			ch.starts = ch.starts[1:]
		}
	}
	s := Session{
		Site: cp.Site, ChargePoint: id, Connector: req.ConnectorId, TransactionID: tx, IDTag: req.IdTag,
		Start: start, MeterStart: float64(req.MeterStart),
	}
	ch.open[tx] = &s
	ch.mu.Unlock()

	if h.c.deps.Sessions != nil {
		if err := h.c.deps.Sessions.PutSession(ctx, s); err != nil {
			return nil, h.internal(id, "StartTransaction", fmt.Errorf("store session %d: %w", tx, err))
		}
	}
	asset := connectorAsset(cp.Asset, req.ConnectorId)
	if r, err := h.register(asset, float64(req.MeterStart), start, now); err != nil {
		h.logSkipped(id, "StartTransaction", []error{err})
	} else if err := h.write(ctx, cp.Site, []cim.Reading{r}); err != nil {
		return nil, h.internal(id, "StartTransaction", err)
	}
	h.c.log.Info("transaction started", "charge_point", id, "connector", req.ConnectorId, "transaction", tx,
		"id_tag", req.IdTag, "meter_start_wh", req.MeterStart, "status", string(status), "resent", resent)
	return core.NewStartTransactionConfirmation(types.NewIdTagInfo(status), int(tx)), nil
}

// register is an ev_energy_register reading from a StartTransaction's or
// StopTransaction's meter value (integer Wh).
func (h *coreHandler) register(asset string, wh float64, t, now time.Time) (cim.Reading, error) {
	r, err := h.c.cat.Normalize(cim.Input{Asset: asset, Quantity: "ev_energy_register", Unit: "Wh", Time: t.UnixMilli(), Value: wh}, now)
	if err != nil {
		return cim.Reading{}, fmt.Errorf("meter register: %w", err)
	}
	return r, nil
}

// session finds an open session here or, through SessionLookup, in the store.
func (h *coreHandler) session(ctx context.Context, ch *charger, cp ChargePoint, tx int64) (Session, bool, error) {
	ch.mu.Lock()
	s, ok := ch.open[tx]
	ch.mu.Unlock()
	if ok {
		return *s, true, nil
	}
	if l, isLookup := h.c.deps.Sessions.(SessionLookup); isLookup {
		s, found, err := l.Session(ctx, cp.Site, cp.ID, tx)
		if err != nil {
			return Session{}, false, fmt.Errorf("look up session %d: %w", tx, err)
		}
		return s, found, nil
	}
	return Session{}, false, nil
}

// OnStopTransaction closes the session, with its energy from the meter
// register, and writes the transaction data as readings. A stop for an
// unknown transaction (its start went to another central system, or was
// lost) is accepted and recorded as a session without start; its start
// register is taken from the transaction data when they have it.
func (h *coreHandler) OnStopTransaction(id string, req *core.StopTransactionRequest) (*core.StopTransactionConfirmation, error) {
	ch, cp, err := h.charger(id)
	if err != nil {
		return nil, err
	}
	tx := ch.realTx(req.TransactionId)
	now := h.c.now()
	ctx, cancel := h.context()
	defer cancel()
	s, known, err := h.session(ctx, ch, cp, tx)
	if err != nil {
		return nil, h.internal(id, "StopTransaction", err)
	}
	startKnown := known
	if !known {
		h.c.log.Warn("StopTransaction for an unknown transaction; recorded without its start",
			"charge_point", id, "transaction", tx)
		s = Session{Site: cp.Site, ChargePoint: id, TransactionID: tx, IDTag: req.IdTag}
		if wh, ok := beginRegister(h.c.cat, cp.Asset, req.TransactionData, now); ok {
			s.MeterStart, startKnown = wh, true
		}
	}
	asset := connectorAsset(cp.Asset, s.Connector)
	stop := req.Timestamp.Time
	s.Stop = stop
	s.MeterStop = float64(req.MeterStop)
	s.Reason = string(req.Reason)
	if s.Reason == "" {
		s.Reason = string(core.ReasonLocal) // the OCPP default
	}
	if s.IDTag == "" {
		s.IDTag = req.IdTag
	}
	rs, skipped := meterReadings(h.c.cat, asset, req.TransactionData, now)
	h.logSkipped(id, "StopTransaction", skipped)
	if r, err := h.register(asset, s.MeterStop, stop, now); err != nil {
		h.logSkipped(id, "StopTransaction", []error{err})
	} else if !slices.ContainsFunc(rs, func(x cim.Reading) bool { return x.SeriesKey == r.SeriesKey && x.Time == r.Time }) {
		rs = append(rs, r)
	}
	if startKnown {
		if e := s.MeterStop - s.MeterStart; e >= 0 {
			s.EnergyWh = e
			if r, err := h.c.cat.Normalize(cim.Input{Asset: asset, Quantity: "ev_session_energy", Unit: "Wh",
				Time: stop.UnixMilli(), Value: e}, now); err == nil {
				rs = append(rs, r)
			} else {
				h.logSkipped(id, "StopTransaction", []error{err})
			}
		} else {
			h.c.log.Warn("meter register went back during the session; no session energy",
				"charge_point", id, "transaction", tx, "meter_start_wh", s.MeterStart, "meter_stop_wh", s.MeterStop)
		}
	}
	if err := h.write(ctx, cp.Site, rs); err != nil {
		return nil, h.internal(id, "StopTransaction", err)
	}
	if h.c.deps.Sessions != nil {
		if err := h.c.deps.Sessions.PutSession(ctx, s); err != nil {
			return nil, h.internal(id, "StopTransaction", fmt.Errorf("store session %d: %w", tx, err))
		}
	}
	ch.mu.Lock()
	delete(ch.open, tx)
	ch.mu.Unlock()
	h.c.log.Info("transaction stopped", "charge_point", id, "transaction", tx, "reason", s.Reason,
		"energy_wh", s.EnergyWh, "known", known)

	conf := core.NewStopTransactionConfirmation()
	if req.IdTag != "" {
		status, err := h.authorize(ctx, cp.Site, req.IdTag)
		if err != nil {
			// The stop is recorded; an unknown tag status is no reason
			// to make the charger resend it.
			h.c.log.Warn("id tag not checked at StopTransaction", "charge_point", id, "err", err)
		} else {
			conf.IdTagInfo = types.NewIdTagInfo(status)
		}
	}
	return conf, nil
}

// OnMeterValues writes every sampled value it can map as a reading, at the
// time the charger sampled it. During a session known here, the energy
// delivered so far is written as ev_session_energy too.
func (h *coreHandler) OnMeterValues(id string, req *core.MeterValuesRequest) (*core.MeterValuesConfirmation, error) {
	ch, cp, err := h.charger(id)
	if err != nil {
		return nil, err
	}
	now := h.c.now()
	asset := connectorAsset(cp.Asset, req.ConnectorId)
	rs, skipped := meterReadings(h.c.cat, asset, req.MeterValue, now)
	h.logSkipped(id, "MeterValues", skipped)
	if req.TransactionId != nil {
		tx := ch.realTx(*req.TransactionId)
		ch.mu.Lock()
		s, open := ch.open[tx]
		var meterStart float64
		if open {
			meterStart = s.MeterStart
		}
		ch.mu.Unlock()
		if reg, ok := latestRegister(rs, asset); ok && open && reg.Value >= meterStart {
			if r, err := h.c.cat.Normalize(cim.Input{Asset: asset, Quantity: "ev_session_energy", Unit: "Wh",
				Time: reg.Time, Value: reg.Value - meterStart}, now); err == nil {
				rs = append(rs, r)
			}
		}
	}
	ctx, cancel := h.context()
	defer cancel()
	if err := h.write(ctx, cp.Site, rs); err != nil {
		return nil, h.internal(id, "MeterValues", err)
	}
	return core.NewMeterValuesConfirmation(), nil
}

// OnDataTransfer only logs: gridlink knows no vendor extension.
func (h *coreHandler) OnDataTransfer(id string, req *core.DataTransferRequest) (*core.DataTransferConfirmation, error) {
	status := core.DataTransferStatusUnknownVendorId
	if slices.Contains(h.c.cfg.DataTransferVendors, req.VendorId) {
		status = core.DataTransferStatusAccepted
	}
	h.c.log.Info("OCPP DataTransfer", "charge_point", id, "vendor_id", req.VendorId, "message_id", req.MessageId,
		"data", truncateString(fmt.Sprint(req.Data), 500), "status", string(status))
	return core.NewDataTransferConfirmation(status), nil
}

var _ core.CentralSystemHandler = (*coreHandler)(nil)

// errIsOCPP reports whether err came from the charger as a CALLERROR.
func errIsOCPP(err error) (*ocpp.Error, bool) {
	var e *ocpp.Error
	ok := errors.As(err, &e)
	return e, ok
}

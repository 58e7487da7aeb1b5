package chargepoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/remotetrigger"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
	"github.com/lorenzodonini/ocpp-go/ocppj"
)

// onCall answers one CALL of the central system. It returns the answer
// frame and what to do once the answer is written (a triggered message
// must follow its TriggerMessage.conf).
func (cp *ChargePoint) onCall(ctx context.Context, f frame) ([]byte, func()) {
	resp, cerr, after := cp.handle(ctx, f.Action, f.Payload)
	if cerr != nil {
		cp.log.Info("ocpp refused central system request", "action", f.Action, "code", cerr.Code, "err", cerr.Description)
		return errorFrame(f.ID, cerr), nil
	}
	b, err := resultFrame(f.ID, resp)
	if err != nil {
		return errorFrame(f.ID, &CallError{Code: "InternalError", Description: err.Error()}), nil
	}
	return b, after
}

// handle parses, validates and executes a request of the central system.
func (cp *ChargePoint) handle(ctx context.Context, action string, payload json.RawMessage) (any, *CallError, func()) {
	// ocpp-go parses and validates the payload and names the error
	// code the standard gives for each kind of fault.
	var raw any
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, &CallError{Code: string(ocppj.FormatViolationV16), Description: err.Error()}, nil
	}
	if _, ok := cp.parser.GetProfileForFeature(action); !ok {
		return nil, &CallError{Code: string(ocppj.NotImplemented), Description: fmt.Sprintf("unknown action %q", action)}, nil
	}
	msg, err := cp.parser.ParseMessage([]any{float64(typeCall), "0", action, raw}, nil)
	if err != nil {
		var oe *ocpp.Error
		if errors.As(err, &oe) {
			return nil, &CallError{Code: cp.errorCode(action, payload, oe.Code), Description: oe.Description}, nil
		}
		return nil, &CallError{Code: string(ocppj.FormatViolationV16), Description: err.Error()}, nil
	}
	call, ok := msg.(*ocppj.Call)
	if !ok {
		return nil, &CallError{Code: string(ocppj.InternalError), Description: "not a call"}, nil
	}
	switch req := call.Payload.(type) {
	case *core.ChangeConfigurationRequest:
		return core.NewChangeConfigurationConfirmation(cp.changeConfiguration(req.Key, req.Value)), nil, nil
	case *core.GetConfigurationRequest:
		return cp.getConfiguration(req.Key), nil, nil
	case *core.RemoteStartTransactionRequest:
		return core.NewRemoteStartTransactionConfirmation(cp.remoteStart(req)), nil, nil
	case *core.RemoteStopTransactionRequest:
		return core.NewRemoteStopTransactionConfirmation(cp.remoteStop(int64(req.TransactionId))), nil, nil
	case *core.ResetRequest:
		reason := "SoftReset"
		if req.Type == core.ResetTypeHard {
			reason = "HardReset"
		}
		return core.NewResetConfirmation(core.ResetStatusAccepted), nil, func() {
			cp.bg.Go(func() { cp.reset(ctx, reason) })
		}
	case *remotetrigger.TriggerMessageRequest:
		return cp.trigger(ctx, req)
	case *core.ChangeAvailabilityRequest:
		// Availability is not modelled: refusing is a valid answer.
		return core.NewChangeAvailabilityConfirmation(core.AvailabilityStatusRejected), nil, nil
	case *core.ClearCacheRequest:
		return core.NewClearCacheConfirmation(core.ClearCacheStatusAccepted), nil, nil
	case *core.UnlockConnectorRequest:
		return core.NewUnlockConnectorConfirmation(core.UnlockStatusNotSupported), nil, nil
	case *core.DataTransferRequest:
		return core.NewDataTransferConfirmation(core.DataTransferStatusUnknownVendorId), nil, nil
	}
	return nil, &CallError{Code: string(ocppj.NotSupported), Description: fmt.Sprintf("action %s is not supported by this charge point", action)}, nil
}

// errorCode sharpens ocpp-go's error code to the one OCPP-J 1.6 names:
// ocpp-go reports a wrong JSON type as FormationViolation and an invalid
// enumeration value as GenericError.
func (cp *ChargePoint) errorCode(action string, payload json.RawMessage, code ocpp.ErrorCode) string {
	switch code {
	case ocppj.GenericError:
		return string(ocppj.PropertyConstraintViolation)
	case ocppj.FormatViolationV16:
		p, ok := cp.parser.GetProfileForFeature(action)
		if !ok {
			break
		}
		v := reflect.New(p.GetFeature(action).GetRequestType()).Interface()
		var te *json.UnmarshalTypeError
		if errors.As(json.Unmarshal(payload, v), &te) {
			return string(ocppj.TypeConstraintViolation)
		}
	}
	return string(code)
}

// configKey is one configuration key.
type configKey struct {
	name     string
	readonly bool
}

var configKeys = []configKey{
	{"AuthorizeRemoteTxRequests", false},
	{"GetConfigurationMaxKeys", true},
	{"HeartbeatInterval", false},
	{"LocalAuthorizeOffline", true},
	{"MeterValueSampleInterval", false},
	{"MeterValuesSampledData", false},
	{"MeterValuesSampledDataMaxLength", true},
	{"NumberOfConnectors", true},
	{"StopTxnSampledData", true},
	{"SupportedFeatureProfiles", true},
	{"TransactionMessageAttempts", false},
	{"TransactionMessageRetryInterval", false},
	{"WebSocketPingInterval", true},
}

// seconds writes a duration as whole seconds, or as decimal seconds when
// below a second (a test interval).
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// parseSeconds reads a non-negative number of seconds.
func parseSeconds(s string) (time.Duration, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v > 86400*365 || math.IsNaN(v) {
		return 0, false
	}
	return time.Duration(v * float64(time.Second)), true
}

func (cp *ChargePoint) maxSampled() int {
	if cp.cfg.Has(QuirkAlfen) {
		return 9
	}
	return 20
}

// configValue returns a key's value. Callers hold cp.mu.
func (cp *ChargePoint) configValue(name string) string {
	switch name {
	case "AuthorizeRemoteTxRequests":
		return strconv.FormatBool(cp.set.authorizeRemote)
	case "GetConfigurationMaxKeys":
		return strconv.Itoa(len(configKeys))
	case "HeartbeatInterval":
		return seconds(cp.heartbeat)
	case "LocalAuthorizeOffline":
		return "true"
	case "MeterValueSampleInterval":
		return seconds(cp.set.sampleInterval)
	case "MeterValuesSampledData":
		return cp.set.sampledRaw
	case "MeterValuesSampledDataMaxLength":
		return strconv.Itoa(cp.maxSampled())
	case "NumberOfConnectors":
		return strconv.Itoa(len(cp.connectors))
	case "StopTxnSampledData":
		return "Energy.Active.Import.Register"
	case "SupportedFeatureProfiles":
		return "Core,RemoteTrigger"
	case "TransactionMessageAttempts":
		return strconv.Itoa(cp.set.txAttempts)
	case "TransactionMessageRetryInterval":
		return seconds(cp.set.txRetry)
	case "WebSocketPingInterval":
		return seconds(max(cp.cfg.PingInterval, 0))
	}
	return ""
}

// changeConfiguration sets a key.
func (cp *ChargePoint) changeConfiguration(key, value string) core.ConfigurationStatus {
	var k *configKey
	for i := range configKeys {
		if configKeys[i].name == key {
			k = &configKeys[i]
		}
	}
	if k == nil {
		return core.ConfigurationStatusNotSupported
	}
	if k.readonly {
		return core.ConfigurationStatusRejected
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	switch key {
	case "AuthorizeRemoteTxRequests":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return core.ConfigurationStatusRejected
		}
		cp.set.authorizeRemote = b
	case "HeartbeatInterval":
		d, ok := parseSeconds(value)
		if !ok || d <= 0 {
			return core.ConfigurationStatusRejected
		}
		cp.heartbeat = d
		poke(cp.hbReset)
	case "MeterValueSampleInterval":
		d, ok := parseSeconds(value)
		if !ok {
			return core.ConfigurationStatusRejected
		}
		cp.set.sampleInterval = d
	case "MeterValuesSampledData":
		sel, err := parseSampledData(value, cp.maxSampled())
		if err != nil {
			cp.log.Info("ocpp configuration refused", "key", key, "err", err)
			return core.ConfigurationStatusRejected
		}
		cp.set.sampled, cp.set.sampledRaw = sel, value
	case "TransactionMessageAttempts":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 100 {
			return core.ConfigurationStatusRejected
		}
		cp.set.txAttempts = n
	case "TransactionMessageRetryInterval":
		d, ok := parseSeconds(value)
		if !ok || d <= 0 {
			return core.ConfigurationStatusRejected
		}
		cp.set.txRetry = d
	}
	cp.log.Info("ocpp configuration changed", "key", key, "value", value)
	return core.ConfigurationStatusAccepted
}

// getConfiguration answers GetConfiguration.
func (cp *ChargePoint) getConfiguration(keys []string) *core.GetConfigurationConfirmation {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	conf := &core.GetConfigurationConfirmation{}
	add := func(k configKey) {
		v := cp.configValue(k.name)
		conf.ConfigurationKey = append(conf.ConfigurationKey, core.ConfigurationKey{Key: k.name, Readonly: k.readonly, Value: &v})
	}
	if len(keys) == 0 {
		for _, k := range configKeys {
			add(k)
		}
		return conf
	}
	for _, name := range keys {
		found := false
		for _, k := range configKeys {
			if k.name == name {
				add(k)
				found = true
			}
		}
		if !found {
			conf.UnknownKey = append(conf.UnknownKey, name)
		}
	}
	return conf
}

// remoteStart hands a RemoteStartTransaction to an idle connector.
func (cp *ChargePoint) remoteStart(req *core.RemoteStartTransactionRequest) types.RemoteStartStopStatus {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, k := range cp.connectors {
		if req.ConnectorId != nil && *req.ConnectorId != k.id {
			continue
		}
		if k.ended != nil || k.status != "Available" {
			continue
		}
		select {
		case k.remoteStart <- req.IdTag:
			return types.RemoteStartStopStatusAccepted
		default:
		}
	}
	return types.RemoteStartStopStatusRejected
}

// remoteStop stops the transaction with id.
func (cp *ChargePoint) remoteStop(id int64) types.RemoteStartStopStatus {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, k := range cp.connectors {
		if k.tx != nil && k.tx.state == txStarted && k.tx.id == id {
			select {
			case k.stop <- "Remote":
			default:
			}
			return types.RemoteStartStopStatusAccepted
		}
	}
	return types.RemoteStartStopStatusRejected
}

// trigger answers TriggerMessage and sends the message after the answer.
func (cp *ChargePoint) trigger(ctx context.Context, req *remotetrigger.TriggerMessageRequest) (any, *CallError, func()) {
	var ks []*connector
	if req.ConnectorId != nil && *req.ConnectorId > len(cp.connectors) {
		return remotetrigger.NewTriggerMessageConfirmation(remotetrigger.TriggerMessageStatusRejected), nil, nil
	}
	if req.ConnectorId != nil && *req.ConnectorId > 0 {
		ks = []*connector{cp.connectors[*req.ConnectorId-1]}
	} else {
		ks = cp.connectors
	}
	accepted := remotetrigger.NewTriggerMessageConfirmation(remotetrigger.TriggerMessageStatusAccepted)
	switch req.RequestedMessage {
	case core.BootNotificationFeatureName:
		return accepted, nil, func() {
			e := &entry{action: "BootNotification", build: func(int64) (any, []MeterValue) { return cp.bootPayload(), nil }}
			e.onResult = func(raw json.RawMessage) {
				var conf bootNotificationConf
				if json.Unmarshal(raw, &conf) == nil && conf.Status == "Accepted" {
					cp.acceptBoot(conf)
				}
			}
			_ = cp.enqueue(e)
		}
	case core.HeartbeatFeatureName:
		return accepted, nil, func() {
			_ = cp.enqueue(&entry{action: "Heartbeat", build: func(int64) (any, []MeterValue) { return heartbeatReq{}, nil }})
		}
	case core.StatusNotificationFeatureName:
		return accepted, nil, func() {
			if req.ConnectorId == nil || *req.ConnectorId == 0 {
				cp.sendStatus(0, "Available")
			}
			for _, k := range ks {
				cp.sendStatus(k.id, cp.statusOf(k.id))
			}
		}
	case core.MeterValuesFeatureName:
		return accepted, nil, func() {
			for _, k := range ks {
				cp.sampleAndSend(k, "Trigger")
			}
		}
	}
	return remotetrigger.NewTriggerMessageConfirmation(remotetrigger.TriggerMessageStatusNotImplemented), nil, nil
}

// reset stops every transaction, gives the StopTransactions a chance to
// go out, and reboots: the connection drops and the charger boots again.
func (cp *ChargePoint) reset(ctx context.Context, reason string) {
	cp.log.Info("ocpp reset", "reason", reason)
	cp.stopAll(ctx, reason)
	cp.waitDrained(ctx, cp.cfg.CallTimeout)
	cp.mu.Lock()
	cp.reboot = true
	c := cp.live
	cp.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// waitDrained waits until no transaction message is queued or in flight,
// the charger is offline, or d passes.
func (cp *ChargePoint) waitDrained(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		cp.mu.Lock()
		busy := cp.online != nil && slices.ContainsFunc(cp.outbox, func(e *entry) bool { return e.durable })
		ch := cp.drained
		cp.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

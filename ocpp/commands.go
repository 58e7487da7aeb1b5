package ocpp

import (
	"context"
	"fmt"

	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/core"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/remotetrigger"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
)

// call sends a request to a charger and waits for its answer, the
// context's end, or (without a deadline) Config.CallTimeout. A CALLERROR
// of the charger comes back as an error wrapping *ocpp.Error.
func (c *CentralSystem) call(ctx context.Context, id string, req ocpp.Request) (ocpp.Response, error) {
	action := req.GetFeatureName()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%s to %s: central system closed", action, id)
	}
	if c.ws.conn(id) == nil {
		return nil, fmt.Errorf("%s to %s: %w", action, id, ErrNotConnected)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	type result struct {
		resp ocpp.Response
		err  error
	}
	// Buffered: the answer may come after the caller gave up.
	done := make(chan result, 1)
	err := c.cs.SendRequestAsync(id, req, func(resp ocpp.Response, err error) { done <- result{resp, err} })
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", action, id, err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			if e, ok := errIsOCPP(r.err); ok {
				return nil, fmt.Errorf("%s to %s: charge point answered %s (%s): %w", action, id, e.Code, e.Description, r.err)
			}
			return nil, fmt.Errorf("%s to %s: %w", action, id, r.err)
		}
		return r.resp, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s to %s: no answer: %w", action, id, ctx.Err())
	}
}

// RemoteStartTransaction asks a charger to start a transaction for idTag;
// connector 0 lets the charger choose. It reports whether the charger
// accepted.
func (c *CentralSystem) RemoteStartTransaction(ctx context.Context, id, idTag string, connector int) (bool, error) {
	req := core.NewRemoteStartTransactionRequest(idTag)
	if connector > 0 {
		req.ConnectorId = &connector
	}
	resp, err := c.call(ctx, id, req)
	if err != nil {
		return false, err
	}
	return resp.(*core.RemoteStartTransactionConfirmation).Status == types.RemoteStartStopStatusAccepted, nil
}

// RemoteStopTransaction asks a charger to stop a transaction. It reports
// whether the charger accepted.
func (c *CentralSystem) RemoteStopTransaction(ctx context.Context, id string, transactionID int64) (bool, error) {
	resp, err := c.call(ctx, id, core.NewRemoteStopTransactionRequest(int(transactionID)))
	if err != nil {
		return false, err
	}
	return resp.(*core.RemoteStopTransactionConfirmation).Status == types.RemoteStartStopStatusAccepted, nil
}

// ChangeConfiguration sets a configuration key. It returns the charger's
// status: Accepted, Rejected, RebootRequired or NotSupported. An accepted
// value also updates the kept configuration.
func (c *CentralSystem) ChangeConfiguration(ctx context.Context, id, key, value string) (string, error) {
	resp, err := c.call(ctx, id, core.NewChangeConfigurationRequest(key, value))
	if err != nil {
		return "", err
	}
	status := resp.(*core.ChangeConfigurationConfirmation).Status
	if status == core.ConfigurationStatusAccepted || status == core.ConfigurationStatusRebootRequired {
		if ch := c.lookup(id); ch != nil {
			ch.mu.Lock()
			if ch.config != nil {
				for i := range ch.config.Keys {
					if ch.config.Keys[i].Key == key {
						ch.config.Keys[i].Value = value
					}
				}
			}
			ch.mu.Unlock()
		}
	}
	c.log.Info("configuration change", "charge_point", id, "key", key, "value", value, "status", string(status))
	return string(status), nil
}

// GetConfiguration reads configuration keys (none: all of them). The
// answer is merged into the configuration kept for the charger.
func (c *CentralSystem) GetConfiguration(ctx context.Context, id string, keys ...string) (Configuration, error) {
	resp, err := c.call(ctx, id, core.NewGetConfigurationRequest(keys))
	if err != nil {
		return Configuration{}, err
	}
	conf := resp.(*core.GetConfigurationConfirmation)
	got := Configuration{Time: c.now(), Unknown: conf.UnknownKey}
	for _, k := range conf.ConfigurationKey {
		ck := ConfigKey{Key: k.Key, Readonly: k.Readonly}
		if k.Value != nil {
			ck.Value = *k.Value
		}
		got.Keys = append(got.Keys, ck)
	}
	if ch := c.lookup(id); ch != nil {
		ch.mu.Lock()
		if ch.config == nil {
			ch.config = &Configuration{}
		}
		merged := ch.config
		merged.Time, merged.Unknown = got.Time, append([]string(nil), got.Unknown...)
		for _, k := range got.Keys {
			replaced := false
			for i := range merged.Keys {
				if merged.Keys[i].Key == k.Key {
					merged.Keys[i], replaced = k, true
				}
			}
			if !replaced {
				merged.Keys = append(merged.Keys, k)
			}
		}
		ch.mu.Unlock()
	}
	return got, nil
}

// TriggerMessage asks a charger to send a message now: BootNotification,
// DiagnosticsStatusNotification, FirmwareStatusNotification, Heartbeat,
// MeterValues or StatusNotification; connector 0 means none given. It
// returns the charger's status: Accepted, Rejected or NotImplemented.
func (c *CentralSystem) TriggerMessage(ctx context.Context, id, message string, connector int) (string, error) {
	req := remotetrigger.NewTriggerMessageRequest(remotetrigger.MessageTrigger(message))
	if connector > 0 {
		req.ConnectorId = &connector
	}
	resp, err := c.call(ctx, id, req)
	if err != nil {
		return "", err
	}
	return string(resp.(*remotetrigger.TriggerMessageConfirmation).Status), nil
}

// Reset asks a charger to reset, hard (reboot) or soft. It reports whether
// the charger accepted.
func (c *CentralSystem) Reset(ctx context.Context, id string, hard bool) (bool, error) {
	t := core.ResetTypeSoft
	if hard {
		t = core.ResetTypeHard
	}
	resp, err := c.call(ctx, id, core.NewResetRequest(t))
	if err != nil {
		return false, err
	}
	return resp.(*core.ResetConfirmation).Status == core.ResetStatusAccepted, nil
}

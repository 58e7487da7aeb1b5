package chargepoint

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// txState is how far the central system has taken a transaction.
type txState int

const (
	txPending txState = iota // StartTransaction not answered yet
	txStarted                // the central system assigned an id
	txFailed                 // StartTransaction was refused for good
)

// txn is one transaction (charging session) on a connector.
type txn struct {
	connector  int
	idTag      string
	start      time.Time
	meterStart int64
	id         int64
	state      txState
}

// connector is one outlet with its own energy meter.
type connector struct {
	id       int
	status   string
	register float64   // Wh, only grows
	last     time.Time // last physics step
	ev       *ev       // plugged-in vehicle, nil when none
	power    float64   // W now
	tx       *txn
	ended    chan struct{} // closed when the running session ends

	remoteStart chan string // id tag of a RemoteStartTransaction
	stop        chan string // stop reason
}

// ev is a plugged-in vehicle's battery.
type ev struct {
	capWh, soc, targetSoC, maxW, wantWh, deliveredWh float64
}

// power is what the EV draws from a charger that gives at most limit W:
// constant power, tapering above 80 % state of charge as a real battery
// management system does, nothing once full or satisfied.
func (e *ev) power(limit float64) float64 {
	if e.soc >= e.targetSoC || (e.wantWh > 0 && e.deliveredWh >= e.wantWh) {
		return 0
	}
	p := min(e.maxW, limit)
	if e.soc > 80 {
		p *= max(0.1, (100-e.soc)/20)
	}
	return p
}

// advance runs connector k's meter up to now. Callers hold cp.mu.
func (cp *ChargePoint) advance(k *connector, now time.Time) {
	dt := now.Sub(k.last).Seconds() * cp.cfg.Speed
	k.last = now
	if k.ev == nil {
		k.power = 0
		return
	}
	// Small steps keep the taper's shape when samples are far apart.
	for dt > 0 {
		step := min(dt, 30)
		dt -= step
		e := k.ev.power(cp.cfg.MaxPowerW) * step / 3600
		if k.ev.wantWh > 0 {
			e = min(e, k.ev.wantWh-k.ev.deliveredWh)
		}
		e = min(e, (k.ev.targetSoC-k.ev.soc)/100*k.ev.capWh) // a full battery takes no more
		if e <= 0 {
			break
		}
		k.register += e
		k.ev.deliveredWh += e
		k.ev.soc = min(100, k.ev.soc+e/k.ev.capWh*100)
	}
	k.power = k.ev.power(cp.cfg.MaxPowerW)
}

// plan returns the scripted sessions of connector id.
func (cp *ChargePoint) plan(id int) []Session {
	var out []Session
	for _, s := range cp.cfg.Plan {
		if max(s.Connector, 1) == id {
			out = append(out, s)
		}
	}
	return out
}

// randomSession draws a realistic session: one of a few common EVs
// arriving with 10-60 % and leaving at 80-100 %, plugged in a while longer
// than charging takes.
func (cp *ChargePoint) randomSession() Session {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	r := cp.rng
	capWh := []float64{40000, 58000, 77000, 100000}[r.IntN(4)]
	soc := 10 + r.Float64()*50
	target := 80 + r.Float64()*20
	maxW := []float64{3700, 7400, 11000, 22000}[r.IntN(4)]
	need := (target - soc) / 100 * capWh
	hours := need/min(maxW, cp.cfg.MaxPowerW)*1.15 + r.Float64()*3
	hours = min(hours, 14)
	return Session{
		Duration:   time.Duration(hours * float64(time.Hour) / cp.cfg.Speed),
		EnergyWh:   need,
		PowerW:     maxW,
		IDTag:      cp.cfg.IDTags[r.IntN(len(cp.cfg.IDTags))],
		SoC:        soc,
		CapacityWh: capWh,
	}
}

// randomGap draws the idle time before the next random session.
func (cp *ChargePoint) randomGap() time.Duration {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return time.Duration(cp.rng.ExpFloat64() * float64(cp.cfg.MeanIdle) / cp.cfg.Speed)
}

// runConnector runs connector k's sessions until ctx ends: the scripted
// plan, random sessions, or the ones the central system starts.
func (cp *ChargePoint) runConnector(ctx context.Context, k *connector) {
	plan := cp.plan(k.id)
	random := cp.cfg.Plan == nil
	next := 0
	for ctx.Err() == nil {
		var s Session
		var timer <-chan time.Time
		var t *time.Timer
		switch {
		case next < len(plan):
			s = plan[next]
			t = time.NewTimer(s.After)
		case random:
			s = cp.randomSession()
			t = time.NewTimer(cp.randomGap())
		}
		if t != nil {
			timer = t.C
		}
		remote := false
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case tag := <-k.remoteStart:
			if t != nil {
				t.Stop()
			}
			s = cp.randomSession()
			s.IDTag, remote = tag, true
		case <-timer:
			if next < len(plan) {
				next++
			}
		}
		cp.charge(ctx, k, s, remote)
	}
}

// charge runs one session on k: plug-in, authorisation, transaction,
// periodic meter values, stop.
func (cp *ChargePoint) charge(ctx context.Context, k *connector, s Session, remote bool) {
	tag := s.IDTag
	if tag == "" {
		tag = cp.cfg.IDTags[0]
	}
	cp.mu.Lock()
	k.ended = make(chan struct{})
	authRemote := cp.set.authorizeRemote
	cp.mu.Unlock()
	defer func() {
		cp.mu.Lock()
		close(k.ended)
		k.ended = nil
		cp.mu.Unlock()
	}()
	// A stop request left from an earlier session does not apply.
	select {
	case <-k.stop:
	default:
	}

	cp.setStatus(k, "Preparing")
	if !remote || authRemote {
		raw, err := cp.request(ctx, "Authorize", authorizeReq{IDTag: tag})
		var conf authorizeConf
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			_ = json.Unmarshal(raw, &conf)
			if conf.IDTagInfo.Status != "Accepted" {
				cp.log.Info("ocpp id tag not accepted", "connector", k.id, "idTag", tag, "status", conf.IDTagInfo.Status)
				cp.setStatus(k, "Available")
				return
			}
		default:
			// Offline or no answer: the charger trusts its local
			// authorisation cache (LocalAuthorizeOffline).
			cp.log.Info("ocpp authorising locally", "connector", k.id, "idTag", tag, "err", err)
		}
	}

	soc, capWh := s.SoC, s.CapacityWh
	if soc == 0 {
		soc = 20
	}
	if capWh == 0 {
		capWh = 60000
	}
	powerW := s.PowerW
	if powerW == 0 {
		powerW = cp.cfg.MaxPowerW
	}
	now := time.Now()
	cp.mu.Lock()
	cp.advance(k, now)
	k.ev = &ev{capWh: capWh, soc: soc, targetSoC: 100, maxW: powerW, wantWh: s.EnergyWh}
	tx := &txn{connector: k.id, idTag: tag, start: now.UTC().Truncate(time.Millisecond), meterStart: int64(math.Floor(k.register))}
	k.tx = tx
	cp.advance(k, now)
	cp.mu.Unlock()
	cp.enqueueStart(tx)
	cp.setStatus(k, "Charging")

	var end time.Time
	if s.Duration > 0 {
		end = now.Add(s.Duration)
	}
	reason := ""
	for reason == "" {
		cp.mu.Lock()
		iv := cp.set.sampleInterval
		cp.mu.Unlock()
		var tick, leave <-chan time.Time
		var tt, lt *time.Timer
		if iv > 0 {
			tt = time.NewTimer(iv)
			tick = tt.C
		}
		if !end.IsZero() {
			lt = time.NewTimer(time.Until(end))
			leave = lt.C
		}
		select {
		case <-ctx.Done():
			reason = "PowerLoss"
		case reason = <-k.stop:
		case <-leave:
			reason = "EVDisconnected"
		case <-tick:
			cp.sampleAndSend(k, "Sample.Periodic")
			cp.mu.Lock()
			full := k.ev != nil && k.power == 0
			cp.mu.Unlock()
			switch {
			case full && s.Duration == 0 && s.EnergyWh > 0:
				reason = "EVDisconnected" // scripted: leave once satisfied
			case full:
				cp.setStatus(k, "SuspendedEV")
			default:
				cp.setStatus(k, "Charging")
			}
		}
		if tt != nil {
			tt.Stop()
		}
		if lt != nil {
			lt.Stop()
		}
	}
	if ctx.Err() != nil {
		return // switched off: the session ends with the process
	}
	cp.stopTransaction(k, reason)
	cp.setStatus(k, "Finishing")
	cp.setStatus(k, "Available")
}

// enqueueStart queues StartTransaction for tx.
func (cp *ChargePoint) enqueueStart(tx *txn) {
	req := startTransactionReq{ConnectorID: tx.connector, IDTag: tx.idTag, MeterStart: tx.meterStart, Timestamp: stamp(tx.start)}
	e := &entry{action: "StartTransaction", durable: true, tx: tx,
		build: func(int64) (any, []MeterValue) {
			return req, []MeterValue{cp.registerTruth(tx.connector, 0, "StartTransaction", "Transaction.Begin", tx.start, tx.meterStart)}
		},
	}
	e.onResult = func(raw json.RawMessage) {
		var conf startTransactionConf
		err := json.Unmarshal(raw, &conf)
		if err == nil && conf.TransactionID == nil {
			err = errors.New("no transactionId")
		}
		cp.mu.Lock()
		if err != nil {
			tx.state = txFailed
			cp.mu.Unlock()
			cp.log.Warn("ocpp bad StartTransaction answer", "err", err, "answer", short(raw))
			return
		}
		tx.id, tx.state = *conf.TransactionID, txStarted
		// The id is known only now: fix up the truth of the start.
		for i := len(cp.sent) - 1; i >= 0; i-- {
			if m := &cp.sent[i]; m.Message == "StartTransaction" && m.Connector == tx.connector && m.TransactionID == 0 && m.Time.Equal(tx.start) {
				m.TransactionID = tx.id
				break
			}
		}
		cp.txns = append(cp.txns, Transaction{ID: tx.id, Connector: tx.connector, IDTag: tx.idTag, Start: tx.start, MeterStart: tx.meterStart})
		cp.mu.Unlock()
		if conf.IDTagInfo.Status != "Accepted" {
			cp.log.Info("ocpp transaction id tag not accepted, stopping", "transactionId", tx.id, "status", conf.IDTagInfo.Status)
			select {
			case cp.connectors[tx.connector-1].stop <- "DeAuthorized":
			default:
			}
		}
	}
	e.onFail = func(err error) {
		cp.mu.Lock()
		tx.state = txFailed
		cp.mu.Unlock()
	}
	_ = cp.enqueue(e)
}

// stopTransaction ends k's transaction and queues StopTransaction with
// the register at start and stop as transaction data.
func (cp *ChargePoint) stopTransaction(k *connector, reason string) {
	now := time.Now()
	cp.mu.Lock()
	cp.advance(k, now)
	tx := k.tx
	k.tx, k.ev, k.power = nil, nil, 0
	stop := now.UTC().Truncate(time.Millisecond)
	meterStop := int64(math.Floor(k.register))
	cp.mu.Unlock()
	if tx == nil {
		return
	}
	reg := func(ctx string, t time.Time, wh int64) meterValue {
		return meterValue{Timestamp: stamp(t), SampledValue: []sampledValue{cp.decorate(sampledValue{
			Value: strconv.FormatInt(wh, 10), Context: ctx, Measurand: "Energy.Active.Import.Register", Unit: "Wh"})}}
	}
	data := []meterValue{reg("Transaction.Begin", tx.start, tx.meterStart), reg("Transaction.End", stop, meterStop)}
	e := &entry{action: "StopTransaction", durable: true, tx: tx,
		build: func(txID int64) (any, []MeterValue) {
			truth := []MeterValue{cp.registerTruth(tx.connector, txID, "StopTransaction", "", stop, meterStop)}
			truth = append(truth, cp.truthOf(data, tx.connector, txID, "StopTransaction")...)
			return stopTransactionReq{IDTag: tx.idTag, MeterStop: meterStop, Timestamp: stamp(stop),
				TransactionID: txID, Reason: reason, TransactionData: data}, truth
		},
	}
	e.onResult = func(json.RawMessage) {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		for i := range cp.txns {
			if t := &cp.txns[i]; t.ID == tx.id && t.Connector == tx.connector && t.Stop.IsZero() {
				t.Stop, t.MeterStop, t.Reason = stop, &meterStop, reason
				break
			}
		}
	}
	_ = cp.enqueue(e)
}

// sampleAndSend takes a sample of k and queues it as MeterValues: a
// transaction's samples are durable, others are sent only when online.
func (cp *ChargePoint) sampleAndSend(k *connector, context string) {
	cp.mu.Lock()
	cp.advance(k, time.Now())
	mv, ok := cp.sample(k, time.Now(), context)
	tx := k.tx
	cp.mu.Unlock()
	if !ok {
		return
	}
	data := []meterValue{mv}
	_ = cp.enqueue(&entry{action: "MeterValues", durable: tx != nil, tx: tx,
		build: func(txID int64) (any, []MeterValue) {
			req := meterValuesReq{ConnectorID: k.id, MeterValue: data}
			if tx != nil {
				req.TransactionID = &txID
			}
			return req, cp.truthOf(data, k.id, txID, "MeterValues")
		},
	})
}

// stopAll stops every running session with reason and waits until their
// StopTransactions are queued.
func (cp *ChargePoint) stopAll(ctx context.Context, reason string) {
	for _, k := range cp.connectors {
		cp.mu.Lock()
		ended, busy := k.ended, k.tx != nil
		cp.mu.Unlock()
		if ended == nil || !busy {
			continue
		}
		select {
		case k.stop <- reason:
		default:
		}
		select {
		case <-ended:
		case <-ctx.Done():
			return
		}
	}
}

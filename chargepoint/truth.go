package chargepoint

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// MeterValue is one sampled value the charger sent and the central system
// acknowledged: the truth a test compares the platform with.
type MeterValue struct {
	ChargePoint string `json:"chargePoint"`
	Connector   int    `json:"connector"`
	// TransactionID is the id the central system assigned; 0 outside a
	// transaction.
	TransactionID int64 `json:"transactionId,omitempty"`
	// Message is the action that carried the value: MeterValues,
	// StartTransaction (meterStart) or StopTransaction (meterStop and
	// transactionData).
	Message string `json:"message"`
	// Time is the value's timestamp as sent (millisecond precision).
	Time time.Time `json:"time"`
	// The sampled value's fields as sent; Value is the string on the wire.
	Measurand string `json:"measurand,omitempty"`
	Phase     string `json:"phase,omitempty"`
	Unit      string `json:"unit,omitempty"`
	Context   string `json:"context,omitempty"`
	Location  string `json:"location,omitempty"`
	Value     string `json:"value"`
	// Quantity, CIMPhase and Canonical are the CIM reading the value
	// should become (see MapMeasurand); Quantity is "" when it has none.
	Quantity  string    `json:"quantity,omitempty"`
	CIMPhase  cim.Phase `json:"cimPhase,omitempty"`
	Canonical float64   `json:"canonical"`
	// Queued marks a value that waited in the offline queue.
	Queued bool `json:"queued,omitempty"`
}

// Transaction is a charging session as the central system learnt it.
type Transaction struct {
	ID         int64     `json:"transactionId"`
	Connector  int       `json:"connector"`
	IDTag      string    `json:"idTag"`
	Start      time.Time `json:"start"`
	MeterStart int64     `json:"meterStart"`
	Stop       time.Time `json:"stop,omitzero"`
	MeterStop  *int64    `json:"meterStop,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// Sent returns every meter value the central system acknowledged, in the
// order sent.
func (cp *ChargePoint) Sent() []MeterValue {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.sent)
}

// Transactions returns the transactions the central system started, with
// their stop once acknowledged.
func (cp *ChargePoint) Transactions() []Transaction {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.txns)
}

// truthDoc is the TruthHandler's document.
type truthDoc struct {
	ChargePoint string `json:"chargePoint"` // the OCPP identity
	// Asset is what the platform files the readings under (Config.Asset):
	// connectors 0 and 1 that asset, connector N ≥ 2 ASSET/connector-N.
	Asset        string        `json:"asset"`
	Vendor       string        `json:"vendor"`
	Model        string        `json:"model"`
	Online       bool          `json:"online"`
	Queued       int           `json:"queued"`
	MeterValues  []MeterValue  `json:"meterValues"`
	Transactions []Transaction `json:"transactions"`
}

// TruthHandler serves the truth as JSON: GET with optional query
// parameters transactionId and since (RFC 3339) filters meter values.
func (cp *ChargePoint) TruthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		var tx int64
		var since time.Time
		var err error
		if s := q.Get("transactionId"); s != "" {
			if tx, err = strconv.ParseInt(s, 10, 64); err != nil {
				http.Error(w, fmt.Sprintf("query transactionId %q is not an integer", s), http.StatusBadRequest)
				return
			}
		}
		if s := q.Get("since"); s != "" {
			if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
				http.Error(w, fmt.Sprintf("query since %q is not an RFC 3339 time", s), http.StatusBadRequest)
				return
			}
		}
		doc := truthDoc{ChargePoint: cp.cfg.ID, Asset: cp.cfg.Asset, Vendor: cp.cfg.Vendor, Model: cp.cfg.Model,
			Online: cp.Online(), Queued: cp.Queued(), MeterValues: []MeterValue{}, Transactions: cp.Transactions()}
		for _, m := range cp.Sent() {
			if (tx == 0 || m.TransactionID == tx) && !m.Time.Before(since) {
				doc.MeterValues = append(doc.MeterValues, m)
			}
		}
		if doc.Transactions == nil {
			doc.Transactions = []Transaction{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
}

// MapMeasurand returns the CIM quantity and phase an OCPP 1.6 sampled
// value becomes, and the CIM unit of its OCPP unit; quantity is "" for a
// measurand without one (Power.Offered, reactive and export registers).
// A missing measurand is Energy.Active.Import.Register per the spec,
// unless the unit says A. Alfen's "CurrentMax" values have no quantity: the
// central system logs and skips vendor contexts (see ocpp/README.md), so
// the truth must not expect them.
func MapMeasurand(measurand, phase, unit, context string) (quantity string, p cim.Phase, cimUnit string) {
	switch unit {
	case "Celsius", "Celcius":
		cimUnit = "°C"
	case "Percent":
		cimUnit = "%"
	case "Fahrenheit":
		cimUnit = "°F"
	default:
		cimUnit = unit
	}
	p = ocppPhase(phase)
	if measurand == "" {
		switch {
		case unit == "A" && context == "CurrentMax":
			return "", "", cimUnit
		case unit == "A":
			return "current", p, cimUnit
		}
		measurand = "Energy.Active.Import.Register"
	}
	switch measurand {
	case "Energy.Active.Import.Register":
		if p != "" {
			return "energy_active_import", p, cimUnit
		}
		return "ev_energy_register", "", cimUnit
	case "Power.Active.Import":
		if p != "" {
			return "active_power_import", p, cimUnit
		}
		return "ev_charging_power", "", cimUnit
	case "Current.Import":
		return "current", p, cimUnit
	case "Voltage":
		return "voltage", p, cimUnit
	case "Current.Offered":
		return "ev_current_offered", "", cimUnit
	case "SoC":
		return "ev_soc", "", cimUnit
	case "Temperature":
		return "temperature", "", cimUnit
	case "Frequency":
		return "frequency", "", cmpOr(cimUnit, "Hz")
	case "Power.Factor":
		return "power_factor", p, cmpOr(cimUnit, "1")
	}
	return "", p, cimUnit
}

// ocppPhase maps an OCPP phase to a CIM phase: L1-N is L1, L1-L2 is L12.
func ocppPhase(s string) cim.Phase {
	switch s {
	case "L1", "L1-N":
		return "L1"
	case "L2", "L2-N":
		return "L2"
	case "L3", "L3-N":
		return "L3"
	case "N":
		return "N"
	case "L1-L2":
		return "L12"
	case "L2-L3":
		return "L23"
	case "L3-L1":
		return "L31"
	}
	return ""
}

// truthOf turns sent meter values into truth records.
func (cp *ChargePoint) truthOf(mvs []meterValue, connector int, txID int64, message string) []MeterValue {
	var out []MeterValue
	for _, mv := range mvs {
		t, _ := time.Parse(timeFormat, mv.Timestamp)
		for _, sv := range mv.SampledValue {
			m := MeterValue{ChargePoint: cp.cfg.ID, Connector: connector, TransactionID: txID, Message: message, Time: t,
				Measurand: sv.Measurand, Phase: sv.Phase, Unit: sv.Unit, Context: sv.Context, Location: sv.Location, Value: sv.Value}
			cp.canonical(&m)
			out = append(out, m)
		}
	}
	return out
}

// registerTruth is the truth of a meterStart or meterStop.
func (cp *ChargePoint) registerTruth(connector int, txID int64, message, context string, t time.Time, wh int64) MeterValue {
	m := MeterValue{ChargePoint: cp.cfg.ID, Connector: connector, TransactionID: txID, Message: message, Time: t,
		Measurand: "Energy.Active.Import.Register", Unit: "Wh", Context: context, Value: strconv.FormatInt(wh, 10)}
	cp.canonical(&m)
	return m
}

// canonical fills in m's CIM quantity and canonical value.
func (cp *ChargePoint) canonical(m *MeterValue) {
	q, p, unit := MapMeasurand(m.Measurand, m.Phase, m.Unit, m.Context)
	v, err := strconv.ParseFloat(m.Value, 64)
	if q == "" || err != nil {
		return
	}
	quantity, ok := cp.cat.Lookup(q)
	if !ok {
		return
	}
	if unit == "" {
		unit = quantity.Unit
	}
	c, err := quantity.Convert(v, unit)
	if err != nil {
		return
	}
	m.Quantity, m.CIMPhase, m.Canonical = q, p, c
}

// selector is one entry of MeterValuesSampledData.
type selector struct {
	measurand string
	phase     string // "" = every phase the measurand has
}

// samplable are the measurands this charger can sample.
var samplable = []string{
	"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage",
	"Current.Offered", "Power.Offered", "SoC", "Temperature", "Frequency", "Power.Factor",
}

var ocppPhases = []string{"L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1"}

// parseSampledData parses a MeterValuesSampledData value: measurands
// separated by commas, each optionally with a phase suffix as Alfen takes
// them ("Voltage.L1-N", "Current.Import.L2"). maxItems > 0 bounds the
// count.
func parseSampledData(s string, maxItems int) ([]selector, error) {
	var out []selector
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		sel, ok := selector{}, false
		for _, m := range samplable {
			if item == m {
				sel, ok = selector{measurand: m}, true
				break
			}
			if rest, found := strings.CutPrefix(item, m+"."); found && slices.Contains(ocppPhases, rest) {
				sel, ok = selector{measurand: m, phase: rest}, true
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("MeterValuesSampledData: %q is not a measurand this charger samples (%s)", item, strings.Join(samplable, ", "))
		}
		if !slices.Contains(out, sel) {
			out = append(out, sel)
		}
	}
	if maxItems > 0 && len(out) > maxItems {
		return nil, fmt.Errorf("MeterValuesSampledData: %d measurands, at most %d", len(out), maxItems)
	}
	return out, nil
}

// decorate adds the format and location this charger writes.
func (cp *ChargePoint) decorate(sv sampledValue) sampledValue {
	if cp.cfg.Has(QuirkAlfen) {
		return sv // Alfen leaves both out
	}
	sv.Format = "Raw"
	if sv.Location == "" {
		sv.Location = "Outlet"
	}
	return sv
}

// decimals is how many decimals the charger writes for a measurand.
func (cp *ChargePoint) decimals(measurand string) int {
	if cp.cfg.Has(QuirkAlfen) {
		return 3
	}
	switch measurand {
	case "Current.Import", "Power.Factor", "Frequency":
		return 2
	case "Current.Offered", "Power.Offered", "SoC":
		return 0
	}
	return 1
}

func (cp *ChargePoint) num(measurand string, v float64) string {
	return strconv.FormatFloat(v, 'f', cp.decimals(measurand), 64)
}

// sample takes one sample of connector k at now. Callers hold cp.mu and
// have advanced k's meter.
func (cp *ChargePoint) sample(k *connector, now time.Time, context string) (meterValue, bool) {
	phases := cp.cfg.Phases
	volts := make([]float64, 3)
	for i := range volts {
		volts[i] = math.Round((cp.cfg.VoltageV+cp.rng.NormFloat64()*1.5)*10) / 10
	}
	perPhaseW := k.power / float64(phases)
	offered := math.Round(cp.cfg.MaxPowerW / float64(phases) / cp.cfg.VoltageV)
	var svs []sampledValue
	add := func(m, phase, unit, location string, v float64) {
		svs = append(svs, cp.decorate(sampledValue{Value: cp.num(m, v), Context: context, Measurand: m, Phase: phase, Unit: unit, Location: location}))
	}
	phaseIndex := func(p string) int { // 0-based L1..L3, -1 for others
		switch p {
		case "L1", "L1-N":
			return 0
		case "L2", "L2-N":
			return 1
		case "L3", "L3-N":
			return 2
		}
		return -1
	}
	current := func(i int) float64 {
		if i < 0 || i >= phases {
			return 0
		}
		return perPhaseW / volts[i]
	}
	for _, sel := range cp.set.sampled {
		switch sel.measurand {
		case "Energy.Active.Import.Register":
			add(sel.measurand, sel.phase, "Wh", "", k.register)
		case "Power.Active.Import":
			if sel.phase == "" {
				add(sel.measurand, "", "W", "", k.power)
			} else if i := phaseIndex(sel.phase); i >= 0 && i < phases {
				add(sel.measurand, sel.phase, "W", "", perPhaseW)
			} else {
				add(sel.measurand, sel.phase, "W", "", 0)
			}
		case "Current.Import":
			if sel.phase == "" {
				for i := range phases {
					add(sel.measurand, ocppPhases[i], "A", "", current(i))
				}
			} else {
				add(sel.measurand, sel.phase, "A", "", current(phaseIndex(sel.phase)))
			}
		case "Voltage":
			if sel.phase == "" {
				for i := range phases {
					add(sel.measurand, ocppPhases[4+i], "V", "", volts[i])
				}
			} else if i := phaseIndex(sel.phase); i >= 0 {
				add(sel.measurand, sel.phase, "V", "", volts[i])
			} else if sel.phase != "N" {
				add(sel.measurand, sel.phase, "V", "", math.Round(cp.cfg.VoltageV*math.Sqrt(3)*10)/10)
			} else {
				add(sel.measurand, sel.phase, "V", "", 0)
			}
		case "Current.Offered":
			add(sel.measurand, "", "A", "", offered)
		case "Power.Offered":
			add(sel.measurand, "", "W", "", cp.cfg.MaxPowerW)
		case "SoC":
			if k.ev != nil {
				add(sel.measurand, "", "Percent", "EV", math.Floor(k.ev.soc))
			}
		case "Temperature":
			add(sel.measurand, "", "Celsius", "Body", 25+10*k.power/cp.cfg.MaxPowerW+cp.rng.NormFloat64()*0.3)
		case "Frequency":
			add(sel.measurand, "", "", "", 50+cp.rng.NormFloat64()*0.02)
		case "Power.Factor":
			add(sel.measurand, sel.phase, "", "", 0.99)
		}
	}
	if len(svs) == 0 {
		return meterValue{}, false
	}
	if cp.cfg.Has(QuirkAlfen) {
		// Alfen's non-spec extra value: the current limit, without a
		// measurand, in context "CurrentMax" (lbbrhzn/ocpp #361).
		svs = append(svs, sampledValue{Value: cp.num("", offered), Context: "CurrentMax", Unit: "A"})
	}
	return meterValue{Timestamp: stamp(now.UTC().Truncate(time.Millisecond)), SampledValue: svs}, true
}

package chargepoint

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// fixtureFrames are the real frames of the fixtures.
func fixtureFrames(f *testing.F) [][]byte {
	var out [][]byte
	for _, name := range []string{"ocpp16-bootnotification-alfen.json", "ocpp16-metervalues-wallbox.json", "ocpp16-statusnotification-wallbox.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	fh, err := os.Open("testdata/ocpp16-wallbox.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "[") {
			out = append(out, []byte(sc.Text()))
		}
	}
	return out
}

// FuzzParseFrame: any bytes parse without panic; a parsed frame has a
// valid type and id and survives a round trip.
func FuzzParseFrame(f *testing.F) {
	for _, b := range fixtureFrames(f) {
		f.Add(b)
	}
	for _, s := range []string{`[2,"1","Reset",{"type":"Hard"}]`, `[4,"1","NotSupported","",{}]`, `[3,"1",{}]`, `[2,"","X",{}]`, `[2,1,"X",{}]`, `[9,"a",{}]`, `[`, `null`, `[2,"1","A",null]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			if fe, ok := err.(*frameError); !ok || fe.Code == "" || fe.Msg == "" {
				t.Fatalf("error %v is not a complete frameError", err)
			}
			return
		}
		if fr.ID == "" || len(fr.ID) > maxMessageID {
			t.Fatalf("id %q", fr.ID)
		}
		var again []byte
		switch fr.Type {
		case typeCall:
			again, err = callFrame(fr.ID, fr.Action, fr.Payload)
		case typeCallResult:
			again, err = resultFrame(fr.ID, fr.Payload)
		case typeCallError:
			again = errorFrame(fr.ID, &CallError{fr.Code, fr.Desc})
		default:
			t.Fatalf("type %d", fr.Type)
		}
		if err != nil {
			t.Fatal(err)
		}
		fr2, err := parseFrame(again)
		if err != nil || fr2.Type != fr.Type || fr2.ID != fr.ID || fr2.Action != fr.Action || fr2.Code != fr.Code {
			t.Fatalf("round trip of %s: %+v, %v", b, fr2, err)
		}
	})
}

// callErrorCodes are the OCPP-J 1.6 error codes.
var callErrorCodes = []string{"NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
	"FormationViolation", "PropertyConstraintViolation", "OccurrenceConstraintViolation", "TypeConstraintViolation", "GenericError"}

// FuzzHandle: any request of a central system gets an answer that is
// valid JSON or a CALLERROR with a code of OCPP-J 1.6, never a panic.
func FuzzHandle(f *testing.F) {
	for _, b := range fixtureFrames(f) {
		if fr, err := parseFrame(b); err == nil && fr.Type == typeCall {
			f.Add(fr.Action, []byte(fr.Payload))
		}
	}
	for _, s := range [][2]string{
		{"ChangeConfiguration", `{"key":"MeterValuesSampledData","value":"Voltage.L1-N,Current.Import.L3,SoC"}`},
		{"ChangeConfiguration", `{"key":"MeterValueSampleInterval","value":"1e308"}`},
		{"ChangeConfiguration", `{"key":"HeartbeatInterval","value":"NaN"}`},
		{"GetConfiguration", `{"key":["HeartbeatInterval","x"]}`},
		{"RemoteStartTransaction", `{"idTag":"T","connectorId":3}`},
		{"RemoteStopTransaction", `{"transactionId":9223372036854775807}`},
		{"TriggerMessage", `{"requestedMessage":"MeterValues","connectorId":99}`},
		{"Reset", `{"type":"Hard"}`},
		{"DataTransfer", `{"vendorId":"x"}`},
		{"Nope", `{}`},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	cp, err := New(Config{ID: "CP-FUZZ", URL: "ws://127.0.0.1:1", Connectors: 2, Plan: SessionPlan{}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, action string, payload []byte) {
		if !json.Valid(payload) {
			return
		}
		resp, cerr, _ := cp.handle(t.Context(), action, payload)
		if cerr != nil {
			if !slices.Contains(callErrorCodes, cerr.Code) {
				t.Fatalf("%s %s: code %q is not an OCPP-J 1.6 code", action, payload, cerr.Code)
			}
			return
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("%s %s: answer does not encode: %v", action, payload, err)
		}
		// Drain a remote start so the next input finds the connector free.
		for _, k := range cp.connectors {
			select {
			case <-k.remoteStart:
			default:
			}
		}
	})
}

// FuzzSampledData: MeterValuesSampledData parses or names the bad entry;
// what parses re-parses the same.
func FuzzSampledData(f *testing.F) {
	for _, s := range []string{"Energy.Active.Import.Register", "Energy.Active.Import.Register,Voltage.L1-N,Current.Import.L1", " SoC , Power.Offered", "", "Voltage.L4", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := parseSampledData(s, 9)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "MeterValuesSampledData: ") {
				t.Fatalf("error %v does not name the key", err)
			}
			return
		}
		var parts []string
		for _, x := range sel {
			parts = append(parts, strings.TrimSuffix(x.measurand+"."+x.phase, "."))
		}
		again, err := parseSampledData(strings.Join(parts, ","), 9)
		if err != nil || !slices.Equal(again, sel) {
			t.Fatalf("%q parsed to %v, which re-parses to %v, %v", s, sel, again, err)
		}
	})
}

func TestChargingCurve(t *testing.T) {
	e := &ev{capWh: 60000, soc: 20, targetSoC: 100, maxW: 22000}
	if p := e.power(11000); p != 11000 {
		t.Errorf("power at 20 %%: %g, want the charger's 11000", p)
	}
	e.soc = 90
	if p := e.power(11000); p != 5500 {
		t.Errorf("power at 90 %%: %g, want 5500 (taper)", p)
	}
	e.soc = 100
	if p := e.power(11000); p != 0 {
		t.Errorf("power when full: %g", p)
	}
	// A long, sped-up session: the register only grows, state of charge
	// ends at 100 % and the energy matches it.
	cp, err := New(Config{ID: "CP-CURVE", URL: "ws://x", Speed: 3600, Plan: SessionPlan{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := cp.connectors[0]
	start := k.register
	now := time.Now()
	k.last = now
	k.ev = &ev{capWh: 60000, soc: 20, targetSoC: 100, maxW: 11000}
	prev := k.register
	for i := range 60 { // 60 wall seconds = 60 simulated hours
		cp.advance(k, now.Add(time.Duration(i+1)*time.Second))
		if k.register < prev {
			t.Fatalf("register fell from %g to %g", prev, k.register)
		}
		prev = k.register
	}
	if k.ev.soc < 99.99 || k.power != 0 {
		t.Errorf("after 60 h: SoC %g, power %g", k.ev.soc, k.power)
	}
	if got := k.register - start; got < 47999 || got > 48001 {
		t.Errorf("delivered %g Wh, want 48000 (80 %% of 60 kWh)", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{URL: "ws://x"},
		{ID: "a/b", URL: "ws://x"},
		{ID: "a", URL: "http://x"},
		{ID: "a", URL: "ws://"},
		{ID: "a", URL: "ws://x", Phases: 2},
		{ID: "a", URL: "ws://x", Quirks: []Quirk{"tesla"}},
		{ID: "a", URL: "ws://x", Plan: SessionPlan{{Connector: 2}}},
		{ID: "a", URL: "ws://x", IDTags: []string{strings.Repeat("x", 21)}},
		{ID: "a", URL: "wss://x", CAFile: "/nonexistent.pem"},
	} {
		if _, err := New(c, nil); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	cp, err := New(Config{ID: "a", URL: "ws://x", Quirks: []Quirk{QuirkEmptyVendor}, Vendor: "ignored"}, nil)
	if err != nil || cp.Config().Vendor != "" || cp.Config().Connectors != 1 || cp.Config().MeterValueInterval != 10*time.Second {
		t.Errorf("defaults: %+v %v", cp.Config(), err)
	}
}

func TestMapMeasurand(t *testing.T) {
	for _, c := range []struct{ m, p, u, ctx, q, ph, unit string }{
		{"Energy.Active.Import.Register", "", "kWh", "", "ev_energy_register", "", "kWh"},
		{"", "", "Wh", "", "ev_energy_register", "", "Wh"},
		{"", "", "A", "CurrentMax", "", "", "A"},
		{"Voltage", "L2-N", "V", "", "voltage", "L2", "V"},
		{"Voltage", "L3-L1", "V", "", "voltage", "L31", "V"},
		{"Current.Import", "L1", "A", "", "current", "L1", "A"},
		{"Temperature", "", "Celsius", "", "temperature", "", "°C"},
		{"SoC", "", "Percent", "", "ev_soc", "", "%"},
		{"Frequency", "", "", "", "frequency", "", "Hz"},
		{"Power.Offered", "", "W", "", "", "", "W"},
	} {
		q, p, u := MapMeasurand(c.m, c.p, c.u, c.ctx)
		if q != c.q || string(p) != c.ph || u != c.unit {
			t.Errorf("MapMeasurand(%q,%q,%q,%q) = %q %q %q, want %q %q %q", c.m, c.p, c.u, c.ctx, q, p, u, c.q, c.ph, c.unit)
		}
		if q != "" {
			if _, ok := cim.Default().Lookup(q); !ok {
				t.Errorf("quantity %q is not in the CIM catalogue", q)
			}
		}
	}
}

package httpjson

import (
	"encoding/pem"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// embedded returns an embedded profile by name.
func embedded(t testing.TB, name string) *profile.Profile {
	t.Helper()
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := set.Get(name)
	if !ok {
		t.Fatalf("no embedded profile %s", name)
	}
	return p
}

var varRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// testConfig gives every var a profile's http section uses a value (with a
// colon, to exercise escaping) and sets awkward credentials.
func testConfig(p *profile.Profile) device.Config {
	cfg := device.Config{
		Username: "owner@example.com",
		Password: `pa&ss"word=1 %`,
		Token:    "tok-0123456789",
		Vars:     map[string]string{},
	}
	add := func(s string) {
		for _, m := range varRE.FindAllStringSubmatch(s, -1) {
			switch m[1] {
			case "username", "password", "token":
			default:
				cfg.Vars[m[1]] = m[1] + "-7:A"
			}
		}
	}
	if h := p.HTTP; h != nil {
		for _, r := range h.Requests {
			add(r.Path)
			for _, pt := range r.Points {
				add(pt.Path)
			}
		}
	}
	return cfg
}

// testFrame makes a frame with a plausible random value for every channel
// of p.
func testFrame(p *profile.Profile, cat *cim.Catalogue, rng *rand.Rand, cycle int64) sim.Frame {
	vals := map[sim.Channel]float64{}
	for _, m := range p.Mappings() {
		ch := sim.Channel{Quantity: m.Quantity, Phase: m.Phase}
		if _, done := vals[ch]; done {
			continue
		}
		q, _ := cat.Lookup(m.Quantity)
		if len(q.States) > 0 {
			var can []int
			for i, name := range q.States {
				if (len(m.States) == 0 && i < 2) || m.StateText(name) != "" {
					can = append(can, i)
				}
			}
			vals[ch] = float64(can[rng.IntN(len(can))])
			continue
		}
		lo, hi := q.Min, q.Max
		lo = max(lo, -5000)
		hi = min(hi, lo+10000)
		if m.Transform == "hue_lightlevel" {
			lo = 1 // the transform's domain
		}
		vals[ch] = math.Round((lo+rng.Float64()*(hi-lo))*1000) / 1000
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(cycle)*time.Minute + 123456789)
	return sim.Frame{Cycle: cycle, Start: start, Values: vals}
}

// canonical converts a value to its quantity's canonical unit.
func canonical(t testing.TB, cat *cim.Catalogue, v device.Value) float64 {
	t.Helper()
	q, ok := cat.Lookup(v.Quantity)
	if !ok {
		t.Fatalf("quantity %s not in the catalogue", v.Quantity)
	}
	c, err := q.Convert(v.Value, v.Unit)
	if err != nil {
		t.Fatalf("%s: %v", v.Quantity, err)
	}
	return c
}

// sameValues checks that polled values equal the held ones, in order.
func sameValues(t testing.TB, cat *cim.Catalogue, got, want []device.Value) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("polled %d values, device holds %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Quantity != w.Quantity || g.Phase != w.Phase || g.State != w.State || !g.Time.Equal(w.Time) {
			t.Errorf("value %d: got %+v, want %+v", i, g, w)
			continue
		}
		gc, wc := canonical(t, cat, g), canonical(t, cat, w)
		if math.Abs(gc-wc) > 1e-9*math.Max(1, math.Abs(wc)) {
			t.Errorf("value %d %s: polled %v, held %v (canonical)", i, g.Quantity, gc, wc)
		}
	}
}

// find returns the first value of a quantity and phase.
func find(t testing.TB, vals []device.Value, quantity string, phase cim.Phase) device.Value {
	t.Helper()
	for _, v := range vals {
		if v.Quantity == quantity && v.Phase == phase {
			return v
		}
	}
	t.Fatalf("no %s %s in %+v", quantity, phase, vals)
	return device.Value{}
}

// near checks a canonical value against a number read from a fixture.
func near(t testing.TB, cat *cim.Catalogue, vals []device.Value, quantity string, phase cim.Phase, want float64) {
	t.Helper()
	got := canonical(t, cat, find(t, vals, quantity, phase))
	if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s %s = %v, want %v", quantity, phase, got, want)
	}
}

// serve serves fixed bodies by URL path.
func serve(t testing.TB, bodies map[string]string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(b))
	}))
	t.Cleanup(ts.Close)
	return ts
}

// pemCert encodes a DER certificate as PEM.
func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

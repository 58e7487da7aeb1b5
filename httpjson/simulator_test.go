package httpjson

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
)

// TestEveryHTTPProfileAgainstItsSimulator polls every embedded http
// profile's simulator over real sockets, plain and TLS-pinned, and checks
// that the polled values are what the device holds and that what it holds
// is the frame's truth within the device's resolution.
func TestEveryHTTPProfileAgainstItsSimulator(t *testing.T) {
	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range set.All() {
		if p.Protocol != profile.HTTP {
			continue
		}
		n++
		for _, useTLS := range []bool{false, true} {
			name := p.Name + "/http"
			if useTLS {
				name = p.Name + "/https"
			}
			t.Run(name, func(t *testing.T) {
				cfg := testConfig(p)
				s, err := NewSimulator(p, cfg, cat)
				if err != nil {
					t.Fatal(err)
				}
				var addr string
				if useTLS {
					addr, err = s.StartTLS("127.0.0.1:0")
					cfg.Address = "https://" + addr
					cfg.Fingerprint = s.Fingerprint()
				} else {
					addr, err = s.Start("127.0.0.1:0")
					cfg.Address = addr // a bare host:port means http
				}
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				poller, err := NewPoller(p, cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = poller.Close() })

				// Before the first frame the device serves its base document.
				got, err := poller.Poll(t.Context())
				if err != nil {
					t.Fatalf("poll of the base document: %v", err)
				}
				sameValues(t, cat, got, s.Held())

				rng := rand.New(rand.NewPCG(uint64(len(p.Name)), 7))
				for cycle := int64(1); cycle <= 3; cycle++ {
					f := testFrame(p, cat, rng, cycle)
					held, err := s.Update(f)
					if err != nil {
						t.Fatal(err)
					}
					got, err := poller.Poll(t.Context())
					if err != nil {
						t.Fatalf("cycle %d: %v", cycle, err)
					}
					if len(held) == 0 {
						t.Fatal("the simulator holds no values")
					}
					sameValues(t, cat, got, held)
					for _, h := range held {
						q, _ := cat.Lookup(h.Quantity)
						truth, _ := f.Value(h.Quantity, h.Phase)
						if len(q.States) > 0 {
							if h.State != "" && h.State != q.States[int(truth)] {
								t.Errorf("%s holds %s, truth %s", h.Quantity, h.State, q.States[int(truth)])
							}
							continue
						}
						if c := canonical(t, cat, h); math.Abs(c-truth) > math.Max(0.01*math.Abs(truth), 0.6) {
							t.Errorf("%s holds %v, truth %v", h.Quantity, c, truth)
						}
					}
				}
			})
		}
	}
	if n < 9 {
		t.Errorf("only %d http profiles embedded", n)
	}
}

// TestSimulatorEnforcesAuth checks that the simulators refuse wrong
// credentials, as the devices do.
func TestSimulatorEnforcesAuth(t *testing.T) {
	cat := cim.Default()
	for _, name := range []string{"netatmo-homecoach", "tesla-powerwall2", "shelly-em-http"} {
		t.Run(name, func(t *testing.T) {
			p := embedded(t, name)
			cfg := testConfig(p)
			s, err := NewSimulator(p, cfg, cat)
			if err != nil {
				t.Fatal(err)
			}
			addr, err := s.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			bad := cfg
			bad.Address = addr
			bad.Password, bad.Token = "wrong-password", "wrong-token"
			poller, err := NewPoller(p, bad, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = poller.Poll(t.Context())
			if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
				t.Fatalf("poll with wrong credentials: %v, want HTTP 401", err)
			}
			if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "wrong-token") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

// TestTQEM300SimulatorQuirk checks that the EM300 simulator answers like
// firmware 2.04 (text/html, trailing '#') and that the poller copes.
func TestTQEM300SimulatorQuirk(t *testing.T) {
	p := embedded(t, "tq-em300")
	cfg := testConfig(p)
	s, err := NewSimulator(p, cfg, cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cfg.Address = "http://" + addr
	poller, err := NewPoller(p, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Read the raw reply with the poller's session cookie.
	hp := poller.(*Poller)
	resp, err := hp.client.Get(cfg.Address + "/mum-webservice/data.php")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.HasSuffix(string(body), "}#") {
		t.Errorf("reply %s %q, want text/html ending in }#", ct, body)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

package httpjson

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// TestTQEM300SessionExpiry ends the simulator's sessions between polls: the
// next poll sees {"status":901} and logs in again exactly once.
func TestTQEM300SessionExpiry(t *testing.T) {
	cat := cim.Default()
	p := embedded(t, "tq-em300")
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
	cfg.Address = addr
	poller, err := NewPoller(p, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := poller.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		if s.Logins() != 1 {
			t.Fatalf("poll %d: %d logins, want 1", i, s.Logins())
		}
	}
	s.ExpireSessions()
	got, err := poller.Poll(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Logins() != 2 {
		t.Fatalf("%d logins after the session ended, want 2", s.Logins())
	}
	sameValues(t, cat, got, s.Held())
}

// TestLoginThatDoesNotHelp: a device that keeps answering 901 costs one
// login per poll and an error, not a loop.
func TestLoginThatDoesNotHelp(t *testing.T) {
	var logins atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/start.php" {
			logins.Add(1)
			_, _ = w.Write([]byte(`{"authentication":true}`))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`{"status":901}#`))
	}))
	t.Cleanup(ts.Close)
	poller, err := NewPoller(embedded(t, "tq-em300"), device.Config{Address: ts.URL, Username: "72102414", Password: "pw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = poller.Poll(t.Context())
	if err == nil || !errors.Is(err, ErrSessionExpired) || !strings.Contains(err.Error(), "after logging in again") {
		t.Fatalf("got %v, want a session error after logging in again", err)
	}
	if n := logins.Load(); n != 2 {
		t.Errorf("%d logins (first and again), want 2", n)
	}
}

// TestWrongLoginPassword: the simulator refuses the login with 401 and the
// error says so without the password.
func TestWrongLoginPassword(t *testing.T) {
	p := embedded(t, "tq-em300")
	s, err := NewSimulator(p, device.Config{Username: "72102414", Password: "right"}, cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	poller, err := NewPoller(p, device.Config{Address: addr, Username: "72102414", Password: "wrong-pw"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = poller.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "login: POST /start.php: HTTP 401") {
		t.Fatalf("got %v, want a refused login", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// testProfile is a small profile for the bad-input tests.
func testProfile(t testing.TB) *profile.Profile {
	t.Helper()
	y := `name: t
protocol: http
http:
  requests:
    - path: /status
      points:
        - {path: meters.0.power, quantity: active_power, unit: W}
        - {path: sensor.state, quantity: door_window_state, states: {open: open, close: closed}}
        - {path: extra, quantity: temperature, unit: °C, optional: true}
`
	p, err := profile.Parse([]byte(y), "t.yaml", cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadReplies(t *testing.T) {
	huge := strings.Repeat(" ", MaxBody+10)
	cases := []struct {
		name, body, ctype string
		status            int
		want              []string
	}{
		{"ok", `{"meters":[{"power":1.5}],"sensor":{"state":"open"}}`, "application/json", 200, nil},
		{"trailing garbage", `{"meters":[{"power":1.5}],"sensor":{"state":"open"}}#`, "text/html", 200, nil},
		{"null skipped", `{"meters":[{"power":null}],"sensor":{"state":"open"},"extra":null}`, "", 200, nil},
		{"not JSON", `hello`, "text/plain", 200, []string{"GET /status", "not JSON", `"hello"`}},
		{"empty", ``, "", 200, []string{"GET /status", "empty body"}},
		{"server error", `<html><body>Internal error</body></html>`, "text/html", 500, []string{"GET /status", "HTTP 500", "<html><body>Internal error"}},
		{"huge", `{"a":"` + huge + `"}`, "", 200, []string{"GET /status", "larger than the limit"}},
		{"text not a number", `{"meters":[{"power":"abc"}],"sensor":{"state":"open"}}`, "", 200, []string{"GET /status", "path meters.0.power", `"abc" is not a number`}},
		{"object", `{"meters":[{"power":{"v":1}}],"sensor":{"state":"open"}}`, "", 200, []string{"path meters.0.power", "got an object"}},
		{"unknown state", `{"meters":[{"power":1}],"sensor":{"state":"ajar"}}`, "", 200, []string{"path sensor.state", `"ajar"`}},
		{"missing", `{"meters":[{"power":1}]}`, "", 200, []string{"GET /status", "path sensor.state (door_window_state) is missing", "reply"}},
		{"nothing", `{"other":1}`, "", 200, []string{"GET /status", "none of the profile's points"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.ctype != "" {
					w.Header().Set("Content-Type", c.ctype)
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			t.Cleanup(ts.Close)
			poller, err := NewPoller(testProfile(t), device.Config{Address: ts.URL}, nil)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := poller.Poll(t.Context())
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(vals) == 0 {
					t.Error("no values")
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; values %+v", vals)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConstructionErrors(t *testing.T) {
	hue := embedded(t, "hue-bridge-sensors")
	cases := []struct {
		p    *profile.Profile
		cfg  device.Config
		want string
	}{
		{hue, device.Config{Address: "bridge", Username: "k", Vars: map[string]string{"temp_id": "1", "light_id": "2"}}, "{presence_id} has no value"},
		{hue, device.Config{Address: "bridge", Vars: map[string]string{"temp_id": "1", "light_id": "2", "presence_id": "3"}}, "{username} has no value"},
		{embedded(t, "netatmo-homecoach"), device.Config{Address: "https://api.netatmo.com", Vars: map[string]string{"device_id": "x"}}, "needs a token"},
		{testProfile(t), device.Config{Address: "ftp://x"}, `scheme "ftp"`},
		{testProfile(t), device.Config{Address: "http://u:p@x"}, "not in the URL"},
		{testProfile(t), device.Config{Address: ""}, "address: empty"},
		{testProfile(t), device.Config{Address: "https://x", Fingerprint: "zz"}, "not hex"},
		{testProfile(t), device.Config{Address: "https://x", Fingerprint: "abcd"}, "want the 32"},
		{testProfile(t), device.Config{Address: "https://x", CAFile: "/nonexistent.pem"}, "ca_file"},
		{embedded(t, "kasa-kp115"), device.Config{Address: "x"}, "not http"},
	}
	for _, c := range cases {
		_, err := NewPoller(c.p, c.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewPoller(%s, %+v) = %v, want …%s…", c.p.Name, c.cfg, err, c.want)
		}
	}
}

// TestHueKeyNeverInErrors: the Hue key is part of the URL; neither a
// failed connection nor a reply that echoes the path may show it.
func TestHueKeyNeverInErrors(t *testing.T) {
	const key = "HueAppKey0123456789"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`[{"error":{"type":3,"address":"` + r.URL.Path + `","description":"resource not available"}}]`))
	}))
	t.Cleanup(ts.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	_ = ln.Close()
	vars := map[string]string{"temp_id": "1", "light_id": "2", "presence_id": "3"}
	for _, addr := range []string{ts.URL, "http://" + closed} {
		poller, err := NewPoller(embedded(t, "hue-bridge-sensors"), device.Config{Address: addr, Username: key, Vars: vars}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = poller.Poll(t.Context())
		if err == nil {
			t.Fatal("no error")
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("error shows the key: %v", err)
		}
		if !strings.Contains(err.Error(), "/api/{username}/sensors/1") {
			t.Errorf("error %q does not name the request", err)
		}
	}
}

func TestDecodeBodyLenient(t *testing.T) {
	for _, b := range []string{`{"a":1}#`, "\xef\xbb\xbf{\"a\":1}", `{"a":1}` + "\n#\n", `{"a":1} {"b":2}`} {
		doc, err := DecodeBody([]byte(b))
		if err != nil {
			t.Errorf("DecodeBody(%q): %v", b, err)
			continue
		}
		if m, ok := doc.(map[string]any); !ok || m["a"] != 1.0 {
			t.Errorf("DecodeBody(%q) = %v", b, doc)
		}
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"192.168.1.5":                "http://192.168.1.5",
		"192.168.1.5:8080":           "http://192.168.1.5:8080",
		"https://gw/":                "https://gw",
		"http://h/prefix/":           "http://h/prefix",
		" https://api.netatmo.com  ": "https://api.netatmo.com",
	} {
		if got, err := BaseURL(in); err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}

// TestInsecureTLS: insecure skips verification of a self-signed device.
func TestInsecureTLS(t *testing.T) {
	p := embedded(t, "shelly-em-http")
	s, err := NewSimulator(p, device.Config{}, cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.StartTLS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	poller, err := NewPoller(p, device.Config{Address: "https://" + addr, Insecure: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
}

package httpjson

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
	"github.com/gridlink/gridlink/sim"
)

// sessionCookie names the simulator's session cookie.
const sessionCookie = "session"

// Simulator is a simulated HTTP JSON device: it serves each request of its
// profile with a Document in the device's real shape and enforces the
// profile's auth (basic, bearer, or a login whose cookie later requests
// carry). It is an http.Handler; Start and StartTLS serve it on a socket.
type Simulator struct {
	name   string
	auth   string
	cfg    device.Config
	login  *simLogin
	routes map[string]*route // by escaped URL path
	order  []*route          // profile order
	quirk  quirk

	mu       sync.Mutex
	sessions map[string]bool
	logins   int
	srv      *http.Server
	certDER  []byte
}

// simLogin is the login the simulator accepts.
type simLogin struct {
	method, path, contentType, body string
}

// route is one profile request as served.
type route struct {
	method  string
	query   url.Values // the query the request must carry; nil for none
	doc     *Document
	expired profile.Path
}

// NewSimulator builds the simulator of an http profile. cfg gives the
// credentials the device accepts and the vars of its paths.
func NewSimulator(p *profile.Profile, cfg device.Config, cat *cim.Catalogue) (*Simulator, error) {
	if p.Protocol != profile.HTTP || p.HTTP == nil {
		return nil, fmt.Errorf("profile %s: protocol %s is not http", p.Name, p.Protocol)
	}
	s := &Simulator{
		name: p.Name, auth: p.HTTP.Auth, cfg: cfg, routes: map[string]*route{},
		quirk: quirks[p.Name], sessions: map[string]bool{},
	}
	// The poller's placeholder rules, so that both fill paths alike.
	filler := &Poller{cfg: cfg}
	if l := p.HTTP.Login; s.auth == "login" && l != nil {
		pl := &simLogin{method: l.Method, contentType: l.ContentType}
		if pl.method == "" {
			pl.method = http.MethodPost
		}
		if pl.contentType == "" {
			pl.contentType = "application/x-www-form-urlencoded"
			if strings.HasPrefix(strings.TrimSpace(l.Body), "{") {
				pl.contentType = "application/json"
			}
		}
		look := filler.lookup(false, "username", "password")
		var err error
		if pl.path, err = fillURLPath(l.Path, "login path", look); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		if pl.body, err = fill(l.Body, "login body", look, bodyEscaper(pl.contentType)); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		s.login = pl
	}
	for i := range p.HTTP.Requests {
		r := &p.HTTP.Requests[i]
		where := fmt.Sprintf("profile %s: http.requests[%d]", p.Name, i)
		full, err := fillURLPath(r.Path, "path", filler.lookup(false, "username", "token"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		u, err := url.Parse(full)
		if err != nil {
			return nil, fmt.Errorf("%s: path %q: %w", where, r.Path, err)
		}
		rt := &route{method: r.Method}
		if rt.method == "" {
			rt.method = http.MethodGet
		}
		if u.RawQuery != "" {
			rt.query = u.Query()
		}
		key := u.EscapedPath()
		if _, dup := s.routes[key]; dup {
			return nil, fmt.Errorf("%s: path %s is served by an earlier request too; the simulator serves one document per path", where, key)
		}
		baseDoc, err := BaseDocument(p.Name, r.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: base document: %w", where, err)
		}
		if rt.doc, err = NewDocument(baseDoc, r.Points, r.Time, cfg.Vars, cat); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if r.Expired != "" {
			if rt.expired, err = fillPath(r.Expired, "expired", cfg.Vars); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		s.routes[key] = rt
		s.order = append(s.order, rt)
	}
	return s, nil
}

// Update sets what the device holds for this cycle and returns the values
// a poller reads back, in profile order.
func (s *Simulator) Update(f sim.Frame) ([]device.Value, error) {
	out, err := s.documents().Update(f)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", s.name, err)
	}
	return out, nil
}

// Held returns the values the device holds now, in profile order.
func (s *Simulator) Held() []device.Value { return s.documents().Held() }

func (s *Simulator) documents() Documents {
	ds := make(Documents, 0, len(s.order))
	for _, rt := range s.order {
		ds = append(ds, rt.doc)
	}
	return ds
}

// Logins counts the successful logins so far.
func (s *Simulator) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// ExpireSessions ends every login session, as a device does after a
// timeout or a restart.
func (s *Simulator) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// ServeHTTP serves the login and the profile's documents.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.login != nil && r.URL.EscapedPath() == s.login.path {
		s.serveLogin(w, r)
		return
	}
	rt, ok := s.routes[r.URL.EscapedPath()]
	if !ok || !queryMatches(rt.query, r.URL.Query()) {
		writeJSON(w, http.StatusNotFound, `{"error":"not found"}`)
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		writeJSON(w, http.StatusMethodNotAllowed, `{"error":"method not allowed"}`)
		return
	}
	if !s.authorised(r) {
		if rt.expired != nil {
			// A TQ EM300 answers a request without a live session with
			// 200 and {"status":901}.
			b, _ := json.Marshal(rt.expired.Set(nil, 901))
			writeJSON(w, http.StatusOK, string(b))
			return
		}
		if s.auth == "basic" || (s.auth != "bearer" && s.auth != "login" && s.cfg.Username != "") {
			w.Header().Set("WWW-Authenticate", `Basic realm="gridlink simulated device"`)
		}
		writeJSON(w, http.StatusUnauthorized, `{"error":"unauthorized"}`)
		return
	}
	body, err := rt.doc.JSON()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, `{"error":"document does not encode"}`)
		return
	}
	ct := s.quirk.contentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	_, _ = io.WriteString(w, s.quirk.trailer)
}

// queryMatches reports whether got carries every parameter of want.
func queryMatches(want, got url.Values) bool {
	for k, v := range want {
		if !reflect.DeepEqual(v, got[k]) {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// authorised checks a document request against the profile's auth.
func (s *Simulator) authorised(r *http.Request) bool {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	switch s.auth {
	case "bearer":
		return eq(r.Header.Get("Authorization"), "Bearer "+s.cfg.Token)
	case "login":
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sessions[c.Value]
	case "basic":
	default:
		if s.cfg.Username == "" {
			return true // no auth, like a Shelly with login off
		}
	}
	u, pw, ok := r.BasicAuth()
	return ok && eq(u, s.cfg.Username) && eq(pw, s.cfg.Password)
}

// serveLogin checks a login body against the one the profile's template
// gives for the device's credentials, and opens a session.
func (s *Simulator) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != s.login.method {
		writeJSON(w, http.StatusMethodNotAllowed, `{"error":"method not allowed"}`)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || !sameBody(s.login.contentType, string(body), s.login.body) {
		writeJSON(w, http.StatusUnauthorized, `{"code":401,"error":"bad credentials","message":"Login Error"}`)
		return
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	token := hex.EncodeToString(id[:])
	s.mu.Lock()
	s.sessions[token] = true
	s.logins++
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, `{"authentication":true}`)
}

// sameBody compares login bodies by meaning: JSON as values, forms as
// parameters, anything else byte for byte.
func sameBody(contentType, got, want string) bool {
	switch {
	case strings.Contains(contentType, "json"):
		var g, w any
		return json.Unmarshal([]byte(got), &g) == nil && json.Unmarshal([]byte(want), &w) == nil && reflect.DeepEqual(g, w)
	case strings.Contains(contentType, "x-www-form-urlencoded"):
		g, err1 := url.ParseQuery(got)
		w, err2 := url.ParseQuery(want)
		return err1 == nil && err2 == nil && reflect.DeepEqual(g, w)
	}
	return got == want
}

// Start serves the simulator over HTTP on addr ("127.0.0.1:0" picks a
// port) and returns the bound address.
func (s *Simulator) Start(addr string) (string, error) {
	return s.start(addr, nil)
}

// StartTLS serves the simulator over HTTPS with a self-signed certificate
// made for it, like a Powerwall gateway; Fingerprint and CertificatePEM
// give what a client pins or trusts.
func (s *Simulator) StartTLS(addr string) (string, error) {
	cert, err := selfSigned()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.certDER = cert.Certificate[0]
	s.mu.Unlock()
	return s.start(addr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func (s *Simulator) start(addr string, tc *tls.Config) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New("simulator already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator %s: %w", s.name, err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Clients that refuse the certificate (a wrong pin) are expected.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// Fingerprint is the SHA-256 fingerprint of the TLS certificate in hex;
// empty before StartTLS.
func (s *Simulator) Fingerprint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certDER == nil {
		return ""
	}
	return Fingerprint(s.certDER)
}

// CertificatePEM is the TLS certificate in PEM, usable as a ca_file; nil
// before StartTLS.
func (s *Simulator) CertificatePEM() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certDER == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.certDER})
}

// Close stops serving.
func (s *Simulator) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// selfSigned makes a certificate for localhost that is its own CA, so that
// it works both pinned and as a ca_file.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gridlink simulated device"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("simulator certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

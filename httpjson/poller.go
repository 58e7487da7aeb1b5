// Package httpjson is the gateway's connector for devices that serve JSON
// over HTTP or HTTPS (Shelly Gen1, Tesla Powerwall 2, TQ Energy Manager,
// Philips Hue, and the Netatmo and SmartThings cloud APIs): a Poller that
// fetches a profile's requests and maps the values at its JSON paths, and
// a Simulator that serves the same documents, in the devices' real shape,
// for tests and `gridlink sim`.
//
// The JSON reading and the simulated documents (Reader, Document) are
// shared with the Kasa connector, whose replies are JSON too.
package httpjson

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// ErrSessionExpired marks a reply that says the login session ended: HTTP
// 401 or 403, or the request's expired path in the reply.
var ErrSessionExpired = errors.New("session expired or not authorised")

// ErrNoPoints marks a reply that holds none of the profile's points, as a
// TQ EM300 answers once its session ended ({"serial":""}).
var ErrNoPoints = errors.New("none of the profile's points is in the reply")

// StatusError is a reply with a status other than 2xx.
type StatusError struct {
	Method, Path string // the request; credentials in the path stay placeholders
	Status       int
	Excerpt      string // the quoted start of the body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Excerpt)
}

// Unwrap makes 401 and 403 an ErrSessionExpired.
func (e *StatusError) Unwrap() error {
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		return ErrSessionExpired
	}
	return nil
}

// Poller polls one HTTP JSON device. It is used by one goroutine at a time.
type Poller struct {
	base      string // scheme://host[:port][/prefix]
	auth      string
	cfg       device.Config
	timeout   time.Duration
	client    *http.Client
	transport *http.Transport
	reqs      []request
	login     *loginRequest
	loggedIn  bool
	secrets   []string
	log       *slog.Logger
}

// request is one profile request, compiled.
type request struct {
	method  string
	path    string // filled and escaped
	display string // for errors and logs: credentials left as placeholders
	reader  *Reader
	expired profile.Path
}

// loginRequest is the profile's login, filled.
type loginRequest struct {
	method, path, display, contentType, body string
}

// NewPoller builds the poller of an http profile for one device. cfg.Address
// is a base URL (http://host, https://host:port); a bare host means http.
// Every {name} placeholder must have a value: request paths take the
// device's vars and {username} or {token} (a Hue bridge's key is part of
// its paths), the login body {username}, {password} and the vars.
func NewPoller(p *profile.Profile, cfg device.Config, log *slog.Logger) (device.Poller, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p.Protocol != profile.HTTP || p.HTTP == nil {
		return nil, fmt.Errorf("profile %s: protocol %s is not http", p.Name, p.Protocol)
	}
	base, err := BaseURL(cfg.Address)
	if err != nil {
		return nil, err
	}
	log = log.With("profile", p.Name, "address", base)
	hp := &Poller{base: base, auth: p.HTTP.Auth, cfg: cfg, timeout: cfg.Timeout, log: log}
	for _, s := range []string{cfg.Password, cfg.Token, cfg.Username} {
		if len(s) >= 3 {
			hp.secrets = append(hp.secrets, s)
		}
	}
	switch hp.auth {
	case "basic":
		if cfg.Username == "" {
			return nil, fmt.Errorf("profile %s uses basic auth: the device config needs a username", p.Name)
		}
	case "bearer":
		if cfg.Token == "" {
			return nil, fmt.Errorf("profile %s uses bearer auth: the device config needs a token", p.Name)
		}
	case "login":
		l := p.HTTP.Login
		hp.login = &loginRequest{method: l.Method, path: l.Path, contentType: l.ContentType}
		if hp.login.method == "" {
			hp.login.method = http.MethodPost
		}
		if hp.login.contentType == "" {
			hp.login.contentType = "application/x-www-form-urlencoded"
			if strings.HasPrefix(strings.TrimSpace(l.Body), "{") {
				hp.login.contentType = "application/json"
			}
		}
		look := hp.lookup(false, "username", "password")
		if hp.login.path, err = fillURLPath(l.Path, "login path", look); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		if hp.login.display, err = fillURLPath(l.Path, "login path", hp.lookup(true, "username", "password")); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		hp.login.display = unescapeCreds.Replace(hp.login.display)
		if hp.login.body, err = fill(l.Body, "login body", look, bodyEscaper(hp.login.contentType)); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
	}
	for i := range p.HTTP.Requests {
		r := &p.HTTP.Requests[i]
		where := fmt.Sprintf("profile %s: http.requests[%d]", p.Name, i)
		c := request{method: r.Method}
		if c.method == "" {
			c.method = http.MethodGet
		}
		if c.path, err = fillURLPath(r.Path, "path", hp.lookup(false, "username", "token")); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if c.display, err = fillURLPath(r.Path, "path", hp.lookup(true, "username", "token")); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c.display = unescapeCreds.Replace(c.display)
		if c.reader, err = NewReader(r.Points, r.Time, cfg.Vars); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if r.Expired != "" {
			if c.expired, err = fillPath(r.Expired, "expired", cfg.Vars); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		hp.reqs = append(hp.reqs, c)
	}
	tc, err := tlsConfig(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", cfg.Address, err)
	}
	hp.transport = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	hp.client = &http.Client{Transport: hp.transport, Jar: jar}
	return hp, nil
}

// BaseURL normalises a device address to scheme://host[:port][/prefix]. A
// bare host or host:port means http.
func BaseURL(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if a == "" {
		return "", errors.New("address: empty; want a base URL such as http://192.168.1.20")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("address %q: scheme %q, want http or https", addr, u.Scheme)
	case u.Host == "":
		return "", fmt.Errorf("address %q: no host", addr)
	case u.User != nil:
		// Credentials in the URL would end up in logs and errors.
		return "", fmt.Errorf("address: put credentials in username and password, not in the URL")
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("address %q: a base URL takes no query or fragment", addr)
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// lookup resolves placeholders: the credentials named in creds from the
// device config, every other name from its vars. display leaves the
// credentials as placeholders, so that errors and logs never hold them.
func (p *Poller) lookup(display bool, creds ...string) lookupFunc {
	cred := map[string]string{"username": p.cfg.Username, "password": p.cfg.Password, "token": p.cfg.Token}
	return func(name string) (string, bool) {
		for _, c := range creds {
			if c != name {
				continue
			}
			if display {
				return "{" + name + "}", true
			}
			v := cred[name]
			return v, v != ""
		}
		v, ok := p.cfg.Vars[name]
		return v, ok
	}
}

// unescapeCreds shows the credential placeholders of a display path as
// the profile writes them.
var unescapeCreds = strings.NewReplacer("%7Busername%7D", "{username}", "%7Bpassword%7D", "{password}", "%7Btoken%7D", "{token}")

// bodyEscaper escapes values filled into a login body of that content type.
func bodyEscaper(contentType string) func(string) string {
	switch {
	case strings.Contains(contentType, "json"):
		return func(s string) string {
			b, _ := json.Marshal(s) // a string always encodes
			return string(b[1 : len(b)-1])
		}
	case strings.Contains(contentType, "x-www-form-urlencoded"):
		return url.QueryEscape
	}
	return nil
}

// Poll fetches every request of the profile in order and maps their
// values. With login auth it logs in first, and once more when a reply
// says the session ended.
func (p *Poller) Poll(ctx context.Context) ([]device.Value, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	vals, err := p.poll(ctx)
	if err != nil {
		return nil, p.redact(err)
	}
	return vals, nil
}

func (p *Poller) poll(ctx context.Context) ([]device.Value, error) {
	if p.login != nil && !p.loggedIn {
		if err := p.doLogin(ctx); err != nil {
			return nil, err
		}
	}
	var out []device.Value
	for i := range p.reqs {
		r := &p.reqs[i]
		vals, err := p.fetch(ctx, r)
		if p.login != nil && (errors.Is(err, ErrSessionExpired) || errors.Is(err, ErrNoPoints)) {
			p.log.Info("device session ended; logging in again", "path", r.display, "reason", p.redact(err).Error())
			p.loggedIn = false
			if err := p.doLogin(ctx); err != nil {
				return nil, err
			}
			if vals, err = p.fetch(ctx, r); err != nil {
				return nil, fmt.Errorf("after logging in again: %w", err)
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, vals...)
	}
	return out, nil
}

// fetch makes one request and maps its reply.
func (p *Poller) fetch(ctx context.Context, r *request) ([]device.Value, error) {
	body, err := p.do(ctx, r.method, r.path, r.display, "", "")
	if err != nil {
		return nil, err
	}
	doc, err := DecodeBody(body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.display, err)
	}
	if r.expired != nil {
		if v, ok := r.expired.Get(doc); ok && truthy(v) {
			return nil, fmt.Errorf("%s %s: %w: the reply has %s = %v", r.method, r.display, ErrSessionExpired, r.expired, v)
		}
	}
	vals, err := r.reader.Read(doc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w; reply %s", r.method, r.display, err, Excerpt(body))
	}
	return vals, nil
}

// truthy reports whether an expired marker is set: present and not null,
// false, 0 or empty (a TQ EM300 says "status":0 while the session lasts
// and "status":901 once it ended).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	}
	return true
}

// do sends one request and returns its 2xx body, at most MaxBody bytes.
func (p *Poller) do(ctx context.Context, method, path, display, body, contentType string) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: cannot build the request: %w", method, display, unwrapURL(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "gridlink")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch p.auth {
	case "basic":
		req.SetBasicAuth(p.cfg.Username, p.cfg.Password)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	case "", "none":
		// Shelly Gen1 protects its API with optional basic auth: a
		// username in the device config turns it on.
		if p.cfg.Username != "" {
			req.SetBasicAuth(p.cfg.Username, p.cfg.Password)
		}
	}
	p.log.Debug("request", "method", method, "path", display)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, display, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxBody {
		return nil, fmt.Errorf("%s %s: reply of %d bytes is larger than the limit of %d", method, display, resp.ContentLength, MaxBody)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the reply: %w", method, display, err)
	}
	if len(data) > MaxBody {
		return nil, fmt.Errorf("%s %s: reply is larger than the limit of %d bytes", method, display, MaxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Method: method, Path: display, Status: resp.StatusCode, Excerpt: Excerpt(data)}
	}
	return data, nil
}

// unwrapURL drops the *url.Error wrapper, whose message holds the full URL
// and with it any key the path carries.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// doLogin opens a session; the cookie jar keeps its cookies.
func (p *Poller) doLogin(ctx context.Context) error {
	l := p.login
	if _, err := p.do(ctx, l.method, l.path, l.display, l.body, l.contentType); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	p.loggedIn = true
	p.log.Debug("logged in", "path", l.display)
	return nil
}

// Close releases idle connections.
func (p *Poller) Close() error {
	p.transport.CloseIdleConnections()
	return nil
}

// redact hides the device's credentials in an error message (a device may
// echo them, and a Hue key is part of the URL).
func (p *Poller) redact(err error) error {
	msg := err.Error()
	red := msg
	for _, s := range p.secrets {
		red = strings.ReplaceAll(red, s, "***")
	}
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// This file serves the administration routes: keys, sites and assets.

func requireAdmin(p auth.Principal) error {
	if p.Admin() {
		return nil
	}
	return forbidden(CodeWrongScope, "this needs an admin key; this key has scope %s", p.Scope)
}

func requireRead(p auth.Principal, site string) error {
	switch {
	case p.CanRead(site):
		return nil
	case p.Scope == auth.ScopeIngest:
		return forbidden(CodeWrongScope, "a key of scope ingest cannot read; it needs scope read, read:restricted or admin")
	}
	return forbidden(CodeWrongSite, "this key reads site %q, not %q", p.Site, site)
}

// decodeBody decodes a JSON request body of at most s.maxBody bytes into v,
// refusing unknown fields.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !isMediaType(ct, "application/json") {
		return errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type %q not supported: send application/json", ct)
	}
	if r.ContentLength > s.maxBody {
		return errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, s.maxBody)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body larger than the limit of %d bytes", s.maxBody)
		}
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, CodeInvalidBody, "empty request body, want a JSON object")
		}
		return errorf(http.StatusBadRequest, CodeInvalidBody, "invalid JSON body: %s", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, CodeInvalidBody, "invalid JSON body: data after the object")
	}
	return nil
}

func invalidField(field, value, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, CodeInvalidBody, "field %s=%q: %s", field, clip(value), fmt.Sprintf(format, args...))
}

// checkText refuses control characters, invalid UTF-8 and overlong text.
func checkText(field, v string, max int) error {
	if len(v) > max {
		return invalidField(field, v, "longer than %d bytes", max)
	}
	if !utf8.ValidString(v) {
		return invalidField(field, v, "not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return invalidField(field, v, "holds a control character")
		}
	}
	return nil
}

// keyView is a key as listed: never its secret nor its hash.
type keyView struct {
	ID        string     `json:"id"`
	Key       string     `json:"key,omitempty"` // the secret, only when made
	Site      string     `json:"site"`
	Scope     string     `json:"scope"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func viewKey(k store.Key) keyView {
	v := keyView{ID: k.ID, Site: k.Site, Scope: k.Scope, Name: k.Name, CreatedAt: k.CreatedAt.UTC()}
	if k.Revoked() {
		t := k.RevokedAt.UTC()
		v.RevokedAt = &t
	}
	return v
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := requireAdmin(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Site  string `json:"site"`
		Scope string `json:"scope"`
		Name  string `json:"name"`
	}
	if err := s.decodeBody(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := auth.CheckGrant(req.Site, req.Scope); err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeInvalidBody, "%s", err))
		return
	}
	if err := checkText("name", req.Name, 128); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Site != "" {
		if _, err := s.lookupSite(r.Context(), req.Site, "; create it with POST /api/v1/sites"); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	secret, k := auth.NewKey(req.Site, req.Scope, req.Name, s.now())
	if err := s.store.CreateKey(r.Context(), k); err != nil {
		s.writeError(w, r, fmt.Errorf("store key: %w", err))
		return
	}
	v := viewKey(k)
	v.Key = secret
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := requireAdmin(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	ks, err := s.store.ListKeys(r.Context())
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list keys: %w", err))
		return
	}
	out := make([]keyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, viewKey(k))
	}
	writeList(w, "keys", out)
}

// writeList replies {"<key>": items}, with [] rather than null for none.
func writeList[T any](w http.ResponseWriter, key string, items []T) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string][]T{key: items})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := requireAdmin(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	err := s.store.RevokeKey(r.Context(), id, s.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "key %q does not exist", id))
		return
	} else if err != nil {
		s.writeError(w, r, fmt.Errorf("revoke key %q: %w", id, err))
		return
	}
	s.auth.Forget(id)
	ks, err := s.store.ListKeys(r.Context())
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list keys: %w", err))
		return
	}
	for _, k := range ks {
		if k.ID == id {
			writeJSON(w, http.StatusOK, viewKey(k))
			return
		}
	}
	s.writeError(w, r, fmt.Errorf("key %q revoked but no longer listed", id))
}

// pathSite reads and checks the {site} of a route.
func pathSite(r *http.Request) (string, error) {
	site := r.PathValue("site")
	if !auth.ValidSiteID(site) {
		return "", errorf(http.StatusBadRequest, CodeInvalidParameter, "site id %q in the path is not a site id (1-64 characters a-z, 0-9, '-')", clip(site))
	}
	return site, nil
}

// readableSite reads and checks the {site} of a route that p must be able to
// read.
func readableSite(r *http.Request, p auth.Principal) (string, error) {
	site, err := pathSite(r)
	if err == nil {
		err = requireRead(p, site)
	}
	return site, err
}

func (s *Server) handleListSites(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	var sites []cim.Site
	switch {
	case p.Admin():
		var err error
		if sites, err = s.store.ListSites(r.Context()); err != nil {
			s.writeError(w, r, fmt.Errorf("list sites: %w", err))
			return
		}
	case p.CanRead(p.Site):
		st, err := s.store.Site(r.Context(), p.Site)
		if err == nil {
			sites = append(sites, st)
		} else if !errors.Is(err, store.ErrNotFound) {
			s.writeError(w, r, fmt.Errorf("look up site %q: %w", p.Site, err))
			return
		}
	default:
		s.writeError(w, r, requireRead(p, p.Site))
		return
	}
	writeList(w, "sites", sites)
}

func (s *Server) handleGetSite(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := readableSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.lookupSite(r.Context(), site, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// lookupSite reads a site. One that does not exist is a 404 whose message
// ends in hint.
func (s *Server) lookupSite(ctx context.Context, id, hint string) (cim.Site, error) {
	st, err := s.store.Site(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return st, errorf(http.StatusNotFound, CodeNotFound, "site %q does not exist%s", id, hint)
	case err != nil:
		return st, fmt.Errorf("look up site %q: %w", id, err)
	}
	return st, nil
}

func checkSite(st cim.Site) error {
	if !auth.ValidSiteID(st.ID) {
		return invalidField("id", st.ID, "not a site id (1-64 characters a-z, 0-9, '-')")
	}
	if err := checkText("name", st.Name, 200); err != nil {
		return err
	}
	if st.Country != "" && (len(st.Country) != 2 || strings.ToUpper(st.Country) != st.Country || !isLetters(st.Country)) {
		return invalidField("country", st.Country, "not an ISO 3166-1 alpha-2 code such as GB")
	}
	if st.Timezone != "" && !validTimezone(st.Timezone) {
		return invalidField("timezone", st.Timezone, "not an IANA time zone name such as Europe/London")
	}
	return nil
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// validTimezone checks the shape of an IANA zone name (the zone database
// itself may be missing from the machine).
func validTimezone(tz string) bool {
	if len(tz) > 64 || strings.Contains(tz, "..") || strings.HasPrefix(tz, "/") || strings.HasSuffix(tz, "/") {
		return false
	}
	for _, c := range tz {
		if !(c == '/' || c == '_' || c == '-' || c == '+' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func (s *Server) handlePutSite(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if err := requireAdmin(p); err != nil {
		s.writeError(w, r, err)
		return
	}
	var st cim.Site
	if err := s.decodeBody(w, r, &st); err != nil {
		s.writeError(w, r, err)
		return
	}
	if st.Name == "" {
		st.Name = st.ID
	}
	if err := checkSite(st); err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if _, err := s.store.Site(r.Context(), st.ID); err == nil {
		status = http.StatusOK
	} else if !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, fmt.Errorf("look up site %q: %w", st.ID, err))
		return
	}
	if err := s.store.PutSite(r.Context(), st); err != nil {
		s.writeError(w, r, fmt.Errorf("store site %q: %w", st.ID, err))
		return
	}
	writeJSON(w, status, st)
}

func (s *Server) handleListAssets(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := readableSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.store.Site(r.Context(), site); errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "site %q does not exist", site))
		return
	}
	as, err := s.store.ListAssets(r.Context(), site)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list assets of site %q: %w", site, err))
		return
	}
	writeList(w, "assets", as)
}

func (s *Server) handleGetAsset(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := readableSite(r, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	a, err := s.store.Asset(r.Context(), site, id)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "asset %q does not exist in site %q", clip(id), site))
		return
	} else if err != nil {
		s.writeError(w, r, fmt.Errorf("look up asset %q of site %q: %w", id, site, err))
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// checkAssetID refuses what cim.CheckAssetID refuses, and ids with empty
// path segments. Slashes are allowed ("house-01/meter").
func checkAssetID(id string) error {
	var fe *cim.FieldError
	if err := cim.CheckAssetID(id); errors.As(err, &fe) {
		return invalidField("id", id, "%s", fe.Reason)
	} else if err != nil {
		return invalidField("id", id, "%s", err)
	}
	if strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") || strings.Contains(id, "//") {
		return invalidField("id", id, "empty path segment")
	}
	return nil
}

func checkAsset(a cim.Asset) error {
	if err := checkAssetID(a.ID); err != nil {
		return err
	}
	if _, err := cim.ParseAssetType(string(a.Type)); err != nil {
		names := make([]string, 0, len(cim.AssetTypes()))
		for _, t := range cim.AssetTypes() {
			names = append(names, string(t))
		}
		return invalidField("type", string(a.Type), "unknown asset type (want one of %s)", strings.Join(names, ", "))
	}
	for _, f := range []struct{ name, v string }{{"name", a.Name}, {"make", a.Make}, {"model", a.Model}, {"household", a.Household}} {
		if err := checkText(f.name, f.v, 200); err != nil {
			return err
		}
	}
	if err := a.CheckLedger(); err != nil {
		return invalidField("ledger", "true", "%s", reasonOf(err))
	}
	if l := a.Location; l != nil {
		if math.Abs(l.Latitude) > 90 || math.IsNaN(l.Latitude) {
			return invalidField("location.lat", fmt.Sprint(l.Latitude), "outside -90..90")
		}
		if math.Abs(l.Longitude) > 180 || math.IsNaN(l.Longitude) {
			return invalidField("location.lon", fmt.Sprint(l.Longitude), "outside -180..180")
		}
		if err := checkText("location.address", l.Address, 500); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) handlePutAsset(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	site, err := pathSite(r)
	if err == nil {
		err = requireAdmin(p)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var a cim.Asset
	if err := s.decodeBody(w, r, &a); err != nil {
		s.writeError(w, r, err)
		return
	}
	if a.Site != "" && a.Site != site {
		s.writeError(w, r, invalidField("site", a.Site, "differs from the site %q of the path", site))
		return
	}
	a.Site = site
	if err := checkAsset(a); err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if _, err := s.store.Asset(r.Context(), site, a.ID); err == nil {
		status = http.StatusOK
	} else if !errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, fmt.Errorf("look up asset %q: %w", a.ID, err))
		return
	}
	err = s.store.PutAsset(r.Context(), a)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "site %q does not exist; create it with POST /api/v1/sites", site))
		return
	} else if err != nil {
		s.writeError(w, r, fmt.Errorf("store asset %q of site %q: %w", a.ID, site, err))
		return
	}
	s.assets.add(site, a.ID)
	s.forgetLedgerAssets(site) // its ledger mark may have changed
	writeJSON(w, status, a)
}

package platform

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// The machine-readable codes of error replies, the "code" of
// {"error": "...", "code": "..."}.
const (
	CodeMissingKey           = "missing_key"            // 401
	CodeUnknownKey           = "unknown_key"            // 401
	CodeRevokedKey           = "revoked_key"            // 401
	CodeWrongScope           = "wrong_scope"            // 403
	CodeWrongSite            = "wrong_site"             // 403
	CodeRestricted           = "restricted"             // 403: health data without read:restricted
	CodeInvalidParameter     = "invalid_parameter"      // 400
	CodeInvalidBody          = "invalid_body"           // 400
	CodeNotFound             = "not_found"              // 404
	CodeConflict             = "conflict"               // 409
	CodeChargerError         = "charger_error"          // 502: a charge point refused or failed a command
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeInternal             = "internal"               // 500
	CodeUnavailable          = "unavailable"            // 503
	CodeUnsigned             = "unsigned"               // 422: readings of ledger assets without Gridlink-Ledger-Signature
	CodeBadSignature         = "bad_signature"          // 422: a ledger signature that does not verify, or of an unknown signer
)

// apiError is an error with the HTTP status and code of its reply.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// clip shortens a value quoted in an error.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badParam(name, value, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, CodeInvalidParameter, "parameter %s=%q: %s", name, value, fmt.Sprintf(format, args...))
}

func forbidden(code, format string, args ...any) *apiError {
	return errorf(http.StatusForbidden, code, format, args...)
}

// toAPIError maps any error to its reply.
func toAPIError(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	var fe *cim.FieldError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, auth.ErrNoKey):
		return errorf(http.StatusUnauthorized, CodeMissingKey, "%s", err)
	case errors.Is(err, auth.ErrUnknownKey):
		return errorf(http.StatusUnauthorized, CodeUnknownKey, "%s", err)
	case errors.Is(err, auth.ErrRevoked):
		return errorf(http.StatusUnauthorized, CodeRevokedKey, "%s", err)
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body larger than %d bytes", mbe.Limit)
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, CodeNotFound, "%s", err)
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusConflict, CodeConflict, "%s", err)
	case errors.As(err, &fe):
		return errorf(http.StatusBadRequest, CodeInvalidBody, "%s", fe)
	}
	return errorf(http.StatusInternalServerError, CodeInternal, "internal error: %s", err)
}

// writeError sends the JSON error reply of err.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var bf *batchFailure
	if errors.As(err, &bf) {
		if bf.status >= 500 {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "request failed",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", bf.msg))
		}
		writeErrorReport(w, bf.apiError, bf.report)
		return
	}
	ae := toAPIError(err)
	if ae.status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	writeErrorReply(w, ae)
}

func writeErrorReply(w http.ResponseWriter, ae *apiError) { writeErrorReport(w, ae, nil) }

// writeErrorReport sends an error reply, with a "report" member when report
// is not nil.
func writeErrorReport(w http.ResponseWriter, ae *apiError, report any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if ae.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="gridlink"`)
	}
	b := make([]byte, 0, 64+len(ae.msg))
	b = append(b, `{"error":`...)
	b = appendJSONString(b, ae.msg)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, ae.code)
	if report != nil {
		if rb, err := json.Marshal(report); err == nil {
			b = append(b, `,"report":`...)
			b = append(b, rb...)
		}
	}
	b = append(b, "}\n"...)
	w.WriteHeader(ae.status)
	w.Write(b)
}

package ocpp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/lorenzodonini/ocpp-go/ocpp"
	"github.com/lorenzodonini/ocpp-go/ocpp1.6/types"
	"github.com/lorenzodonini/ocpp-go/ocppj"
	"github.com/lorenzodonini/ocpp-go/ws"
	"gopkg.in/go-playground/validator.v9"
)

// authenticate checks a handshake's HTTP basic credentials (OCPP security
// profiles 1 and 2): the user must be the charge point id, the id must be
// registered, and the password's SHA-256 must match the registered one.
func (c *CentralSystem) authenticate(r *http.Request, id string) error {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return errors.New("no HTTP basic credentials")
	}
	// Hash before any early return, so that timing does not tell unknown
	// ids from wrong passwords.
	sum := sha256.Sum256([]byte(pass))
	if user != id {
		return fmt.Errorf("basic auth user %q is not the charge point id", user)
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.StoreTimeout)
	defer cancel()
	cp, found, err := c.deps.Registry.ChargePoint(ctx, id)
	if err != nil {
		return fmt.Errorf("registry lookup: %w", err)
	}
	var zero [32]byte
	switch {
	case !found:
		return errors.New("unknown charge point")
	case cp.PasswordSHA256 == zero:
		return errors.New("no password registered for the charge point")
	case subtle.ConstantTimeCompare(sum[:], cp.PasswordSHA256[:]) != 1:
		return errors.New("wrong password")
	case cp.Site == "":
		return errors.New("charge point registered without a site")
	}
	cp.ID = id
	c.remember(cp)
	return nil
}

// Lenient validation. ocpp-go validates every message against OCPP 1.6's
// enumerations, and one bad sampled value makes it refuse the whole
// MeterValues message, losing the good ones. The rules for the fields of a
// sampledValue are relaxed to "a short token": the measurand mapping judges
// each sampled value and skips (and logs) the ones it cannot store, such as
// Alfen's "context":"CurrentMax". The validator is ocpp-go's package-level
// one, so this applies process-wide; it is idempotent.
var lenientOnce sync.Once

func registerLenientValidation() {
	lenientOnce.Do(func() {
		for _, tag := range []string{"readingContext16", "measurand16", "phase16", "location16", "unitOfMeasure", "valueFormat"} {
			if err := types.Validate.RegisterValidation(tag, isToken); err != nil {
				panic("ocpp: register lenient validation " + tag + ": " + err.Error())
			}
		}
	})
}

// isToken accepts 1 to 50 characters of letters, digits and . _ - % (OCPP
// 1.6's enumeration values and the vendor variants seen in the field).
func isToken(fl validator.FieldLevel) bool {
	s := fl.Field().String()
	if s == "" || len(s) > 50 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-' || b == '%') {
			return false
		}
	}
	return true
}

// emptyVendor stands in for an empty chargePointVendor (Huawei chargers send
// one) so that ocpp-go's "required" rule, which cannot be overridden, lets
// the BootNotification through; the handler turns it back into "".
const emptyVendor = "\x00"

// aliasBase: transaction ids beyond ±2^53 lose precision (and 2^63−1, which
// Alfen sends, overflows) because ocppj parses frames through float64, and
// on 32-bit platforms ids beyond int32 do not fit ocpp-go's int. Such an id
// is swapped for a stand-in aliasBase+k (k < 2^20) before ocppj sees the
// frame and swapped back in the handler (charger.realTx).
const aliasBase = -(1 << (strconv.IntSize - 11))

const maxExactInt = 1 << 53

// needsAlias reports whether ocppj would not read tx exactly.
func needsAlias(tx int64) bool {
	return tx > maxExactInt || tx < -maxExactInt || int64(int(tx)) != tx
}

// rewriteFrame applies the two repairs above to a CALL frame; any other
// frame is returned as is. It only decodes frames that may need it.
func (c *CentralSystem) rewriteFrame(id string, data []byte) []byte {
	boot := bytes.Contains(data, []byte(`"BootNotification"`))
	if !boot && !bytes.Contains(data, []byte(`"transactionId"`)) {
		return data
	}
	var arr []json.RawMessage
	if json.Unmarshal(data, &arr) != nil || len(arr) != 4 || string(arr[0]) != "2" {
		return data
	}
	var action string
	if json.Unmarshal(arr[2], &action) != nil {
		return data
	}
	var payload map[string]json.RawMessage
	switch action {
	case "BootNotification", "MeterValues", "StopTransaction":
		if json.Unmarshal(arr[3], &payload) != nil || payload == nil {
			return data
		}
	default:
		return data
	}
	changed := false
	if action == "BootNotification" {
		var vendor string
		if raw, ok := payload["chargePointVendor"]; !ok || json.Unmarshal(raw, &vendor) == nil && strings.TrimSpace(vendor) == "" {
			payload["chargePointVendor"] = json.RawMessage(`"\u0000"`)
			changed = true
			c.log.Warn("charge point sent an empty chargePointVendor; accepted", "charge_point", id)
		}
	} else if raw, ok := payload["transactionId"]; ok {
		if tx, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64); err == nil && needsAlias(tx) {
			if ch := c.lookup(id); ch != nil {
				alias := ch.alias(tx)
				payload["transactionId"] = json.RawMessage(strconv.Itoa(alias))
				changed = true
			}
		}
	}
	if !changed {
		return data
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return data
	}
	arr[3] = p
	out, err := json.Marshal(arr)
	if err != nil {
		return data
	}
	return out
}

// alias registers a stand-in for a large transaction id.
func (ch *charger) alias(tx int64) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	// A frame that ocppj then refuses never resolves its alias; the table
	// is small, so it is simply reset when it grows.
	if len(ch.aliases) >= 64 {
		clear(ch.aliases)
	}
	ch.nextAlias = ch.nextAlias%(1<<20) + 1
	a := aliasBase + ch.nextAlias
	ch.aliases[a] = tx
	return a
}

// realTx turns a transaction id as ocppj parsed it back into the charger's.
func (ch *charger) realTx(tx int) int64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if real, ok := ch.aliases[tx]; ok {
		delete(ch.aliases, tx)
		return real
	}
	return int64(tx)
}

// invalidMessage is ocppj's hook for frames it refused: it logs them and
// corrects the error code to the one OCPP-J 1.6 (section 4.2.3) names.
func (c *CentralSystem) invalidMessage(client ws.Channel, err *ocpp.Error, raw string, _ []interface{}) *ocpp.Error {
	code := err.Code
	desc := err.Description
	switch {
	case code == ocppj.NotSupported && strings.HasPrefix(desc, "Unsupported feature"):
		// The action is not an OCPP 1.6 action at all.
		code = ocppj.NotImplemented
	case code == ocppj.FormatViolationV16 && isTypeError(desc):
		code = ocppj.TypeConstraintViolation
	case code == ocppj.GenericError:
		// ocppj's fallback for a failed validation rule other than
		// required/min/max: a value outside its enumeration.
		code = ocppj.PropertyConstraintViolation
	}
	c.log.Warn("OCPP message refused", "charge_point", client.ID(), "code", string(code), "description", desc,
		"frame", truncateString(raw, 300))
	return ocpp.NewError(code, desc, err.MessageId)
}

// isTypeError tells a JSON type mismatch ("somestring": 12) or an
// unparseable dateTime from a structural error.
func isTypeError(desc string) bool {
	return strings.Contains(desc, "cannot unmarshal") || strings.Contains(desc, "timestamp not enclosed") ||
		strings.Contains(desc, "iso8601")
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

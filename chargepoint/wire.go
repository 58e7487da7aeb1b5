package chargepoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// OCPP-J message type numbers.
const (
	typeCall       = 2
	typeCallResult = 3
	typeCallError  = 4
)

// maxMessageID is the longest unique id OCPP-J allows (36 characters).
const maxMessageID = 36

// frame is one OCPP-J message.
type frame struct {
	Type    int
	ID      string
	Action  string          // CALL
	Payload json.RawMessage // CALL, CALLRESULT
	Code    string          // CALLERROR
	Desc    string          // CALLERROR
	Details json.RawMessage // CALLERROR
}

// frameError is a frame that could not be parsed; ID is set when the frame
// got far enough to name its unique id, so a CALL can be answered.
type frameError struct {
	ID   string
	Call bool
	Code string
	Msg  string
}

func (e *frameError) Error() string { return e.Msg }

// parseFrame parses an OCPP-J frame.
func parseFrame(b []byte) (frame, error) {
	var arr []json.RawMessage
	if err := json.Unmarshal(b, &arr); err != nil {
		return frame{}, &frameError{Code: "FormationViolation", Msg: fmt.Sprintf("frame is not a JSON array: %v", err)}
	}
	if len(arr) < 3 {
		return frame{}, &frameError{Code: "FormationViolation", Msg: fmt.Sprintf("frame has %d elements, want at least 3", len(arr))}
	}
	var f frame
	if err := json.Unmarshal(arr[0], &f.Type); err != nil {
		return frame{}, &frameError{Code: "FormationViolation", Msg: fmt.Sprintf("message type %s is not an integer", arr[0])}
	}
	if err := json.Unmarshal(arr[1], &f.ID); err != nil || f.ID == "" || len(f.ID) > maxMessageID {
		return frame{}, &frameError{Code: "FormationViolation", Msg: fmt.Sprintf("unique id %s is not a string of 1 to 36 characters", short(arr[1]))}
	}
	bad := func(format string, a ...any) error {
		return &frameError{ID: f.ID, Call: f.Type == typeCall, Code: "FormationViolation", Msg: fmt.Sprintf(format, a...)}
	}
	switch f.Type {
	case typeCall:
		if len(arr) != 4 {
			return frame{}, bad("CALL has %d elements, want 4", len(arr))
		}
		if err := json.Unmarshal(arr[2], &f.Action); err != nil || f.Action == "" {
			return frame{}, bad("CALL action %s is not a non-empty string", short(arr[2]))
		}
		if !isObject(arr[3]) {
			return frame{}, bad("CALL %s payload is not a JSON object", f.Action)
		}
		f.Payload = arr[3]
	case typeCallResult:
		if len(arr) != 3 {
			return frame{}, bad("CALLRESULT has %d elements, want 3", len(arr))
		}
		if !isObject(arr[2]) {
			return frame{}, bad("CALLRESULT payload is not a JSON object")
		}
		f.Payload = arr[2]
	case typeCallError:
		if len(arr) != 5 {
			return frame{}, bad("CALLERROR has %d elements, want 5", len(arr))
		}
		if err := json.Unmarshal(arr[2], &f.Code); err != nil {
			return frame{}, bad("CALLERROR code %s is not a string", short(arr[2]))
		}
		if err := json.Unmarshal(arr[3], &f.Desc); err != nil {
			return frame{}, bad("CALLERROR description %s is not a string", short(arr[3]))
		}
		if !isObject(arr[4]) {
			return frame{}, bad("CALLERROR details are not a JSON object")
		}
		f.Details = arr[4]
	default:
		return frame{}, &frameError{ID: f.ID, Code: "MessageTypeNotSupported", Msg: fmt.Sprintf("message type %d is not 2, 3 or 4", f.Type)}
	}
	return f, nil
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{'
}

// short quotes at most 40 bytes of raw JSON for an error message.
func short(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// callFrame encodes a CALL.
func callFrame(id, action string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", action, err)
	}
	return json.Marshal([]any{typeCall, id, action, json.RawMessage(p)})
}

// resultFrame encodes a CALLRESULT.
func resultFrame(id string, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return json.Marshal([]any{typeCallResult, id, json.RawMessage(p)})
}

// errorFrame encodes a CALLERROR.
func errorFrame(id string, e *CallError) []byte {
	b, _ := json.Marshal([]any{typeCallError, id, e.Code, e.Description, struct{}{}})
	return b
}

// CallError is an OCPP-J CALLERROR: the peer's refusal of a request.
type CallError struct {
	Code        string // e.g. "FormationViolation", "NotSupported"
	Description string
}

func (e *CallError) Error() string {
	return fmt.Sprintf("call error %s: %s", e.Code, e.Description)
}

// errOffline is returned for a message that needs a connection while the
// charger has none.
var errOffline = errors.New("charge point is offline")

// timeFormat is how the charger writes timestamps: UTC with milliseconds,
// so samples less than a second apart keep distinct times.
const timeFormat = "2006-01-02T15:04:05.000Z"

func stamp(t time.Time) string { return t.UTC().Format(timeFormat) }

// Outgoing payloads. The charger writes its own structs, not ocpp-go's, to
// keep millisecond timestamps, int64 transaction ids and the quirk modes'
// non-spec frames without touching ocpp-go's process-wide validator and
// time format.

type bootNotificationReq struct {
	ChargePointVendor       string `json:"chargePointVendor"`
	ChargePointModel        string `json:"chargePointModel"`
	ChargePointSerialNumber string `json:"chargePointSerialNumber,omitempty"`
	ChargeBoxSerialNumber   string `json:"chargeBoxSerialNumber,omitempty"`
	FirmwareVersion         string `json:"firmwareVersion,omitempty"`
	MeterType               string `json:"meterType,omitempty"`
}

// wallboxBootReq is a Wallbox BootNotification: empty optional fields are
// sent, not left out.
type wallboxBootReq struct {
	ChargePointSerialNumber string `json:"chargePointSerialNumber"`
	ChargePointVendor       string `json:"chargePointVendor"`
	MeterType               string `json:"meterType"`
	MeterSerialNumber       string `json:"meterSerialNumber"`
	ChargePointModel        string `json:"chargePointModel"`
	Iccid                   string `json:"iccid"`
	ChargeBoxSerialNumber   string `json:"chargeBoxSerialNumber"`
	FirmwareVersion         string `json:"firmwareVersion"`
	Imsi                    string `json:"imsi"`
}

type bootNotificationConf struct {
	CurrentTime string `json:"currentTime"`
	Interval    int    `json:"interval"`
	Status      string `json:"status"`
}

type statusNotificationReq struct {
	ConnectorID int    `json:"connectorId"`
	ErrorCode   string `json:"errorCode"`
	Status      string `json:"status"`
	Timestamp   string `json:"timestamp,omitempty"`
}

// wallboxStatusReq is a Wallbox StatusNotification.
type wallboxStatusReq struct {
	Info            string `json:"info"`
	VendorID        string `json:"vendorId"`
	VendorErrorCode string `json:"vendorErrorCode"`
	ConnectorID     int    `json:"connectorId"`
	ErrorCode       string `json:"errorCode"`
	Status          string `json:"status"`
	Timestamp       string `json:"timestamp"`
}

type idTagInfo struct {
	Status string `json:"status"`
}

type authorizeReq struct {
	IDTag string `json:"idTag"`
}

type authorizeConf struct {
	IDTagInfo idTagInfo `json:"idTagInfo"`
}

type startTransactionReq struct {
	ConnectorID int    `json:"connectorId"`
	IDTag       string `json:"idTag"`
	MeterStart  int64  `json:"meterStart"`
	Timestamp   string `json:"timestamp"`
}

type startTransactionConf struct {
	IDTagInfo     idTagInfo `json:"idTagInfo"`
	TransactionID *int64    `json:"transactionId"`
}

type stopTransactionReq struct {
	IDTag           string       `json:"idTag,omitempty"`
	MeterStop       int64        `json:"meterStop"`
	Timestamp       string       `json:"timestamp"`
	TransactionID   int64        `json:"transactionId"`
	Reason          string       `json:"reason,omitempty"`
	TransactionData []meterValue `json:"transactionData,omitempty"`
}

type sampledValue struct {
	Value     string `json:"value"`
	Context   string `json:"context,omitempty"`
	Format    string `json:"format,omitempty"`
	Measurand string `json:"measurand,omitempty"`
	Phase     string `json:"phase,omitempty"`
	Location  string `json:"location,omitempty"`
	Unit      string `json:"unit,omitempty"`
}

type meterValue struct {
	Timestamp    string         `json:"timestamp"`
	SampledValue []sampledValue `json:"sampledValue"`
}

type meterValuesReq struct {
	ConnectorID   int          `json:"connectorId"`
	TransactionID *int64       `json:"transactionId,omitempty"`
	MeterValue    []meterValue `json:"meterValue"`
}

type heartbeatReq struct{}

type heartbeatConf struct {
	CurrentTime string `json:"currentTime"`
}

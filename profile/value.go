package profile

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gridlink/gridlink/device"
)

// JSONValue maps one decoded JSON value (as encoding/json decodes into
// any) to a device value: a number through the scale (or, when the
// mapping lists states, as its text through States), a bool as 1 and 0
// (or as the texts "true" and "false" through States), text as a state
// name or a number. Without states the texts "true" and "false" count as
// 1 and 0 too, since devices send either form for a switch.
//
// skip reports that the device has no value: null, or text that is empty
// after trimming (Venus OS writes null for invalid, a Shelly Button1
// waking without a press sends an empty event). Objects, arrays and
// results that are not finite after scaling are errors naming the
// quantity.
func (m *Mapping) JSONValue(raw any) (v device.Value, skip bool, err error) {
	switch x := raw.(type) {
	case nil:
		return device.Value{}, true, nil
	case float64:
		if len(m.States) > 0 {
			v, err = m.TextValue(strconv.FormatFloat(x, 'f', -1, 64))
			return v, false, err
		}
		v, err = m.finite(m.Value(x))
		return v, false, err
	case bool:
		if len(m.States) > 0 {
			v, err = m.TextValue(strconv.FormatBool(x))
			return v, false, err
		}
		v, err = m.finite(m.Value(boolNumber(x)))
		return v, false, err
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return device.Value{}, true, nil
		}
		if len(m.States) == 0 && (s == "true" || s == "false") {
			v, err = m.finite(m.Value(boolNumber(s == "true")))
			return v, false, err
		}
		v, err = m.TextValue(s)
		if err != nil {
			return device.Value{}, false, err
		}
		v, err = m.finite(v)
		return v, false, err
	}
	return device.Value{}, false, fmt.Errorf("%s: want a number, text or bool, got %s", m.Quantity, jsonKind(raw))
}

func boolNumber(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// finite refuses a number that is not finite after scaling (1e308 times a
// scale of 1000, a transform out of range).
func (m *Mapping) finite(v device.Value) (device.Value, error) {
	if v.State == "" && (math.IsNaN(v.Value) || math.IsInf(v.Value, 0)) {
		return device.Value{}, fmt.Errorf("%s: value is not finite", m.Quantity)
	}
	return v, nil
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case float64:
		return "a number"
	case string:
		return "text"
	case bool:
		return "a bool"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// Plausible device clocks: a time outside is a misread field, not a
// reading from 1970 or 2300. The bounds also keep float to int64
// conversions of unix times in range.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// PlausibleTime reports whether t lies within the bounds TimeField.Parse
// accepts (the years 2000 to 2200).
func PlausibleTime(t time.Time) bool {
	return !t.Before(minTime) && !t.After(maxTime)
}

// localLayouts are the zone-less forms devices write: Hue and Tasmota
// "2006-01-02T15:04:05", Tasmota also with a space; fractions optional.
var localLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// Parse reads the device timestamp raw, a decoded JSON value (or a CSV
// field as text), in t's format. ok is false when the device gives no
// time: raw is null, the number 0 (a Shelly whose clock is not yet
// synchronised), or text that is empty or "none" (Hue); callers decide
// whether that is an error. Unix times keep exact milliseconds (unix_ms
// 1548683523859 does not come back as …858999); RFC 3339 times keep their
// full resolution. A time outside the years 2000 to 2200 is an error.
func (t *TimeField) Parse(raw any) (tm time.Time, ok bool, err error) {
	if s, isText := raw.(string); isText {
		s = strings.TrimSpace(s)
		if s == "" || s == "none" {
			return time.Time{}, false, nil
		}
		raw = s
	}
	if raw == nil {
		return time.Time{}, false, nil
	}
	switch t.Format {
	case "unix_s", "unix_ms":
		var n float64
		switch x := raw.(type) {
		case float64:
			n = x
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return time.Time{}, false, fmt.Errorf("%q is not a number", clip(x))
			}
			n = f
		default:
			return time.Time{}, false, fmt.Errorf("want a number, got %s", jsonKind(raw))
		}
		if n == 0 {
			return time.Time{}, false, nil
		}
		secs := n
		if t.Format == "unix_ms" {
			secs = n / 1e3
		}
		// Range-check before converting: float to int64 of a huge value
		// is undefined; the negated test also refuses NaN.
		if !(secs >= float64(minTime.Unix()) && secs <= float64(maxTime.Unix())) {
			return time.Time{}, false, fmt.Errorf("%s is not a plausible %s time", clip(strconv.FormatFloat(n, 'g', -1, 64)), t.Format)
		}
		sec := math.Floor(secs)
		ms := math.Round((secs - sec) * 1e3)
		return time.Unix(int64(sec), int64(ms)*int64(time.Millisecond)).UTC(), true, nil
	case "rfc3339", "local":
		s, isText := raw.(string)
		if !isText {
			return time.Time{}, false, fmt.Errorf("want text, got %s", jsonKind(raw))
		}
		if t.Format == "rfc3339" {
			tm, err = time.Parse(time.RFC3339Nano, s)
		} else {
			for _, layout := range localLayouts {
				if tm, err = time.ParseInLocation(layout, s, time.UTC); err == nil {
					break
				}
			}
		}
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%q is not a %s time", clip(s), t.Format)
		}
		tm = tm.UTC()
		if !PlausibleTime(tm) {
			return time.Time{}, false, fmt.Errorf("%q is not a plausible %s time", clip(s), t.Format)
		}
		return tm, true, nil
	}
	return time.Time{}, false, fmt.Errorf("unknown time format %q", t.Format)
}

package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/profile"
)

// MaxBody bounds a reply body. Real device documents are a few kilobytes;
// the largest (a Hue bridge's full state) stays well below this.
const MaxBody = 4 << 20

// DecodeBody decodes the JSON value a reply starts with. It is lenient the
// way real devices need: a UTF-8 byte order mark and anything after the
// first complete value (TQ EM300 firmware 2.04 appends '#') are ignored.
// The error quotes the start of the body.
func DecodeBody(body []byte) (any, error) {
	b := bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty body, want a JSON document")
	}
	var doc any
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("body is not JSON (%v): %s", err, Excerpt(body))
	}
	return doc, nil
}

// Excerpt quotes the start of a body for an error message: at most 120
// bytes, control characters blanked.
func Excerpt(body []byte) string {
	const n = 120
	cut := len(body) > n
	if cut {
		body = body[:n]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1] // do not split a rune
		}
	}
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(body))
	s = strings.Join(strings.Fields(s), " ")
	if cut {
		return strconv.Quote(s) + "…"
	}
	return strconv.Quote(s)
}

// point is a JSON point with its placeholders filled.
type point struct {
	m    *profile.Mapping
	path profile.Path
	text string // the filled path as written, for errors
}

// timeSpec is a TimeField with its placeholders filled.
type timeSpec struct {
	path   profile.Path
	text   string
	format string
}

// Reader reads the values of one reply document as a profile's points
// describe them. Both the HTTP and the Kasa pollers use it.
type Reader struct {
	points []point
	time   *timeSpec
}

// NewReader compiles points and an optional time field; {name}
// placeholders in their paths are filled from vars.
func NewReader(pts []profile.JSONPoint, tf *profile.TimeField, vars map[string]string) (*Reader, error) {
	r := &Reader{}
	for i := range pts {
		p, err := fillPath(pts[i].Path, fmt.Sprintf("points[%d].path", i), vars)
		if err != nil {
			return nil, err
		}
		r.points = append(r.points, point{m: &pts[i].Mapping, path: p, text: p.String()})
	}
	if tf != nil {
		p, err := fillPath(tf.Path, "time.path", vars)
		if err != nil {
			return nil, err
		}
		r.time = &timeSpec{path: p, text: p.String(), format: tf.Format}
	}
	return r, nil
}

// Read maps doc's values. A JSON null is skipped (the device has no value
// yet); a missing path is an error unless the point is optional; when every
// point is missing, that is an error too. The device's time, when the
// profile locates one, stamps every value.
func (r *Reader) Read(doc any) ([]device.Value, error) {
	var (
		out   []device.Value
		errs  []error
		found int
	)
	for _, p := range r.points {
		raw, ok := p.path.Get(doc)
		if !ok {
			if !p.m.Optional {
				errs = append(errs, fmt.Errorf("path %s (%s) is missing", p.text, p.m.Quantity))
			}
			continue
		}
		found++
		v, skip, err := decodeValue(p.m, raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("path %s: %w", p.text, err))
			continue
		}
		if !skip {
			out = append(out, v)
		}
	}
	if found == 0 && len(r.points) > 0 {
		return nil, fmt.Errorf("%w (%d points, the first at path %s)", ErrNoPoints, len(r.points), r.points[0].text)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if r.time != nil {
		t, err := r.time.read(doc)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i].Time = t
		}
	}
	return out, nil
}

// decodeValue maps one JSON value: numbers and numeric text through the
// mapping's scale, state texts through its states, bools as 1 and 0 (or as
// the texts "true" and "false" when the mapping lists states). skip reports
// a null.
func decodeValue(m *profile.Mapping, raw any) (v device.Value, skip bool, err error) {
	switch x := raw.(type) {
	case nil:
		return device.Value{}, true, nil
	case float64:
		if len(m.States) > 0 {
			v, err = m.TextValue(strconv.FormatFloat(x, 'f', -1, 64))
			return v, false, err
		}
		return m.Value(x), false, nil
	case string:
		v, err = m.TextValue(strings.TrimSpace(x))
		return v, false, err
	case bool:
		if len(m.States) > 0 {
			v, err = m.TextValue(strconv.FormatBool(x))
			return v, false, err
		}
		if x {
			return m.Value(1), false, nil
		}
		return m.Value(0), false, nil
	case map[string]any:
		return device.Value{}, false, fmt.Errorf("%s: want a number, text or bool, got an object", m.Quantity)
	case []any:
		return device.Value{}, false, fmt.Errorf("%s: want a number, text or bool, got an array", m.Quantity)
	}
	return device.Value{}, false, fmt.Errorf("%s: unexpected JSON value %T", m.Quantity, raw)
}

// Plausible bounds of device clocks: anything outside is a bad value, not
// a time (and keeps the conversions below from overflowing).
const (
	maxUnixS  = 1e11 // year 5138
	maxUnixMS = maxUnixS * 1e3
)

// read finds the device's time. A missing or null field, zero (Shelly
// without time sync) and Hue's "none" mean the device gives no time: the
// zero time, so that the gateway stamps the values.
func (t *timeSpec) read(doc any) (time.Time, error) {
	raw, ok := t.path.Get(doc)
	if !ok || raw == nil {
		return time.Time{}, nil
	}
	bad := func(why string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("time path %s: %s", t.text, why)
	}
	switch t.format {
	case "unix_s", "unix_ms":
		var n float64
		switch x := raw.(type) {
		case float64:
			n = x
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return bad(fmt.Sprintf("%s is not a number", Excerpt([]byte(x))))
			}
			n = f
		default:
			return bad(fmt.Sprintf("want a number, got %s", jsonKind(raw)))
		}
		if t.format == "unix_ms" {
			if n > maxUnixMS || math.IsNaN(n) {
				return bad(fmt.Sprintf("%g ms is not a plausible time", n))
			}
			n /= 1e3
		}
		if n > maxUnixS || math.IsNaN(n) {
			return bad(fmt.Sprintf("%g s is not a plausible time", n))
		}
		if n <= 0 {
			return time.Time{}, nil
		}
		sec, frac := math.Modf(n)
		// Millisecond resolution, as the platform keeps, without the
		// float noise of the fraction.
		ms := math.Round(frac * 1e3)
		return time.Unix(int64(sec), int64(ms)*int64(time.Millisecond)).UTC(), nil
	case "rfc3339", "local":
		s, ok := raw.(string)
		if !ok {
			return bad(fmt.Sprintf("want text, got %s", jsonKind(raw)))
		}
		s = strings.TrimSpace(s)
		if s == "" || s == "none" {
			return time.Time{}, nil
		}
		var (
			tm  time.Time
			err error
		)
		if t.format == "rfc3339" {
			tm, err = time.Parse(time.RFC3339Nano, s)
		} else {
			// Hue writes UTC without a zone.
			tm, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
		}
		if err != nil {
			return bad(fmt.Sprintf("%s is not a %s time", Excerpt([]byte(s)), t.format))
		}
		return tm.UTC(), nil
	}
	return bad(fmt.Sprintf("unknown format %q", t.format))
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

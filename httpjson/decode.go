package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
	field *profile.TimeField
	path  profile.Path
	text  string
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
		r.time = &timeSpec{field: tf, path: p, text: p.String()}
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
		v, skip, err := p.m.JSONValue(raw)
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

// read finds the device's time. A missing field, or one where the device
// gives no time (null, 0, "none"), reads as the zero time, so that the
// gateway stamps the values with its clock.
func (t *timeSpec) read(doc any) (time.Time, error) {
	raw, _ := t.path.Get(doc)
	tm, _, err := t.field.Parse(raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("time path %s: %w", t.text, err)
	}
	return tm, nil
}

package profile

import (
	"fmt"
	"strconv"
	"strings"
)

// Path addresses a value inside a JSON document: keys joined by dots,
// array indices as numbers, and keys that hold dots or brackets quoted in
// brackets. Examples: "meters.0.total", "emeter.get_realtime.power_mw",
// `["1-0:1.4.0*255"]`, "body.devices.0.dashboard_data.CO2". The empty path
// is the whole document (a plain MQTT payload).
type Path []string

// ParsePath reads a path.
func ParsePath(s string) (Path, error) {
	var p Path
	for i := 0; i < len(s); {
		switch {
		case s[i] == '[':
			if len(s) < i+2 || s[i+1] != '"' {
				return nil, fmt.Errorf("path %q: a bracket at %d must hold a quoted key, [\"key\"]", s, i)
			}
			end := strings.Index(s[i+2:], `"]`)
			if end < 0 {
				return nil, fmt.Errorf("path %q: the bracket at %d is not closed with \"]", s, i)
			}
			if end == 0 {
				return nil, fmt.Errorf("path %q: empty key at %d", s, i)
			}
			p = append(p, s[i+2:i+2+end])
			i += 2 + end + 2
			switch {
			case i == len(s) || s[i] == '[':
			case s[i] == '.' && i+1 < len(s):
				i++
			default:
				return nil, fmt.Errorf("path %q: want . or [ after the bracket ending at %d", s, i-1)
			}
		default:
			j := strings.IndexAny(s[i:], ".[")
			if j < 0 {
				j = len(s) - i
			}
			if j == 0 {
				return nil, fmt.Errorf("path %q: empty key at %d", s, i)
			}
			if k := strings.IndexAny(s[i:i+j], `]"`); k >= 0 {
				return nil, fmt.Errorf("path %q: %q at %d: quote such keys, [\"key\"]", s, s[i+k], i+k)
			}
			p = append(p, s[i:i+j])
			i += j
			if i < len(s) && s[i] == '.' {
				i++
				if i == len(s) {
					return nil, fmt.Errorf("path %q: ends with a dot", s)
				}
			}
		}
	}
	return p, nil
}

// String writes the path back in its textual form.
func (p Path) String() string {
	var b strings.Builder
	for i, k := range p {
		if strings.ContainsAny(k, ".[]\"") {
			b.WriteString(`["` + k + `"]`)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	return b.String()
}

// Get finds the value at p in a document decoded by encoding/json (maps,
// slices, float64, string, bool, nil). A number key indexes an array.
func (p Path) Get(doc any) (any, bool) {
	v := doc
	for _, k := range p {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// Set stores val at p in doc, creating maps and arrays on the way (an
// all-digit key makes an array), and returns the new document. Simulators
// build device replies with it.
func (p Path) Set(doc any, val any) any {
	if len(p) == 0 {
		return val
	}
	k, rest := p[0], p[1:]
	if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < 1<<16 {
		arr, _ := doc.([]any)
		for len(arr) <= i {
			arr = append(arr, nil)
		}
		arr[i] = rest.Set(arr[i], val)
		return arr
	}
	m, _ := doc.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	m[k] = rest.Set(m[k], val)
	return m
}

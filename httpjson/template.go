package httpjson

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/gridlink/gridlink/profile"
)

// placeholderRE matches {name} placeholders. JSON braces never match: a
// placeholder holds only letters, digits and underscores.
var placeholderRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// lookupFunc gives a placeholder's value, or false when it has none.
type lookupFunc func(name string) (string, bool)

// varsLookup looks placeholders up in a device's vars.
func varsLookup(vars map[string]string) lookupFunc {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// fill replaces every placeholder of tmpl through look, escaping each value
// with esc (nil: as is). where names the template in errors.
func fill(tmpl, where string, look lookupFunc, esc func(string) string) (string, error) {
	var missing []string
	out := placeholderRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := look(name)
		if !ok {
			missing = append(missing, m)
			return m
		}
		if esc != nil {
			v = esc(v)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s: placeholder %s has no value in the device's vars", where, strings.Join(missing, ", "))
	}
	return out, nil
}

// fillURLPath fills a request path that may carry a query: values are
// path-escaped before the '?' and query-escaped after it.
func fillURLPath(tmpl, where string, look lookupFunc) (string, error) {
	p, q, hasQuery := strings.Cut(tmpl, "?")
	p, err := fill(p, where, look, url.PathEscape)
	if err != nil {
		return "", err
	}
	if !hasQuery {
		return p, nil
	}
	q, err = fill(q, where, look, url.QueryEscape)
	if err != nil {
		return "", err
	}
	return p + "?" + q, nil
}

// fillPath fills placeholders inside the keys of a parsed JSON path (Hue
// sensor ids: "{temp_id}.state.temperature").
func fillPath(s, where string, vars map[string]string) (profile.Path, error) {
	p, err := profile.ParsePath(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	out := make(profile.Path, len(p))
	for i, k := range p {
		if out[i], err = fill(k, where, varsLookup(vars), nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

package uplink

import (
	"testing"
	"time"
)

// FuzzRetryAfter checks that any Retry-After header parses without panic
// to a wait within [0, MaxRetryAfter], and that a malformed one gives none.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "1", "120", "  30 ", "-5", "1.5", "1e3", "99999999999999999999",
		"Sat, 28 Nov 2026 12:00:30 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "soon"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		d, ok := parseRetryAfter(h, now)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("%q: wait %v out of range", h, d)
		}
		if !ok && d != 0 {
			t.Fatalf("%q: malformed but wait %v", h, d)
		}
	})
}

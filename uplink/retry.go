package uplink

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps the wait a Retry-After header can ask for, so that a
// misconfigured proxy cannot stall the uplink for days.
const MaxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After header (RFC 9110 section 10.2.3):
// delay-seconds or an HTTP date, relative to now. A date in the past means
// no wait. ok is false for a missing or malformed header; the wait is
// capped at MaxRetryAfter.
func parseRetryAfter(h string, now time.Time) (d time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if h[0] >= '0' && h[0] <= '9' {
		for i := 0; i < len(h); i++ {
			if h[i] < '0' || h[i] > '9' {
				return 0, false
			}
		}
		s, err := strconv.ParseUint(h, 10, 64)
		if err != nil || s > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true // a number too large to hold is still a long wait
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	return min(max(d, 0), MaxRetryAfter), true
}

// backoff returns the wait before retry number n (1 for the first): min
// doubled per failure, bounded by max, with "equal jitter" (a random half
// added to a fixed half) so that many gateways do not retry in step.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

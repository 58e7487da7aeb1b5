package gateway

import (
	"testing"
	"time"
)

func TestNextSlot(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(0, int64(s*1e9)) }
	cases := []struct {
		interval  time.Duration
		now, want float64
	}{
		{time.Second, 10.2, 10.5},
		{time.Second, 10.5, 11.5},
		{time.Second, 10.7, 11.5},
		{200 * time.Millisecond, 10.05, 10.1},
		{200 * time.Millisecond, 10.1, 10.3},
		{15 * time.Minute, 900, 900.5},
		{15 * time.Minute, 900.5, 1800.5},
	}
	for _, c := range cases {
		r := &runner{interval: c.interval}
		if got := r.nextSlot(at(c.now)); !got.Equal(at(c.want)) {
			t.Errorf("interval %v, now %.2f: next slot %.3f, want %.2f", c.interval, c.now, float64(got.UnixNano())/1e9, c.want)
		}
	}
}

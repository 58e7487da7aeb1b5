package platform

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

type sseEvent struct {
	name, data string
}

// sseClient reads the live feed.
type sseClient struct {
	t      *testing.T
	r      *bufio.Reader
	events chan sseEvent
	cancel context.CancelFunc
}

func (f *fixture) subscribe(t *testing.T, key, query string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/api/v1/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := f.client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream: status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	c := &sseClient{t: t, r: bufio.NewReader(res.Body), events: make(chan sseEvent, 1000), cancel: cancel}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	// The first block is a comment sent once subscribed.
	if line, err := c.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": gridlink live feed") {
		t.Fatalf("first line %q, %v", line, err)
	}
	go func() {
		defer close(c.events)
		var ev sseEvent
		for {
			line, err := c.r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev.name != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return c
}

// next returns the next event other than a heartbeat.
func (c *sseClient) next(skipHeartbeats bool) sseEvent {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatal("stream ended")
			}
			if skipHeartbeats && ev.name == "heartbeat" {
				continue
			}
			return ev
		case <-timeout:
			c.t.Fatal("no event within 10 s")
		}
	}
}

func TestStreamDeliversStoredReadings(t *testing.T) {
	f := newFixture(t)
	c := f.subscribe(t, f.read, "")
	at := ms(t, "2024-05-01T12:00:00Z")
	f.must(200, "POST", "/api/v1/readings?site=athens", f.admin, []any{reading("pv-1", "active_power", at, 99)})
	f.post(t, f.ingest, []any{
		reading("house-01/band", "heart_rate", at, 70),
		map[string]any{"asset": "house-01/meter", "quantity": "active_power", "phase": "L2", "unit": "kW", "time": at, "value": 2},
	})
	ev := c.next(true)
	if ev.name != "reading" {
		t.Fatalf("event %+v", ev)
	}
	var r struct {
		Site, Asset, Quantity, Phase, Unit string
		Time                               int64
		Value                              float64
	}
	if err := json.Unmarshal([]byte(ev.data), &r); err != nil {
		t.Fatal(err)
	}
	if r.Site != "bristol" || r.Asset != "house-01/meter" || r.Quantity != "active_power" || r.Phase != "L2" ||
		r.Unit != "W" || r.Time != at || r.Value != 2000 {
		t.Errorf("reading %+v", r)
	}
	// The health reading was not sent to a read key; the restricted key
	// gets it.
	rc := f.subscribe(t, f.restricted, "?quantity=heart_rate")
	f.post(t, f.ingest, []any{reading("house-01/band", "heart_rate", at+1000, 71), reading("house-01/meter", "active_power", at+1000, 1)})
	if ev := rc.next(true); !strings.Contains(ev.data, `"heart_rate"`) || !strings.Contains(ev.data, `"value":71`) {
		t.Errorf("restricted stream event %+v", ev)
	}
	if ev := c.next(true); !strings.Contains(ev.data, `"active_power"`) || !strings.Contains(ev.data, `"time":1714564801000`) {
		t.Errorf("read stream second event %+v (the health reading must be skipped)", ev)
	}
	if f.srv.Hub().Subscribers() != 2 {
		t.Errorf("subscribers %d, want 2", f.srv.Hub().Subscribers())
	}
}

func TestStreamHeartbeat(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Heartbeat = 20 * time.Millisecond })
	c := f.subscribe(t, f.read, "")
	if ev := c.next(false); ev.name != "heartbeat" || !strings.Contains(ev.data, `"time":`) {
		t.Errorf("event %+v, want a heartbeat", ev)
	}
}

func TestStreamSlowSubscriberIsToldOfDrops(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.StreamBuffer = 1 })
	c := f.subscribe(t, f.read, "")
	start := ms(t, "2024-05-01T12:00:00Z")
	const n = 500
	var body []any
	for i := 0; i < n; i++ {
		body = append(body, reading("house-01/meter", "active_power", start+int64(i), float64(i)))
	}
	if got := f.post(t, f.ingest, body); got.Accepted != n {
		t.Fatalf("ingest %+v", got)
	}
	received, dropped := 0, 0
	for received+dropped < n {
		ev := c.next(true)
		switch ev.name {
		case "reading":
			received++
		case "dropped":
			var d struct{ Dropped int }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.Dropped <= 0 {
				t.Fatalf("dropped event %q", ev.data)
			}
			dropped += d.Dropped
		}
	}
	if dropped == 0 || received+dropped != n {
		t.Errorf("received %d, dropped %d, want a sum of %d with some dropped", received, dropped, n)
	}
	if f.srv.Hub().Dropped() != uint64(dropped) {
		t.Errorf("hub counted %d drops, stream told %d", f.srv.Hub().Dropped(), dropped)
	}
}

func TestStreamEndsOnClose(t *testing.T) {
	f := newFixture(t)
	c := f.subscribe(t, f.read, "")
	f.srv.Close()
	select {
	case _, ok := <-c.events:
		if ok {
			t.Error("event after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open after Server.Close")
	}
}

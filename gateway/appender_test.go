package gateway

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/queue"
	"github.com/gridlink/gridlink/uplink"
)

// TestAppenderGathersDevices: reads of many devices are appended together;
// each Append returns once its readings are in the queue; after close,
// appends are refused.
func TestAppenderGathersDevices(t *testing.T) {
	q, err := queue.Open(t.TempDir(), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	up, err := uplink.New(uplink.Config{URL: "http://127.0.0.1:1", Site: "s", Key: "k"}, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := newAppender(q, up, 300*time.Millisecond)
	go a.run(t.Context())
	var wg sync.WaitGroup
	for d := range 20 {
		wg.Go(func() {
			if err := a.Append([]cim.Reading{{SeriesKey: cim.SeriesKey{Asset: "a", Quantity: "active_power"}, Point: cim.Point{Time: int64(d), Value: float64(d)}}}); err != nil {
				t.Error(err)
			}
			if q.Len() == 0 {
				t.Error("Append returned before its reading was in the queue")
			}
		})
	}
	wg.Wait()
	a.close()
	if q.Len() != 20 {
		t.Fatalf("queue holds %d readings, want 20", q.Len())
	}
	if err := a.Append(nil); !errors.Is(err, errStopped) {
		t.Errorf("Append after close: %v", err)
	}
}

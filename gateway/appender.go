package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/queue"
	"github.com/gridlink/gridlink/uplink"
)

// DefaultAppendWindow is how long the appender gathers reads before it
// writes them to the queue with one fsync.
const DefaultAppendWindow = 200 * time.Millisecond

// maxAppendBatch bounds the readings of one queue append.
const maxAppendBatch = 4096

var errStopped = errors.New("gateway is stopping")

// appender gathers the readings of every device for a short window and
// appends them to the queue together: one write and one fsync per window
// instead of one per device read, which a Raspberry Pi's SD card and CPU
// notice. A device's Append still returns only once its readings are
// durable.
type appender struct {
	q      *queue.Queue
	up     *uplink.Uplink
	window time.Duration
	in     chan appendReq
	stop   chan struct{}
	done   chan struct{}
}

type appendReq struct {
	rs   []cim.Reading
	done chan error
}

func newAppender(q *queue.Queue, up *uplink.Uplink, window time.Duration) *appender {
	if window <= 0 {
		window = DefaultAppendWindow
	}
	return &appender{q: q, up: up, window: window, in: make(chan appendReq), stop: make(chan struct{}), done: make(chan struct{})}
}

// Append queues rs durably, together with other devices' readings.
func (a *appender) Append(rs []cim.Reading) error {
	req := appendReq{rs: rs, done: make(chan error, 1)}
	select {
	case a.in <- req:
	case <-a.stop:
		return errStopped
	}
	return <-req.done
}

// run appends until close is called; what it holds then is written.
func (a *appender) run(ctx context.Context) {
	defer close(a.done)
	for {
		var first appendReq
		select {
		case first = <-a.in:
		case <-a.stop:
			return
		}
		batch := append([]cim.Reading(nil), first.rs...)
		waiting := []chan error{first.done}
		timer := time.NewTimer(a.window)
	gather:
		for len(batch) < maxAppendBatch {
			select {
			case r := <-a.in:
				batch = append(batch, r.rs...)
				waiting = append(waiting, r.done)
			case <-timer.C:
				break gather
			case <-a.stop:
				break gather
			}
		}
		timer.Stop()
		err := a.q.Append(batch)
		if err == nil {
			a.up.Notify(batch)
		}
		for _, w := range waiting {
			w <- err
		}
	}
}

// close stops the appender after the batch it is gathering is written.
func (a *appender) close() {
	close(a.stop)
	<-a.done
}

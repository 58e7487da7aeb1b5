package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gridlink/gridlink/device"
)

// Drive runs a simulated device until ctx ends: at each cycle boundary
// (cycle starts are multiples of the cycle length since the Unix epoch) it
// takes the model's frame, hands it to update (a protocol simulator's
// Update) and records what the device then holds in truth under asset. A
// failed update is logged and counted (Truth.Errors), not fatal. After a
// late wake-up the model still steps every cycle passed, but only the
// current frame is served. cycle zero means the model's; another length
// than the model's is an error. truth may be nil. Drive returns nil when
// ctx ends.
func Drive(ctx context.Context, m *Model, cycle time.Duration, update func(Frame) ([]device.Value, error), truth *Truth, asset string, log *slog.Logger) error {
	if m == nil || update == nil {
		return errors.New("drive: model and update must not be nil")
	}
	if cycle == 0 {
		cycle = m.Cycle()
	}
	if cycle != m.Cycle() {
		return fmt.Errorf("drive %s: cycle %v differs from the model's %v", asset, cycle, m.Cycle())
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("asset", asset)
	timer := time.NewTimer(0)
	defer timer.Stop()
	served := int64(0)
	first := true
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now := time.Now()
		f := m.Frame(now)
		if first || f.Cycle > served {
			first, served = false, f.Cycle
			held, err := update(f)
			if err == nil && truth != nil {
				err = truth.Record(asset, f, cycle, held)
			}
			if err != nil {
				failures++
				if truth != nil {
					truth.noteError(asset)
				}
				log.Warn("simulated device update failed", "cycle", f.Cycle, "failures", failures, "err", err)
			}
		}
		// The timer fires at the next boundary; a wall clock that stepped
		// back just makes the next round serve nothing.
		timer.Reset(max(time.Until(f.Start.Add(cycle)), time.Millisecond))
	}
}

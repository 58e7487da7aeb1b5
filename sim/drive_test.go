package sim

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlink/gridlink/device"
	"github.com/gridlink/gridlink/internal/logbuf"
)

func TestDrive(t *testing.T) {
	const cycle = 20 * time.Millisecond
	chs := []Channel{{"active_power", ""}, {"energy_active_import", ""}}
	m := NewModel(ModelConfig{Seed: 1, Channels: chs, Cycle: cycle})
	tr := NewTruth(nil, 1000)
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	frames := make(chan Frame, 1000)
	calls := 0
	update := func(f Frame) ([]device.Value, error) {
		calls++ // only the driver's goroutine calls update
		frames <- f
		if calls == 3 {
			return nil, errors.New("device unplugged")
		}
		return []device.Value{
			{Quantity: "active_power", Unit: "kW", Value: f.Values[chs[0]] / 1000},
			{Quantity: "energy_active_import", Value: f.Values[chs[1]]},
		}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Drive(ctx, m, 0, update, tr, "house/meter", log) }()

	var got []Frame
	hang := time.After(30 * time.Second)
	for len(got) < 8 {
		select {
		case f := <-frames:
			got = append(got, f)
		case <-hang:
			t.Fatalf("only %d frames served", len(got))
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Drive returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Drive did not return after cancel")
	}

	for i, f := range got {
		if f.Start.UnixNano()%int64(cycle) != 0 {
			t.Errorf("frame %d starts at %v, not on a cycle boundary", i, f.Start)
		}
		if i > 0 && f.Cycle <= got[i-1].Cycle {
			t.Errorf("frame %d: cycle %d after %d", i, f.Cycle, got[i-1].Cycle)
		}
	}
	if n := tr.Errors("house/meter"); n != 1 {
		t.Errorf("%d update errors counted, want 1", n)
	}
	if !strings.Contains(logs.String(), "device unplugged") {
		t.Errorf("update error not logged: %s", logs.String())
	}
	recs := tr.Cycles("house/meter", time.Time{}, time.Time{})
	byCycle := map[int64]CycleRecord{}
	for _, r := range recs {
		byCycle[r.Cycle] = r
	}
	for i, f := range got {
		r, ok := byCycle[f.Cycle]
		if i == 2 {
			if ok {
				t.Errorf("the failed cycle %d was recorded", f.Cycle)
			}
			continue
		}
		if !ok {
			t.Errorf("cycle %d not recorded", f.Cycle)
			continue
		}
		if !r.End.Equal(f.Start.Add(cycle)) || r.Values[0].Quantity != "active_power" {
			t.Errorf("record %+v", r)
		}
		if want := f.Values[chs[0]]; math.Abs(r.Values[0].Value-want) > 1e-9*max(1, math.Abs(want)) {
			t.Errorf("cycle %d: recorded %v W, frame %v W", f.Cycle, r.Values[0].Value, want)
		}
	}
}

func TestDriveRefusesOtherCycle(t *testing.T) {
	m := NewModel(ModelConfig{Cycle: time.Second})
	noop := func(Frame) ([]device.Value, error) { return nil, nil }
	if err := Drive(t.Context(), m, time.Minute, noop, nil, "a", nil); err == nil {
		t.Error("a cycle other than the model's was accepted")
	}
	if err := Drive(t.Context(), nil, 0, noop, nil, "a", nil); err == nil {
		t.Error("nil model accepted")
	}
}

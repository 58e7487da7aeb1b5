package stream

import (
	"sync"
	"testing"

	"github.com/gridlink/gridlink/cim"
)

func reading(ms int64) cim.Reading {
	return cim.Reading{SeriesKey: cim.SeriesKey{Asset: "a", Quantity: "active_power"}, Point: cim.Point{Time: ms, Value: 1}}
}

func TestPublishReachesOnlyItsSite(t *testing.T) {
	h := NewHub()
	a := h.Subscribe("a", 4)
	defer a.Close()
	b := h.Subscribe("b", 4)
	defer b.Close()
	h.Publish("a", []cim.Reading{reading(1), reading(2)})
	if got := len(a.C()); got != 2 {
		t.Fatalf("site a got %d readings, want 2", got)
	}
	if got := len(b.C()); got != 0 {
		t.Fatalf("site b got %d readings, want 0", got)
	}
	if r := <-a.C(); r.Time != 1 {
		t.Fatalf("first reading at %d, want 1", r.Time)
	}
}

func TestSlowSubscriberDropsAndIsTold(t *testing.T) {
	h := NewHub()
	s := h.Subscribe("a", 2)
	defer s.Close()
	h.Publish("a", []cim.Reading{reading(1), reading(2), reading(3), reading(4), reading(5)})
	select {
	case <-s.Lost():
	default:
		t.Fatal("no lost signal")
	}
	if n := s.TakeDropped(); n != 3 {
		t.Fatalf("dropped %d, want 3", n)
	}
	if n := s.TakeDropped(); n != 0 {
		t.Fatalf("dropped after take %d, want 0", n)
	}
	if h.Dropped() != 3 {
		t.Fatalf("hub dropped %d, want 3", h.Dropped())
	}
}

func TestCloseUnsubscribes(t *testing.T) {
	h := NewHub()
	s := h.Subscribe("a", 0)
	if h.Subscribers() != 1 {
		t.Fatalf("subscribers %d, want 1", h.Subscribers())
	}
	s.Close()
	s.Close()
	if h.Subscribers() != 0 {
		t.Fatalf("subscribers %d, want 0", h.Subscribers())
	}
	h.Publish("a", []cim.Reading{reading(1)})
	if len(s.C()) != 0 {
		t.Fatal("closed subscription received a reading")
	}
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	h := NewHub()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				h.Publish("a", []cim.Reading{reading(int64(j))})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				s := h.Subscribe("a", 1)
				s.Close()
			}
		}()
	}
	wg.Wait()
	if h.Subscribers() != 0 {
		t.Fatalf("subscribers %d, want 0", h.Subscribers())
	}
}

func BenchmarkPublishNoSubscribers(b *testing.B) {
	h := NewHub()
	rs := []cim.Reading{reading(1)}
	for b.Loop() {
		h.Publish("a", rs)
	}
}

// Package stream is the platform's in-process live feed: a Hub to which
// ingest publishes each batch of readings once it is durable, and from which
// Server-Sent Events handlers receive the readings of one site.
//
// Publishing never blocks. Each subscription has a bounded buffer; a reading
// that does not fit is dropped for that subscriber and counted, so that a
// slow reader can be told how much it missed.
package stream

import (
	"sync"
	"sync/atomic"

	"github.com/gridlink/gridlink/cim"
)

// Hub fans readings out to the subscribers of their site. The zero Hub is
// not usable; call NewHub. It is safe for concurrent use.
type Hub struct {
	mu      sync.RWMutex
	sites   map[string]map[*Subscription]struct{}
	n       atomic.Int64
	dropped atomic.Uint64
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{sites: make(map[string]map[*Subscription]struct{})}
}

// Subscription receives the readings of one site. Close it when done.
type Subscription struct {
	hub     *Hub
	site    string
	c       chan cim.Reading
	wake    chan struct{}
	dropped atomic.Uint64
	once    sync.Once
}

// DefaultBuffer is the buffer of a subscription made with a buffer <= 0.
const DefaultBuffer = 256

// Subscribe starts receiving the readings published for the site. Buffer is
// how many readings may wait for the reader before they are dropped; <= 0
// means DefaultBuffer.
func (h *Hub) Subscribe(site string, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	s := &Subscription{hub: h, site: site, c: make(chan cim.Reading, buffer), wake: make(chan struct{}, 1)}
	h.mu.Lock()
	m := h.sites[site]
	if m == nil {
		m = make(map[*Subscription]struct{})
		h.sites[site] = m
	}
	m[s] = struct{}{}
	h.mu.Unlock()
	h.n.Add(1)
	return s
}

// Publish hands readings of a site to its subscribers without waiting for
// any of them. Call it only after the readings are durable.
func (h *Hub) Publish(site string, rs []cim.Reading) {
	if h.n.Load() == 0 || len(rs) == 0 {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.sites[site] {
		var lost uint64
		for _, r := range rs {
			select {
			case s.c <- r:
			default:
				lost++
			}
		}
		if lost > 0 {
			s.dropped.Add(lost)
			h.dropped.Add(lost)
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int { return int(h.n.Load()) }

// Dropped returns how many readings were dropped, over all subscriptions,
// since the hub was made.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// Site returns the subscribed site.
func (s *Subscription) Site() string { return s.site }

// C delivers the readings. It is never closed.
func (s *Subscription) C() <-chan cim.Reading { return s.c }

// Lost is signalled (at most one pending signal) when readings were dropped
// because the buffer was full; TakeDropped tells how many.
func (s *Subscription) Lost() <-chan struct{} { return s.wake }

// TakeDropped returns the number of readings dropped since the previous call
// and resets it.
func (s *Subscription) TakeDropped() uint64 { return s.dropped.Swap(0) }

// Close ends the subscription. Closing twice is harmless.
func (s *Subscription) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		if m := h.sites[s.site]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.sites, s.site)
			}
		}
		h.mu.Unlock()
		h.n.Add(-1)
	})
}

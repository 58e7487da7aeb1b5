package ocpp

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestMassDisconnect: hundreds of chargers leaving at once (a network
// blip) must not deadlock ocpp-go's dispatcher: afterwards a charger can
// boot again and the central system closes.
func TestMassDisconnect(t *testing.T) {
	const n = 400
	ids := make([]string, n+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("cp-%03d", i)
	}
	e := start(t, Config{}, ids...)
	clients := make([]*rawClient, n)
	for i := range n {
		clients[i] = dialRaw(t, e, ids[i])
		clients[i].call(`[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]`)
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() { c.conn.Close() })
	}
	wg.Wait()

	// A charger that comes afterwards is served.
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := dialRaw(t, e, ids[n])
		c.call(`[2,"b2","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]`)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("no answer to a BootNotification after a mass disconnect: the dispatcher is stuck")
	}
	closed := make(chan error, 1)
	go func() { closed <- e.cs.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Close hangs after a mass disconnect")
	}
}

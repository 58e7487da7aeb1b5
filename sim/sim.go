// Package sim simulates pilot devices: seeded, realistic trajectories of
// their quantities (household load, PV curve, battery state of charge,
// energy counters that only grow), stepped once per measuring cycle, and a
// truth log of what each simulated device held in each cycle, served over
// HTTP so a test can compare the platform with the device.
//
// The protocol packages (modbus, mqtt, httpjson, kasa) serve a Frame over
// the device's real protocol, as the device's profile lays it out, and
// report back what the device then holds; that is what the truth log
// records.
package sim

import (
	"time"

	"github.com/gridlink/gridlink/cim"
)

// Channel is one simulated series of a device.
type Channel struct {
	Quantity string
	Phase    cim.Phase
}

// Frame is the state of one device during one measuring cycle: the true
// value of each channel in the quantity's canonical unit (a State or Event
// quantity holds its state index).
type Frame struct {
	Cycle  int64     // cycle number: Start / cycle length since the Unix epoch
	Start  time.Time // the cycle covers [Start, Start+cycle length)
	Values map[Channel]float64
}

// Value returns the true value of a channel.
func (f Frame) Value(quantity string, phase cim.Phase) (float64, bool) {
	v, ok := f.Values[Channel{quantity, phase}]
	return v, ok
}

package cim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind says how a quantity's values come about.
type Kind string

// The kinds of quantity.
const (
	Instantaneous Kind = "instantaneous" // a sample of a continuous value (power, voltage)
	Cumulative    Kind = "cumulative"    // a counter that only grows (energy register)
	Delta         Kind = "delta"         // an amount over the interval that ends at the reading's time (15-min energy)
	State         Kind = "state"         // a discrete state, coded as a number (relay on/off)
	Event         Kind = "event"         // something that happened at an instant (button press)
)

// DataClass is the GDPR class of a quantity's data.
type DataClass string

// The data classes. SpecialHealth data (GDPR Art. 9) needs the
// read:restricted scope.
const (
	Technical     DataClass = "technical"
	Personal      DataClass = "personal"
	SpecialHealth DataClass = "special_health"
)

// Quantity is one entry of the controlled vocabulary.
type Quantity struct {
	Name        string    // catalogue key, snake_case, e.g. "active_power"
	Unit        string    // canonical unit symbol, e.g. "W"
	Kind        Kind      //
	Class       DataClass //
	Phased      bool      // whether a phase other than the total may be given
	Description string    //
	OBIS        string    // IEC 62056-61 code of the total, where one exists
	ReadingType string    // IEC 61968-9 ReadingType mRID, where the metering model fits
	SAREF       string    // SAREF / SAREF4ENER property, e.g. "saref:Power"
	UNCEFACT    string    // UN/CEFACT Rec. 20 code of the canonical unit, e.g. "WTT"
	// Min and Max bound plausible values in the canonical unit; a value
	// outside is refused as impossible. Both zero means unbounded.
	Min, Max float64
	// States names the codes of a State or Event quantity: value i means
	// States[i].
	States []string
}

// Restricted reports whether reading the quantity needs the health-data scope.
func (q Quantity) Restricted() bool { return q.Class == SpecialHealth }

// Catalogue is an immutable set of quantities.
type Catalogue struct {
	// byName indexes qs, so that the hot path (Normalize) can use a
	// quantity in place instead of copying it out of a map.
	byName map[string]int
	qs     []Quantity // in catalogue order
}

// NewCatalogue builds a catalogue; names must be unique.
func NewCatalogue(qs []Quantity) (*Catalogue, error) {
	c := &Catalogue{byName: make(map[string]int, len(qs)), qs: make([]Quantity, 0, len(qs))}
	for _, q := range qs {
		if _, dup := c.byName[q.Name]; dup {
			return nil, fmt.Errorf("quantity %q defined twice", q.Name)
		}
		// States is shared with the caller's slice; copy it so that the
		// catalogue stays immutable whatever the caller does later.
		q.States = append([]string(nil), q.States...)
		c.byName[q.Name] = len(c.qs)
		c.qs = append(c.qs, q)
	}
	return c, nil
}

// Lookup finds a quantity by name. The States slice of the result is shared
// with the catalogue and must not be modified.
func (c *Catalogue) Lookup(name string) (Quantity, bool) {
	q := c.lookup(name)
	if q == nil {
		return Quantity{}, false
	}
	return *q, true
}

// lookup returns the catalogue's own entry, or nil; callers must not modify it.
func (c *Catalogue) lookup(name string) *Quantity {
	i, ok := c.byName[name]
	if !ok {
		return nil
	}
	return &c.qs[i]
}

// Quantities returns every quantity in catalogue order. As with Lookup, the
// States slices are shared and must not be modified.
func (c *Catalogue) Quantities() []Quantity {
	return append([]Quantity(nil), c.qs...)
}

// ParseValue reads a value as text: a number, or for State and Event
// quantities also one of the state names.
func (q Quantity) ParseValue(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err == nil {
		return v, nil
	}
	for i, name := range q.States {
		if strings.EqualFold(name, strings.TrimSpace(s)) {
			return float64(i), nil
		}
	}
	if len(q.States) > 0 {
		return 0, fmt.Errorf("value %q is neither a number nor one of %s", s, strings.Join(q.States, ", "))
	}
	return 0, fmt.Errorf("value %q is not a number", s)
}

// CheckValue refuses NaN, infinities and values outside the plausible range.
func (q Quantity) CheckValue(v float64) error {
	switch {
	case math.IsNaN(v):
		return fmt.Errorf("value is NaN")
	case math.IsInf(v, 0):
		return fmt.Errorf("value is infinite")
	case (q.Min != 0 || q.Max != 0) && (v < q.Min || v > q.Max):
		return fmt.Errorf("value %g %s outside the plausible range [%g, %g]", v, q.Unit, q.Min, q.Max)
	// Compare as floats: int(v) of a huge v is undefined and could wrap
	// to a valid code.
	case len(q.States) > 0 && (v != math.Trunc(v) || v < 0 || v >= float64(len(q.States))):
		return fmt.Errorf("value %g is not a state code 0..%d", v, len(q.States)-1)
	}
	return nil
}

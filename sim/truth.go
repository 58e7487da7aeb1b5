package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// DefaultTruthCycles is how many cycles per asset a Truth keeps when
// NewTruth is given no limit: a day of 1-second cycles.
const DefaultTruthCycles = 86400

// HeldValue is one value a simulated device held during a cycle, in the
// quantity's canonical unit. A State or Event quantity holds its state code
// in Value and its name in State.
type HeldValue struct {
	Quantity string    `json:"quantity"`
	Phase    cim.Phase `json:"phase,omitempty"`
	Value    float64   `json:"value"`
	State    string    `json:"state,omitempty"`
	// Float32 marks a value the device held with float32 precision only
	// (a float32 register), which Compare checks with Tolerance.Relative.
	Float32 bool `json:"float32,omitempty"`
}

// CycleRecord is what one simulated device held during one cycle
// [Start, End).
type CycleRecord struct {
	Asset  string
	Cycle  int64
	Start  time.Time
	End    time.Time
	Values []HeldValue
}

// cycleJSON is CycleRecord on the wire, times in Unix milliseconds.
type cycleJSON struct {
	Asset  string      `json:"asset"`
	Cycle  int64       `json:"cycle"`
	Start  int64       `json:"start"`
	End    int64       `json:"end"`
	Values []HeldValue `json:"values"`
}

// MarshalJSON writes the record with its times in Unix milliseconds.
func (c CycleRecord) MarshalJSON() ([]byte, error) {
	vals := c.Values
	if vals == nil {
		vals = []HeldValue{}
	}
	return json.Marshal(cycleJSON{Asset: c.Asset, Cycle: c.Cycle, Start: c.Start.UnixMilli(), End: c.End.UnixMilli(), Values: vals})
}

// UnmarshalJSON reads what MarshalJSON writes; a phase may also be written
// "total".
func (c *CycleRecord) UnmarshalJSON(b []byte) error {
	var w cycleJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	for i := range w.Values {
		p, err := cim.ParsePhase(string(w.Values[i].Phase))
		if err != nil {
			return fmt.Errorf("cycle %d value %d: %w", w.Cycle, i, err)
		}
		w.Values[i].Phase = p
	}
	*c = CycleRecord{Asset: w.Asset, Cycle: w.Cycle, Start: cim.TimeOf(w.Start), End: cim.TimeOf(w.End), Values: w.Values}
	return nil
}

// Truth is a log of what simulated devices held, cycle by cycle, kept in
// memory up to a number of cycles per asset (the oldest go first). It is
// safe for concurrent use.
type Truth struct {
	cat *cim.Catalogue
	max int

	mu     sync.RWMutex
	assets map[string][]CycleRecord // by Start
	errs   map[string]int
}

// NewTruth makes an empty truth log that keeps maxCycles cycles per asset
// (DefaultTruthCycles when not positive). A nil catalogue means
// cim.Default().
func NewTruth(cat *cim.Catalogue, maxCycles int) *Truth {
	if cat == nil {
		cat = cim.Default()
	}
	if maxCycles <= 0 {
		maxCycles = DefaultTruthCycles
	}
	return &Truth{cat: cat, max: maxCycles, assets: map[string][]CycleRecord{}, errs: map[string]int{}}
}

// Record stores what the asset's device held during the cycle of f, which
// lasts cycle. Values are converted to their quantity's canonical unit; a
// value that cannot be (unknown quantity, unit or state, NaN) is left out
// and named in the error, the others are stored. Recording a cycle again
// replaces it.
func (t *Truth) Record(asset string, f Frame, cycle time.Duration, held []device.Value) error {
	if asset == "" {
		return errors.New("record truth: empty asset")
	}
	if cycle <= 0 {
		return fmt.Errorf("record truth of %s: cycle length %v is not positive", asset, cycle)
	}
	rec := CycleRecord{
		Asset:  asset,
		Cycle:  f.Cycle,
		Start:  f.Start.UTC(),
		End:    f.Start.Add(cycle).UTC(),
		Values: make([]HeldValue, 0, len(held)),
	}
	var errs []error
	for _, v := range held {
		hv, err := t.canonical(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", v.Quantity, v.Phase, err))
			continue
		}
		rec.Values = append(rec.Values, hv)
	}
	t.mu.Lock()
	t.insert(rec)
	t.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("record truth of %s cycle %d: %w", asset, f.Cycle, errors.Join(errs...))
	}
	return nil
}

// canonical converts a held device value to a HeldValue.
func (t *Truth) canonical(v device.Value) (HeldValue, error) {
	q, ok := t.cat.Lookup(v.Quantity)
	if !ok {
		return HeldValue{}, errors.New("quantity is not in the catalogue")
	}
	hv := HeldValue{Quantity: v.Quantity, Phase: v.Phase}
	if v.State != "" {
		i := slices.Index(q.States, v.State)
		if i < 0 {
			return HeldValue{}, fmt.Errorf("state %q is not one of %s", v.State, strings.Join(q.States, ", "))
		}
		hv.Value, hv.State = float64(i), v.State
		return hv, nil
	}
	if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
		return HeldValue{}, fmt.Errorf("value %g is not a finite number", v.Value)
	}
	c, err := q.Convert(v.Value, v.Unit)
	if err != nil {
		return HeldValue{}, err
	}
	if math.IsNaN(c) || math.IsInf(c, 0) {
		return HeldValue{}, fmt.Errorf("value %g %s is not finite in %s", v.Value, v.Unit, q.Unit)
	}
	hv.Value = c
	// A fraction that float32 holds exactly most likely came from a
	// float32 register; an integer says nothing.
	hv.Float32 = v.Value != math.Trunc(v.Value) && float64(float32(v.Value)) == v.Value
	if n := len(q.States); n > 0 && c == math.Trunc(c) && c >= 0 && c < float64(n) {
		hv.State = q.States[int(c)]
	}
	return hv, nil
}

// insert adds rec in Start order, replacing a record of the same Start, and
// drops the oldest beyond the limit. Callers hold t.mu.
func (t *Truth) insert(rec CycleRecord) {
	recs := t.assets[rec.Asset]
	i := sort.Search(len(recs), func(i int) bool { return !recs[i].Start.Before(rec.Start) })
	switch {
	case i < len(recs) && recs[i].Start.Equal(rec.Start):
		recs[i] = rec
	case i == len(recs):
		recs = append(recs, rec)
	default:
		recs = slices.Insert(recs, i, rec)
	}
	if over := len(recs) - t.max; over > 0 {
		// Clear the dropped records so their values can be collected.
		clear(recs[:over])
		recs = recs[over:]
	}
	t.assets[rec.Asset] = recs
}

// noteError counts a failed update of an asset's device.
func (t *Truth) noteError(asset string) {
	t.mu.Lock()
	t.errs[asset]++
	t.mu.Unlock()
}

// Errors returns how many cycles of the asset Drive could not record
// because the simulator's update failed or its values were refused.
func (t *Truth) Errors(asset string) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.errs[asset]
}

// Cycles returns the asset's recorded cycles that start in [from, to), in
// time order; an empty asset means every asset (ordered by start, then
// asset), a zero from or to leaves that side open.
func (t *Truth) Cycles(asset string, from, to time.Time) []CycleRecord {
	out, _ := t.cycles(asset, from, to, 0)
	return out
}

// cycles is Cycles with a limit (0: none). When more records match than
// the limit it returns the first ones, never splitting the records of one
// start, and the start of the first record left out.
func (t *Truth) cycles(asset string, from, to time.Time, limit int) ([]CycleRecord, time.Time) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var lists [][]CycleRecord
	if asset != "" {
		lists = append(lists, t.assets[asset])
	} else {
		names := make([]string, 0, len(t.assets))
		for a := range t.assets {
			names = append(names, a)
		}
		slices.Sort(names)
		for _, a := range names {
			lists = append(lists, t.assets[a])
		}
	}
	var out []CycleRecord
	for _, recs := range lists {
		lo := 0
		if !from.IsZero() {
			lo = sort.Search(len(recs), func(i int) bool { return !recs[i].Start.Before(from) })
		}
		hi := len(recs)
		if !to.IsZero() {
			hi = sort.Search(len(recs), func(i int) bool { return !recs[i].Start.Before(to) })
		}
		for i := lo; i < hi; i++ {
			out = append(out, copyRecord(recs[i]))
		}
	}
	if len(lists) > 1 {
		// Stable: records of one start stay in asset order.
		slices.SortStableFunc(out, func(a, b CycleRecord) int { return a.Start.Compare(b.Start) })
	}
	if limit <= 0 || len(out) <= limit {
		return out, time.Time{}
	}
	cut := limit
	for cut < len(out) && out[cut].Start.Equal(out[cut-1].Start) {
		cut++
	}
	if cut == len(out) {
		return out, time.Time{}
	}
	return out[:cut], out[cut].Start
}

func copyRecord(r CycleRecord) CycleRecord {
	r.Values = slices.Clone(r.Values)
	return r
}

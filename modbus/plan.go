package modbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	mb "github.com/simonvetter/modbus"
)

// maxRead is the most registers one read may ask for (Modbus PDU limit).
const maxRead = 125

// table is a register table.
type table uint8

// The register tables a point can live in.
const (
	holding table = iota // function 3
	input                // function 4
)

func (t table) String() string {
	if t == input {
		return "input"
	}
	return "holding"
}

func (t table) regType() mb.RegType {
	if t == input {
		return mb.INPUT_REGISTER
	}
	return mb.HOLDING_REGISTER
}

// regKey addresses one register of one unit.
type regKey struct {
	unit uint8
	tbl  table
	addr uint16
}

// item is a run of registers the poll needs: one point's value or one
// scale-factor register.
type item struct {
	unit     uint8
	tbl      table
	start    uint16
	n        int
	optional bool   // a failed read of an optional item is no error
	what     string // for errors: "int32 active_power", "scale factor of ..."
}

func (it item) end() int { return int(it.start) + it.n }

// block is one read request and the items it serves.
type block struct {
	unit  uint8
	tbl   table
	start uint16
	n     int
	items []item
}

func newBlock(items []item) block {
	b := block{unit: items[0].unit, tbl: items[0].tbl, start: items[0].start, items: items}
	end := 0
	for _, it := range items {
		end = max(end, it.end())
	}
	b.n = end - int(b.start)
	return b
}

func (b block) String() string {
	return fmt.Sprintf("unit %d %s registers %d-%d", b.unit, b.tbl, b.start, int(b.start)+b.n-1)
}

// group packs items into as few reads as possible: items of one unit and
// table whose gap is at most maxGap registers share a read of at most
// maxRead registers.
func group(items []item, maxGap int) []block {
	items = slices.Clone(items)
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(a.tbl, b.tbl), cmp.Compare(a.start, b.start), cmp.Compare(b.n, a.n))
	})
	var out []block
	var cur []item
	curEnd := 0
	for _, it := range items {
		if len(cur) > 0 {
			first := cur[0]
			if it.unit == first.unit && it.tbl == first.tbl && int(it.start)-curEnd <= maxGap &&
				max(curEnd, it.end())-int(first.start) <= maxRead {
				cur = append(cur, it)
				curEnd = max(curEnd, it.end())
				continue
			}
			out = append(out, newBlock(cur))
		}
		cur, curEnd = []item{it}, it.end()
	}
	if len(cur) > 0 {
		out = append(out, newBlock(cur))
	}
	return out
}

// readFunc reads n registers of one unit and table.
type readFunc func(unit uint8, tbl table, start uint16, n uint16) ([]uint16, error)

// isException reports whether err is a Modbus exception reply: the device
// answered, so the connection is fine.
func isException(err error) bool {
	for _, e := range []error{mb.ErrIllegalFunction, mb.ErrIllegalDataAddress, mb.ErrIllegalDataValue,
		mb.ErrServerDeviceFailure, mb.ErrAcknowledge, mb.ErrServerDeviceBusy, mb.ErrMemoryParityError,
		mb.ErrGWPathUnavailable, mb.ErrGWTargetFailedToRespond} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refused reports whether a device refused a read for its address range
// or length, so that smaller reads may succeed.
func refused(err error) bool {
	return errors.Is(err, mb.ErrIllegalDataAddress) || errors.Is(err, mb.ErrIllegalDataValue)
}

// plan is the reads of one poll. A device that refuses a read spanning
// registers it does not have gets smaller reads from then on.
type plan struct {
	blocks []block
}

// execute runs the plan, filling regs. Reads the device refuses with an
// exception are split (contiguous runs, then single items); an item that
// still fails is an error unless it is optional. Any other error (timeout,
// connection lost) aborts the poll at once, returned as fatal.
func (p *plan) execute(ctx context.Context, read readFunc, regs map[regKey]uint16, skipped func(item, error)) (itemErrs []error, fatal error) {
	var next []block
	for _, b := range p.blocks {
		if err := ctx.Err(); err != nil {
			return itemErrs, err
		}
		done, errs, err := readBlock(ctx, read, b, regs, skipped)
		if err != nil {
			return itemErrs, err
		}
		itemErrs = append(itemErrs, errs...)
		next = append(next, done...)
	}
	p.blocks = next
	return itemErrs, nil
}

// readBlock reads b, splitting it on refusal, and returns the blocks that
// stand for b from now on.
func readBlock(ctx context.Context, read readFunc, b block, regs map[regKey]uint16, skipped func(item, error)) ([]block, []error, error) {
	vals, err := read(b.unit, b.tbl, b.start, uint16(b.n))
	if err == nil {
		if len(vals) != b.n {
			return nil, nil, fmt.Errorf("read %s: got %d registers", b, len(vals))
		}
		for i, v := range vals {
			regs[regKey{b.unit, b.tbl, b.start + uint16(i)}] = v
		}
		return []block{b}, nil, nil
	}
	if !isException(err) {
		return nil, nil, fmt.Errorf("read %s: %w", b, err)
	}
	if refused(err) && len(b.items) > 1 {
		parts := group(b.items, 0) // contiguous runs
		if len(parts) == 1 {
			parts = parts[:0]
			for _, it := range b.items {
				parts = append(parts, newBlock([]item{it}))
			}
		}
		var out []block
		var errs []error
		for _, part := range parts {
			if err := ctx.Err(); err != nil {
				return nil, errs, err
			}
			done, e, err := readBlock(ctx, read, part, regs, skipped)
			if err != nil {
				return nil, errs, err
			}
			out = append(out, done...)
			errs = append(errs, e...)
		}
		return out, errs, nil
	}
	// One item, or an exception other than a refusal: name what failed.
	var errs []error
	for _, it := range b.items {
		if it.optional {
			skipped(it, err)
			continue
		}
		errs = append(errs, fmt.Errorf("read unit %d %s register %d (%s): %w", it.unit, it.tbl, it.start, it.what, err))
	}
	return []block{b}, errs, nil
}

// have reports whether regs holds n registers from start.
func have(regs map[regKey]uint16, unit uint8, tbl table, start uint16, n int) ([]uint16, bool) {
	out := make([]uint16, n)
	for i := range out {
		v, ok := regs[regKey{unit, tbl, start + uint16(i)}]
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

package modbus

import (
	"encoding/binary"
	"strings"
	"testing"

	mb "github.com/simonvetter/modbus"
)

func TestBuiltInModels(t *testing.T) {
	// Lengths of the official model definitions.
	want := map[int]int{1: 66, 101: 50, 102: 50, 103: 50, 111: 60, 112: 60, 113: 60,
		201: 105, 202: 105, 203: 105, 204: 105, 802: 62}
	for id, l := range want {
		m, ok := models[id]
		if !ok {
			t.Errorf("model %d missing", id)
			continue
		}
		if m.length != l {
			t.Errorf("model %d length %d, want %d", id, m.length, l)
		}
		// Points tile the block without overlap; every scale factor
		// named exists.
		next := 0
		for _, p := range m.points {
			if p.offset != next {
				t.Errorf("model %d point %s at %d, want %d", id, p.name, p.offset, next)
			}
			next = p.offset + p.size
			if p.sf != "" {
				if _, ok := m.point(p.sf); !ok {
					t.Errorf("model %d point %s: scale factor %s missing", id, p.name, p.sf)
				}
			}
		}
	}
	for _, c := range []struct {
		model int
		point string
		off   int
		typ   string
	}{{103, "W", 14, "int16"}, {103, "WH", 24, "acc32"}, {203, "TotWhImp", 46, "acc32"}, {802, "W", 47, "int16"},
		{802, "SoC", 11, "uint16"}, {113, "W", 22, "float32"}, {201, "PPVphAB", 12, "int16"}, {201, "PhVphAB", 12, "int16"}} {
		p, ok := models[c.model].point(c.point)
		if !ok || p.offset != c.off || p.typ != c.typ {
			t.Errorf("model %d %s = %+v, want offset %d type %s", c.model, c.point, p, c.off, c.typ)
		}
	}
}

// regsReader reads from a register array starting at 0, refusing reads
// past its end as a device would.
func regsReader(regs []uint16, reads *int) read2 {
	return func(addr, n uint16) ([]uint16, error) {
		*reads++
		if int(addr)+int(n) > len(regs) {
			return nil, mb.ErrIllegalDataAddress
		}
		return regs[addr : int(addr)+int(n)], nil
	}
}

func TestWalk(t *testing.T) {
	regs := make([]uint16, 200)
	copy(regs, []uint16{sunsHi, sunsLo, 1, 4, 0, 0, 0, 0, 103, 2, 7, 7, endID, 0})
	var reads int
	base, err := findBase(regsReader(regs, &reads), []uint16{40000, 0})
	if err != nil || base != 0 {
		t.Fatalf("base %d %v", base, err)
	}
	blocks, err := walk(regsReader(regs, &reads), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0] != (ssBlock{1, 2, 4}) || blocks[1] != (ssBlock{103, 8, 2}) {
		t.Errorf("blocks %v", blocks)
	}
	// No end marker: the header read past the end is refused.
	regs[12] = 802
	regs[13] = 500
	if _, err := walk(regsReader(regs, &reads), 0); err == nil || !strings.Contains(err.Error(), "after model 802 at 12 (length 500)") {
		t.Errorf("err = %v", err)
	}
}

// FuzzSunSpecWalk: any register contents give blocks or an error, never a
// panic or an endless walk; blocks lie inside the registers in order.
func FuzzSunSpecWalk(f *testing.F) {
	seed := func(regs ...uint16) []byte {
		var b []byte
		for _, r := range regs {
			b = binary.BigEndian.AppendUint16(b, r)
		}
		return b
	}
	// The fixture's layout: marker, model 1 (L 66), model 103 (L 50), end.
	m := []uint16{sunsHi, sunsLo, 1, 66}
	m = append(m, make([]uint16, 66)...)
	m = append(m, 103, 50)
	m = append(m, make([]uint16, 50)...)
	m = append(m, endID, 0)
	f.Add(seed(m...))
	f.Add(seed(sunsHi, sunsLo, 802, 62, endID, 0))
	f.Add(seed(sunsHi, sunsLo, 1, 0xFFFF))
	f.Add(seed(sunsHi, sunsLo, 0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = binary.BigEndian.Uint16(data[2*i:])
		}
		var reads int
		r := regsReader(regs, &reads)
		base, err := findBase(r, sunspecBases)
		if err != nil {
			return
		}
		blocks, err := walk(r, base)
		if reads > maxModel+5 {
			t.Fatalf("%d reads", reads)
		}
		if err != nil {
			return
		}
		prev := int(base) + 2
		for _, b := range blocks {
			if int(b.start) != prev || int(b.start)+2+b.l > len(regs) || b.id == endID || b.id == 0 {
				t.Fatalf("block %+v after %d in %d registers", b, prev, len(regs))
			}
			prev = int(b.start) + 2 + b.l
		}
		if prev >= len(regs) || regs[prev] != endID {
			t.Fatalf("walk ended at %d without the end marker", prev)
		}
	})
}

func TestSSString(t *testing.T) {
	regs := ssStringRegs("SunSpecTest", 8)
	if got := ssString(regs); got != "SunSpecTest" {
		t.Errorf("%q", got)
	}
	if got := ssString([]uint16{0xFFFE, 0x4100}); !strings.HasPrefix(got, "?") {
		t.Errorf("invalid UTF-8 kept: %q", got)
	}
}

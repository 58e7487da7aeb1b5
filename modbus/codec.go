package modbus

import (
	"fmt"
	"math"
	"strings"
)

// format is how one value lies in consecutive 16-bit registers.
type format struct {
	typ      string // int16, uint16, int32, uint32, int64, uint64, float32, float64
	words    int
	lowFirst bool // word order: least significant register first
	little   bool // byte order within a register: low byte first
}

// newFormat checks a type name and its orders; the empty orders are the
// Modbus defaults (high word first, big-endian registers).
func newFormat(typ, wordOrder, byteOrder string) (format, error) {
	f := format{typ: typ}
	switch typ {
	case "int16", "uint16":
		f.words = 1
	case "int32", "uint32", "float32":
		f.words = 2
	case "int64", "uint64", "float64":
		f.words = 4
	default:
		return format{}, fmt.Errorf("type %q: want int16, uint16, int32, uint32, int64, uint64, float32 or float64", typ)
	}
	switch wordOrder {
	case "", "high_first":
	case "low_first":
		f.lowFirst = true
	default:
		return format{}, fmt.Errorf("word order %q: want high_first or low_first", wordOrder)
	}
	switch byteOrder {
	case "", "big":
	case "little":
		f.little = true
	default:
		return format{}, fmt.Errorf("byte order %q: want big or little", byteOrder)
	}
	return f, nil
}

func (f format) String() string {
	var b strings.Builder
	b.WriteString(f.typ)
	if f.lowFirst {
		b.WriteString(" low_first")
	}
	if f.little {
		b.WriteString(" little")
	}
	return b.String()
}

// bits joins the value's registers into one big-endian integer of
// f.words×16 bits. regs must hold at least f.words registers.
func (f format) bits(regs []uint16) uint64 {
	var u uint64
	for i := 0; i < f.words; i++ {
		w := regs[i]
		if f.lowFirst {
			w = regs[f.words-1-i]
		}
		if f.little {
			w = w<<8 | w>>8
		}
		u = u<<16 | uint64(w)
	}
	return u
}

// words splits a big-endian integer of f.words×16 bits into registers, the
// inverse of bits.
func (f format) split(u uint64) []uint16 {
	regs := make([]uint16, f.words)
	for i := f.words - 1; i >= 0; i-- {
		w := uint16(u)
		u >>= 16
		if f.little {
			w = w<<8 | w>>8
		}
		if f.lowFirst {
			regs[f.words-1-i] = w
		} else {
			regs[i] = w
		}
	}
	return regs
}

// decode reads the number the registers hold.
func (f format) decode(regs []uint16) float64 {
	return f.value(f.bits(regs))
}

// value interprets the joined bits as f's type.
func (f format) value(u uint64) float64 {
	switch f.typ {
	case "int16":
		return float64(int16(u))
	case "uint16", "uint32", "uint64":
		return float64(u)
	case "int32":
		return float64(int32(u))
	case "int64":
		return float64(int64(u))
	case "float32":
		return float64(math.Float32frombits(uint32(u)))
	case "float64":
		return math.Float64frombits(u)
	}
	return math.NaN()
}

// quantise rounds v to what the type can hold: an integer for the integer
// types, the nearest float32 for float32.
func (f format) quantise(v float64) float64 {
	switch f.typ {
	case "float32":
		return float64(float32(v))
	case "float64":
		return v
	}
	return math.Round(v)
}

// limits is the range of an integer type.
func (f format) limits() (lo, hi float64) {
	switch f.typ {
	case "int16":
		return math.MinInt16, math.MaxInt16
	case "uint16":
		return 0, math.MaxUint16
	case "int32":
		return math.MinInt32, math.MaxInt32
	case "uint32":
		return 0, math.MaxUint32
	case "int64":
		// float64 cannot hold MaxInt64 exactly; stay inside it.
		return -(1 << 63), (1 << 63) - 1024
	case "uint64":
		return 0, (1 << 64) - 2048
	}
	return math.Inf(-1), math.Inf(1)
}

// fits reports whether the quantised v can be held by the type.
func (f format) fits(v float64) bool {
	if math.IsNaN(v) {
		return f.typ == "float32" || f.typ == "float64"
	}
	lo, hi := f.limits()
	if f.typ == "float32" {
		return math.Abs(v) <= math.MaxFloat32
	}
	return v >= lo && v <= hi
}

// encode turns a quantised number into registers; it is decode's inverse.
func (f format) encode(v float64) ([]uint16, error) {
	if !f.fits(v) {
		return nil, fmt.Errorf("%g does not fit %s", v, f.typ)
	}
	var u uint64
	switch f.typ {
	case "int16", "int32", "int64":
		u = uint64(int64(v))
		if f.words < 4 {
			u &= 1<<(16*f.words) - 1
		}
	case "uint16", "uint32", "uint64":
		u = uint64(v)
	case "float32":
		u = uint64(math.Float32bits(float32(v)))
	case "float64":
		u = math.Float64bits(v)
	}
	return f.split(u), nil
}

// Package chunk encodes the points of one series into compact blocks.
//
// Smart-grid readings come at steady intervals and at a meter's resolution
// (1 W, 0.1 V, 1 Wh), so a block stores timestamps as runs of equal deltas
// and values, when they are decimals of at most MaxScale digits, as scaled
// integers coded as zigzag varint deltas. A regular 1 s series of watts
// costs about one byte a point. Values that are not short decimals fall back
// to XOR with the previous value's bits, keeping only the bytes that differ.
//
// Layout (all integers varint):
//
//	version byte (1)
//	n             number of points (uvarint)
//	t0            first time (varint)
//	runs          (delta uvarint, count uvarint)... until n-1 deltas are covered
//	mode byte     modeDecimal or modeXOR
//	modeDecimal:  scale byte, v0 varint, then n-1 zigzag deltas
//	modeXOR:      8 bytes of v0, then per point a control byte (leading and
//	              trailing zero bytes of the xor) and the middle bytes
package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/gridlink/gridlink/cim"
)

const (
	version     = 1
	modeDecimal = 1
	modeXOR     = 2
	// MaxScale is the most decimal digits a value may have to be stored as a
	// scaled integer.
	MaxScale = 6
)

var pow10 = [MaxScale + 1]float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6}

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("corrupt chunk")

// Append encodes points, which must be sorted by strictly increasing time,
// and appends the block to dst.
func Append(dst []byte, points []cim.Point) []byte {
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, uint64(len(points)))
	if len(points) == 0 {
		return dst
	}
	dst = binary.AppendVarint(dst, points[0].Time)
	// Runs of equal time deltas.
	for i := 1; i < len(points); {
		d := points[i].Time - points[i-1].Time
		j := i + 1
		for j < len(points) && points[j].Time-points[j-1].Time == d {
			j++
		}
		dst = binary.AppendUvarint(dst, uint64(d))
		dst = binary.AppendUvarint(dst, uint64(j-i))
		i = j
	}
	if scale, ok := decimalScale(points); ok {
		dst = append(dst, modeDecimal, byte(scale))
		p := pow10[scale]
		prev := int64(math.Round(points[0].Value * p))
		dst = binary.AppendVarint(dst, prev)
		for _, pt := range points[1:] {
			cur := int64(math.Round(pt.Value * p))
			dst = binary.AppendVarint(dst, cur-prev)
			prev = cur
		}
		return dst
	}
	dst = append(dst, modeXOR)
	prev := math.Float64bits(points[0].Value)
	dst = binary.BigEndian.AppendUint64(dst, prev)
	for _, pt := range points[1:] {
		cur := math.Float64bits(pt.Value)
		x := cur ^ prev
		prev = cur
		if x == 0 {
			dst = append(dst, 0xff)
			continue
		}
		lead := leadingZeroBytes(x)
		trail := trailingZeroBytes(x)
		dst = append(dst, byte(lead<<4|trail))
		for b := 7 - lead; b >= trail; b-- {
			dst = append(dst, byte(x>>(8*b)))
		}
	}
	return dst
}

func leadingZeroBytes(x uint64) int {
	n := 0
	for n < 7 && x>>(56-8*n)&0xff == 0 {
		n++
	}
	return n
}

func trailingZeroBytes(x uint64) int {
	n := 0
	for n < 7 && x>>(8*n)&0xff == 0 {
		n++
	}
	return n
}

// decimalScale finds the fewest decimal digits that represent every value
// exactly as integer/10^scale, bit for bit.
func decimalScale(points []cim.Point) (int, bool) {
	scale := 0
	for _, pt := range points {
		for ; scale <= MaxScale; scale++ {
			if exactAt(pt.Value, scale) {
				break
			}
		}
		if scale > MaxScale {
			return 0, false
		}
	}
	return scale, true
}

func exactAt(v float64, scale int) bool {
	p := pow10[scale]
	r := math.Round(v * p)
	if math.Abs(r) > 1<<53 {
		return false
	}
	return math.Float64bits(float64(int64(r))/p) == math.Float64bits(v)
}

// Len returns the number of points in a block without decoding it.
func Len(b []byte) (int, error) {
	if len(b) == 0 || b[0] != version {
		return 0, fmt.Errorf("%w: unknown version", ErrCorrupt)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b))*8 {
		return 0, fmt.Errorf("%w: bad length", ErrCorrupt)
	}
	return int(n), nil
}

// Decode appends the points of a block to dst.
func Decode(dst []cim.Point, b []byte) ([]cim.Point, error) {
	n, err := Len(b)
	if err != nil {
		return dst, err
	}
	r := reader{b: b}
	r.byte()
	r.uvarint()
	if n == 0 {
		return dst, r.err
	}
	start := len(dst)
	t := r.varint()
	dst = append(dst, cim.Point{Time: t})
	for len(dst)-start < n && r.err == nil {
		d := int64(r.uvarint())
		c := r.uvarint()
		if c == 0 || c > uint64(n-(len(dst)-start)) {
			r.fail("bad run length")
			break
		}
		for ; c > 0; c-- {
			t += d
			dst = append(dst, cim.Point{Time: t})
		}
	}
	pts := dst[start:]
	switch mode := r.byte(); mode {
	case modeDecimal:
		scale := int(r.byte())
		if scale > MaxScale {
			r.fail("bad scale")
			break
		}
		p := pow10[scale]
		v := r.varint()
		pts[0].Value = float64(v) / p
		for i := 1; i < n && r.err == nil; i++ {
			v += r.varint()
			pts[i].Value = float64(v) / p
		}
	case modeXOR:
		prev := r.uint64()
		pts[0].Value = math.Float64frombits(prev)
		for i := 1; i < n && r.err == nil; i++ {
			ctl := r.byte()
			if ctl != 0xff {
				lead, trail := int(ctl>>4), int(ctl&0x0f)
				if lead > 7 || trail > 7 || lead+trail > 7 {
					r.fail("bad xor control byte")
					break
				}
				var x uint64
				for b := 7 - lead; b >= trail; b-- {
					x |= uint64(r.byte()) << (8 * b)
				}
				prev ^= x
			}
			pts[i].Value = math.Float64frombits(prev)
		}
	default:
		r.fail(fmt.Sprintf("unknown value mode %d", mode))
	}
	if r.err != nil {
		return dst[:start], r.err
	}
	return dst, nil
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w at byte %d: %s", ErrCorrupt, r.off, why)
	}
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b[min(r.off, len(r.b)):])
	if k <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.off += k
	return v
}

func (r *reader) varint() int64 {
	v, k := binary.Varint(r.b[min(r.off, len(r.b)):])
	if k <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.off += k
	return v
}

func (r *reader) uint64() uint64 {
	if r.off+8 > len(r.b) {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v
}

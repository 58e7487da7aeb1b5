package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/gridlink/gridlink/cim"
)

// Layout constants of the on-disk format (see the package comment).
const (
	segMagic     = "GLQ1"        // first bytes of every segment file
	segHeaderLen = len(segMagic) // bytes before the first record
	recHeaderLen = 8             // uint32 payload length + uint32 CRC32C
	// recPrefixMax is the most bytes the sequence number and count take
	// (two uvarints) in front of a record's readings.
	recPrefixMax = 2 * binary.MaxVarintLen64
	// minReadingLen is the fewest bytes one encoded reading takes: three
	// one-byte string references, a one-byte time delta and the value.
	minReadingLen = 3 + 1 + 8
	// maxRecordReadings is how many readings Append puts in one record at
	// most, so that a record stays small enough to read whole.
	maxRecordReadings = 4096
	// maxStrings bounds the string table of one record; later strings are
	// written inline again.
	maxStrings = 256
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord is returned by decodeRecord for a payload that does not parse.
var errBadRecord = errors.New("malformed record")

// encoder builds the body of a record: the readings without the leading
// sequence number and count, which are only known under the queue's lock.
type encoder struct {
	buf     []byte
	strs    map[string]int
	nstrs   int
	prevSec int64
}

// encodeBody appends the encoded readings to e.buf after room for the record
// header and prefix, and returns the buffer.
func (e *encoder) encodeBody(rs []cim.Reading) []byte {
	e.buf = append(e.buf[:0], make([]byte, recHeaderLen+recPrefixMax)...)
	if e.strs == nil {
		e.strs = make(map[string]int, 16)
	}
	clear(e.strs)
	e.nstrs = 0
	prev := int64(0)
	for i := range rs {
		r := &rs[i]
		e.str(r.Asset)
		e.str(r.Quantity)
		e.str(string(r.Phase))
		e.buf = binary.AppendVarint(e.buf, r.Time-prev)
		prev = r.Time
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(r.Value))
	}
	return e.buf
}

// str writes a string reference: an even uvarint 2*i for entry i of the
// record's string table, or an odd uvarint 2*len+1 followed by the bytes of a
// new string, which becomes the next table entry.
func (e *encoder) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.buf = binary.AppendUvarint(e.buf, uint64(i)<<1)
		return
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s))<<1|1)
	e.buf = append(e.buf, s...)
	if e.nstrs < maxStrings {
		e.strs[s] = e.nstrs
		e.nstrs++
	}
}

// finishRecord fills in the header and prefix in front of a body made by
// encodeBody and returns the complete record, a sub-slice of body.
func finishRecord(body []byte, seq uint64, n int) []byte {
	var pre [recPrefixMax]byte
	p := binary.PutUvarint(pre[:], seq)
	p += binary.PutUvarint(pre[p:], uint64(n))
	start := recPrefixMax - p // the record starts this far into body
	copy(body[recHeaderLen+start:], pre[:p])
	payload := body[recHeaderLen+start:]
	binary.LittleEndian.PutUint32(body[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(body[start+4:], crcOf(payload))
	return body[start:]
}

// crcOf returns the CRC32C of p.
func crcOf(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// recordHeader reads a record header: the payload length and its CRC.
func recordHeader(h []byte) (n uint32, crc uint32) {
	return binary.LittleEndian.Uint32(h), binary.LittleEndian.Uint32(h[4:])
}

// recordMeta reads the sequence number and reading count at the start of a
// payload whose CRC has been checked, without decoding the readings.
func recordMeta(p []byte) (seq uint64, n int, err error) {
	seq, a := binary.Uvarint(p)
	if a <= 0 {
		return 0, 0, fmt.Errorf("%w: bad sequence number", errBadRecord)
	}
	cnt, b := binary.Uvarint(p[a:])
	if b <= 0 || cnt == 0 || cnt > uint64(len(p)-a-b)/minReadingLen {
		return 0, 0, fmt.Errorf("%w: bad reading count", errBadRecord)
	}
	if seq > math.MaxUint64-cnt {
		return 0, 0, fmt.Errorf("%w: sequence number overflows", errBadRecord)
	}
	return seq, int(cnt), nil
}

// decoder turns payloads back into readings. It interns the strings it
// makes, so that the readings of many records share one copy of each asset
// and quantity name.
type decoder struct {
	tab    []string
	intern map[string]string
}

// maxIntern bounds the decoder's intern table; it starts over when full.
const maxIntern = 4096

// decode appends the readings of payload p with index >= skip to out, at
// most max of them, and returns out, the record's sequence number and count.
// The payload's CRC must have been checked; decode still checks every length
// so that a bug or a collision cannot make it read out of bounds.
func (d *decoder) decode(p []byte, skip, max int, out []cim.Reading) ([]cim.Reading, uint64, int, error) {
	seq, n, err := recordMeta(p)
	if err != nil {
		return out, 0, 0, err
	}
	_, a := binary.Uvarint(p)
	_, b := binary.Uvarint(p[a:])
	i := a + b
	d.tab = d.tab[:0]
	var t int64
	for k := 0; k < n; k++ {
		var r cim.Reading
		var s [3]string
		for f := range s {
			if s[f], i, err = d.str(p, i); err != nil {
				return out, seq, n, err
			}
		}
		dt, m := binary.Varint(p[i:])
		if m <= 0 {
			return out, seq, n, fmt.Errorf("%w: reading %d: bad time", errBadRecord, k)
		}
		i += m
		t += dt
		if len(p)-i < 8 {
			return out, seq, n, fmt.Errorf("%w: reading %d: short value", errBadRecord, k)
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(p[i:]))
		i += 8
		if k < skip || k-skip >= max {
			continue
		}
		r.Asset, r.Quantity, r.Phase = s[0], s[1], cim.Phase(s[2])
		r.Time, r.Value = t, v
		out = append(out, r)
	}
	if i != len(p) {
		return out, seq, n, fmt.Errorf("%w: %d bytes after the last reading", errBadRecord, len(p)-i)
	}
	return out, seq, n, nil
}

// str reads a string reference at p[i] (see encoder.str).
func (d *decoder) str(p []byte, i int) (string, int, error) {
	x, m := binary.Uvarint(p[i:])
	if m <= 0 {
		return "", i, fmt.Errorf("%w: bad string reference", errBadRecord)
	}
	i += m
	if x&1 == 0 {
		if x>>1 >= uint64(len(d.tab)) {
			return "", i, fmt.Errorf("%w: string reference %d out of range", errBadRecord, x>>1)
		}
		return d.tab[x>>1], i, nil
	}
	l := x >> 1
	if l > uint64(len(p)-i) {
		return "", i, fmt.Errorf("%w: string of %d bytes past the end", errBadRecord, l)
	}
	b := p[i : i+int(l)]
	s, ok := d.intern[string(b)]
	if !ok {
		if d.intern == nil || len(d.intern) >= maxIntern {
			d.intern = make(map[string]string, 64)
		}
		s = string(b)
		d.intern[s] = s
	}
	if len(d.tab) < maxStrings {
		d.tab = append(d.tab, s)
	}
	return s, i + int(l), nil
}

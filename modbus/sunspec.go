package modbus

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/profile"
)

// SunSpec discovery constants.
const (
	sunsHi   = 0x5375 // "Su"
	sunsLo   = 0x6E53 // "nS"
	endID    = 0xFFFF // model id that ends the map
	maxModel = 200    // more blocks than any real device has: a corrupt map
)

// sunspecBases are where the "SunS" marker is looked for, in order.
var sunspecBases = []uint16{40000, 0, 50000}

//go:embed sunspec_models.csv
var modelsCSV []byte

// ssPoint is one point of a SunSpec model.
type ssPoint struct {
	offset int    // from the block start: 0 is ID, 1 is L
	name   string // e.g. W
	typ    string // SunSpec type: int16, uint16, acc32, sunssf, string ...
	size   int    // registers
	sf     string // name of its scale-factor point, if any
}

// ssModel is a SunSpec model definition.
type ssModel struct {
	id     int
	length int // L: registers after ID and L
	points []ssPoint
	byName map[string]int
}

func (m *ssModel) point(name string) (ssPoint, bool) {
	i, ok := m.byName[name]
	if !ok {
		return ssPoint{}, false
	}
	return m.points[i], true
}

// models are the built-in definitions, keyed by id. Immutable after init.
var models = mustModels()

func mustModels() map[int]*ssModel {
	m, err := parseModels(modelsCSV)
	if err != nil {
		panic("modbus: built-in sunspec_models.csv: " + err.Error())
	}
	return m
}

// parseModels reads model definitions and derives the models that share
// a layout with one of them.
func parseModels(data []byte) (map[int]*ssModel, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = 6
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	out := map[int]*ssModel{}
	for _, rec := range recs[1:] {
		id, err1 := strconv.Atoi(rec[0])
		off, err2 := strconv.Atoi(rec[1])
		size, err3 := strconv.Atoi(rec[4])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%v: %w", rec, err)
		}
		m := out[id]
		if m == nil {
			m = &ssModel{id: id, byName: map[string]int{}}
			out[id] = m
		}
		m.byName[rec[2]] = len(m.points)
		m.points = append(m.points, ssPoint{offset: off, name: rec[2], typ: rec[3], size: size, sf: rec[5]})
		m.length = max(m.length, off+size-2)
	}
	derive := func(id, from int, rename map[string]string) {
		src := out[from]
		m := &ssModel{id: id, length: src.length, byName: map[string]int{}}
		for _, p := range src.points {
			if n, ok := rename[p.name]; ok {
				p.name = n
			}
			m.byName[p.name] = len(m.points)
			m.points = append(m.points, p)
		}
		// Accept the source model's spelling too.
		for old, n := range rename {
			m.byName[old] = m.byName[n]
		}
		out[id] = m
	}
	// The official 201, 202 and 204 name the line-to-line voltages
	// PPVphAB..; 203 calls them PhVphAB...
	meterNames := map[string]string{"PhVphAB": "PPVphAB", "PhVphBC": "PPVphBC", "PhVphCA": "PPVphCA"}
	derive(102, 101, nil)
	derive(112, 111, nil)
	derive(113, 111, nil)
	derive(201, 203, meterNames)
	derive(202, 203, meterNames)
	derive(204, 203, meterNames)
	return out, nil
}

// knownModels lists the ids of the built-in models.
func knownModels() []int {
	ids := make([]int, 0, len(models))
	for id := range models {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ssFormat is the register format of a numeric SunSpec type, and its "not
// implemented" marker.
func ssFormat(typ string, size int) (format, func(uint64) bool, error) {
	eq := func(m uint64) func(uint64) bool { return func(u uint64) bool { return u == m } }
	nan32 := func(u uint64) bool { return math.IsNaN(float64(math.Float32frombits(uint32(u)))) }
	nan64 := func(u uint64) bool { return math.IsNaN(math.Float64frombits(u)) }
	var f format
	var ni func(uint64) bool
	switch typ {
	case "int16", "sunssf":
		f, ni = format{typ: "int16", words: 1}, eq(0x8000)
	case "uint16", "enum16", "bitfield16", "count":
		f, ni = format{typ: "uint16", words: 1}, eq(0xFFFF)
	case "acc16":
		f, ni = format{typ: "uint16", words: 1}, eq(0)
	case "int32":
		f, ni = format{typ: "int32", words: 2}, eq(0x80000000)
	case "uint32", "enum32", "bitfield32":
		f, ni = format{typ: "uint32", words: 2}, eq(0xFFFFFFFF)
	case "acc32":
		f, ni = format{typ: "uint32", words: 2}, eq(0)
	case "int64":
		f, ni = format{typ: "int64", words: 4}, eq(0x8000000000000000)
	case "uint64":
		f, ni = format{typ: "uint64", words: 4}, eq(0xFFFFFFFFFFFFFFFF)
	case "acc64":
		f, ni = format{typ: "uint64", words: 4}, eq(0)
	case "float32":
		f, ni = format{typ: "float32", words: 2}, nan32
	case "float64":
		f, ni = format{typ: "float64", words: 4}, nan64
	default:
		return format{}, nil, fmt.Errorf("SunSpec type %s is not a number", typ)
	}
	if f.words != size {
		return format{}, nil, fmt.Errorf("SunSpec type %s with size %d", typ, size)
	}
	return f, ni, nil
}

// ssBlock is one model block found on a device.
type ssBlock struct {
	id    int
	start uint16 // address of the ID register
	l     int    // L: registers after ID and L
}

// read2 reads registers for the walk: n registers at addr.
type read2 func(addr uint16, n uint16) ([]uint16, error)

// findBase looks for the "SunS" marker at the candidate bases and returns
// the first base that holds it. A candidate the device refuses with an
// exception is skipped; any other error ends the search.
func findBase(read read2, bases []uint16) (uint16, error) {
	var tried []string
	for _, base := range bases {
		regs, err := read(base, 2)
		switch {
		case err != nil && isException(err):
			tried = append(tried, fmt.Sprintf("%d (%v)", base, err))
			continue
		case err != nil:
			return 0, fmt.Errorf("read SunSpec marker at %d: %w", base, err)
		case len(regs) != 2:
			return 0, fmt.Errorf("read SunSpec marker at %d: got %d registers", base, len(regs))
		case regs[0] == sunsHi && regs[1] == sunsLo:
			return base, nil
		}
		tried = append(tried, fmt.Sprintf("%d (%04x %04x)", base, regs[0], regs[1]))
	}
	return 0, fmt.Errorf("no SunSpec marker \"SunS\" (5375 6e53) at %s", strings.Join(tried, ", "))
}

// walk follows the chain of model blocks after the marker at base until the
// end model 0xFFFF. Errors name the model whose length led astray.
func walk(read read2, base uint16) ([]ssBlock, error) {
	var out []ssBlock
	addr := int(base) + 2
	prev := "the SunS marker"
	for {
		if len(out) >= maxModel {
			return nil, fmt.Errorf("SunSpec map at %d: more than %d models without the end marker 0xFFFF", base, maxModel)
		}
		if addr+2 > 65536 {
			return nil, fmt.Errorf("SunSpec map at %d: %s runs past register 65535 without the end marker 0xFFFF", base, prev)
		}
		hdr, err := read(uint16(addr), 2)
		if err != nil {
			return nil, fmt.Errorf("SunSpec map at %d: read model header at %d after %s: %w", base, addr, prev, err)
		}
		if len(hdr) != 2 {
			return nil, fmt.Errorf("SunSpec map at %d: read model header at %d: got %d registers", base, addr, len(hdr))
		}
		id, l := int(hdr[0]), int(hdr[1])
		if id == endID {
			return out, nil
		}
		if id == 0 {
			return nil, fmt.Errorf("SunSpec map at %d: model id 0 at %d after %s: not a SunSpec map or a wrong length", base, addr, prev)
		}
		if addr+2+l > 65536 {
			return nil, fmt.Errorf("SunSpec map at %d: model %d at %d has length %d, which runs past register 65535", base, id, addr, l)
		}
		out = append(out, ssBlock{id: id, start: uint16(addr), l: l})
		prev = fmt.Sprintf("model %d at %d (length %d)", id, addr, l)
		addr += 2 + l
	}
}

// resolveSunSpec turns the profile's (model, point) pairs into points at
// the addresses of the blocks found. Points of a model the device lacks
// are an error unless optional; then they are left out and listed in
// missing.
func resolveSunSpec(s *profile.SunSpecSpec, unit uint8, blocks []ssBlock) (pts []point, missing []string, err error) {
	first := map[int]ssBlock{}
	for _, b := range slices.Backward(blocks) {
		first[b.id] = b
	}
	for i := range s.Points {
		sp := &s.Points[i]
		pd, sfd, err := ssDef(sp)
		if err != nil {
			return nil, nil, fmt.Errorf("sunspec.points[%d]: %w", i, err)
		}
		b, ok := first[sp.Model]
		if !ok || pd.offset+pd.size > 2+b.l || (sfd != nil && sfd.offset >= 2+b.l) {
			why := fmt.Sprintf("model %d point %s: ", sp.Model, sp.Point)
			if !ok {
				why += fmt.Sprintf("model %d is not in the device's map (models: %v)", sp.Model, ids(blocks))
			} else {
				why += fmt.Sprintf("the device's block at %d has length %d, too short for it", b.start, b.l)
			}
			if sp.Optional {
				missing = append(missing, why)
				continue
			}
			return nil, nil, errors.New(why)
		}
		f, ni, _ := ssFormat(pd.typ, pd.size)
		p := point{m: &sp.Mapping, unit: unit, addr: b.start + uint16(pd.offset), f: f, notImpl: ni, sunspec: true,
			name: fmt.Sprintf("model %d %s", sp.Model, sp.Point)}
		if sfd != nil {
			p.hasSF, p.sf = true, b.start+uint16(sfd.offset)
		}
		pts = append(pts, p)
	}
	return pts, missing, nil
}

// ssDef finds a profile point's definition and that of its scale factor.
func ssDef(sp *profile.SunSpecPoint) (ssPoint, *ssPoint, error) {
	def, ok := models[sp.Model]
	if !ok {
		return ssPoint{}, nil, fmt.Errorf("model %d is not built in; known models: %v", sp.Model, knownModels())
	}
	pd, ok := def.point(sp.Point)
	if !ok {
		return ssPoint{}, nil, fmt.Errorf("model %d has no point %q", sp.Model, sp.Point)
	}
	if _, _, err := ssFormat(pd.typ, pd.size); err != nil {
		return ssPoint{}, nil, fmt.Errorf("model %d point %s: %w; only numeric points can be mapped", sp.Model, sp.Point, err)
	}
	if pd.sf == "" {
		return pd, nil, nil
	}
	sfd, ok := def.point(pd.sf)
	if !ok {
		return ssPoint{}, nil, fmt.Errorf("model %d point %s: scale factor %s is not defined", sp.Model, sp.Point, pd.sf)
	}
	return pd, &sfd, nil
}

func ids(blocks []ssBlock) []int {
	out := make([]int, len(blocks))
	for i, b := range blocks {
		out[i] = b.id
	}
	return out
}

// ssString decodes a SunSpec string: two characters per register,
// NUL-padded.
func ssString(regs []uint16) string {
	b := make([]byte, 0, 2*len(regs))
	for _, r := range regs {
		b = append(b, byte(r>>8), byte(r))
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
}

// ssStringRegs encodes s into n registers, NUL-padded and cut to fit.
func ssStringRegs(s string, n int) []uint16 {
	b := make([]byte, 2*n)
	copy(b, s)
	regs := make([]uint16, n)
	for i := range regs {
		regs[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return regs
}

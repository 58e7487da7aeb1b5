package modbus

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestDecodeKnownValues(t *testing.T) {
	f32 := math.Float32bits(230.16)
	f64 := math.Float64bits(302806.0)
	cases := []struct {
		typ, wo, bo string
		regs        []uint16
		want        float64
	}{
		{"int32", "", "", []uint16{0xFFFF, 0xFB2E}, -1234},          // AlphaESS 33/34
		{"int32", "low_first", "", []uint16{0xFB2E, 0xFFFF}, -1234}, //
		{"int32", "", "little", []uint16{0xFFFF, 0x2EFB}, -1234},    //
		{"uint16", "", "", []uint16{553}, 553},                      // AlphaESS SoC 55.3 %
		{"int16", "", "", []uint16{0xFFF6}, -10},                    //
		{"uint32", "", "", []uint16{0x0001, 0x0000}, 65536},         //
		{"float32", "", "", []uint16{uint16(f32 >> 16), uint16(f32)}, float64(float32(230.16))},
		{"float32", "low_first", "", []uint16{uint16(f32), uint16(f32 >> 16)}, float64(float32(230.16))},
		{"float64", "", "", []uint16{uint16(f64 >> 48), uint16(f64 >> 32), uint16(f64 >> 16), uint16(f64)}, 302806},
		{"float64", "low_first", "", []uint16{uint16(f64), uint16(f64 >> 16), uint16(f64 >> 32), uint16(f64 >> 48)}, 302806},
		{"int64", "", "", []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}, -2},
		{"uint64", "", "", []uint16{0, 0, 1, 0}, 65536},
	}
	for _, c := range cases {
		f, err := newFormat(c.typ, c.wo, c.bo)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.decode(c.regs); got != c.want {
			t.Errorf("%s %s %s %04x = %v, want %v", c.typ, c.wo, c.bo, c.regs, got, c.want)
		}
		back, err := f.encode(c.want)
		if err != nil || !equalRegs(back, c.regs) {
			t.Errorf("%s %s %s encode(%v) = %04x, %v; want %04x", c.typ, c.wo, c.bo, c.want, back, err, c.regs)
		}
	}
	if _, err := newFormat("int24", "", ""); err == nil {
		t.Error("int24 accepted")
	}
	f, _ := newFormat("int16", "", "")
	if _, err := f.encode(40000); err == nil {
		t.Error("40000 fits int16?")
	}
}

func equalRegs(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var fuzzFormats = func() []format {
	var out []format
	for _, typ := range []string{"int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"} {
		for _, wo := range []string{"high_first", "low_first"} {
			for _, bo := range []string{"big", "little"} {
				f, err := newFormat(typ, wo, bo)
				if err != nil {
					panic(err)
				}
				out = append(out, f)
			}
		}
	}
	return out
}()

// FuzzDecode: any register contents decode under every type and order
// without panic; a decoded number encodes back to the same registers
// (NaN payloads and float -0 aside); word and byte order only permute.
func FuzzDecode(f *testing.F) {
	// Seeds from the fixtures: AlphaESS -1234 W, Alfen 230.16 V float32
	// and 302806 Wh float64, Victron SoC.
	f.Add([]byte{0xFF, 0xFF, 0xFB, 0x2E, 0, 0, 0, 0}, uint8(4))
	f.Add(binary.BigEndian.AppendUint64(nil, math.Float64bits(302806)), uint8(9))
	f.Add(binary.BigEndian.AppendUint32([]byte{}, math.Float32bits(230.16)), uint8(24))
	f.Add([]byte{0x02, 0x29}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		fm := fuzzFormats[int(which)%len(fuzzFormats)]
		if len(data) < 2*fm.words {
			return
		}
		regs := make([]uint16, fm.words)
		for i := range regs {
			regs[i] = binary.BigEndian.Uint16(data[2*i:])
		}
		v := fm.decode(regs)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if fm.typ != "float32" && fm.typ != "float64" {
				t.Fatalf("%s decoded %04x to %v", fm, regs, v)
			}
			return
		}
		if fm.quantise(v) != v && fm.typ != "float64" {
			t.Fatalf("%s: decoded %v is not representable", fm, v)
		}
		if v == 0 || fm.typ == "int64" || fm.typ == "uint64" {
			return // -0 and 64-bit integers beyond 2^53 do not round-trip through float64
		}
		back, err := fm.encode(v)
		if err != nil {
			t.Fatalf("%s: %v decoded from %04x does not encode: %v", fm, v, regs, err)
		}
		if !equalRegs(back, regs) {
			t.Fatalf("%s: %04x → %v → %04x", fm, regs, v, back)
		}
	})
}

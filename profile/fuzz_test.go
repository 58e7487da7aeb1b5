package profile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gridlink/gridlink/cim"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("profiles/*.yaml")
	for _, name := range files[:min(8, len(files))] {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\nprotocol: mqtt\nmqtt: {topics: [{topic: 'a/+/b', format: json, points: [{path: '[\"k.x\"].0', quantity: voltage}]}]}\n"))
	cat := cim.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "f.yaml", cat)
		if err != nil {
			return
		}
		for _, m := range p.Mappings() {
			if _, ok := cat.Lookup(m.Quantity); !ok {
				t.Fatalf("accepted unknown quantity %q", m.Quantity)
			}
		}
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"meters.0.total", `["1-0:1.4.0*255"]`, `a.["b.c"].d`, "", ".", `["`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		q, err := ParsePath(p.String())
		if err != nil || len(q) != len(p) {
			t.Fatalf("%q → %v → %q → %v, %v", s, p, p.String(), q, err)
		}
		for i := range p {
			if p[i] != q[i] {
				t.Fatalf("%q: round trip changed key %d: %q → %q", s, i, p[i], q[i])
			}
		}
	})
}

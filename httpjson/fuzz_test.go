package httpjson

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
)

// FuzzDecodeJSONReply decodes arbitrary bodies against the profiles of the
// recorded devices: never a panic, and every value it returns is a
// catalogue quantity with a finite number or a state name.
func FuzzDecodeJSONReply(f *testing.F) {
	files, _ := filepath.Glob("devices/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"status":901}#`))
	f.Add([]byte(`{"meters":[{"power":"abc","total":1e308}],"relays":[{"ison":"true"}]}`))
	f.Add([]byte(`[{"error":{"type":1}}]`))
	f.Add([]byte(`{"state":{"lastupdated":"none","temperature":null}}`))

	cat := cim.Default()
	set, err := profile.Embedded(cat)
	if err != nil {
		f.Fatal(err)
	}
	vars := map[string]string{"temp_id": "6", "light_id": "5", "presence_id": "4", "device_id": "d", "device": "local"}
	var readers []*Reader
	for _, p := range set.All() {
		if p.Protocol != profile.HTTP {
			continue
		}
		for _, r := range p.HTTP.Requests {
			rd, err := NewReader(r.Points, r.Time, vars)
			if err != nil {
				f.Fatal(err)
			}
			readers = append(readers, rd)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := DecodeBody(body)
		if err != nil {
			return
		}
		for _, rd := range readers {
			vals, err := rd.Read(doc)
			if err != nil {
				continue
			}
			for _, v := range vals {
				q, ok := cat.Lookup(v.Quantity)
				if !ok {
					t.Fatalf("value of unknown quantity %q", v.Quantity)
				}
				if v.State == "" && (math.IsNaN(v.Value) || math.IsInf(v.Value, 0)) {
					t.Fatalf("%s: non-finite value %v", v.Quantity, v.Value)
				}
				if v.State != "" {
					if _, err := q.ParseValue(v.State); err != nil {
						t.Fatalf("%s: state %q: %v", v.Quantity, v.State, err)
					}
				}
			}
		}
	})
}

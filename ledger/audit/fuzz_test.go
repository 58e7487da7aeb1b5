package audit

import (
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/ledger"
)

// FuzzState checks that any state file (a saved checkpoint note) opens
// without panic, and that what opens is a checkpoint signed by the log key
// that formats back to its body.
func FuzzState(f *testing.F) {
	s, v, _ := newKey(f, "test-log")
	good, _ := note.Sign(&note.Note{Text: string(ledger.FormatCheckpoint(ledger.DefaultOrigin, 7, tlog.RecordHash([]byte("x"))))}, s)
	f.Add(good)
	f.Add([]byte(ledger.DefaultOrigin + "\n7\nAAAA\n\n— test-log AAAA\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n\n"))
	f.Add(good[:len(good)-5])
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := parseState(b, ledger.DefaultOrigin, v)
		if err != nil {
			if !strings.Contains(err.Error(), "saved checkpoint") {
				t.Fatalf("error does not say what: %v", err)
			}
			return
		}
		if cp.Size < 0 || string(ledger.FormatCheckpoint(ledger.DefaultOrigin, cp.Size, cp.Root)) != cp.note.Text {
			t.Fatalf("opened %q as size %d root %s", b, cp.Size, cp.Root)
		}
	})
}

// FuzzEntries checks the entries reply parser: no panic, and every entry
// it returns has a non-negative index and a kind.
func FuzzEntries(f *testing.F) {
	f.Add([]byte(`{"entries":[{"index":0,"kind":"reading","site":"s","leaf_hash":"` + tlog.Hash{}.String() + `","data":"e30=","readable":{"asset":"a","quantity":"q","phase":"total","time":1,"value":2}}]}`))
	f.Add([]byte(`{"entries":[{"index":1,"kind":"batch","site":"s","leaf_hash":"` + tlog.Hash{}.String() + `","data":null}]}`))
	f.Add([]byte(`{"entries":[]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"entries":[{"index":-1}]}`))
	f.Add([]byte(`{"entries":[{"index":0,"kind":"x","leaf_hash":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := parseEntries(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "entries reply") {
				t.Fatalf("error does not name the reply: %v", err)
			}
			return
		}
		for _, e := range es {
			if e.Index < 0 || e.Kind == "" {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}

// FuzzConsistency checks the consistency reply parser.
func FuzzConsistency(f *testing.F) {
	f.Add([]byte(`{"from":1,"to":2,"proof":["`+tlog.Hash{}.String()+`"]}`), int64(1), int64(2))
	f.Add([]byte(`{"from":1,"to":3,"proof":[]}`), int64(1), int64(2))
	f.Add([]byte(`{"proof":null}`), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, b []byte, from, to int64) {
		p, err := parseConsistency(b, from, to)
		if err == nil && len(p) > 128 {
			t.Fatalf("%d hashes", len(p))
		}
		if err != nil && !strings.HasPrefix(err.Error(), "consistency reply") {
			t.Fatalf("error does not name the reply: %v", err)
		}
	})
}

// FuzzSeries checks the readings reply parser.
func FuzzSeries(f *testing.F) {
	sq := SeriesQuery{Site: "s", Asset: "a", Quantity: "q"}
	f.Add([]byte(`{"series":[{"site":"s","asset":"a","quantity":"q","phase":"total","unit":"Wh","points":[[1,2.5],[2,null]]}]}`))
	f.Add([]byte(`{"series":[{"site":"s","asset":"a","quantity":"q","phase":"total","points":[[1]]}]}`))
	f.Add([]byte(`{"series":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pts, err := parseSeries(b, sq)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "readings reply") {
				t.Fatalf("error does not name the reply: %v", err)
			}
			return
		}
		for _, p := range pts {
			if p.Null && p.Value != 0 {
				t.Fatalf("point %+v", p)
			}
		}
	})
}

func TestParseErrorsNameTheField(t *testing.T) {
	h := tlog.Hash{}.String()
	cases := []struct{ in, want string }{
		{`{"entries":[{"index":0,"kind":"reading","leaf_hash":"AAAA"}]}`, `entries reply: entries[0]: entry 0: leaf_hash: "AAAA" is not 32 bytes of base64`},
		{`{"entries":[{"kind":"reading","leaf_hash":"` + h + `"}]}`, `entries reply: entries[0]: index missing`},
		{`{"entries":[{"index":3,"kind":"reading","leaf_hash":"` + h + `","data":"!!"}]}`, `entry 3: data: not base64`},
		{`{"entries":[{"index":3,"kind":"reading","leaf_hash":"` + h + `","readable":{"asset":"a"}}]}`, `entry 3: readable: time or value missing`},
		{`[]`, `entries reply: json`},
	}
	for _, c := range cases {
		_, err := parseEntries([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", c.in, err, c.want)
		}
	}
	if _, err := parseConsistency([]byte(`{"from":1,"to":3,"proof":[]}`), 1, 2); err == nil || !strings.Contains(err.Error(), "asked for 1 → 2, the reply is for 1 → 3") {
		t.Errorf("consistency: %v", err)
	}
}

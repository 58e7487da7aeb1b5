package ledger

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// The kinds of entry.
const (
	KindReading = "reading"
	KindBatch   = "batch"
	KindEnergy  = "energy"
)

// Version is the entry schema version, member "v" of every entry.
const Version = 1

// pseudonymLen is the length of a pseudonym: 22 base64url characters
// carry 132 bits of the HMAC, ample against collisions.
const pseudonymLen = 22

// Pseudonym is an asset's identifier on the log: the first 22 characters
// of base64url-nopad(HMAC-SHA256(key, site + "\x00" + asset)). Without the
// key (deleted on erasure) it cannot be linked to the asset.
func Pseudonym(key []byte, site, asset string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write([]byte(asset))
	var sum [32]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0]))[:pseudonymLen]
}

// Entry is one log entry: its position, kind, site and canonical bytes
// (the leaf; nil once erased).
type Entry struct {
	Index int64
	Kind  string
	Site  string
	Data  []byte
}

// EntryOf returns the log part of a stored entry.
func EntryOf(e store.LedgerEntry) Entry {
	return Entry{Index: e.Index, Kind: e.Kind, Site: e.Site, Data: e.Data}
}

// LeafHash is the RFC 6962 leaf hash of the entry's data.
func (e Entry) LeafHash() tlog.Hash { return tlog.RecordHash(e.Data) }

// Decode decodes the entry's data and checks that its kind and site agree
// with the entry's.
func (e Entry) Decode() (Decoded, error) {
	if e.Data == nil {
		return Decoded{}, fmt.Errorf("entry %d: data erased", e.Index)
	}
	d, err := DecodeEntry(e.Data)
	if err != nil {
		return Decoded{}, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	if d.Kind != e.Kind || d.Site != e.Site {
		return Decoded{}, fmt.Errorf("entry %d: data is a %s of site %q, the entry says %s of site %q", e.Index, d.Kind, d.Site, e.Kind, e.Site)
	}
	return d, nil
}

// Batch is a batch entry: the signature over a batch of readings. Its
// readings, in signed order, are the reading entries at [First, index of
// the batch entry) interleaved with Refs: Refs[i] = {pos, idx} says the
// reading at position pos (0-based in signed order) is the already logged
// entry idx.
type Batch struct {
	Site, Signer string
	Count        int
	Digest       [32]byte
	Signature    []byte
	First        int64
	Refs         [][2]int64
	// Omitted are the readings the signer signed that the platform
	// refused (a value outside the plausible range, a time outside the
	// accepted window): not logged, they are known by the hash the digest
	// chained, so that the signature still verifies. Positions ascending.
	Omitted []Omission
}

// Omission is a signed reading the platform refused: its position (0-based
// in signed order) and ReadingHash, in a batch entry's member
// "omitted":[[pos,"<base64 hash>"],...].
type Omission struct {
	Pos  int64
	Hash [32]byte
}

// ReadingHash is the SHA-256 of a reading's canonical encoding
// (Reading.AppendCanonical): what a batch digest chains for it.
func ReadingHash(r Reading) ([32]byte, error) {
	b, err := r.AppendCanonical(make([]byte, 0, 160))
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// AddHash adds the next reading by its ReadingHash: one the platform
// refused, of which only the hash is known. (Declared here, beside
// Omission, rather than in sign.go.)
func (d *BatchDigest) AddHash(h [32]byte) {
	d.outer.Write(h[:])
	d.n++
}

// checkOmitted checks that omitted positions are ascending, in [0, count)
// and not those of refs, and that they leave no more positions than there
// are: a digest can then be rebuilt from the entry.
func checkOmitted(count int64, refs [][2]int64, omitted []Omission) error {
	if len(omitted) == 0 {
		return nil // refs alone are checked as before omissions existed
	}
	if int64(len(refs))+int64(len(omitted)) > count {
		return fmt.Errorf("%d refs and %d omitted readings, more than the count %d", len(refs), len(omitted), count)
	}
	ref := make(map[int64]bool, len(refs))
	for _, r := range refs {
		ref[r[0]] = true
	}
	for i, o := range omitted {
		switch {
		case o.Pos < 0 || o.Pos >= count:
			return fmt.Errorf("omitted[%d]: position %d outside [0, count %d)", i, o.Pos, count)
		case i > 0 && o.Pos <= omitted[i-1].Pos:
			return fmt.Errorf("omitted[%d]: position %d not after %d (positions ascend, each once)", i, o.Pos, omitted[i-1].Pos)
		case ref[o.Pos]:
			return fmt.Errorf("omitted[%d]: position %d is also a ref's", i, o.Pos)
		}
	}
	return nil
}

// Energy is an energy entry: the Wh an asset's register quantity grew by
// over the 15-minute interval [Start, End) (UTC Unix ms). Rev counts
// revisions when late readings changed the value. Asset is not encoded
// (Subject stands for it) and rides along for the readable record.
type Energy struct {
	Site, Asset, Subject, Quantity string
	Start, End                     int64
	Wh                             float64
	Rev                            int
}

// EncodeReading returns the canonical bytes of a reading entry:
//
//	{"kind":"reading","phase":P,"quantity":Q,"signer":K,"site":S,"subject":SUBJ,"time":T,"v":1,"value":V}
func EncodeReading(r Reading, signer, subject string) ([]byte, error) {
	return appendReading(make([]byte, 0, 192), r, signer, subject)
}

func appendReading(b []byte, r Reading, signer, subject string) ([]byte, error) {
	phase := r.Phase
	if phase == "" {
		phase = "total"
	}
	var err error
	b = append(b, `{"kind":"reading"`...)
	for _, f := range [...]struct{ name, v string }{{"phase", phase}, {"quantity", r.Quantity}, {"signer", signer}, {"site", r.Site}, {"subject", subject}} {
		b = member(b, f.name, false)
		if b, err = appendString(b, f.v); err != nil {
			return nil, fmt.Errorf("reading entry %s: %w", f.name, err)
		}
	}
	b = member(b, "time", false)
	if b, err = appendInt(b, "reading entry time", r.Time); err != nil {
		return nil, err
	}
	b = append(b, `,"v":1`...)
	b = member(b, "value", false)
	if b, err = appendNumber(b, r.Value); err != nil {
		return nil, fmt.Errorf("reading entry value: %w", err)
	}
	return append(b, '}'), nil
}

// EncodeBatch returns the canonical bytes of a batch entry:
//
//	{"count":N,"digest":B64,"first":I,"kind":"batch","omitted":[[pos,B64],...],"refs":[[pos,idx],...],"signature":B64,"signer":K,"site":S,"v":1}
//
// B64 is standard base64 with padding. "omitted" is there only when
// Omitted is not empty.
func EncodeBatch(bt Batch) ([]byte, error) {
	if bt.Count < 0 || bt.First < 0 {
		return nil, fmt.Errorf("batch entry: count %d and first %d must not be negative", bt.Count, bt.First)
	}
	if err := checkOmitted(int64(bt.Count), bt.Refs, bt.Omitted); err != nil {
		return nil, fmt.Errorf("batch entry: %w", err)
	}
	var err error
	b := make([]byte, 0, 256+24*len(bt.Refs)+64*len(bt.Omitted))
	b = append(b, `{"count":`...)
	if b, err = appendInt(b, "batch entry count", int64(bt.Count)); err != nil {
		return nil, err
	}
	b = append(b, `,"digest":"`...)
	b = base64.StdEncoding.AppendEncode(b, bt.Digest[:])
	b = append(b, `","first":`...)
	if b, err = appendInt(b, "batch entry first", bt.First); err != nil {
		return nil, err
	}
	b = append(b, `,"kind":"batch"`...)
	if len(bt.Omitted) > 0 {
		b = append(b, `,"omitted":[`...)
		for i, o := range bt.Omitted {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			if b, err = appendInt(b, "batch entry omitted position", o.Pos); err != nil {
				return nil, err
			}
			b = append(b, ',', '"')
			b = base64.StdEncoding.AppendEncode(b, o.Hash[:])
			b = append(b, '"', ']')
		}
		b = append(b, ']')
	}
	b = append(b, `,"refs":[`...)
	for i, r := range bt.Refs {
		if r[0] < 0 || r[1] < 0 {
			return nil, fmt.Errorf("batch entry refs[%d]: %v must not be negative", i, r)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		if b, err = appendInt(b, "batch entry ref position", r[0]); err != nil {
			return nil, err
		}
		b = append(b, ',')
		if b, err = appendInt(b, "batch entry ref index", r[1]); err != nil {
			return nil, err
		}
		b = append(b, ']')
	}
	b = append(b, `],"signature":"`...)
	b = base64.StdEncoding.AppendEncode(b, bt.Signature)
	b = append(b, '"')
	b = member(b, "signer", false)
	if b, err = appendString(b, bt.Signer); err != nil {
		return nil, fmt.Errorf("batch entry signer: %w", err)
	}
	b = member(b, "site", false)
	if b, err = appendString(b, bt.Site); err != nil {
		return nil, fmt.Errorf("batch entry site: %w", err)
	}
	return append(b, `,"v":1}`...), nil
}

// EncodeEnergy returns the canonical bytes of an energy entry:
//
//	{"end":T2,"kind":"energy","quantity":Q,"rev":R,"site":S,"start":T1,"subject":SUBJ,"v":1,"wh":X}
func EncodeEnergy(e Energy) ([]byte, error) {
	if e.Rev < 0 {
		return nil, fmt.Errorf("energy entry rev %d must not be negative", e.Rev)
	}
	var err error
	b := make([]byte, 0, 192)
	b = append(b, `{"end":`...)
	if b, err = appendInt(b, "energy entry end", e.End); err != nil {
		return nil, err
	}
	b = append(b, `,"kind":"energy"`...)
	b = member(b, "quantity", false)
	if b, err = appendString(b, e.Quantity); err != nil {
		return nil, fmt.Errorf("energy entry quantity: %w", err)
	}
	b = member(b, "rev", false)
	if b, err = appendInt(b, "energy entry rev", int64(e.Rev)); err != nil {
		return nil, err
	}
	b = member(b, "site", false)
	if b, err = appendString(b, e.Site); err != nil {
		return nil, fmt.Errorf("energy entry site: %w", err)
	}
	b = member(b, "start", false)
	if b, err = appendInt(b, "energy entry start", e.Start); err != nil {
		return nil, err
	}
	b = member(b, "subject", false)
	if b, err = appendString(b, e.Subject); err != nil {
		return nil, fmt.Errorf("energy entry subject: %w", err)
	}
	b = append(b, `,"v":1`...)
	b = member(b, "wh", false)
	if b, err = appendNumber(b, e.Wh); err != nil {
		return nil, fmt.Errorf("energy entry wh: %w", err)
	}
	return append(b, '}'), nil
}

// Decoded is a decoded entry: Kind and the members of that kind (the
// others stay zero). Phase is "" for the total phase, as in Reading.
type Decoded struct {
	Kind string
	Site string

	// reading and energy
	Subject  string
	Quantity string

	// reading
	Phase  string
	Signer string // also batch
	Time   int64
	Value  float64

	// batch
	Count     int
	Digest    [32]byte
	Signature []byte
	First     int64
	Refs      [][2]int64
	Omitted   []Omission // nil when the entry has no "omitted"

	// energy
	Start, End int64
	Wh         float64
	Rev        int
}

// Reading returns a reading entry's reading, with the asset it names
// (which the entry only holds as a pseudonym).
func (d Decoded) Reading(asset string) Reading {
	return Reading{Site: d.Site, Asset: asset, Quantity: d.Quantity, Phase: d.Phase, Time: d.Time, Value: d.Value}
}

// Batch returns a batch entry's fields.
func (d Decoded) Batch() Batch {
	return Batch{Site: d.Site, Signer: d.Signer, Count: d.Count, Digest: d.Digest, Signature: d.Signature, First: d.First, Refs: d.Refs, Omitted: d.Omitted}
}

// Energy returns an energy entry's fields, with the asset it names.
func (d Decoded) Energy(asset string) Energy {
	return Energy{Site: d.Site, Asset: asset, Subject: d.Subject, Quantity: d.Quantity, Start: d.Start, End: d.End, Wh: d.Wh, Rev: d.Rev}
}

// encode re-encodes a decoded entry.
func (d Decoded) encode() ([]byte, error) {
	switch d.Kind {
	case KindReading:
		return EncodeReading(d.Reading(""), d.Signer, d.Subject)
	case KindBatch:
		return EncodeBatch(d.Batch())
	case KindEnergy:
		return EncodeEnergy(d.Energy(""))
	}
	return nil, fmt.Errorf("kind %q", d.Kind)
}

// members of each kind, besides "kind" and "v".
var kindMembers = map[string][]string{
	KindReading: {"phase", "quantity", "signer", "site", "subject", "time", "value"},
	KindBatch:   {"count", "digest", "first", "omitted", "refs", "signature", "signer", "site"}, // "omitted" optional
	KindEnergy:  {"end", "quantity", "rev", "site", "start", "subject", "wh"},
}

// ErrNotCanonical is returned (wrapped) by DecodeEntry for data that
// decodes but is not the entry's canonical encoding (member order, white
// space, number form, escapes): the leaf hash would not be reproducible.
var ErrNotCanonical = errors.New("not in canonical (RFC 8785) form")

// DecodeEntry decodes an entry's canonical bytes. It is strict: an unknown,
// missing or mistyped member, a "v" other than 1, or bytes that are not the
// canonical encoding of what they hold are errors naming the member.
func DecodeEntry(data []byte) (Decoded, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Decoded{}, fmt.Errorf("ledger entry: %w", err)
	}
	var d Decoded
	var err error
	if d.Kind, err = str(raw, "kind"); err != nil {
		return Decoded{}, err
	}
	want, ok := kindMembers[d.Kind]
	if !ok {
		return Decoded{}, fmt.Errorf("ledger entry: member \"kind\": unknown kind %q (want reading, batch or energy)", d.Kind)
	}
	v, err := integer(raw, "v")
	if err != nil {
		return Decoded{}, err
	}
	if v != Version {
		return Decoded{}, fmt.Errorf("ledger entry: member \"v\": version %d, want %d", v, Version)
	}
	for name := range raw {
		if name != "kind" && name != "v" && !contains(want, name) {
			return Decoded{}, fmt.Errorf("ledger %s entry: unknown member %q", d.Kind, name)
		}
	}
	if d.Site, err = str(raw, "site"); err != nil {
		return Decoded{}, err
	}
	switch d.Kind {
	case KindReading:
		err = errors.Join(
			strTo(raw, "phase", &d.Phase), strTo(raw, "quantity", &d.Quantity), strTo(raw, "signer", &d.Signer),
			strTo(raw, "subject", &d.Subject), intTo(raw, "time", &d.Time), numTo(raw, "value", &d.Value))
		if err == nil && d.Phase == "total" {
			d.Phase = ""
		} else if err == nil && d.Phase == "" {
			// "" would re-encode as "total"; only "total" is canonical.
			err = fmt.Errorf("ledger entry: member \"phase\": empty (the total phase is \"total\")")
		}
	case KindBatch:
		var count int64
		var digest, sig string
		err = errors.Join(intTo(raw, "count", &count), strTo(raw, "digest", &digest), intTo(raw, "first", &d.First),
			strTo(raw, "signature", &sig), strTo(raw, "signer", &d.Signer), refsTo(raw, &d.Refs), omittedTo(raw, &d.Omitted))
		if err == nil {
			err = decodeBatch(&d, count, digest, sig)
		}
	case KindEnergy:
		var rev int64
		err = errors.Join(intTo(raw, "end", &d.End), strTo(raw, "quantity", &d.Quantity), intTo(raw, "rev", &rev),
			intTo(raw, "start", &d.Start), strTo(raw, "subject", &d.Subject), numTo(raw, "wh", &d.Wh))
		if err == nil {
			if rev < 0 || rev > math.MaxInt32 {
				err = fmt.Errorf("ledger entry: member \"rev\": %d out of range", rev)
			}
			d.Rev = int(rev)
		}
	}
	if err != nil {
		return Decoded{}, err
	}
	again, err := d.encode()
	if err != nil {
		return Decoded{}, fmt.Errorf("ledger %s entry: %w", d.Kind, err)
	}
	if !bytes.Equal(again, data) {
		return Decoded{}, fmt.Errorf("ledger %s entry: %w", d.Kind, ErrNotCanonical)
	}
	return d, nil
}

func decodeBatch(d *Decoded, count int64, digest, sig string) error {
	if count < 0 || count > math.MaxInt32 {
		return fmt.Errorf("ledger entry: member \"count\": %d out of range", count)
	}
	d.Count = int(count)
	if d.First < 0 {
		return fmt.Errorf("ledger entry: member \"first\": %d is negative", d.First)
	}
	dg, err := base64.StdEncoding.DecodeString(digest)
	if err != nil || len(dg) != 32 {
		return fmt.Errorf("ledger entry: member \"digest\": want 32 bytes of base64, have %q", clip(digest))
	}
	copy(d.Digest[:], dg)
	if d.Signature, err = base64.StdEncoding.DecodeString(sig); err != nil {
		return fmt.Errorf("ledger entry: member \"signature\": %q is not base64", clip(sig))
	}
	for i, r := range d.Refs {
		if r[0] < 0 || r[0] >= count || r[1] < 0 {
			return fmt.Errorf("ledger entry: member \"refs\"[%d]: %v out of range (count %d)", i, r, count)
		}
	}
	if err := checkOmitted(count, d.Refs, d.Omitted); err != nil {
		return fmt.Errorf("ledger entry: member \"omitted\": %w", err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func field(raw map[string]json.RawMessage, name string) (json.RawMessage, error) {
	v, ok := raw[name]
	if !ok {
		return nil, fmt.Errorf("ledger entry: member %q missing", name)
	}
	return v, nil
}

func str(raw map[string]json.RawMessage, name string) (string, error) {
	var s string
	err := strTo(raw, name, &s)
	return s, err
}

func strTo(raw map[string]json.RawMessage, name string, dst *string) error {
	v, err := field(raw, name)
	if err != nil {
		return err
	}
	// json.Unmarshal accepts null for a string; a member must be a string.
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, dst) != nil {
		return fmt.Errorf("ledger entry: member %q: want a string, have %s", name, clip(string(v)))
	}
	return nil
}

func integer(raw map[string]json.RawMessage, name string) (int64, error) {
	var n int64
	err := intTo(raw, name, &n)
	return n, err
}

func intTo(raw map[string]json.RawMessage, name string, dst *int64) error {
	v, err := field(raw, name)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return fmt.Errorf("ledger entry: member %q: want an integer, have %s", name, clip(string(v)))
	}
	*dst = n
	return nil
}

func numTo(raw map[string]json.RawMessage, name string, dst *float64) error {
	v, err := field(raw, name)
	if err != nil {
		return err
	}
	if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		return fmt.Errorf("ledger entry: member %q: want a number, have %s", name, clip(string(v)))
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return fmt.Errorf("ledger entry: member %q: want a finite number, have %s", name, clip(string(v)))
	}
	*dst = f
	return nil
}

func refsTo(raw map[string]json.RawMessage, dst *[][2]int64) error {
	v, err := field(raw, "refs")
	if err != nil {
		return err
	}
	var refs [][]json.Number
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	if len(v) == 0 || v[0] != '[' || d.Decode(&refs) != nil {
		return fmt.Errorf("ledger entry: member \"refs\": want an array of [position, index] pairs, have %s", clip(string(v)))
	}
	out := make([][2]int64, len(refs))
	for i, r := range refs {
		if len(r) != 2 {
			return fmt.Errorf("ledger entry: member \"refs\"[%d]: want [position, index], have %d numbers", i, len(r))
		}
		for j, n := range r {
			x, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				return fmt.Errorf("ledger entry: member \"refs\"[%d][%d]: want an integer, have %s", i, j, n)
			}
			out[i][j] = x
		}
	}
	*dst = out
	return nil
}

// omittedTo decodes the optional member "omitted": [[pos, "<base64
// SHA-256>"], ...], present only when not empty.
func omittedTo(raw map[string]json.RawMessage, dst *[]Omission) error {
	v, ok := raw["omitted"]
	if !ok {
		return nil
	}
	var list [][]json.RawMessage
	if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &list) != nil {
		return fmt.Errorf("ledger entry: member \"omitted\": want an array of [position, \"<base64 hash>\"] pairs, have %s", clip(string(v)))
	}
	if len(list) == 0 {
		return errors.New("ledger entry: member \"omitted\": empty (the member is left out when nothing was omitted)")
	}
	out := make([]Omission, len(list))
	for i, o := range list {
		if len(o) != 2 {
			return fmt.Errorf("ledger entry: member \"omitted\"[%d]: want [position, \"<base64 hash>\"], have %d elements", i, len(o))
		}
		pos, err := strconv.ParseInt(string(o[0]), 10, 64)
		if err != nil {
			return fmt.Errorf("ledger entry: member \"omitted\"[%d][0]: want an integer position, have %s", i, clip(string(o[0])))
		}
		var h string
		var hb []byte
		if len(o[1]) > 0 && o[1][0] == '"' && json.Unmarshal(o[1], &h) == nil {
			hb, err = base64.StdEncoding.DecodeString(h)
		}
		if h == "" || err != nil || len(hb) != 32 {
			return fmt.Errorf("ledger entry: member \"omitted\"[%d][1]: want 32 bytes of base64, have %s", i, clip(string(o[1])))
		}
		out[i].Pos = pos
		copy(out[i].Hash[:], hb)
	}
	*dst = out
	return nil
}

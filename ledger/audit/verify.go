package audit

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ledger"
)

// VerifyOptions configure Client.Verify.
type VerifyOptions struct {
	// LogKey is the log's public key; required (pin it, or take the one
	// Client.LogKey serves and trust the platform that far).
	LogKey note.Verifier
	// Origin is the checkpoint origin; "" means ledger.DefaultOrigin.
	Origin string
	// Witnesses must all have cosigned the checkpoint.
	Witnesses []note.Verifier
	// Signers are trusted signer keys, looked up by name before the
	// platform's list of a site's signers (which needs an admin key).
	Signers []note.Verifier
	// State is a file holding the checkpoint the previous run verified:
	// the new checkpoint must extend it (else the log was rolled back or
	// forked). It is replaced by the new checkpoint when the log checks
	// pass. "" keeps no state.
	State string
	// CompareReadings compares reading entries with the platform's stored
	// readings, and energy entries with the 15-minute energy its stored
	// readings give.
	CompareReadings bool
	// Progress, if set, is told how far each stage ("entries",
	// "readings", "energy") got.
	Progress func(stage string, done, total int64)
}

// Problem is one thing found wrong. Index is -1 for the log as a whole.
type Problem struct {
	Index             int64
	Kind, Site, Asset string
	Quantity, Phase   string
	Time              int64 // Unix ms, with HasTime
	HasTime           bool
	What              string // what is wrong
	// Logged and Stored are the two values compared, when there are two;
	// the labels say what each is ("ledger" and "platform" when "").
	Logged, Stored           string
	LoggedLabel, StoredLabel string
	hasValues                bool
}

// String renders a problem on one line: where, what, and the two values.
func (p Problem) String() string {
	var b strings.Builder
	if p.Index < 0 {
		b.WriteString("log")
	} else {
		fmt.Fprintf(&b, "entry %d", p.Index)
	}
	for _, f := range [...]struct{ k, v string }{{"kind", p.Kind}, {"site", p.Site}, {"asset", p.Asset}, {"quantity", p.Quantity}, {"phase", p.Phase}} {
		if f.v != "" {
			fmt.Fprintf(&b, " %s=%s", f.k, f.v)
		}
	}
	if p.HasTime {
		fmt.Fprintf(&b, " time=%s", cim.TimeOf(p.Time).Format("2006-01-02T15:04:05.000Z"))
	}
	b.WriteString(": ")
	b.WriteString(p.What)
	if p.hasValues {
		ll, sl := p.LoggedLabel, p.StoredLabel
		if ll == "" {
			ll = "ledger"
		}
		if sl == "" {
			sl = "platform"
		}
		fmt.Fprintf(&b, " (%s %s, %s %s)", ll, p.Logged, sl, p.Stored)
	}
	return b.String()
}

// Report is what Verify found.
type Report struct {
	Size                      int64 // entries in the verified checkpoint
	Previous                  int64 // entries in the state's checkpoint; -1 without one
	Entries                   int64 // entries fetched
	Hidden                    int64 // entries without data (not readable with the key, or erased)
	Readings, Batches, Energy int64 // visible entries of each kind
	// SignaturesChecked counts batch signatures that verified or not;
	// BatchesUnchecked those that could not be checked (a reading hidden
	// from the key, or no key for the signer).
	SignaturesChecked, BatchesUnchecked int64
	ReadingsCompared, EnergyCompared    int64
	TreeVerified                        bool
	StateSaved                          bool
	Problems                            []Problem
	// Notes say what could not be checked, and why.
	Notes []string
}

// Summary is the report's one-line summary.
func (r *Report) Summary() string {
	tree := "tree matches the checkpoint"
	if !r.TreeVerified {
		tree = "tree NOT verified"
	}
	return fmt.Sprintf("%d entries (%d readings, %d batches, %d energy, %d hidden): %s; %d signatures checked, %d batches unchecked; %d readings and %d energy records compared; %d problems",
		r.Entries, r.Readings, r.Batches, r.Energy, r.Hidden, tree, r.SignaturesChecked, r.BatchesUnchecked, r.ReadingsCompared, r.EnergyCompared, len(r.Problems))
}

// verifier is one run of Verify.
type verifier struct {
	c         *Client
	opt       VerifyOptions
	rep       *Report
	entries   []Entry
	decoded   []*ledger.Decoded                   // nil where hidden or undecodable
	signers   map[string]map[string]note.Verifier // site → name → key, fetched
	noSigners map[string]error
}

// Verify checks the platform's ledger: the checkpoint's signatures, that
// it extends the state's checkpoint, every entry's leaf hash and the tree
// they make against the checkpoint, each batch's readings against its
// signed digest and signature, and (with CompareReadings) the ledger
// against the platform's stored readings and energy. Problems go in the
// report; the error is for a run that could not be completed (network,
// a reply that does not parse).
func (c *Client) Verify(ctx context.Context, opt VerifyOptions) (*Report, error) {
	if opt.LogKey == nil {
		return nil, errors.New("verify: no log key")
	}
	if opt.Origin == "" {
		opt.Origin = ledger.DefaultOrigin
	}
	v := &verifier{c: c, opt: opt, rep: &Report{Previous: -1}, signers: map[string]map[string]note.Verifier{}, noSigners: map[string]error{}}
	err := v.run(ctx)
	slices.SortStableFunc(v.rep.Problems, func(a, b Problem) int { return cmp.Compare(a.Index, b.Index) })
	return v.rep, err
}

func (v *verifier) problem(p Problem) { v.rep.Problems = append(v.rep.Problems, p) }

func (v *verifier) progress(stage string, done, total int64) {
	if v.opt.Progress != nil {
		v.opt.Progress(stage, done, total)
	}
}

func (v *verifier) run(ctx context.Context) error {
	msg, err := v.c.Checkpoint(ctx)
	if err != nil {
		return err
	}
	cp, err := OpenCheckpoint(msg, v.opt.Origin, v.opt.LogKey, v.opt.Witnesses...)
	if err != nil {
		v.problem(Problem{Index: -1, What: "the platform's checkpoint does not verify: " + err.Error()})
		return nil
	}
	v.rep.Size = cp.Size
	logOK := true
	if v.opt.State != "" {
		ok, err := v.checkState(ctx, cp)
		if err != nil {
			return err
		}
		logOK = ok
	}
	leaves, contiguous, err := v.fetchEntries(ctx, cp.Size)
	if err != nil {
		return err
	}
	treeOK := false
	if contiguous {
		treeOK, err = v.checkTree(ctx, cp, leaves)
		if err != nil {
			return err
		}
	}
	v.rep.TreeVerified = treeOK
	v.decode()
	if err := v.checkBatches(ctx); err != nil {
		return err
	}
	if v.opt.CompareReadings {
		if err := v.compareReadings(ctx); err != nil {
			return err
		}
		if err := v.compareEnergy(ctx); err != nil {
			return err
		}
	}
	if v.opt.State != "" && logOK && treeOK {
		if err := WriteState(v.opt.State, cp.Note); err != nil {
			return err
		}
		v.rep.StateSaved = true
	}
	return nil
}

// checkState compares the checkpoint with the one the last run verified.
func (v *verifier) checkState(ctx context.Context, cp Checkpoint) (bool, error) {
	prev, found, err := ReadState(v.opt.State, v.opt.Origin, v.opt.LogKey)
	if err != nil || !found {
		return true, err
	}
	v.rep.Previous = prev.Size
	p := Problem{Index: -1, hasValues: true, LoggedLabel: "verified before", StoredLabel: "now",
		Logged: fmt.Sprintf("size %d root %s", prev.Size, prev.Root), Stored: fmt.Sprintf("size %d root %s", cp.Size, cp.Root)}
	switch {
	case cp.Size < prev.Size:
		p.What = fmt.Sprintf("log rolled back: the checkpoint has %d entries, fewer than the %d verified before (state file %s)", cp.Size, prev.Size, v.opt.State)
	case cp.Size == prev.Size && cp.Root != prev.Root:
		p.What = fmt.Sprintf("log forked: the checkpoint of %d entries has another root than the one verified before (state file %s)", cp.Size, v.opt.State)
	case cp.Size > prev.Size:
		proof, err := v.c.Consistency(ctx, prev.Size, cp.Size)
		if err != nil {
			return false, err
		}
		if err := ledger.VerifyConsistency(proof, prev.Size, prev.Root, cp.Size, cp.Root); err != nil {
			p.What = fmt.Sprintf("log forked or rewritten: the checkpoint of %d entries does not extend the %d verified before (state file %s): %v", cp.Size, prev.Size, v.opt.State, err)
			break
		}
		return true, nil
	default:
		return true, nil
	}
	v.problem(p)
	return false, nil
}

// fetchEntries pages through the entries, checking their indexes and
// their data against their leaf hashes. It returns the leaf hashes the
// tree is rebuilt from (from the data where visible), and whether they
// are the entries from 0 on without a gap (perhaps fewer than the
// checkpoint holds).
func (v *verifier) fetchEntries(ctx context.Context, size int64) ([]tlog.Hash, bool, error) {
	leaves := make([]tlog.Hash, 0, size)
	v.entries = make([]Entry, 0, size)
	contiguous := true
	next := int64(0)
	for from := int64(0); from < size; from += MaxPage {
		to := min(from+MaxPage, size)
		page, err := v.c.Entries(ctx, from, to)
		if err != nil {
			return nil, false, err
		}
		for _, e := range page {
			switch {
			case e.Index < next || e.Index >= to:
				v.problem(Problem{Index: e.Index, Kind: e.Kind, Site: e.Site, What: fmt.Sprintf("served out of order or twice (asked for %d to %d, expected %d next)", from, to, next)})
				contiguous = false
				continue
			case e.Index > next:
				v.problem(Problem{Index: next, What: fmt.Sprintf("missing: the platform served entries %d then %d; %d entries are gone", next-1, e.Index, e.Index-next)})
				contiguous = false
			}
			next = e.Index + 1
			leaf := e.LeafHash
			if e.Data != nil {
				if h := tlog.RecordHash(e.Data); h != e.LeafHash {
					p := v.where(e)
					p.What, p.hasValues = "the entry's data does not hash to its leaf hash (the entry was changed)", true
					p.LoggedLabel, p.Logged, p.StoredLabel, p.Stored = "leaf hash", e.LeafHash.String(), "hash of the data", h.String()
					v.problem(p)
					leaf = h
				}
			} else {
				v.rep.Hidden++
			}
			leaves = append(leaves, leaf)
			v.entries = append(v.entries, e)
		}
		if next < to {
			v.problem(Problem{Index: next, What: fmt.Sprintf("missing: the platform served entries only up to %d of the %d the checkpoint holds", next, size)})
			if to < size {
				contiguous = false // a gap follows
			}
			next = to
		}
		v.rep.Entries = int64(len(v.entries))
		v.progress("entries", to, size)
	}
	return leaves, contiguous, nil
}

// where names an entry by what its readable record and data say.
func (v *verifier) where(e Entry) Problem {
	p := Problem{Index: e.Index, Kind: e.Kind, Site: e.Site}
	if r := e.Readable; r != nil {
		p.Asset, p.Quantity, p.Phase, p.Time, p.HasTime = r.Asset, r.Quantity, phaseText(r.Phase), r.Time, true
	}
	return p
}

// checkTree rebuilds the tree from the leaves and compares its root with
// the checkpoint's. On a difference it finds the first entry that
// differs, with consistency proofs from each prefix to the checkpoint.
// With fewer leaves than the checkpoint holds (reported already), it
// only looks for a difference among them.
func (v *verifier) checkTree(ctx context.Context, cp Checkpoint, leaves []tlog.Hash) (bool, error) {
	stored := make([]tlog.Hash, 0, 2*len(leaves))
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d of %d", x, len(stored))
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), h, reader)
		if err != nil {
			return false, fmt.Errorf("rebuild tree: %w", err)
		}
		stored = append(stored, hs...)
	}
	n := int64(len(leaves))
	root, err := tlog.TreeHash(n, reader)
	if err != nil {
		return false, fmt.Errorf("rebuild tree: %w", err)
	}
	// consistent reports whether the first m leaves are a prefix of the
	// checkpoint's tree.
	consistent := func(m int64) (bool, error) {
		if m == cp.Size {
			return root == cp.Root, nil
		}
		mr, err := tlog.TreeHash(m, reader)
		if err != nil {
			return false, fmt.Errorf("rebuild tree: %w", err)
		}
		proof, err := v.c.Consistency(ctx, m, cp.Size)
		if err != nil {
			return false, err
		}
		return ledger.VerifyConsistency(proof, m, mr, cp.Size, cp.Root) == nil, nil
	}
	ok, err := consistent(n)
	if err := v.unprovable(err, cp.Size); err != nil || ok {
		return ok && n == cp.Size, err
	}
	// Prefixes up to the first changed entry are consistent with the
	// checkpoint's tree, longer ones are not: bisect.
	lo, hi := int64(0), n // consistent(lo) holds, consistent(hi) does not
	for hi-lo > 1 {
		m := lo + (hi-lo)/2
		ok, err := consistent(m)
		if err != nil {
			return false, v.unprovable(err, cp.Size)
		}
		if ok {
			lo = m
		} else {
			hi = m
		}
	}
	p := Problem{Index: -1}
	if lo < int64(len(v.entries)) {
		p = v.where(v.entries[lo])
	}
	p.What = fmt.Sprintf("the tree the checkpoint signs holds another entry here: entries from %d on differ from the log (an entry changed, deleted, inserted or moved)", lo)
	p.hasValues, p.LoggedLabel, p.Logged, p.StoredLabel, p.Stored = true, "checkpoint root", cp.Root.String(), "root of the entries served", root.String()
	v.problem(p)
	return false, nil
}

// unprovable turns the platform's refusal to prove its own checkpoint's
// tree into a problem; other errors stay errors.
func (v *verifier) unprovable(err error, size int64) error {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		v.problem(Problem{Index: -1, What: fmt.Sprintf("the platform cannot prove the tree of its own checkpoint of %d entries: %v", size, err)})
		return nil
	}
	return err
}

// decode decodes every visible entry and checks its readable record
// against it.
func (v *verifier) decode() {
	v.decoded = make([]*ledger.Decoded, len(v.entries))
	for i, e := range v.entries {
		if e.Data == nil {
			continue
		}
		d, err := ledger.Entry{Index: e.Index, Kind: e.Kind, Site: e.Site, Data: e.Data}.Decode()
		if err != nil {
			p := v.where(e)
			p.What = "the entry does not decode: " + err.Error()
			v.problem(p)
			continue
		}
		v.decoded[i] = &d
		switch d.Kind {
		case ledger.KindReading:
			v.rep.Readings++
		case ledger.KindBatch:
			v.rep.Batches++
		case ledger.KindEnergy:
			v.rep.Energy++
		}
		r := e.Readable
		if d.Kind == ledger.KindBatch || r == nil {
			continue
		}
		logged, stored := "", ""
		switch d.Kind {
		case ledger.KindReading:
			if r.Quantity != d.Quantity || r.Phase != d.Phase || r.Time != d.Time || r.Value != d.Value {
				logged = fmt.Sprintf("%s %s %s %s", d.Quantity, phaseText(d.Phase), fmtTime(d.Time), fmtValue(d.Value))
				stored = fmt.Sprintf("%s %s %s %s", r.Quantity, phaseText(r.Phase), fmtTime(r.Time), fmtValue(r.Value))
			}
		case ledger.KindEnergy:
			if r.Quantity != d.Quantity || r.Time != d.Start || r.Value != d.Wh {
				logged = fmt.Sprintf("%s %s %s", d.Quantity, fmtTime(d.Start), fmtValue(d.Wh))
				stored = fmt.Sprintf("%s %s %s", r.Quantity, fmtTime(r.Time), fmtValue(r.Value))
			}
		}
		if logged != "" {
			p := v.where(e)
			p.What, p.hasValues, p.Logged, p.StoredLabel, p.Stored = "the store's readable record differs from the logged entry", true, logged, "readable record", stored
			v.problem(p)
		}
	}
}

// entryAt returns the fetched entry of an index, if it came.
func (v *verifier) entryAt(idx int64) (int, bool) {
	if idx >= 0 && idx < int64(len(v.entries)) && v.entries[idx].Index == idx {
		return int(idx), true
	}
	i, ok := slices.BinarySearchFunc(v.entries, idx, func(e Entry, t int64) int { return cmpInt(e.Index, t) })
	return i, ok
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkBatches rebuilds each batch's readings (the reading entries right
// before it and its refs), compares their digest with the signed one and
// checks the signature; and reports reading entries no batch signed.
func (v *verifier) checkBatches(ctx context.Context) error {
	covered := make([]bool, len(v.entries))
	for bi, d := range v.decoded {
		if d == nil || d.Kind != ledger.KindBatch {
			continue
		}
		be := v.entries[bi]
		for idx := d.First; idx < be.Index; idx++ {
			if i, ok := v.entryAt(idx); ok {
				covered[i] = true
			}
		}
		p := Problem{Index: be.Index, Kind: be.Kind, Site: be.Site}
		readings, why := v.batchReadings(be.Index, d)
		if why != "" && readings == nil {
			p.What = "batch of signer " + d.Signer + ": " + why
			v.problem(p)
			continue
		}
		if why != "" {
			v.rep.BatchesUnchecked++
			v.note(fmt.Sprintf("batch entry %d (signer %s): not checked: %s", be.Index, d.Signer, why))
			continue
		}
		// The readings the platform refused count by the hash the signer
		// signed, at their positions.
		dg := ledger.NewBatchDigest()
		om := d.Omitted
		for _, r := range readings {
			for len(om) > 0 && om[0].Pos == int64(dg.Count()) {
				dg.AddHash(om[0].Hash)
				om = om[1:]
			}
			if err := dg.Add(r); err != nil {
				p.What = fmt.Sprintf("batch of signer %s: a reading does not encode: %v", d.Signer, err)
				v.problem(p)
				continue
			}
		}
		for _, o := range om {
			dg.AddHash(o.Hash)
		}
		if sum := dg.Sum(); sum != d.Digest || dg.Count() != d.Count {
			p.What = fmt.Sprintf("batch of signer %s: the readings at entries %d to %d%s%s do not match the digest the batch signed (a reading changed, deleted or moved)",
				d.Signer, d.First, be.Index-1, refsText(d.Refs), omittedText(d.Omitted))
			p.hasValues, p.LoggedLabel, p.Logged, p.StoredLabel, p.Stored = true, "signed digest", b64(d.Digest[:]), "digest of the logged readings", b64(sum[:])
			v.problem(p)
		}
		key, err := v.signerKey(ctx, be.Site, d.Signer)
		if err != nil {
			return err
		}
		if key == nil {
			if err := v.noSigners[be.Site]; err != nil {
				v.rep.BatchesUnchecked++
				v.note(fmt.Sprintf("batch entry %d (signer %s): signature not checked: no key for the signer (%v)", be.Index, d.Signer, err))
				continue
			}
			p.What = fmt.Sprintf("batch signed by %s, which is not a registered signer of site %s", d.Signer, be.Site)
			v.problem(p)
			continue
		}
		v.rep.SignaturesChecked++
		if err := ledger.VerifyBatch(key, d.Site, d.Count, d.Digest, d.Signature); err != nil {
			p.What = fmt.Sprintf("batch signature forged or altered: it does not verify with the key of signer %s over %d readings", d.Signer, d.Count)
			v.problem(p)
		}
	}
	for i, d := range v.decoded {
		if d != nil && d.Kind == ledger.KindReading && !covered[i] {
			p := v.where(v.entries[i])
			p.What = "reading entry that no signed batch covers (inserted, or its batch entry is gone)"
			v.problem(p)
		}
	}
	return nil
}

// batchReadings returns a batch's readings in signed order. why says why
// not: with nil readings a problem of the log, else only a limit of what
// the key may see.
func (v *verifier) batchReadings(index int64, d *ledger.Decoded) ([]ledger.Reading, string) {
	if d.First > index {
		return nil, fmt.Sprintf("first %d is after the batch entry", d.First)
	}
	if n := index - d.First + int64(len(d.Refs)) + int64(len(d.Omitted)); n != int64(d.Count) {
		omitted := ""
		if len(d.Omitted) > 0 {
			omitted = fmt.Sprintf(" and %d omitted", len(d.Omitted))
		}
		return nil, fmt.Sprintf("count %d, but %d new readings (entries %d to %d) and %d earlier ones%s", d.Count, index-d.First, d.First, index-1, len(d.Refs), omitted)
	}
	refs := make(map[int64]int64, len(d.Refs))
	for _, r := range d.Refs {
		if r[1] >= index {
			return nil, fmt.Sprintf("ref %v points at or after the batch", r)
		}
		refs[r[0]] = r[1]
	}
	omitted := make(map[int64]bool, len(d.Omitted))
	for _, o := range d.Omitted {
		omitted[o.Pos] = true
	}
	out := make([]ledger.Reading, 0, d.Count)
	next := d.First
	hidden := ""
	for pos := int64(0); pos < int64(d.Count); pos++ {
		if omitted[pos] {
			continue // refused by the platform: only its hash is logged
		}
		idx, isRef := refs[pos]
		if !isRef {
			idx = next
			next++
		}
		i, ok := v.entryAt(idx)
		if !ok {
			return nil, fmt.Sprintf("reading entry %d is missing", idx)
		}
		rd := v.decoded[i]
		e := v.entries[i]
		if rd == nil || e.Readable == nil {
			if e.Data != nil && rd == nil {
				return nil, fmt.Sprintf("reading entry %d does not decode", idx)
			}
			hidden = fmt.Sprintf("reading entry %d is hidden from this key or erased", idx)
			continue
		}
		if rd.Kind != ledger.KindReading {
			return nil, fmt.Sprintf("entry %d at position %d is a %s, not a reading", idx, pos, rd.Kind)
		}
		out = append(out, rd.Reading(e.Readable.Asset))
	}
	if hidden != "" {
		return out, hidden
	}
	return out, ""
}

// signerKey returns the key of a signer of a site: a trusted one, the log
// key, or one the platform lists. nil when there is none.
func (v *verifier) signerKey(ctx context.Context, site, name string) (note.Verifier, error) {
	for _, k := range v.opt.Signers {
		if k.Name() == name {
			return k, nil
		}
	}
	if name == v.opt.LogKey.Name() {
		return v.opt.LogKey, nil
	}
	keys, ok := v.signers[site]
	if !ok {
		keys = map[string]note.Verifier{}
		list, err := v.c.Signers(ctx, site)
		var ae *APIError
		switch {
		case errors.As(err, &ae) && (ae.Status == http.StatusForbidden || ae.Status == http.StatusUnauthorized):
			v.noSigners[site] = fmt.Errorf("the key may not list the signers of site %s; pass --signer", site)
		case err != nil:
			return nil, err
		}
		for _, s := range list {
			k, err := note.NewVerifier(s.PublicKey)
			if err != nil || k.Name() != s.ID {
				v.problem(Problem{Index: -1, Site: site, What: fmt.Sprintf("signer %q of the site has a malformed public key %q", s.ID, clip(s.PublicKey))})
				continue
			}
			keys[s.ID] = k
		}
		v.signers[site] = keys
	}
	return keys[name], nil
}

func (v *verifier) note(s string) {
	const maxNotes = 20
	if len(v.rep.Notes) < maxNotes {
		v.rep.Notes = append(v.rep.Notes, s)
	} else if len(v.rep.Notes) == maxNotes {
		v.rep.Notes = append(v.rep.Notes, "… more not shown")
	}
}

// seriesID names one series of a site.
type seriesID struct{ site, asset, quantity, phase string }

// compareReadings compares each reading's newest logged value with the
// platform's stored reading.
func (v *verifier) compareReadings(ctx context.Context) error {
	latest := map[seriesID]map[int64]int{} // series → time → index into entries
	var order []seriesID
	for i, d := range v.decoded {
		if d == nil || d.Kind != ledger.KindReading || v.entries[i].Readable == nil {
			continue
		}
		id := seriesID{d.Site, v.entries[i].Readable.Asset, d.Quantity, d.Phase}
		byTime, ok := latest[id]
		if !ok {
			byTime = map[int64]int{}
			latest[id] = byTime
			order = append(order, id)
		}
		byTime[d.Time] = i // entries come in index order: the last one wins
	}
	for n, id := range order {
		byTime := latest[id]
		from, to := int64(math.MaxInt64), int64(math.MinInt64)
		for t := range byTime {
			from, to = min(from, t), max(to, t)
		}
		pts, err := v.c.Series(ctx, SeriesQuery{Site: id.site, Asset: id.asset, Quantity: id.quantity, Phase: id.phase, From: from, To: to + 1})
		if err != nil {
			return err
		}
		stored := make(map[int64]Point, len(pts))
		for _, p := range pts {
			stored[p.Time] = p
		}
		for t, i := range byTime {
			d := v.decoded[i]
			v.rep.ReadingsCompared++
			sp, ok := stored[t]
			switch {
			case !ok:
				v.valueProblem(i, "the platform has no stored reading for this logged one", fmtValue(d.Value), "none")
			case sp.Null || sp.Value != d.Value:
				v.valueProblem(i, "the stored reading differs from the logged one", fmtValue(d.Value), pointText(sp))
			}
		}
		v.progress("readings", int64(n+1), int64(len(order)))
	}
	return nil
}

func (v *verifier) valueProblem(i int, what, logged, stored string) {
	e, d := v.entries[i], v.decoded[i]
	p := v.where(e)
	p.Quantity = d.Quantity
	if d.Kind == ledger.KindReading {
		p.Phase, p.Time = phaseText(d.Phase), d.Time
	} else {
		p.Phase, p.Time = "", d.Start
	}
	p.HasTime = true
	p.What, p.hasValues, p.Logged, p.Stored = what, true, logged, stored
	v.problem(p)
}

// energyStep is the energy interval.
const energyStep = 15 * time.Minute

// compareEnergy recomputes each energy entry's interval (its newest rev)
// from the platform's stored readings.
func (v *verifier) compareEnergy(ctx context.Context) error {
	latest := map[seriesID]map[int64]int{} // series → interval start → index into entries
	var order []seriesID
	for i, d := range v.decoded {
		if d == nil || d.Kind != ledger.KindEnergy || v.entries[i].Readable == nil {
			continue
		}
		if d.End != d.Start+energyStep.Milliseconds() || d.Start%energyStep.Milliseconds() != 0 {
			v.valueProblem(i, "the energy interval is not a UTC quarter hour", fmt.Sprintf("%s to %s", fmtTime(d.Start), fmtTime(d.End)), "15 minutes")
			continue
		}
		id := seriesID{d.Site, v.entries[i].Readable.Asset, d.Quantity, ""}
		byStart, ok := latest[id]
		if !ok {
			byStart = map[int64]int{}
			latest[id] = byStart
			order = append(order, id)
		}
		if j, ok := byStart[d.Start]; !ok || v.decoded[j].Rev <= d.Rev {
			byStart[d.Start] = i
		}
	}
	for n, id := range order {
		byStart := latest[id]
		from, to := int64(math.MaxInt64), int64(math.MinInt64)
		for t := range byStart {
			from, to = min(from, t), max(to, t+energyStep.Milliseconds())
		}
		pts, err := v.c.Series(ctx, SeriesQuery{Site: id.site, Asset: id.asset, Quantity: id.quantity, From: from, To: to, Step: "15m", Agg: "delta"})
		if err != nil {
			return err
		}
		stored := make(map[int64]Point, len(pts))
		for _, p := range pts {
			stored[p.Time] = p
		}
		for start, i := range byStart {
			d := v.decoded[i]
			v.rep.EnergyCompared++
			sp, ok := stored[start]
			switch {
			case !ok:
				v.valueProblem(i, fmt.Sprintf("energy rev %d: the stored readings give no energy for this interval", d.Rev), fmtValue(d.Wh), "none")
			case sp.Null || !sameEnergy(sp.Value, d.Wh):
				v.valueProblem(i, fmt.Sprintf("energy rev %d: the stored readings give another energy for this interval", d.Rev), fmtValue(d.Wh), pointText(sp))
			}
		}
		v.progress("energy", int64(n+1), int64(len(order)))
	}
	return nil
}

// sameEnergy compares energies: both come from the same register values,
// so only floating-point noise may separate them.
func sameEnergy(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*max(1, math.Abs(a), math.Abs(b))
}

func pointText(p Point) string {
	if p.Null {
		return "null"
	}
	return fmtValue(p.Value)
}

func fmtValue(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func fmtTime(ms int64) string { return cim.TimeOf(ms).Format("2006-01-02T15:04:05.000Z") }

func phaseText(p string) string {
	if p == "" {
		return "total"
	}
	return p
}

func refsText(refs [][2]int64) string {
	if len(refs) == 0 {
		return ""
	}
	idx := make([]string, 0, len(refs))
	for _, r := range refs {
		idx = append(idx, strconv.FormatInt(r[1], 10))
	}
	return " and earlier entries " + strings.Join(idx, ", ")
}

func omittedText(om []ledger.Omission) string {
	if len(om) == 0 {
		return ""
	}
	pos := make([]string, 0, len(om))
	for _, o := range om {
		pos = append(pos, strconv.FormatInt(o.Pos, 10))
	}
	return " with the refused readings at positions " + strings.Join(pos, ", ")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

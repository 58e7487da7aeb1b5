package ledger

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
)

// watermarks spares AppendBatch a store look-up (tx.LastEntry) for the
// common reading: one newer than every logged reading of its series. It
// holds, for each series, the latest time of its reading entries among
// the log's first upto entries. A reading of time above its series' mark
// (or of a series without one) cannot be logged yet; any other goes to
// LastEntry as before. A mark may only be too high (costing a look-up),
// never too low: it is raised before a commit and entries appended by
// others are scanned before the next one.
type watermarks struct {
	hi   map[seriesKey]int64
	upto int64 // entries [0, upto) are reflected in hi
}

type seriesKey struct{ site, asset, quantity, phase string }

// scanPage is how many entries one LedgerEntries call of a scan reads.
const scanPage = 10_000

func newWatermarks() *watermarks { return &watermarks{hi: make(map[seriesKey]int64)} }

// scan reflects the committed entries [upto, to).
func (w *watermarks) scan(ctx context.Context, st store.Ledger, to int64) error {
	for w.upto < to {
		end := min(w.upto+scanPage, to)
		es, err := st.LedgerEntries(ctx, w.upto, end)
		if err != nil {
			return fmt.Errorf("scan ledger entries: %w", err)
		}
		if int64(len(es)) != end-w.upto {
			return fmt.Errorf("scan ledger entries [%d, %d): got %d", w.upto, end, len(es))
		}
		for i := range es {
			if e := &es[i]; e.Kind == KindReading && e.Asset != "" {
				w.raise(seriesKey{e.Site, e.Asset, e.Quantity, e.Phase}, e.Time)
			}
		}
		w.upto = end
	}
	return nil
}

func (w *watermarks) raise(k seriesKey, t int64) {
	if h, ok := w.hi[k]; !ok || t > h {
		w.hi[k] = t
	}
}

// isNew reports whether a reading of series k at time t is certainly not
// logged yet.
func (w *watermarks) isNew(k seriesKey, t int64) bool {
	h, ok := w.hi[k]
	return !ok || t > h
}

// scanWatermarks builds the marks of the log as it is at start, in the
// background, and hands them to the writer: from the marks a Log saved
// when it closed (see loadMarks) and a scan of the entries after them, or
// from a scan of the whole log.
func (l *Log) scanWatermarks() {
	defer close(l.scanDone)
	start := time.Now()
	w := l.loadMarks(l.ctx)
	from := w.upto
	size, err := l.st.LedgerSize(l.ctx)
	if err == nil {
		err = w.scan(l.ctx, l.st, size)
	}
	if err != nil {
		if l.ctx.Err() == nil {
			l.log.Warn("ledger: reading marks not built; every reading is looked up", "err", err)
		}
		return
	}
	l.log.Info("ledger: reading marks ready", "series", len(w.hi), "entries", size,
		"saved", from, "scanned", size-from, "took", time.Since(start).Round(time.Millisecond))
	l.wmReady <- w // buffered: never blocks
}

// loadMarks returns the marks saved by the Log that closed last, checked
// against the log, or empty marks (a full scan) when there are none or
// they do not fit. Saved marks are exact for the entries [0, upto) of the
// log they were made from, so reading them and scanning the rest gives
// what a scan of the whole log gives, provided that
//   - the log is still that log: the tree hash of its first upto entries
//     is the one saved (a log restored from a backup, shorter or grown
//     again since, is not);
//   - erasures since are applied: a scan skips erased entries (their
//     Asset is ""), so the marks of every erased asset are dropped (its
//     readings are refused from then on, so no mark of it is ever used).
func (l *Log) loadMarks(ctx context.Context) *watermarks {
	fresh := newWatermarks()
	// The marks before the size: the size only grows, so a snapshot
	// saved meanwhile by another node cannot seem longer than the log.
	upto, data, found, err := l.st.LedgerMarks(ctx)
	if err != nil {
		l.warnMarks(ctx, "ledger: saved reading marks not read; scanning the whole log", err)
		return fresh
	}
	if !found {
		return fresh
	}
	size, err := l.st.LedgerSize(ctx)
	if err != nil {
		l.warnMarks(ctx, "ledger: saved reading marks not checked; scanning the whole log", err)
		return fresh
	}
	if upto > size {
		l.log.Warn("ledger: saved reading marks are of a longer log (restored from an older backup?); scanning the whole log",
			"marks_upto", upto, "entries", size)
		return fresh
	}
	w, root, err := decodeMarks(data, upto)
	if err != nil {
		l.log.Warn("ledger: saved reading marks unreadable; scanning the whole log", "err", err)
		return fresh
	}
	got, err := tlog.TreeHash(upto, l.committedHashes(ctx))
	if err != nil {
		l.warnMarks(ctx, "ledger: saved reading marks not checked; scanning the whole log", err)
		return fresh
	}
	if got != root {
		l.log.Warn("ledger: saved reading marks are of another log (restored from a backup?); scanning the whole log",
			"marks_upto", upto, "entries", size)
		return fresh
	}
	if err := l.dropErased(ctx, w); err != nil {
		l.warnMarks(ctx, "ledger: saved reading marks not checked for erasures; scanning the whole log", err)
		return fresh
	}
	return w
}

func (l *Log) warnMarks(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		l.log.Warn(msg, "err", err)
	}
}

// dropErased drops the marks of the assets erased from the ledger: one
// SubjectKey look-up per asset, which never makes a key.
func (l *Log) dropErased(ctx context.Context, w *watermarks) error {
	type asset struct{ site, asset string }
	erased := make(map[asset]bool)
	for k := range w.hi {
		a := asset{k.site, k.asset}
		if _, seen := erased[a]; seen {
			continue
		}
		// newKey returns no key, so none is made: an asset without a key
		// at all is not erased (a scan keeps what it finds).
		unknown := false
		_, err := l.st.SubjectKey(ctx, a.site, a.asset, func() []byte { unknown = true; return nil })
		if err != nil && !unknown && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		erased[a] = errors.Is(err, store.ErrNotFound)
	}
	for k := range w.hi {
		if erased[asset{k.site, k.asset}] {
			delete(w.hi, k)
		}
	}
	return nil
}

// saveMarks saves the writer's marks for the next start. The writer has
// stopped. Without marks (the scan had not ended, or they were dropped)
// the snapshot saved before stays: it is still right for its entries.
func (l *Log) saveMarks(ctx context.Context) error {
	w := l.wm
	if w == nil {
		select {
		case w = <-l.wmReady:
		default:
			return nil
		}
	}
	root, err := tlog.TreeHash(w.upto, l.committedHashes(ctx))
	if err != nil {
		return fmt.Errorf("save reading marks: tree hash of size %d: %w", w.upto, err)
	}
	data := encodeMarks(w, root)
	if err := l.st.PutLedgerMarks(ctx, w.upto, data); err != nil {
		return fmt.Errorf("save reading marks: %w", err)
	}
	l.log.Debug("ledger: reading marks saved", "series", len(w.hi), "upto", w.upto, "bytes", len(data))
	return nil
}

// marksMagic begins the encoding of saved marks; its last byte is the
// format's version.
const marksMagic = "GLMK\x01"

// encodeMarks encodes the marks w of the log's first w.upto entries,
// whose tree hash is root:
//
//	magic "GLMK" 0x01, uvarint upto, root (32 bytes),
//	uvarint n, n strings ascending, each uvarint length + bytes,
//	uvarint m, m marks by ascending key, each
//	  uvarint site, asset, quantity, phase (indexes of the strings)
//	  and varint time.
//
// Keys repeat few strings (sites, assets, quantities, phases), hence the
// table: a mark takes about 10 bytes.
func encodeMarks(w *watermarks, root tlog.Hash) []byte {
	keys := slices.SortedFunc(maps.Keys(w.hi), compareKeys)
	strs := make(map[string]uint64)
	for _, k := range keys {
		for _, s := range [...]string{k.site, k.asset, k.quantity, k.phase} {
			strs[s] = 0
		}
	}
	table := slices.Sorted(maps.Keys(strs))
	size := len(marksMagic) + 2*binary.MaxVarintLen64 + len(root) + 10*len(keys)
	for i, s := range table {
		strs[s] = uint64(i)
		size += len(s) + 2
	}
	b := make([]byte, 0, size)
	b = append(b, marksMagic...)
	b = binary.AppendUvarint(b, uint64(w.upto))
	b = append(b, root[:]...)
	b = binary.AppendUvarint(b, uint64(len(table)))
	for _, s := range table {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, strs[k.site])
		b = binary.AppendUvarint(b, strs[k.asset])
		b = binary.AppendUvarint(b, strs[k.quantity])
		b = binary.AppendUvarint(b, strs[k.phase])
		b = binary.AppendVarint(b, w.hi[k])
	}
	return b
}

func compareKeys(a, b seriesKey) int {
	return cmp.Or(strings.Compare(a.site, b.site), strings.Compare(a.asset, b.asset),
		strings.Compare(a.quantity, b.quantity), strings.Compare(a.phase, b.phase))
}

// decodeMarks decodes what encodeMarks made, strictly: the store's upto
// must be the encoded one, varints minimal, strings and keys strictly
// ascending (so each once), every asset non-empty (a scan marks no erased
// entry), nothing after the last mark. So what it accepts, encodeMarks
// gives back byte for byte.
func decodeMarks(data []byte, upto int64) (*watermarks, tlog.Hash, error) {
	var root tlog.Hash
	d := marksDecoder{b: data}
	switch {
	case !bytes.HasPrefix(data, []byte(marksMagic[:4])):
		return nil, root, errors.New("reading marks: not saved marks (no GLMK header)")
	case len(data) < len(marksMagic):
		return nil, root, errors.New("reading marks: truncated header")
	case data[4] != marksMagic[4]:
		return nil, root, fmt.Errorf("reading marks: format version %d, this gridlink reads %d", data[4], marksMagic[4])
	}
	d.off = len(marksMagic)
	u := d.uvarint("upto")
	if d.err == nil && (u > math.MaxInt64 || int64(u) != upto) {
		d.fail("upto %d, the store says %d", u, upto)
	}
	copy(root[:], d.bytes("tree hash", len(root)))
	n := d.count("strings", 1)
	table := make([]string, 0, n)
	for i := range n {
		l := d.uvarint("string length")
		if d.err == nil && l > uint64(len(d.b)-d.off) {
			d.fail("string %d of %d bytes: only %d left", i, l, len(d.b)-d.off)
		}
		s := string(d.bytes("string", int(l)))
		if d.err != nil {
			break
		}
		if i > 0 && s <= table[i-1] {
			d.fail("string %d %q does not follow %q", i, s, table[i-1])
		}
		table = append(table, s)
	}
	m := d.count("marks", 5)
	w := &watermarks{hi: make(map[seriesKey]int64, m), upto: upto}
	var prev seriesKey
	str := func(what string) string {
		x := d.uvarint(what)
		if d.err == nil && x >= uint64(len(table)) {
			d.fail("%s: string %d of %d", what, x, len(table))
		}
		if d.err != nil {
			return ""
		}
		return table[x]
	}
	for i := range m {
		k := seriesKey{str("site"), str("asset"), str("quantity"), str("phase")}
		t := d.varint("time")
		if d.err != nil {
			break
		}
		if k.asset == "" {
			d.fail("mark %d has no asset", i)
			break
		}
		if i > 0 && compareKeys(prev, k) >= 0 {
			d.fail("mark %d (%q %q %q %q) does not follow the one before", i, k.site, k.asset, k.quantity, k.phase)
			break
		}
		w.hi[k], prev = t, k
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d bytes after the last mark", len(d.b)-d.off)
	}
	if d.err != nil {
		return nil, root, d.err
	}
	return w, root, nil
}

// marksDecoder reads saved marks, keeping the first error.
type marksDecoder struct {
	b       []byte
	off     int
	err     error
	scratch [binary.MaxVarintLen64]byte // to check that varints are minimal
}

func (d *marksDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("reading marks: at byte %d: %s", d.off, fmt.Sprintf(format, args...))
	}
}

func (d *marksDecoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 || n != len(binary.AppendUvarint(d.scratch[:0], v)) {
		d.fail("%s: bad, truncated or padded varint", what)
		return 0
	}
	d.off += n
	return v
}

func (d *marksDecoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 || n != len(binary.AppendVarint(d.scratch[:0], v)) {
		d.fail("%s: bad, truncated or padded varint", what)
		return 0
	}
	d.off += n
	return v
}

func (d *marksDecoder) bytes(what string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail("%s: %d bytes, only %d left", what, n, len(d.b)-d.off)
		return nil
	}
	d.off += n
	return d.b[d.off-n : d.off]
}

// count reads a count of items of at least least bytes each, bounded by
// the bytes left, so that a bad count cannot make a huge allocation.
func (d *marksDecoder) count(what string, least int) int {
	c := d.uvarint(what)
	if d.err == nil && c > uint64((len(d.b)-d.off)/least) {
		d.fail("%d %s in %d bytes", c, what, len(d.b)-d.off)
	}
	if d.err != nil {
		return 0
	}
	return int(c)
}

// catchUp brings the writer's marks up to the committed log before a
// commit. It returns the marks to use, nil if there are none (yet).
func (l *Log) catchUp() *watermarks {
	if l.wm == nil {
		select {
		case w := <-l.wmReady:
			l.wm = w
		default:
			return nil
		}
	}
	size, err := l.st.LedgerSize(l.ctx)
	switch {
	case err != nil:
	case size < l.wm.upto:
		err = fmt.Errorf("the log shrank from %d to %d entries", l.wm.upto, size)
	default:
		err = l.wm.scan(l.ctx, l.st, size)
	}
	if err != nil {
		l.log.Warn("ledger: reading marks dropped; every reading is looked up", "err", err)
		l.wm = nil
	}
	return l.wm
}

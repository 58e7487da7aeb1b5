package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// Config configures a Log.
type Config struct {
	Origin          string          // checkpoint origin line, default DefaultOrigin
	Key             note.Signer     // the log key (Ed25519 signed-note key): signs checkpoints
	Witnesses       []note.Verifier // witnesses whose cosignatures Cosign accepts
	CheckpointEvery time.Duration   // a new checkpoint at most this often when the tree grew (default 5 s)
	Grace           time.Duration   // energy sealing grace (default 2 min)
	Logger          *slog.Logger    // nil: discard
}

// AppendResult says where AppendBatch put a batch: the new reading entries
// at [First, Batch) and the batch entry at Batch. Reused counts readings
// that were already logged with the same value (the batch entry refers to
// them). A batch whose readings were all logged before is not logged
// again: then First and Batch are -1 and Appended is 0.
type AppendResult struct {
	First, Batch     int64
	Appended, Reused int
}

// ErrClosed is returned by AppendBatch once the Log is closed.
var ErrClosed = errors.New("ledger log closed")

// ErrErased is returned (wrapped) for a reading of an asset whose
// pseudonym key was erased: its readings no longer enter the ledger.
var ErrErased = errors.New("asset erased from the ledger")

// Group commit bounds: one UpdateLedger takes at most this many AppendBatch
// calls and readings, so one transaction stays short.
const (
	maxGroupCalls    = 64
	maxGroupReadings = 32768
)

// subjectTTL bounds how long a cached pseudonym outlives an erasure made
// through another Log (another platform node); erasures through this
// Log's EraseSubject take effect at once.
const subjectTTL = time.Minute

// Log is the energy ledger's writer and prover over a store.Ledger. One
// goroutine gathers concurrent AppendBatch calls into one UpdateLedger.
// Its methods are safe for concurrent use.
type Log struct {
	st     store.Ledger
	origin string
	key    note.Signer
	self   note.Verifier // verifies the log key's own signatures
	wits   []note.Verifier
	every  time.Duration
	grace  time.Duration
	log    *slog.Logger
	health map[string]bool // quantities of the health data class

	reqs      chan *request
	quit      chan struct{}
	done      chan struct{}
	ctx       context.Context // ends on Close: the writer's transactions
	cancel    context.CancelFunc
	closeOnce sync.Once

	cpMu sync.Mutex // one Checkpoint at a time, so cosignatures are not overwritten

	// known is a size the log has reached: proofs up to it need no
	// LedgerSize query (an append-only log only grows).
	known atomic.Int64

	subjMu   sync.Mutex
	subjects map[string]cachedSubject

	wm       *watermarks      // the writer's own (see watermarks)
	wmReady  chan *watermarks // from scanWatermarks
	scanDone chan struct{}
}

type cachedSubject struct {
	pseudonym string
	at        time.Time
}

// request is one AppendBatch call waiting for the writer.
type request struct {
	site, signer string
	sig          []byte
	readings     []Reading
	omitted      []Omission  // refused readings, by signed position and hash
	data         [][]byte    // each reading's entry bytes
	leaves       []tlog.Hash // and leaf hash, computed by the caller
	digest       [32]byte
	res          chan response // buffered: the writer never blocks on it
}

type response struct {
	r   AppendResult
	err error
}

// New starts a Log over st. Config.Key is required.
func New(st store.Ledger, cfg Config) (*Log, error) {
	if st == nil {
		return nil, errors.New("ledger: no store")
	}
	if cfg.Key == nil {
		return nil, errors.New("ledger: config Key: no log key")
	}
	if cfg.Origin == "" {
		cfg.Origin = DefaultOrigin
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 5 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for i, w := range cfg.Witnesses {
		if w == nil {
			return nil, fmt.Errorf("ledger: config Witnesses[%d] is nil", i)
		}
	}
	health := make(map[string]bool)
	for _, q := range cim.Default().Quantities() {
		if q.Class == cim.SpecialHealth {
			health[q.Name] = true
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Log{
		st:       st,
		origin:   cfg.Origin,
		key:      cfg.Key,
		self:     selfVerifier{cfg.Key},
		wits:     append([]note.Verifier(nil), cfg.Witnesses...),
		every:    cfg.CheckpointEvery,
		grace:    cfg.Grace,
		log:      cfg.Logger,
		health:   health,
		reqs:     make(chan *request),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		subjects: make(map[string]cachedSubject),
		wmReady:  make(chan *watermarks, 1),
		scanDone: make(chan struct{}),
	}
	go l.scanWatermarks()
	go l.writer()
	return l, nil
}

// Close stops the writer (AppendBatch calls then fail with ErrClosed),
// signs a last checkpoint if the log grew since the previous one, and
// saves the reading marks for the next start (see loadMarks; failing to
// is only logged: the next start then scans more).
func (l *Log) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.quit)
		<-l.done
		l.cancel()
		<-l.scanDone
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, cerr := l.Checkpoint(ctx); cerr != nil && !errors.Is(cerr, store.ErrLedgerLocked) {
			err = fmt.Errorf("ledger close: %w", cerr)
		}
		if serr := l.saveMarks(ctx); serr != nil {
			l.log.Warn("ledger: reading marks not saved; the next start scans more of the log", "err", serr)
		}
	})
	return err
}

// selfVerifier verifies the log key's own signatures by signing again:
// Ed25519 signatures are deterministic (RFC 8032), and note.Signer does
// not expose the public key.
type selfVerifier struct{ s note.Signer }

func (v selfVerifier) Name() string    { return v.s.Name() }
func (v selfVerifier) KeyHash() uint32 { return v.s.KeyHash() }
func (v selfVerifier) Verify(msg, sig []byte) bool {
	again, err := v.s.Sign(msg)
	return err == nil && bytes.Equal(again, sig)
}

// subject returns the pseudonym of an asset, from the cache or the store.
func (l *Log) subject(ctx context.Context, site, asset string) (string, error) {
	k := site + "\x00" + asset
	now := time.Now()
	l.subjMu.Lock()
	c, ok := l.subjects[k]
	l.subjMu.Unlock()
	if ok && now.Sub(c.at) < subjectTTL {
		return c.pseudonym, nil
	}
	key, err := l.st.SubjectKey(ctx, site, asset, newSubjectKey)
	if errors.Is(err, store.ErrNotFound) {
		l.forget(site, asset)
		return "", fmt.Errorf("asset %q of site %q: %w", asset, site, ErrErased)
	}
	if err != nil {
		return "", fmt.Errorf("pseudonym key of asset %q of site %q: %w", asset, site, err)
	}
	p := Pseudonym(key, site, asset)
	l.subjMu.Lock()
	l.subjects[k] = cachedSubject{p, now}
	l.subjMu.Unlock()
	return p, nil
}

func (l *Log) forget(site, asset string) {
	l.subjMu.Lock()
	delete(l.subjects, site+"\x00"+asset)
	l.subjMu.Unlock()
}

func newSubjectKey() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails (crypto/rand's documented behaviour since Go 1.24)
	return k
}

// EraseSubject erases an asset from the ledger (GDPR): the store deletes
// its pseudonym key and the readable records, and this Log stops using
// the cached pseudonym at once. It returns how many entries were erased.
func (l *Log) EraseSubject(ctx context.Context, site, asset string) (int64, error) {
	l.forget(site, asset)
	n, err := l.st.EraseSubject(ctx, site, asset)
	l.forget(site, asset) // an AppendBatch may have cached it meanwhile
	if err != nil {
		return 0, fmt.Errorf("erase asset %q of site %q: %w", asset, site, err)
	}
	return n, nil
}

// AppendBatch appends one verified signed batch (readings in signed order)
// and returns when it is committed (group commit: concurrent calls share
// one UpdateLedger). All readings must be of one site. A reading already
// logged with the same value becomes a reference; one logged with another
// value is logged again (a correction). The caller has checked sig.
func (l *Log) AppendBatch(ctx context.Context, signer string, sig []byte, readings []Reading) (AppendResult, error) {
	return l.AppendBatchOmitted(ctx, signer, sig, readings, nil)
}

// AppendBatchOmitted is AppendBatch for a signed batch of which the
// platform refused some readings: omitted gives their positions in signed
// order (ascending) and ReadingHash; readings are the others, in signed
// order. The batch signed len(readings)+len(omitted) readings; its entry
// records the omissions (member "omitted"), so that a verifier rebuilds
// the digest the signature covers without the refused readings being
// logged.
func (l *Log) AppendBatchOmitted(ctx context.Context, signer string, sig []byte, readings []Reading, omitted []Omission) (AppendResult, error) {
	req, err := l.prepare(ctx, signer, sig, readings, omitted)
	if err != nil {
		return AppendResult{}, err
	}
	select {
	case l.reqs <- req:
	case <-l.quit:
		return AppendResult{}, ErrClosed
	case <-ctx.Done():
		return AppendResult{}, fmt.Errorf("ledger append: %w", context.Cause(ctx))
	}
	select {
	case res := <-req.res:
		return res.r, res.err
	case <-ctx.Done():
		// The writer has it: it may still commit.
		return AppendResult{}, fmt.Errorf("ledger append (may still be committed): %w", context.Cause(ctx))
	}
}

// prepare checks a batch and does the per-reading work (encoding, leaf
// hashes, pseudonyms) in the caller's goroutine, so that concurrent
// callers share it out and the writer only decides and hashes the tree.
func (l *Log) prepare(ctx context.Context, signer string, sig []byte, readings []Reading, omitted []Omission) (*request, error) {
	if len(readings) == 0 {
		return nil, errors.New("ledger append: empty batch")
	}
	if err := checkOmitted(int64(len(readings)+len(omitted)), nil, omitted); err != nil {
		return nil, fmt.Errorf("ledger append: %w", err)
	}
	if err := checkName(signer); err != nil {
		return nil, fmt.Errorf("ledger append: signer: %w", err)
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("ledger append: batch of %s has no signature", signer)
	}
	site := readings[0].Site
	req := &request{
		site:     site,
		signer:   signer,
		sig:      sig,
		readings: make([]Reading, len(readings)),
		omitted:  append([]Omission(nil), omitted...),
		data:     make([][]byte, len(readings)),
		leaves:   make([]tlog.Hash, len(readings)),
		res:      make(chan response, 1),
	}
	d := NewBatchDigest()
	subjects := make(map[string]string)
	// One buffer for every entry's bytes: fewer allocations on the hot path.
	buf := make([]byte, 0, 200*len(readings))
	om := omitted
	for i, r := range readings {
		// The refused readings' hashes go in at their signed positions.
		for len(om) > 0 && om[0].Pos == int64(d.Count()) {
			d.AddHash(om[0].Hash)
			om = om[1:]
		}
		if r.Phase == "total" {
			r.Phase = ""
		}
		req.readings[i] = r
		if r.Site != site {
			return nil, fmt.Errorf("ledger append: reading %d is of site %q, the batch of site %q", i, r.Site, site)
		}
		if r.Asset == "" {
			return nil, fmt.Errorf("ledger append: reading %d: no asset", i)
		}
		if l.health[r.Quantity] {
			return nil, fmt.Errorf("ledger append: reading %d: quantity %q is health data, which never enters the ledger", i, r.Quantity)
		}
		if err := d.Add(r); err != nil {
			return nil, fmt.Errorf("ledger append: reading %d: %w", i, err)
		}
		subj, ok := subjects[r.Asset]
		if !ok {
			var err error
			if subj, err = l.subject(ctx, site, r.Asset); err != nil {
				return nil, fmt.Errorf("ledger append: reading %d: %w", i, err)
			}
			subjects[r.Asset] = subj
		}
		start := len(buf)
		var err error
		if buf, err = appendReading(buf, r, signer, subj); err != nil {
			return nil, fmt.Errorf("ledger append: reading %d: %w", i, err)
		}
		req.data[i] = buf[start:len(buf):len(buf)]
		req.leaves[i] = tlog.RecordHash(req.data[i])
	}
	for _, o := range om {
		if o.Pos != int64(d.Count()) {
			return nil, fmt.Errorf("ledger append: omitted position %d: the batch has %d readings", o.Pos, len(readings)+len(omitted))
		}
		d.AddHash(o.Hash)
	}
	req.digest = d.Sum()
	return req, nil
}

// writer runs the group commits and the periodic checkpoints.
func (l *Log) writer() {
	defer close(l.done)
	var (
		lastCP  time.Time   // when this Log last made a checkpoint
		grown   bool        // appended since
		timer   *time.Timer // fires when a deferred checkpoint is due
		timerC  <-chan time.Time
		pending []*request
	)
	for {
		select {
		case <-l.quit:
			if timer != nil {
				timer.Stop()
			}
			return
		case <-timerC:
			timerC = nil
			l.autoCheckpoint(&lastCP, &grown)
			continue
		case r := <-l.reqs:
			pending = append(pending[:0], r)
		}
		n := len(pending[0].readings)
	gather:
		for len(pending) < maxGroupCalls && n < maxGroupReadings {
			select {
			case r := <-l.reqs:
				pending = append(pending, r)
				n += len(r.readings)
			default:
				break gather
			}
		}
		var due func()
		if time.Since(lastCP) >= l.every {
			due = func() { grown = true; l.autoCheckpoint(&lastCP, &grown) }
		}
		if l.commit(pending, due) {
			grown = grown || due == nil
		}
		clear(pending)
		if grown {
			if wait := l.every - time.Since(lastCP); wait <= 0 {
				l.autoCheckpoint(&lastCP, &grown)
			} else if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				timerC = timer.C
			}
		}
	}
}

func (l *Log) autoCheckpoint(lastCP *time.Time, grown *bool) {
	if !*grown {
		return
	}
	if _, err := l.Checkpoint(l.ctx); err != nil {
		l.log.Error("ledger checkpoint", "err", err)
		return
	}
	*lastCP = time.Now()
	*grown = false
}

// commit appends a group of batches in one UpdateLedger, calls due (if
// not nil) when it appended something, and answers each call. It reports
// whether anything was appended.
func (l *Log) commit(live []*request, due func()) bool {
	results := make([]AppendResult, len(live))
	appended := false
	wm := l.catchUp()
	var end, final int64 // the size after the commit (end: with marks used)
	err := l.st.UpdateLedger(l.ctx, func(tx store.LedgerTx) error {
		b := newBuilder(l.ctx, tx)
		if wm != nil && wm.upto == tx.Size() {
			b.wm = wm // else another writer appended since catchUp
		}
		for i, r := range live {
			res, err := b.addBatch(r)
			if err != nil {
				return err
			}
			results[i] = res
		}
		if len(b.entries) == 0 {
			return nil
		}
		if err := tx.Append(l.ctx, b.entries, b.hashes); err != nil {
			return fmt.Errorf("append %d entries at %d: %w", len(b.entries), b.entries[0].Index, err)
		}
		appended, final = true, b.size
		if b.wm != nil {
			end = b.size
		}
		return nil
	})
	if err == nil && end > 0 {
		wm.upto = end
	}
	if err == nil && appended {
		l.observe(final)
	}
	if err != nil {
		err = fmt.Errorf("ledger append: %w", err)
		l.log.Error("ledger group commit", "batches", len(live), "err", err)
		appended = false
	}
	if appended && due != nil {
		// Before answering: a caller then finds its readings in the
		// checkpoint when one was due.
		due()
	}
	for i, r := range live {
		r.res <- response{results[i], err}
	}
	return appended
}

// builder collects the entries and stored hashes of one transaction.
type builder struct {
	ctx     context.Context
	tx      store.LedgerTx
	size    int64               // entries, with those built so far
	base    int64               // stored hashes committed before the transaction
	hashes  [][32]byte          // stored hashes built, from base
	old     map[int64]tlog.Hash // committed stored hashes read so far
	entries []store.LedgerEntry
	pending map[store.LedgerKey]pendingReading // readings built in this transaction
	wm      *watermarks                        // nil: look every reading up
	scratch []tlog.Hash
}

type pendingReading struct {
	index int64
	value float64
}

func newBuilder(ctx context.Context, tx store.LedgerTx) *builder {
	n := tx.Size()
	return &builder{
		ctx:     ctx,
		tx:      tx,
		size:    n,
		base:    tlog.StoredHashCount(n),
		old:     make(map[int64]tlog.Hash),
		pending: make(map[store.LedgerKey]pendingReading),
	}
}

// ReadHashes implements tlog.HashReader over the transaction: hashes
// built in it from memory, older ones from the store (once).
func (b *builder) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := b.scratch[:0]
	var missing []int64
	for _, x := range indexes {
		if x >= b.base {
			if x-b.base >= int64(len(b.hashes)) {
				return nil, fmt.Errorf("stored hash %d not built yet", x)
			}
			out = append(out, b.hashes[x-b.base])
			continue
		}
		h, ok := b.old[x]
		if !ok {
			missing = append(missing, x)
		}
		out = append(out, h)
	}
	if len(missing) > 0 {
		got, err := b.tx.ReadHashes(b.ctx, missing)
		if err != nil {
			return nil, fmt.Errorf("read stored hashes: %w", err)
		}
		if len(got) != len(missing) {
			return nil, fmt.Errorf("read %d stored hashes, got %d", len(missing), len(got))
		}
		for i, x := range missing {
			b.old[x] = got[i]
		}
		for i, x := range indexes {
			if x < b.base {
				out[i] = b.old[x]
			}
		}
	}
	b.scratch = out
	return out, nil
}

// add appends an entry whose leaf hash is leaf.
func (b *builder) add(e store.LedgerEntry, leaf tlog.Hash) error {
	e.Index = b.size
	hs, err := tlog.StoredHashesForRecordHash(b.size, leaf, b)
	if err != nil {
		return fmt.Errorf("stored hashes of entry %d: %w", b.size, err)
	}
	for _, h := range hs {
		b.hashes = append(b.hashes, h)
	}
	b.entries = append(b.entries, e)
	b.size++
	return nil
}

// addBatch adds one batch: its new readings, then its batch entry.
func (b *builder) addBatch(r *request) (AppendResult, error) {
	first := b.size
	var refs [][2]int64
	om := r.omitted
	pos := int64(-1) // of rd in signed order
	for i, rd := range r.readings {
		pos++
		for len(om) > 0 && om[0].Pos == pos {
			om, pos = om[1:], pos+1
		}
		k := store.LedgerKey{Site: rd.Site, Asset: rd.Asset, Quantity: rd.Quantity, Phase: rd.Phase, Time: rd.Time}
		sk := seriesKey{rd.Site, rd.Asset, rd.Quantity, rd.Phase}
		if p, ok := b.pending[k]; ok {
			if p.value == rd.Value {
				refs = append(refs, [2]int64{pos, p.index})
				continue
			}
		} else if b.wm == nil || !b.wm.isNew(sk, rd.Time) {
			e, found, err := b.tx.LastEntry(b.ctx, KindReading, k)
			if err != nil {
				return AppendResult{}, fmt.Errorf("look up reading %s: %w", keyText(k), err)
			}
			if found && e.Value == rd.Value {
				refs = append(refs, [2]int64{pos, e.Index})
				continue
			}
		}
		b.pending[k] = pendingReading{b.size, rd.Value}
		if b.wm != nil {
			b.wm.raise(sk, rd.Time)
		}
		err := b.add(store.LedgerEntry{
			Kind: KindReading, Site: rd.Site, Data: r.data[i],
			Asset: rd.Asset, Quantity: rd.Quantity, Phase: rd.Phase, Time: rd.Time, Value: rd.Value,
		}, r.leaves[i])
		if err != nil {
			return AppendResult{}, err
		}
	}
	if len(refs) == len(r.readings) {
		return AppendResult{First: -1, Batch: -1, Reused: len(refs)}, nil
	}
	data, err := EncodeBatch(Batch{
		Site: r.site, Signer: r.signer, Count: len(r.readings) + len(r.omitted), Digest: r.digest,
		Signature: r.sig, First: first, Refs: refs, Omitted: r.omitted,
	})
	if err != nil {
		return AppendResult{}, err
	}
	batch := b.size
	if err := b.add(store.LedgerEntry{Kind: KindBatch, Site: r.site, Data: data}, tlog.RecordHash(data)); err != nil {
		return AppendResult{}, err
	}
	return AppendResult{First: first, Batch: batch, Appended: int(batch - first), Reused: len(refs)}, nil
}

func keyText(k store.LedgerKey) string {
	return fmt.Sprintf("site %q asset %q quantity %q phase %q time %d", k.Site, k.Asset, k.Quantity, cim.Phase(k.Phase), k.Time)
}

// committedHashes reads committed stored hashes for tlog.
func (l *Log) committedHashes(ctx context.Context) tlog.HashReaderFunc {
	return func(indexes []int64) ([]tlog.Hash, error) {
		hs, err := l.st.LedgerHashes(ctx, indexes)
		if err != nil {
			return nil, fmt.Errorf("read stored hashes: %w", err)
		}
		out := make([]tlog.Hash, len(hs))
		for i, h := range hs {
			out[i] = h
		}
		return out, nil
	}
}

// Checkpoint signs and stores a checkpoint of the current size if the log
// grew since the latest one; else it returns the latest.
func (l *Log) Checkpoint(ctx context.Context) (store.Checkpoint, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	size, err := l.st.LedgerSize(ctx)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("ledger checkpoint: %w", err)
	}
	l.observe(size)
	latest, err := l.st.LatestCheckpoint(ctx)
	switch {
	case err == nil && latest.Size >= size:
		return latest, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return store.Checkpoint{}, fmt.Errorf("ledger checkpoint: %w", err)
	}
	root, err := tlog.TreeHash(size, l.committedHashes(ctx))
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("ledger checkpoint: tree hash of size %d: %w", size, err)
	}
	msg, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(l.origin, size, root))}, l.key)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("ledger checkpoint: sign: %w", err)
	}
	c := store.Checkpoint{Size: size, Note: msg, At: time.Now().UTC()}
	if err := l.st.PutCheckpoint(ctx, c); err != nil {
		return store.Checkpoint{}, fmt.Errorf("ledger checkpoint: %w", err)
	}
	l.log.Debug("ledger checkpoint", "size", size)
	return c, nil
}

// Latest returns the latest stored checkpoint (store.ErrNotFound, wrapped,
// before the first).
func (l *Log) Latest(ctx context.Context) (store.Checkpoint, error) {
	c, err := l.st.LatestCheckpoint(ctx)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("latest ledger checkpoint: %w", err)
	}
	return c, nil
}

// Inclusion proves that entry index is in the tree of size entries.
func (l *Log) Inclusion(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	if err := l.checkSize(ctx, size); err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	if index < 0 || index >= size {
		return nil, fmt.Errorf("inclusion proof: index %d outside a tree of size %d", index, size)
	}
	p, err := tlog.ProveRecord(size, index, l.committedHashes(ctx))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of %d in size %d: %w", index, size, err)
	}
	return p, nil
}

// Consistency proves that the tree of size from is a prefix of the tree
// of size to.
func (l *Log) Consistency(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	if err := l.checkSize(ctx, to); err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	if from < 0 || from > to {
		return nil, fmt.Errorf("consistency proof: from %d must be in [0, to %d]", from, to)
	}
	if from == 0 || from == to {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(to, from, l.committedHashes(ctx))
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d → %d: %w", from, to, err)
	}
	return p, nil
}

func (l *Log) checkSize(ctx context.Context, size int64) error {
	if size >= 0 && size <= l.known.Load() {
		return nil
	}
	n, err := l.st.LedgerSize(ctx)
	if err != nil {
		return err
	}
	l.observe(n)
	if size < 0 || size > n {
		return fmt.Errorf("tree size %d outside [0, %d]", size, n)
	}
	return nil
}

// Cosign stores a witness's cosignature of a checkpoint. The note must
// carry the log key's signature and at least one configured witness's,
// and be the stored checkpoint of its size (same origin, size and root).
// The stored note keeps its signatures and gains the new witnesses'.
func (l *Log) Cosign(ctx context.Context, cosigned []byte) (store.Checkpoint, error) {
	vs := note.VerifierList(append([]note.Verifier{l.self}, l.wits...)...)
	n, err := note.Open(cosigned, vs)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("cosign: %w", err)
	}
	if !signedBy(n, l.self) {
		return store.Checkpoint{}, fmt.Errorf("cosign: no signature of the log key %s", l.key.Name())
	}
	var fresh []note.Signature
	for _, w := range l.wits {
		for _, s := range n.Sigs {
			if s.Name == w.Name() && s.Hash == w.KeyHash() {
				fresh = append(fresh, s)
			}
		}
	}
	if len(fresh) == 0 {
		return store.Checkpoint{}, errors.New("cosign: no signature of a configured witness")
	}
	size, _, err := parseCheckpoint(n.Text, l.origin)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("cosign: %w", err)
	}

	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	stored, err := l.st.CheckpointAt(ctx, size)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("cosign: checkpoint of size %d: %w", size, err)
	}
	sn, err := note.Open(stored.Note, vs)
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("cosign: stored checkpoint of size %d: %w", size, err)
	}
	if sn.Text != n.Text {
		return store.Checkpoint{}, fmt.Errorf("cosign: the cosigned checkpoint of size %d has another root than the log's", size)
	}
	sigs := append(append([]note.Signature(nil), sn.Sigs...), sn.UnverifiedSigs...)
	for _, s := range fresh {
		replaced := false
		for i := range sigs {
			if sigs[i].Name == s.Name && sigs[i].Hash == s.Hash {
				sigs[i], replaced = s, true
			}
		}
		if !replaced {
			sigs = append(sigs, s)
		}
	}
	msg, err := note.Sign(&note.Note{Text: n.Text, Sigs: sigs})
	if err != nil {
		return store.Checkpoint{}, fmt.Errorf("cosign: %w", err)
	}
	c := store.Checkpoint{Size: size, Note: msg, At: stored.At}
	if err := l.st.PutCheckpoint(ctx, c); err != nil {
		return store.Checkpoint{}, fmt.Errorf("cosign: %w", err)
	}
	return c, nil
}

// observe notes that the log has reached size n.
func (l *Log) observe(n int64) {
	for {
		k := l.known.Load()
		if n <= k || l.known.CompareAndSwap(k, n) {
			return
		}
	}
}

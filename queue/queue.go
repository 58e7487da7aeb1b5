// Package queue is the gateway's durable store-and-forward buffer: a bounded
// on-disk FIFO of readings that survives restarts, crashes of the process
// and power cuts, so that nothing a connector read is lost while the
// platform is unreachable. Its models are Telegraf's output buffer and the
// write-ahead log of Prometheus (wlog).
//
// # On disk
//
// A queue is a directory holding:
//
//   - segment files named by the sequence number of their first reading,
//     "%020d.seg". Each starts with the 4 bytes "GLQ1" and holds records
//     back to back. Every reading ever appended has a sequence number, one
//     more than the reading before it.
//   - "head": the sequence number of the oldest unacknowledged reading and
//     the count of readings dropped since the queue was created, 24 bytes
//     ("GLH1", two little-endian uint64, CRC32C of what precedes). It is
//     replaced atomically (write a temporary file, fsync, rename, fsync the
//     directory).
//   - "lock": held with flock(2) while the queue is open, so that two
//     processes cannot write one queue.
//
// A record is one append batch (at most 4096 readings):
//
//	uint32 LE  payload length
//	uint32 LE  CRC32C (Castagnoli) of the payload
//	payload:   uvarint sequence number of its first reading
//	           uvarint number of readings
//	           per reading: asset, quantity and phase as string references,
//	           varint time (Unix ms) minus the previous reading's (the first
//	           minus 0), float64 value (8 bytes LE)
//
// A string reference is an uvarint: 2*i for entry i of the record's string
// table, or 2*len+1 followed by the bytes of a new string that becomes the
// next entry. A reading of a series already named in its record thus takes
// about 13 bytes.
//
// # Durability
//
// With the default SyncAlways, Append returns after the segment is fsynced;
// appends that run concurrently share one fsync. Ack makes the new head
// durable before it deletes fully acknowledged segments.
//
// # Bounds and recovery
//
// When an append would make the segments larger than MaxBytes, the oldest
// segments are deleted, acknowledged or not; the unacknowledged readings
// they held are counted in Stats.Dropped and logged. Open repairs what a
// crash leaves: a torn last record (cut short, or followed by nothing but
// zeros) is truncated away with a warning; a record whose CRC or sequence
// number is wrong ends its segment: the records before it are kept, the rest
// of the segment is truncated away and the loss is logged and counted as
// dropped (exactly when a later segment says where the lost range ended,
// else estimated from the lost bytes).
package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// SyncPolicy says when appended data is forced to stable storage.
type SyncPolicy int

// The sync policies. The zero value is the safe one.
const (
	// SyncAlways fsyncs before Append returns and before Ack deletes
	// anything: an appended reading survives a power cut.
	SyncAlways SyncPolicy = iota
	// SyncNever leaves writing back to the operating system: appended
	// readings survive a crash of the process but maybe not a power cut.
	// For tests and for media that wear out (SD cards) when the loss of
	// the last seconds is acceptable.
	SyncNever
)

// Default sizes.
const (
	DefaultMaxBytes = 64 << 20
	// defaultSegmentMax is the largest default segment size; smaller
	// queues get a quarter of MaxBytes.
	defaultSegmentMax = 8 << 20
	minSegmentBytes   = 4 << 10
)

// File names inside a queue directory.
const (
	headFile = "head"
	lockFile = "lock"
	segExt   = ".seg"
	tmpExt   = ".tmp"
)

// ErrClosed is returned by the methods of a closed Queue.
var ErrClosed = errors.New("queue closed")

// ErrCorrupt is wrapped by the errors of Peek for a record that was
// damaged after Open checked it; reopening the queue repairs the segment.
var ErrCorrupt = errors.New("corrupt queue segment")

// Options configures a Queue. The zero value is usable.
type Options struct {
	// MaxBytes bounds the size of the segment files; zero means
	// DefaultMaxBytes (64 MiB). The oldest readings are dropped to stay
	// under it.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file is started;
	// zero means a quarter of MaxBytes, at most 8 MiB.
	SegmentBytes int64
	// Sync is the fsync policy; the zero value is SyncAlways.
	Sync SyncPolicy
	// Logger receives warnings about dropped and damaged data; nil
	// discards them.
	Logger *slog.Logger
}

func (o *Options) fill() error {
	if o.MaxBytes < 0 || o.SegmentBytes < 0 {
		return fmt.Errorf("queue options: negative MaxBytes %d or SegmentBytes %d", o.MaxBytes, o.SegmentBytes)
	}
	if o.Sync != SyncAlways && o.Sync != SyncNever {
		return fmt.Errorf("queue options: unknown Sync policy %d", o.Sync)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = min(o.MaxBytes/4, defaultSegmentMax)
	}
	o.SegmentBytes = max(o.SegmentBytes, minSegmentBytes)
	if o.MaxBytes < 2*o.SegmentBytes {
		return fmt.Errorf("queue options: MaxBytes %d must be at least twice SegmentBytes %d", o.MaxBytes, o.SegmentBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats describes a queue's content.
type Stats struct {
	Readings   int64     `json:"readings"`             // unacknowledged readings
	Bytes      int64     `json:"bytes"`                // size of the segment files, acknowledged parts included
	Dropped    int64     `json:"dropped"`              // readings dropped (queue full or damaged) since the queue was created
	Segments   int       `json:"segments"`             // segment files
	OldestTime time.Time `json:"oldest_time,omitzero"` // time of the oldest unacknowledged reading; zero when empty
}

// Cursor marks a position in the queue: the end of the readings a Peek
// returned. Its zero value acknowledges nothing.
type Cursor struct {
	seq uint64 // sequence number after the last reading returned
	pos position
}

// Seq returns the sequence number the cursor points at: one past the last
// reading it covers.
func (c Cursor) Seq() uint64 { return c.seq }

// position is where on disk the record holding a sequence number starts, a
// hint that spares Peek a scan of its segment.
type position struct {
	seg uint64 // first sequence number of the segment; valid when off > 0
	off int64  // offset of the record
	rec uint64 // sequence number of the record's first reading
}

// segment is one segment file.
type segment struct {
	first uint64 // sequence number of its first reading (its name)
	end   uint64 // one past its last reading's
	size  int64  // bytes of valid records plus the magic
}

// Queue is a durable FIFO of readings. It is safe for concurrent use; one
// consumer is expected to call Peek and Ack.
type Queue struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock io.Closer

	// consMu serialises the consumer's Peek and Ack and owns the read
	// side below. Lock order: consMu, headMu, syncMu, mu.
	consMu sync.Mutex
	rf     *os.File // open segment being read
	rfSeg  uint64
	br     *bufio.Reader
	pbuf   []byte
	dec    decoder
	oldest struct {
		seq uint64
		t   int64
		ok  bool
	}

	headMu sync.Mutex // serialises writes of the head file

	syncMu sync.Mutex    // one fsync at a time; later appends wait and share the next
	synced atomic.Uint64 // logical write offset known durable

	encs sync.Pool // *encoder

	mu       sync.Mutex
	segs     []segment // oldest first; the last is written to
	cur      *os.File
	head     uint64
	dropped  int64
	bytes    int64
	written  uint64 // logical bytes written since Open
	hint     position
	appended chan struct{} // closed and replaced on every append
	closed   bool
	err      error // a write failure that leaves the segment in doubt
}

// Open opens the queue in dir, creating the directory if needed, and
// repairs what a crash left behind (see the package comment).
func Open(dir string, opts Options) (*Queue, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create queue directory: %w", err)
	}
	lk, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	q := &Queue{dir: dir, opts: opts, log: opts.Logger, lock: lk, appended: make(chan struct{})}
	q.encs.New = func() any { return new(encoder) }
	if err := q.recover(); err != nil {
		q.closeFiles()
		lk.Close()
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	return q, nil
}

// Append adds readings at the tail. With SyncAlways they are on stable
// storage when it returns nil. A batch is written as records of at most
// 4096 readings; when an error interrupts a large batch, the records
// written before it stay in the queue.
func (q *Queue) Append(rs []cim.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	e := q.encs.Get().(*encoder)
	defer q.encs.Put(e)
	var pos uint64 // logical offset after the last record written
	var dropped int64
	var err error
	for len(rs) > 0 {
		n := min(len(rs), maxRecordReadings)
		body := e.encodeBody(rs[:n])
		p, d, werr := q.write(body, n)
		dropped += d
		if werr != nil {
			err = werr
			break
		}
		pos = p
		rs = rs[n:]
	}
	if dropped > 0 {
		q.log.Warn("queue full: dropped the oldest readings", "dropped", dropped, "max_bytes", q.opts.MaxBytes)
		if herr := q.persistHead(); herr != nil {
			q.log.Error("queue: save head after dropping", "err", herr)
		}
	}
	if pos > 0 && q.opts.Sync == SyncAlways {
		if serr := q.syncTo(pos); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// write appends one record made from body (see finishRecord) holding n
// readings and returns the logical offset after it and how many
// unacknowledged readings were dropped to make room.
func (q *Queue) write(body []byte, n int) (uint64, int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return 0, 0, ErrClosed
	case q.err != nil:
		return 0, 0, q.err
	}
	tail := q.segs[len(q.segs)-1].end
	rec := finishRecord(body, tail, n)
	need := int64(len(rec))
	if need > q.opts.MaxBytes-q.opts.SegmentBytes {
		return 0, 0, fmt.Errorf("append: record of %d bytes does not fit the queue's %d bytes", need, q.opts.MaxBytes)
	}
	var dropped int64
	for q.bytes+need > q.opts.MaxBytes {
		if len(q.segs) == 1 {
			if err := q.rotateLocked(); err != nil {
				return 0, dropped, err
			}
		}
		dropped += q.dropOldestLocked()
	}
	last := &q.segs[len(q.segs)-1]
	if last.size+need > q.opts.SegmentBytes && last.end > last.first {
		if err := q.rotateLocked(); err != nil {
			return 0, dropped, err
		}
		last = &q.segs[len(q.segs)-1]
	}
	if _, err := q.cur.Write(rec); err != nil {
		// Cut the partial record off, so that later records follow a
		// whole one; if that fails too the segment is in doubt.
		if terr := q.cur.Truncate(last.size); terr != nil {
			q.err = fmt.Errorf("segment %d: write failed (%w) and truncate failed: %v", last.first, err, terr)
		} else if _, serr := q.cur.Seek(last.size, io.SeekStart); serr != nil {
			q.err = fmt.Errorf("segment %d: seek after failed write: %w", last.first, serr)
		}
		return 0, dropped, fmt.Errorf("append to segment %d: %w", last.first, err)
	}
	last.size += need
	last.end += uint64(n)
	q.bytes += need
	q.written += uint64(need)
	close(q.appended)
	q.appended = make(chan struct{})
	return q.written, dropped, nil
}

// dropOldestLocked deletes the oldest segment (not the last) and returns the
// unacknowledged readings it held.
func (q *Queue) dropOldestLocked() int64 {
	s := q.segs[0]
	q.segs = q.segs[1:]
	q.bytes -= s.size
	var lost int64
	if s.end > q.head {
		lost = int64(s.end - max(s.first, q.head))
	}
	q.head = max(q.head, s.end, q.segs[0].first)
	q.dropped += lost
	if err := os.Remove(q.segPath(s.first)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		q.log.Error("queue: remove dropped segment", "segment", s.first, "err", err)
	}
	return lost
}

// rotateLocked starts a new segment at the tail.
func (q *Queue) rotateLocked() error {
	tail := q.segs[len(q.segs)-1].end
	if q.cur != nil {
		if q.opts.Sync == SyncAlways {
			if err := q.cur.Sync(); err != nil {
				q.err = fmt.Errorf("fsync segment %d: %w", q.segs[len(q.segs)-1].first, err)
				return q.err
			}
		}
		q.markSynced(q.written)
		q.cur.Close()
		q.cur = nil
	}
	f, err := q.createSegment(tail)
	if err != nil {
		q.err = err
		return err
	}
	q.cur = f
	q.segs = append(q.segs, segment{first: tail, end: tail, size: int64(segHeaderLen)})
	q.bytes += int64(segHeaderLen)
	return nil
}

// createSegment makes a segment file that starts at seq, open for writing
// after its magic.
func (q *Queue) createSegment(seq uint64) (*os.File, error) {
	path := q.segPath(seq)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteString(segMagic); err != nil {
		f.Close()
		return nil, fmt.Errorf("write segment %s: %w", path, err)
	}
	if q.opts.Sync == SyncAlways {
		if err := syncDir(q.dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// syncTo makes the written data up to logical offset pos durable, sharing
// one fsync among the appends that wait.
func (q *Queue) syncTo(pos uint64) error {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	for q.synced.Load() < pos {
		q.mu.Lock()
		f, target, closed, qerr := q.cur, q.written, q.closed, q.err
		first := q.segs[len(q.segs)-1].first
		q.mu.Unlock()
		switch {
		case q.synced.Load() >= pos:
			return nil // Close or a rotation synced it
		case qerr != nil:
			return qerr
		case closed:
			return ErrClosed
		}
		if err := f.Sync(); err != nil {
			if errors.Is(err, os.ErrClosed) {
				continue // rotated meanwhile, and the rotation synced
			}
			err = fmt.Errorf("fsync segment %d: %w", first, err)
			q.mu.Lock()
			// After a failed fsync the page cache may have dropped the
			// data (fsyncgate): refuse further appends.
			q.err = err
			q.mu.Unlock()
			return err
		}
		q.markSynced(target)
	}
	return nil
}

func (q *Queue) markSynced(pos uint64) {
	for {
		old := q.synced.Load()
		if old >= pos || q.synced.CompareAndSwap(old, pos) {
			return
		}
	}
}

// Appended returns a channel that is closed by the next Append, to wait
// for new readings without polling.
func (q *Queue) Appended() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.appended
}

// Len returns the number of unacknowledged readings.
func (q *Queue) Len() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lenLocked()
}

func (q *Queue) lenLocked() int64 {
	var n int64
	for _, s := range q.segs {
		if s.end > q.head {
			n += int64(s.end - max(s.first, q.head))
		}
	}
	return n
}

// Dropped returns the number of readings dropped since the queue was
// created (Stats.Dropped), without reading the disk.
func (q *Queue) Dropped() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Peek returns up to max of the oldest unacknowledged readings, in order,
// and a cursor to acknowledge them with. It returns no readings when the
// queue is empty. Peeking again without Ack returns the same readings.
func (q *Queue) Peek(max int) ([]cim.Reading, Cursor, error) {
	q.consMu.Lock()
	defer q.consMu.Unlock()
	return q.peekLocked(max)
}

func (q *Queue) peekLocked(limit int) ([]cim.Reading, Cursor, error) {
	for attempt := 0; ; attempt++ {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, Cursor{}, ErrClosed
		}
		head, hint := q.head, q.hint
		segs := slices.Clone(q.segs)
		n := q.lenLocked()
		q.mu.Unlock()
		if limit <= 0 || n == 0 {
			return nil, Cursor{seq: head}, nil
		}
		out, c, err := q.read(segs, head, hint, min(int64(limit), n))
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue // a full queue dropped the segment meanwhile; start at the new head
		}
		if len(out) > 0 && (!q.oldest.ok || q.oldest.seq != head) {
			q.oldest.seq, q.oldest.t, q.oldest.ok = head, out[0].Time, true
		}
		return out, c, err
	}
}

// read decodes up to limit readings from seq on.
func (q *Queue) read(segs []segment, seq uint64, hint position, limit int64) ([]cim.Reading, Cursor, error) {
	out := make([]cim.Reading, 0, limit)
	c := Cursor{seq: seq}
	for _, s := range segs {
		if s.end <= seq {
			continue
		}
		if int64(len(out)) >= limit {
			break
		}
		// Readings between segments were lost in a crash; skip the gap.
		seq = max(seq, s.first)
		off, rec := int64(segHeaderLen), s.first
		if hint.off > 0 && hint.seg == s.first && hint.rec <= seq && hint.off <= s.size {
			off, rec = hint.off, hint.rec
		}
		if err := q.openRead(s.first); err != nil {
			return out, c, err
		}
		q.br.Reset(io.NewSectionReader(q.rf, off, s.size-off))
		for off < s.size && int64(len(out)) < limit {
			p, err := q.readRecord(s, off)
			if err != nil {
				return out, c, err
			}
			recSeq, cnt, err := recordMeta(p)
			if err != nil || recSeq != rec {
				return out, c, fmt.Errorf("%w: segment %d offset %d: sequence %d, want %d (%v)", ErrCorrupt, s.first, off, recSeq, rec, err)
			}
			next := off + int64(recHeaderLen+len(p))
			if rec+uint64(cnt) <= seq {
				off, rec = next, rec+uint64(cnt)
				continue
			}
			before := len(out)
			out, _, _, err = q.dec.decode(p, int(seq-rec), int(limit)-len(out), out)
			if err != nil {
				return out[:before], c, fmt.Errorf("%w: segment %d offset %d: %v", ErrCorrupt, s.first, off, err)
			}
			seq += uint64(len(out) - before)
			c = Cursor{seq: seq, pos: position{seg: s.first, off: off, rec: rec}}
			if seq == rec+uint64(cnt) {
				off, rec = next, seq
				c.pos = position{seg: s.first, off: off, rec: rec}
			}
		}
	}
	return out, c, nil
}

// openRead makes q.rf the segment that starts at first.
func (q *Queue) openRead(first uint64) error {
	if q.rf != nil && q.rfSeg == first {
		return nil
	}
	if q.rf != nil {
		q.rf.Close()
		q.rf = nil
	}
	f, err := os.Open(q.segPath(first))
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	q.rf, q.rfSeg = f, first
	if q.br == nil {
		q.br = bufio.NewReaderSize(nil, 64<<10)
	}
	return nil
}

// readRecord reads the record at off from q.br and checks its CRC. The
// payload is valid until the next call.
func (q *Queue) readRecord(s segment, off int64) ([]byte, error) {
	var h [recHeaderLen]byte
	if _, err := io.ReadFull(q.br, h[:]); err != nil {
		return nil, fmt.Errorf("%w: segment %d offset %d: read header: %v", ErrCorrupt, s.first, off, err)
	}
	n, crc := recordHeader(h[:])
	if int64(n) > s.size-off-recHeaderLen {
		return nil, fmt.Errorf("%w: segment %d offset %d: record of %d bytes past the end", ErrCorrupt, s.first, off, n)
	}
	if cap(q.pbuf) < int(n) {
		q.pbuf = make([]byte, n)
	}
	p := q.pbuf[:n]
	if _, err := io.ReadFull(q.br, p); err != nil {
		return nil, fmt.Errorf("%w: segment %d offset %d: read payload: %v", ErrCorrupt, s.first, off, err)
	}
	if crcOf(p) != crc {
		return nil, fmt.Errorf("%w: segment %d offset %d: CRC mismatch", ErrCorrupt, s.first, off)
	}
	return p, nil
}

// Ack acknowledges the readings up to the cursor: it durably advances the
// head and deletes the segments that hold only acknowledged readings. A
// cursor at or before the head does nothing.
func (q *Queue) Ack(c Cursor) error {
	q.consMu.Lock()
	defer q.consMu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if c.seq <= q.head {
		q.mu.Unlock()
		return nil
	}
	if tail := q.segs[len(q.segs)-1].end; c.seq > tail {
		q.mu.Unlock()
		return fmt.Errorf("ack: cursor %d is past the tail %d", c.seq, tail)
	}
	q.head = c.seq
	q.hint = c.pos
	var del []segment
	for len(q.segs) > 1 && q.segs[0].end <= q.head {
		del = append(del, q.segs[0])
		q.bytes -= q.segs[0].size
		q.segs = q.segs[1:]
	}
	q.mu.Unlock()
	// The head must be durable before the segments go, or a crash would
	// make their readings look dropped.
	if err := q.persistHead(); err != nil {
		return err
	}
	for _, s := range del {
		if q.rf != nil && q.rfSeg == s.first {
			q.rf.Close()
			q.rf = nil
		}
		if err := os.Remove(q.segPath(s.first)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			q.log.Warn("queue: remove acknowledged segment", "segment", s.first, "err", err)
		}
	}
	return nil
}

// Stats describes the queue. OldestTime may cost a read of one record.
func (q *Queue) Stats() Stats {
	q.consMu.Lock()
	defer q.consMu.Unlock()
	q.mu.Lock()
	st := Stats{Readings: q.lenLocked(), Bytes: q.bytes, Dropped: q.dropped, Segments: len(q.segs)}
	head, closed := q.head, q.closed
	q.mu.Unlock()
	if st.Readings == 0 || closed {
		return st
	}
	if !q.oldest.ok || q.oldest.seq != head {
		if _, _, err := q.peekLocked(1); err != nil {
			q.log.Warn("queue: read oldest reading", "err", err)
		}
	}
	if q.oldest.ok && q.oldest.seq == head {
		st.OldestTime = cim.TimeOf(q.oldest.t)
	}
	return st
}

// Close syncs and closes the files and releases the directory. Acknowledged
// and appended readings stay on disk for the next Open.
func (q *Queue) Close() error {
	q.consMu.Lock()
	defer q.consMu.Unlock()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	var err error
	if q.cur != nil && q.opts.Sync == SyncAlways && q.err == nil {
		if err = q.cur.Sync(); err == nil {
			q.markSynced(q.written)
		}
	}
	close(q.appended)
	q.appended = make(chan struct{})
	q.mu.Unlock()
	q.closeFiles()
	if lerr := q.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// closeFiles closes the open segment files; the caller holds consMu or is
// the only user.
func (q *Queue) closeFiles() {
	q.mu.Lock()
	if q.cur != nil {
		q.cur.Close()
		q.cur = nil
	}
	q.mu.Unlock()
	if q.rf != nil {
		q.rf.Close()
		q.rf = nil
	}
}

func (q *Queue) segPath(first uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", first, segExt))
}

// parseSegName returns the first sequence number of a segment file name.
func parseSegName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, segExt)
	if !ok || len(base) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil
}

// syncDir fsyncs a directory, so that created, renamed and removed entries
// are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const (
	headMagic = "GLH1"
	headLen   = len(headMagic) + 8 + 8 + 4
)

// damage is where and why a segment stops being readable.
type damage struct {
	off    int64 // offset of the first bad byte; the segment is cut there
	torn   bool  // an unfinished last write, not corruption
	reason string
}

// recover loads the head and the segments, repairing what a crash left.
func (q *Queue) recover() error {
	head, dropped, headOK, err := readHead(q.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		headOK = true // a new queue
	case err != nil:
		q.log.Warn("queue: head file damaged; unacknowledged and some acknowledged readings will be sent again, the dropped count restarts",
			"dir", q.dir, "err", err)
	}
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return fmt.Errorf("list directory: %w", err)
	}
	var firsts []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, tmpExt) {
			os.Remove(filepath.Join(q.dir, name))
			continue
		}
		if n, ok := parseSegName(name); ok && e.Type().IsRegular() {
			firsts = append(firsts, n)
		}
	}
	slices.Sort(firsts)

	var segs []segment
	for i, first := range firsts {
		last := i == len(firsts)-1
		s, lost, err := q.loadSegment(first, last, head)
		if err != nil {
			return err
		}
		dropped += lost
		if n := len(segs); n > 0 && s.first < segs[n-1].end {
			// Sequence numbers must grow from one segment to the next;
			// keep the file aside for inspection rather than guess.
			aside := q.segPath(first) + ".overlap"
			q.log.Error("queue: segment overlaps the one before it; moved aside",
				"segment", first, "previous_end", segs[n-1].end, "moved_to", aside)
			if err := os.Rename(q.segPath(first), aside); err != nil {
				return fmt.Errorf("move overlapping segment aside: %w", err)
			}
			continue
		}
		segs = append(segs, s)
	}
	// Count the readings between segments (lost with damaged or missing
	// files) and before the first one, when the head says they were never
	// acknowledged.
	for i := 1; i < len(segs); i++ {
		from := max(segs[i-1].end, head)
		if segs[i].first > from {
			lost := int64(segs[i].first - from)
			dropped += lost
			q.log.Error("queue: readings missing between segments", "from", from, "to", segs[i].first, "lost", lost)
		}
	}
	if len(segs) > 0 && headOK && head < segs[0].first {
		// A full queue deleted them but the head was not saved after.
		dropped += int64(segs[0].first - head)
	}
	if len(segs) > 0 {
		head = max(head, segs[0].first)
	}
	q.head, q.dropped = head, dropped

	// Keep segments with unacknowledged readings, and always the last.
	var keep []segment
	for i, s := range segs {
		if i < len(segs)-1 && (s.end <= head || s.end == s.first) {
			if err := os.Remove(q.segPath(s.first)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove acknowledged segment: %w", err)
			}
			continue
		}
		keep = append(keep, s)
	}
	q.segs = keep
	if n := len(q.segs); n == 0 || q.segs[n-1].end < head {
		// Readings the head says were appended are gone (a lost tail);
		// new ones must be numbered after the head.
		if n > 0 {
			q.log.Warn("queue: the head is past the last reading; starting a new segment",
				"head", head, "last", q.segs[n-1].end)
			q.bytes = 0
			os.Remove(q.segPath(q.segs[n-1].first))
			q.segs = nil
		}
		f, err := q.createSegment(head)
		if err != nil {
			return err
		}
		q.cur = f
		q.segs = []segment{{first: head, end: head, size: int64(segHeaderLen)}}
	} else {
		s := q.segs[n-1]
		f, err := os.OpenFile(q.segPath(s.first), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open segment for writing: %w", err)
		}
		if _, err := f.Seek(s.size, io.SeekStart); err != nil {
			f.Close()
			return fmt.Errorf("seek segment %d: %w", s.first, err)
		}
		q.cur = f
	}
	for _, s := range q.segs {
		q.bytes += s.size
	}
	return q.persistHead()
}

// loadSegment checks one segment file and truncates it after its last good
// record. It returns the estimated number of unacknowledged readings lost
// when the last segment is damaged; other losses show as gaps between
// segments.
func (q *Queue) loadSegment(first uint64, last bool, head uint64) (segment, int64, error) {
	path := q.segPath(first)
	data, err := os.ReadFile(path)
	if err != nil {
		return segment{}, 0, fmt.Errorf("read segment: %w", err)
	}
	end, dmg := scanSegment(data, first, &q.dec)
	if dmg == nil {
		return segment{first: first, end: end, size: int64(len(data))}, 0, nil
	}
	var lost int64
	lostBytes := int64(len(data)) - dmg.off
	switch {
	case dmg.torn && last:
		q.log.Warn("queue: cut off an unfinished record at the end of the last segment (a crash during append)",
			"segment", first, "offset", dmg.off, "bytes", lostBytes, "reason", dmg.reason)
	case last:
		// Nothing says how many readings the lost bytes held: estimate
		// from the good part of the segment.
		good := dmg.off - int64(segHeaderLen)
		per := int64(minReadingLen + 2)
		if end > first && good > 0 {
			per = max(1, good/int64(end-first))
		}
		est := max(1, lostBytes/per)
		if end >= head {
			lost = est
		}
		q.log.Error("queue: damaged record in the last segment; the rest of the segment is lost",
			"segment", first, "offset", dmg.off, "bytes", lostBytes, "reason", dmg.reason, "estimated_readings", est)
	default:
		q.log.Error("queue: damaged record; the rest of the segment is lost (counted against the next segment)",
			"segment", first, "offset", dmg.off, "bytes", lostBytes, "reason", dmg.reason)
	}
	if err := q.truncateSegment(path, dmg.off); err != nil {
		return segment{}, 0, err
	}
	return segment{first: first, end: end, size: max(dmg.off, int64(segHeaderLen))}, lost, nil
}

// truncateSegment cuts a segment file at off, restoring its magic when off
// falls inside it.
func (q *Queue) truncateSegment(path string, off int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open segment for repair: %w", err)
	}
	defer f.Close()
	if off < int64(segHeaderLen) {
		off = int64(segHeaderLen)
		if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
			return fmt.Errorf("repair segment %s: %w", path, err)
		}
	}
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("truncate segment %s: %w", path, err)
	}
	if q.opts.Sync == SyncAlways {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync segment %s: %w", path, err)
		}
	}
	return nil
}

// scanSegment checks the records of a segment file that starts at first. It
// returns the sequence number after the last good record, and where and why
// the file stops being good, or nil when all of it is.
func scanSegment(data []byte, first uint64, dec *decoder) (uint64, *damage) {
	if len(data) < segHeaderLen || string(data[:segHeaderLen]) != segMagic {
		torn := len(data) < segHeaderLen && (bytes.HasPrefix([]byte(segMagic), data) || allZero(data))
		return first, &damage{off: 0, torn: torn, reason: "bad segment magic"}
	}
	off, seq := segHeaderLen, first
	bad := func(reason string) (uint64, *damage) {
		return seq, &damage{off: int64(off), torn: allZero(data[off:]), reason: reason}
	}
	for off < len(data) {
		rest := len(data) - off
		if rest < recHeaderLen {
			return seq, &damage{off: int64(off), torn: true, reason: "record header cut short"}
		}
		n, crc := recordHeader(data[off:])
		if uint64(n) > uint64(rest-recHeaderLen) {
			return seq, &damage{off: int64(off), torn: true, reason: "record cut short"}
		}
		p := data[off+recHeaderLen : off+recHeaderLen+int(n)]
		if crcOf(p) != crc {
			d := &damage{off: int64(off), reason: "CRC mismatch"}
			// A last record that fills the file to its end was cut
			// short by a crash before its bytes reached the disk.
			d.torn = off+recHeaderLen+int(n) == len(data) || allZero(data[off:])
			return seq, d
		}
		rs, cnt, err := recordMeta(p)
		if err != nil {
			return bad(err.Error())
		}
		if rs != seq {
			return bad(fmt.Sprintf("sequence number %d, want %d", rs, seq))
		}
		if _, _, _, err := dec.decode(p, cnt, 0, nil); err != nil {
			return bad(err.Error())
		}
		seq += uint64(cnt)
		off += recHeaderLen + int(n)
	}
	return seq, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// readHead reads the head file. ok is false when it exists but is damaged.
func readHead(dir string) (head uint64, dropped int64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, headFile))
	if err != nil {
		return 0, 0, false, err
	}
	if len(b) != headLen || string(b[:4]) != headMagic {
		return 0, 0, false, fmt.Errorf("head file: %d bytes, not a head", len(b))
	}
	if crcOf(b[:headLen-4]) != binary.LittleEndian.Uint32(b[headLen-4:]) {
		return 0, 0, false, errors.New("head file: CRC mismatch")
	}
	d := binary.LittleEndian.Uint64(b[12:])
	if d > 1<<62 {
		return 0, 0, false, errors.New("head file: impossible dropped count")
	}
	return binary.LittleEndian.Uint64(b[4:]), int64(d), true, nil
}

// persistHead writes the head file atomically: a temporary file, fsync,
// rename over the old one, fsync of the directory.
func (q *Queue) persistHead() error {
	q.headMu.Lock()
	defer q.headMu.Unlock()
	q.mu.Lock()
	head, dropped := q.head, q.dropped
	q.mu.Unlock()
	b := make([]byte, 0, headLen)
	b = append(b, headMagic...)
	b = binary.LittleEndian.AppendUint64(b, head)
	b = binary.LittleEndian.AppendUint64(b, uint64(dropped))
	b = binary.LittleEndian.AppendUint32(b, crcOf(b))
	sync := q.opts.Sync == SyncAlways
	tmp := filepath.Join(q.dir, headFile+tmpExt)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(q.dir, headFile))
	}
	if err == nil && sync {
		err = syncDir(q.dir)
	}
	if err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	return nil
}

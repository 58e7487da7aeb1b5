package ledger

import (
	"context"
	"fmt"

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
// background, and hands them to the writer.
func (l *Log) scanWatermarks() {
	defer close(l.scanDone)
	w := newWatermarks()
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
	l.wmReady <- w // buffered: never blocks
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

package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// Sink writes one batch of valid readings, in canonical units, and says what
// it did with them. Run calls it from one goroutine at a time, never
// concurrently. It must not keep the slice after it returns (Run reuses it),
// and it should return soon after ctx is done. A store.Readings.Write bound
// to a site is a Sink.
type Sink func(ctx context.Context, readings []cim.Reading) (store.WriteResult, error)

// Options configures Run.
type Options struct {
	// Catalogue validates and normalises readings. Required.
	Catalogue *cim.Catalogue
	// Now is the clock that bounds readings from the future; nil means
	// time.Now. It is read once per batch.
	Now func() time.Time
	// AssetExists says whether an asset belongs to the site; a reading of
	// an unknown asset is rejected with field "asset". nil means every asset
	// exists.
	AssetExists func(asset string) bool
	// BatchSize is the number of readings per Sink call; 0 means 50,000.
	BatchSize int
	// DryRun validates only: it counts the valid rows as Accepted and
	// calls no Sink.
	DryRun bool
	// MaxErrors is the number of RowErrors kept in detail in the Report;
	// the rest are only counted. 0 means 1000; negative keeps none.
	MaxErrors int
	// Progress, when set, is called from Run's goroutine with the number
	// of rows decoded so far after every BatchSize rows, and once at the
	// end. nil means no progress reports.
	Progress func(rows int64)
}

// DefaultBatchSize is the readings per Sink call when Options.BatchSize is 0.
const DefaultBatchSize = 50_000

// DefaultMaxErrors is the errors kept when Options.MaxErrors is 0.
const DefaultMaxErrors = 1000

// Report counts what Run did. When Run returns nil and the Sink counts every
// reading it is given, Rows = Accepted + Duplicate + Corrected + Rejected;
// after an error, rows of batches the Sink did not acknowledge are in Rows
// only.
type Report struct {
	Rows                           int64 // rows decoded, good and bad
	Accepted, Duplicate, Corrected int64 // as the Sink reported (store.WriteResult)
	Rejected                       int64 // rows that failed decoding or validation
	Errors                         []RowError
	ErrorsTruncated                int64 // rejected rows not in Errors
}

// Run reads every row of dec, validates it with Catalogue.Normalize, rejects
// rows of unknown assets, and writes valid readings to sink in batches of
// BatchSize. Decoding and validating go on in the calling goroutine while the
// previous batch is being written in another (two batches in flight at most),
// so the store works while the next batch decodes; Run returns only after
// that goroutine has ended.
//
// A RowError from dec, or a row that fails validation, is counted in the
// Report and decoding goes on. Run stops at the first error of another kind
// and returns it with the report so far: a decoder error (usually an
// *InputError), a Sink error, or the context's error. After a decoder error
// the unfinished batch is not written, so an input that fits in one batch is
// written wholly or not at all. Readings the Sink acknowledged stay counted.
// Run cannot interrupt a Read that blocks: to stop one, close the reader.
func Run(ctx context.Context, dec Decoder, sink Sink, opts Options) (Report, error) {
	opts, err := opts.withDefaults(sink)
	if err != nil {
		return Report{}, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{
		opts: opts,
		w:    &writer{ctx: wctx, cancel: cancel, sink: sink},
		v:    validator{cat: opts.Catalogue, exists: opts.AssetExists, now: opts.Now()},
	}
	stopped, decErr := r.decode(dec)
	if !stopped && decErr == nil && len(r.batch) > 0 {
		r.w.send(r.batch, true)
	}
	res, sinkErr := r.w.close()
	rep := r.rep
	rep.Accepted += int64(res.Accepted)
	rep.Duplicate += int64(res.Duplicate)
	rep.Corrected += int64(res.Corrected)
	if opts.Progress != nil && rep.Rows%int64(opts.BatchSize) != 0 {
		opts.Progress(rep.Rows)
	}
	switch {
	case sinkErr != nil:
		return rep, fmt.Errorf("write readings: %w", sinkErr)
	case stopped:
		return rep, fmt.Errorf("ingest: %w", wctx.Err())
	case decErr != nil:
		return rep, fmt.Errorf("decode input: %w", decErr)
	}
	return rep, nil
}

// withDefaults checks the options and fills in the defaults.
func (o Options) withDefaults(sink Sink) (Options, error) {
	switch {
	case o.Catalogue == nil:
		return o, errors.New("ingest: no catalogue")
	case sink == nil && !o.DryRun:
		return o, errors.New("ingest: no sink")
	case o.BatchSize < 0:
		return o, fmt.Errorf("ingest: batch size %d is negative", o.BatchSize)
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxErrors == 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// runner is the state of one Run on the decoding side.
type runner struct {
	opts  Options
	rep   Report // Accepted, Duplicate and Corrected come from w at the end
	v     validator
	w     *writer
	batch []cim.Reading // being filled
}

// decode reads, validates and batches rows until the input ends, the decoder
// fails (decErr), or the context ends (stopped): cancelled by the caller, or
// by the writer after a Sink error.
func (r *runner) decode(dec Decoder) (stopped bool, decErr error) {
	done := r.w.ctx.Done()
	for {
		if r.rep.Rows&255 == 0 {
			select {
			case <-done:
				return true, nil
			default:
			}
		}
		row, err := dec.Next()
		switch {
		case err == nil:
			r.rep.Rows++
			if !r.add(&row) {
				return true, nil
			}
		case err == io.EOF:
			return false, nil
		default:
			re, ok := asRowError(err)
			if !ok {
				return false, err
			}
			r.rep.Rows++
			r.rep.reject(*re, r.opts.MaxErrors)
		}
		if r.opts.Progress != nil && r.rep.Rows%int64(r.opts.BatchSize) == 0 {
			r.opts.Progress(r.rep.Rows)
		}
	}
}

// asRowError finds the *RowError in err. It is a function of its own so that
// the variable errors.As needs is allocated only when there is an error.
func asRowError(err error) (*RowError, bool) {
	var re *RowError
	ok := errors.As(err, &re)
	return re, ok
}

// add validates a row and batches its reading, handing a full batch to the
// writer. It reports false when the context ended while waiting for an empty
// batch.
func (r *runner) add(row *Row) bool {
	rd, re, ok := r.v.check(row)
	switch {
	case !ok:
		r.rep.reject(re, r.opts.MaxErrors)
		return true
	case r.opts.DryRun:
		r.rep.Accepted++
		return true
	}
	if len(r.batch) == cap(r.batch) {
		r.batch = grow(r.batch, r.opts.BatchSize)
	}
	r.batch = append(r.batch, rd)
	if len(r.batch) < r.opts.BatchSize {
		return true
	}
	r.w.send(r.batch, false)
	r.batch, ok = r.w.take()
	r.v.now = r.opts.Now()
	return ok
}

// grow doubles the capacity of a full batch, up to size: a small request
// allocates little, and a big batch is copied only a few times before it
// reaches its size and is reused.
func grow(b []cim.Reading, size int) []cim.Reading {
	n := min(max(2*cap(b), 256), size)
	if n <= cap(b) {
		n = cap(b) + 1
	}
	return append(make([]cim.Reading, 0, n), b...)
}

// reject counts a bad row and keeps its error while there is room.
func (r *Report) reject(e RowError, keep int) {
	r.Rejected++
	if len(r.Errors) < keep {
		r.Errors = append(r.Errors, e)
	} else {
		r.ErrorsTruncated++
	}
}

// validator checks decoded rows.
type validator struct {
	cat       *cim.Catalogue
	exists    func(string) bool
	lastAsset string // the last asset found to exist
	now       time.Time
}

// check validates a row and returns its reading, or the problem.
func (v *validator) check(row *Row) (cim.Reading, RowError, bool) {
	fail := func(field, value, reason string) (cim.Reading, RowError, bool) {
		if len(value) > maxValueLen {
			value = clip([]byte(value))
		}
		return cim.Reading{}, RowError{Pos: row.Pos, PosKind: row.PosKind, Field: field, Value: value, Reason: reason}, false
	}
	in := row.Input
	if row.RawValue != "" {
		// Text for a value: a state name, or a number in a JSON string.
		// An unknown quantity is left for Normalize to report.
		if q, ok := v.cat.Lookup(in.Quantity); ok {
			x, err := q.ParseValue(row.RawValue)
			if err != nil {
				reason := "not a number"
				if len(q.States) > 0 {
					reason = "neither a number nor one of " + strings.Join(q.States, ", ")
				}
				return fail("value", row.RawValue, reason)
			}
			in.Value = x
		}
	}
	rd, err := v.cat.Normalize(in, v.now)
	if err != nil {
		var fe *cim.FieldError
		if errors.As(err, &fe) {
			return fail(fe.Field, fe.Value, fe.Reason)
		}
		return fail("", "", err.Error())
	}
	if v.exists != nil && rd.Asset != v.lastAsset {
		if !v.exists(rd.Asset) {
			return fail("asset", rd.Asset, "unknown asset")
		}
		v.lastAsset = rd.Asset
	}
	return rd, RowError{}, true
}

// writer runs the Sink in its own goroutine, started with the first full
// batch; a run that fits in one batch calls the Sink from Run's goroutine.
// Batches travel over full to the goroutine and come back empty over free;
// there are two, so one fills while the other is written.
type writer struct {
	ctx    context.Context
	cancel context.CancelFunc
	sink   Sink

	started bool
	full    chan []cim.Reading
	free    chan []cim.Reading
	done    chan struct{}

	// Owned by the goroutine until done is closed, by Run before it starts.
	res store.WriteResult
	err error
}

// take returns an empty batch, waiting while both batches are being
// written; ok is false when the context ends first.
func (w *writer) take() (b []cim.Reading, ok bool) {
	if !w.started {
		return nil, true
	}
	select {
	case b = <-w.free:
		return b, true
	case <-w.ctx.Done():
		return nil, false
	}
}

// send hands a batch over for writing. The first batch that is not the last
// starts the writing goroutine; a last batch without one is written at once.
func (w *writer) send(b []cim.Reading, last bool) {
	if !w.started {
		if last {
			w.write(b)
			return
		}
		w.started = true
		w.full = make(chan []cim.Reading, 2)
		w.free = make(chan []cim.Reading, 2)
		w.done = make(chan struct{})
		w.free <- nil // the second batch, allocated as it fills
		go w.loop()
	}
	w.full <- b
}

func (w *writer) loop() {
	defer close(w.done)
	for b := range w.full {
		w.write(b)
		w.free <- b[:0]
	}
}

func (w *writer) write(b []cim.Reading) {
	if w.err != nil {
		return
	}
	if err := w.ctx.Err(); err != nil {
		w.err = err
		return
	}
	res, err := w.sink(w.ctx, b)
	if err != nil {
		w.err = err
		w.cancel() // stop decoding
		return
	}
	w.res = w.res.Add(res)
}

// close waits for every batch sent to be written and returns the totals.
func (w *writer) close() (store.WriteResult, error) {
	if w.started {
		close(w.full)
		<-w.done
	}
	return w.res, w.err
}

package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/gridlink/gridlink/store"
)

// entry is one reading of a group with the request it came from.
type entry struct {
	row
	req int32 // index of the request in the group
	seq int32 // position in the group, to keep the order of equal keys
}

// key names one stored reading.
type key struct {
	id int32
	t  int64
}

// What a commit does with a distinct (series, time).
const (
	unchanged uint8 = iota // the same value is stored
	inserted               // nothing is stored
	updated                // another value is stored
)

// commit writes a group in one transaction and returns each request's
// counts. The readings are applied in the group's order: each is counted
// against the value stored when it comes, which may be one written earlier
// in the group.
//
// The transaction first locks the group's series (see lockSeries), so no
// other writer can change them until it commits, and learns each series'
// newest time. Readings newer than that are new; the others are looked up.
// New readings are then inserted (with COPY straight into the table when
// there are many), changed ones updated, and the rollups of the touched
// periods brought up to date.
func (s *Store) commit(ctx context.Context, group []*writeReq) ([]store.WriteResult, error) {
	results := make([]store.WriteResult, len(group))
	var ents []entry
	for ri, r := range group {
		for _, rw := range r.rows {
			ents = append(ents, entry{row: rw, req: int32(ri), seq: int32(len(ents))})
		}
	}
	slices.SortFunc(ents, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.t, b.t), cmp.Compare(a.seq, b.seq))
	})
	// finals holds the last value of each distinct (series, time), sorted;
	// firsts[i] is the index in ents of its first reading.
	finals := make([]row, 0, len(ents))
	firsts := make([]int, 0, len(ents))
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && ents[j].id == ents[i].id && ents[j].t == ents[i].t {
			j++
		}
		finals = append(finals, ents[j-1].row)
		firsts = append(firsts, i)
		i = j
	}

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return results, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit it is a no-op

	newest, err := lockSeries(ctx, tx, finals)
	if err != nil {
		return results, err
	}
	old, err := storedValues(ctx, tx, finals, newest)
	if err != nil {
		return results, err
	}
	status := make([]uint8, len(finals))
	var fresh, changed []row
	for i, f := range finals {
		v, ok := old[key{f.id, f.t}]
		switch {
		case !ok:
			status[i] = inserted
			fresh = append(fresh, f)
		case v != f.v:
			status[i] = updated
			changed = append(changed, f)
		}
	}
	if err := insertReadings(ctx, tx, fresh); err != nil {
		return results, err
	}
	if err := updateReadings(ctx, tx, changed); err != nil {
		return results, err
	}
	if err := updateRollups(ctx, tx, finals, status); err != nil {
		return results, err
	}
	if err := tx.Commit(ctx); err != nil {
		return results, fmt.Errorf("commit: %w", err)
	}

	for k, i := range firsts {
		j := len(ents)
		if k+1 < len(firsts) {
			j = firsts[k+1]
		}
		prev, has := old[key{ents[i].id, ents[i].t}]
		for _, e := range ents[i:j] {
			r := &results[e.req]
			switch {
			case !has:
				r.Accepted++
			case prev == e.v:
				r.Duplicate++
			default:
				r.Corrected++
			}
			prev, has = e.v, true
		}
	}
	return results, nil
}

// lockSeries locks the group's series, in id order, for the rest of the
// transaction, and returns the newest time stored for each that has
// readings. Writers of the same series, in this process or another, thus
// take turns: what the transaction reads of them stays true until it
// commits, and a rollup is only recomputed by a transaction that sees every
// committed reading of its series.
func lockSeries(ctx context.Context, tx pgx.Tx, finals []row) (map[int32]int64, error) {
	var ids []int32
	for _, f := range finals {
		if len(ids) == 0 || ids[len(ids)-1] != f.id {
			ids = append(ids, f.id)
		}
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM series WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids); err != nil {
		return nil, fmt.Errorf("lock series: %w", err)
	}
	// A statement of its own: in READ COMMITTED it sees what the writers
	// we waited for committed, which the locking statement's snapshot,
	// taken before the wait, does not.
	rows, err := tx.Query(ctx, `
		SELECT k.id, (SELECT r.t FROM readings r WHERE r.series_id = k.id ORDER BY r.t DESC LIMIT 1)
		FROM unnest($1::int4[]) AS k(id)`, ids)
	if err != nil {
		return nil, fmt.Errorf("newest readings: %w", err)
	}
	newest := make(map[int32]int64, len(ids))
	var (
		id int32
		t  *int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &t}, func() error {
		if t != nil {
			newest[id] = *t
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("newest readings: %w", err)
	}
	return newest, nil
}

// storedValues returns the values stored for the readings that are not
// newer than their series' newest reading (the others cannot be stored).
func storedValues(ctx context.Context, tx pgx.Tx, finals []row, newest map[int32]int64) (map[key]float64, error) {
	out := make(map[key]float64)
	var (
		ids []int32
		ts  []int64
	)
	for _, f := range finals {
		if n, ok := newest[f.id]; ok && f.t <= n {
			ids, ts = append(ids, f.id), append(ts, f.t)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	// OFFSET 0 keeps the planner from flattening the lateral subquery, so
	// each key is one probe of the primary key whatever the table's size.
	rows, err := tx.Query(ctx, `
		SELECT k.series_id, k.t, r.v
		FROM unnest($1::int4[], $2::int8[]) AS k(series_id, t)
		CROSS JOIN LATERAL (SELECT x.v FROM readings x WHERE x.series_id = k.series_id AND x.t = k.t OFFSET 0) r`,
		ids, ts)
	if err != nil {
		return nil, fmt.Errorf("read stored values: %w", err)
	}
	var (
		k key
		v float64
	)
	if _, err := pgx.ForEachRow(rows, []any{&k.id, &k.t, &v}, func() error {
		out[k] = v
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read stored values: %w", err)
	}
	return out, nil
}

// columns splits rows into the three arrays the queries take.
func columns(rows []row) ([]int32, []int64, []float64) {
	ids := make([]int32, len(rows))
	ts := make([]int64, len(rows))
	vs := make([]float64, len(rows))
	for i, r := range rows {
		ids[i], ts[i], vs[i] = r.id, r.t, r.v
	}
	return ids, ts, vs
}

// insertReadings inserts readings known not to be stored, sorted by series
// and time.
func insertReadings(ctx context.Context, tx pgx.Tx, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	if len(rows) >= copyThreshold {
		src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			return []any{rows[i].id, rows[i].t, rows[i].v}, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"series_id", "t", "v"}, src); err != nil {
			return fmt.Errorf("copy readings: %w", err)
		}
		return nil
	}
	ids, ts, vs := columns(rows)
	if _, err := tx.Exec(ctx, `
		INSERT INTO readings (series_id, t, v) SELECT * FROM unnest($1::int4[], $2::int8[], $3::float8[])`,
		ids, ts, vs); err != nil {
		return fmt.Errorf("insert readings: %w", err)
	}
	return nil
}

// updateReadings replaces the values of stored readings.
func updateReadings(ctx context.Context, tx pgx.Tx, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	ids, ts, vs := columns(rows)
	if _, err := tx.Exec(ctx, `
		UPDATE readings r SET v = k.v
		FROM unnest($1::int4[], $2::int8[], $3::float8[]) AS k(series_id, t, v)
		WHERE r.series_id = k.series_id AND r.t = k.t`,
		ids, ts, vs); err != nil {
		return fmt.Errorf("update readings: %w", err)
	}
	return nil
}

package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// EnergySource is where SealEnergy reads the 15-minute register deltas:
// the platform's store (store.Readings satisfies it).
type EnergySource interface {
	Aggregate(ctx context.Context, sel store.Selector, step time.Duration, agg store.Agg, fn store.SeriesFunc) error
}

// registerQuantities are the cumulative registers whose 15-minute
// increases SealEnergy records, in the order it seals them.
var registerQuantities = [...]string{"energy_active_import", "energy_active_export", "ev_energy_register"}

// Interval is the length of an energy entry's interval: the European
// imbalance settlement period.
const Interval = 15 * time.Minute

// recheck is how far back SealEnergy looks for late readings.
const recheck = 48 * time.Hour

// sealed is one interval's value as the readings give it now.
type sealed struct {
	asset, subject, quantity string
	start                    int64
	wh                       float64
}

// SealEnergy records the 15-minute energy of ledger assets: for each asset
// marked for the ledger and each register quantity it has (total phase),
// the register increase over every quarter hour of the last 48 h that
// ended more than Config.Grace before now. An interval not logged yet gets
// an entry of rev 0; one whose value changed since (late readings) a new
// entry of the next rev. It returns how many entries it appended. Assets
// whose pseudonym key was erased are skipped.
func (l *Log) SealEnergy(ctx context.Context, now time.Time, assets []cim.Asset, src EnergySource) (int, error) {
	step := Interval.Milliseconds()
	to := floorDiv(now.Add(-l.grace).UnixMilli(), step) * step
	from := floorDiv(now.Add(-recheck).UnixMilli(), step) * step
	if to <= from {
		return 0, nil
	}
	total := cim.PhaseTotal
	bySite := make(map[string][]sealed)
	var sites []string
	for _, a := range assets {
		if !a.Ledger || a.CheckLedger() != nil {
			continue
		}
		var subject string
		for _, q := range registerQuantities {
			sel := store.Selector{Site: a.Site, Asset: a.ID, Quantity: q, Phase: &total, From: from, To: to}
			var points []cim.Point
			err := src.Aggregate(ctx, sel, Interval, store.AggDelta, func(_ store.Series, ps []cim.Point) error {
				points = append(points, ps...)
				return nil
			})
			if err != nil {
				return 0, fmt.Errorf("seal energy: %s of asset %q of site %q: %w", q, a.ID, a.Site, err)
			}
			if len(points) == 0 {
				continue
			}
			if subject == "" {
				s, err := l.subject(ctx, a.Site, a.ID)
				if errors.Is(err, ErrErased) {
					l.log.Warn("ledger: energy of an erased asset not sealed", "site", a.Site, "asset", a.ID)
					break
				}
				if err != nil {
					return 0, fmt.Errorf("seal energy: %w", err)
				}
				subject = s
			}
			if _, ok := bySite[a.Site]; !ok {
				sites = append(sites, a.Site)
			}
			for _, p := range points {
				bySite[a.Site] = append(bySite[a.Site], sealed{a.ID, subject, q, p.Time, p.Value})
			}
		}
	}
	n := 0
	for _, site := range sites {
		m, err := l.sealSite(ctx, site, bySite[site])
		n += m
		if err != nil {
			return n, err
		}
	}
	if n > 0 {
		l.log.Info("ledger: energy sealed", "entries", n, "to", cim.TimeOf(to))
	}
	return n, nil
}

// sealSite appends the changed intervals of one site in one transaction.
func (l *Log) sealSite(ctx context.Context, site string, vals []sealed) (int, error) {
	n := 0
	err := l.st.UpdateLedger(ctx, func(tx store.LedgerTx) error {
		b := newBuilder(ctx, tx)
		for _, v := range vals {
			k := store.LedgerKey{Site: site, Asset: v.asset, Quantity: v.quantity, Time: v.start}
			e, found, err := tx.LastEntry(ctx, KindEnergy, k)
			if err != nil {
				return fmt.Errorf("look up energy %s: %w", keyText(k), err)
			}
			rev := 0
			if found {
				if e.Value == v.wh {
					continue
				}
				d, err := EntryOf(e).Decode()
				if err != nil {
					return fmt.Errorf("energy %s: stored %w", keyText(k), err)
				}
				rev = d.Rev + 1
			}
			data, err := EncodeEnergy(Energy{
				Site: site, Subject: v.subject, Quantity: v.quantity,
				Start: v.start, End: v.start + Interval.Milliseconds(), Wh: v.wh, Rev: rev,
			})
			if err != nil {
				return fmt.Errorf("energy %s: %w", keyText(k), err)
			}
			err = b.add(store.LedgerEntry{
				Kind: KindEnergy, Site: site, Data: data,
				Asset: v.asset, Quantity: v.quantity, Time: v.start, Value: v.wh,
			}, tlog.RecordHash(data))
			if err != nil {
				return err
			}
		}
		if len(b.entries) == 0 {
			return nil
		}
		if err := tx.Append(ctx, b.entries, b.hashes); err != nil {
			return fmt.Errorf("append %d energy entries: %w", len(b.entries), err)
		}
		n = len(b.entries)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("seal energy of site %q: %w", site, err)
	}
	return n, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

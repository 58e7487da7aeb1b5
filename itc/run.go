package itc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/cim"
)

// DefaultWindow is the observation window when Options.Window is zero.
const DefaultWindow = 20 * time.Second

// grace is how long after a window the runner still waits for its last
// readings to become queryable: a gateway sends once a second.
const grace = 3 * time.Second

// truthMargin is how far past each edge of the window the device truth is
// fetched: readings stamped at a window's edge belong to the cycle beyond
// it, and must meet that cycle's value, not its neighbour's.
const truthMargin = grace + 2*time.Second

// Options tune a run.
type Options struct {
	// Window is the observation window shared by all cases (default 20 s);
	// each fault case gets a window of its own.
	Window time.Duration
	// Progress, when set, is called as cases start and finish and every
	// second while observing.
	Progress func(Progress)
	// Faults injects the fault of a fault case; nil reports fault cases
	// not_run ("needs --simulate").
	Faults FaultInjector
	// Logger; nil discards.
	Logger *slog.Logger
}

// Progress is one progress report of a run.
type Progress struct {
	Case    string // "" while observing every case at once
	Stage   string // "start", "observe", "evaluate", "done"
	Done    int    // cases decided so far
	Total   int
	Message string
}

// FaultInjector does to the system what a fault case asks, on one site;
// undo puts it back. --simulate and the demo provide one.
type FaultInjector interface {
	Inject(ctx context.Context, fault string, site string) (undo func(context.Context) error, err error)
}

// ClockInjector is an optional part of a FaultInjector that sets a site's
// gateway clock offset ahead of true time, for a clock_offset case: the
// offset is the case's, which Inject does not carry. Undo sets it right.
type ClockInjector interface {
	InjectClock(ctx context.Context, site string, offset time.Duration) (undo func(context.Context) error, err error)
	// StampedByGateway says whether the gateway stamps an asset's readings
	// with its own clock: a device sending its own time is untouched by
	// the gateway's clock, and is not what a clock_offset case checks.
	StampedByGateway(site, asset string) bool
}

// Diagnoser is an optional part of a FaultInjector that knows the
// components it runs: Diagnose says, in a few words, what is wrong with
// a site's gateway and devices ("" when nothing is known), for the reason
// of a suspended or failed case.
type Diagnoser interface {
	Diagnose(site string) string
}

// unit is one case on one site: the assets under test and the outcome.
type unit struct {
	c      *Case
	site   string
	assets []assetRef
	res    *Result
	// decided is set when a suspension criterion stopped the case.
	decided bool
}

// assetRef is an asset under test and the truth endpoint that knows it.
type assetRef struct {
	asset cim.Asset
	src   *truthSource
}

// Execute runs cases against the platform t names, through its public
// HTTP API, and measures each case's pass criteria. It never hangs: every
// wait is bounded by the window or a case's suspension criteria. The error
// is for a run that could not start at all (a bad target, no sites);
// anything wrong with the system under test is in the results.
func Execute(ctx context.Context, cases []*Case, t Target, opt Options) (*Run, error) {
	cl, err := newClient(t)
	if err != nil {
		return nil, err
	}
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cases = dependencyOrder(cases)
	r := &runner{cl: cl, opt: opt, log: log, cat: cim.Default(), total: len(cases)}
	run := &Run{ID: newRunID(time.Now()), Platform: t.Platform, Start: time.Now().UTC()}
	defer func() { run.End = time.Now().UTC() }()

	// A platform that is not ready suspends every case at once.
	if err := cl.ready(ctx); err != nil {
		for _, c := range cases {
			run.Results = append(run.Results, *r.result(c, "", Suspended, fmt.Sprintf("the platform at %s is not ready: %v", t.Platform, err)))
		}
		return run, nil
	}
	sites, assets, err := r.sites(ctx, t.Sites)
	if err != nil {
		return nil, err
	}
	srcs, srcErrs := r.truths(ctx, t)

	// Each case on each site with assets under test.
	var units []*unit
	byCase := map[*Case][]*unit{}
	ownClock := map[*Case][]string{} // assets left out of a clock case
	clocks, _ := opt.Faults.(ClockInjector)
	for _, c := range cases {
		for _, site := range sites {
			u := &unit{c: c, site: site}
			for _, a := range assets[site] {
				if !slices.Contains(c.Checked(), a.Type) {
					continue
				}
				if c.Fault == "clock_offset" && clocks != nil && !clocks.StampedByGateway(site, a.ID) {
					ownClock[c] = append(ownClock[c], site+"/"+a.ID)
					continue
				}
				// A ledger case is about the assets a site marks for the
				// ledger; the others' readings never go there.
				if c.Pass.Check == "ledger" && !a.Ledger {
					continue
				}
				if src := srcs.lookup(site, a.ID); src != nil {
					u.assets = append(u.assets, assetRef{asset: a, src: src})
				}
			}
			if len(u.assets) > 0 {
				u.res = r.result(c, site, "", "")
				units = append(units, u)
				byCase[c] = append(byCase[c], u)
				if c.Fault != "" {
					break // a fault is done to one site
				}
			}
		}
	}

	// The source's cases share one window; each fault case has its own,
	// for a fault disturbs what is observed.
	var shared, faults []*unit
	for _, u := range units {
		if u.c.Fault == "" {
			shared = append(shared, u)
		} else {
			faults = append(faults, u)
		}
	}
	if len(shared) > 0 {
		r.observe(ctx, shared, opt.Window, nil)
	}

	// Decide in dependency order; a fault case is observed only once its
	// dependencies passed.
	status := map[string]map[string]Status{} // case → site → status
	passedAnywhere := map[string]bool{}
	selected := map[string]bool{}
	for _, c := range cases {
		selected[c.ID] = true
	}
	for _, c := range cases {
		us := byCase[c]
		if len(us) == 0 {
			var types []string
			for _, t := range c.Checked() {
				types = append(types, string(t))
			}
			what := strings.Join(types, " or ")
			if c.Pass.Check == "ledger" {
				what += " marked for the ledger"
			}
			reason := fmt.Sprintf("no %s with a device truth on sites %s", what, strings.Join(sites, ", "))
			if len(srcErrs) > 0 {
				reason += " (" + strings.Join(srcErrs, "; ") + ")"
			}
			if own := ownClock[c]; len(own) > 0 {
				reason += "; " + strings.Join(own, ", ") + " send their own time, which the gateway's clock does not touch"
			}
			run.Results = append(run.Results, *r.result(c, "", NotRun, reason))
			r.progress(c.ID, "done", reason)
			continue
		}
		for _, u := range us {
			if dep := failedDependency(c, u.site, status, passedAnywhere, selected); dep != "" {
				u.res.Status, u.res.Reason, u.res.Assets = NotRun, "dependency "+dep+" failed", nil
			} else if c.Fault != "" {
				if opt.Faults == nil {
					u.res.Status, u.res.Reason = NotRun, "fault case "+c.Fault+" needs --simulate: the runner cannot do it to a system it does not run"
				} else {
					r.observe(ctx, []*unit{u}, opt.Window, opt.Faults)
				}
			}
			if u.res.Status == "" {
				r.evaluate(ctx, u)
			}
			if status[c.ID] == nil {
				status[c.ID] = map[string]Status{}
			}
			status[c.ID][u.site] = u.res.Status
			if u.res.Status == Passed {
				passedAnywhere[c.ID] = true
			}
			if u.res.End.IsZero() {
				u.res.End = time.Now().UTC()
			}
			run.Results = append(run.Results, *u.res)
		}
		r.progress(c.ID, "done", "")
	}
	return run, nil
}

// runner holds what one Execute shares.
type runner struct {
	cl    *client
	opt   Options
	log   *slog.Logger
	cat   *cim.Catalogue
	mu    sync.Mutex
	done  int
	total int

	// arrivals are the first arrival per series and time on the live
	// feed; lastArrival the last arrival per site and asset.
	arrivals  map[string]map[arrivalKey]arrival
	lastSeen  map[string]time.Time
	ledgerAt  int64 // ledger size at the window's start; -1 unknown
	ledgerErr error
	window    [2]time.Time
}

type arrivalKey struct {
	series cim.SeriesKey
	time   int64
}

func (r *runner) result(c *Case, site string, st Status, reason string) *Result {
	now := time.Now().UTC()
	res := &Result{Case: c.ID, Name: c.Name, Site: site, Status: st, Reason: reason, Start: now}
	if st != "" {
		res.End = now
	}
	return res
}

func (r *runner) progress(id, stage, msg string) {
	if stage == "done" {
		r.done++
	}
	if r.opt.Progress != nil {
		r.opt.Progress(Progress{Case: id, Stage: stage, Done: r.done, Total: r.total, Message: msg})
	}
}

// sites returns the sites to test, sorted, with their assets.
func (r *runner) sites(ctx context.Context, want []string) ([]string, map[string][]cim.Asset, error) {
	sites := slices.Clone(want)
	if len(sites) == 0 {
		list, err := r.cl.sites(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list the sites: %w", err)
		}
		for _, s := range list {
			sites = append(sites, s.ID)
		}
		if len(sites) == 0 {
			return nil, nil, errors.New("the key can list no site; give --site or a key that reads one")
		}
	}
	slices.Sort(sites)
	sites = slices.Compact(sites)
	assets := map[string][]cim.Asset{}
	for _, s := range sites {
		as, err := r.cl.assets(ctx, s)
		if err != nil {
			return nil, nil, fmt.Errorf("assets of site %s: %w", s, err)
		}
		assets[s] = as
	}
	return sites, assets, nil
}

// truthSet is the truth endpoints, each for every site or one.
type truthSet []siteTruth

type siteTruth struct {
	site string // "" for every site
	src  *truthSource
}

// lookup returns the endpoint that knows an asset of a site: one for that
// site first, then one for every site.
func (ts truthSet) lookup(site, asset string) *truthSource {
	for _, pass := range []bool{true, false} {
		for _, t := range ts {
			if (t.site == site) == pass && (pass || t.site == "") && t.src.knownAsset[asset] {
				return t.src
			}
		}
	}
	return nil
}

// truths probes the truth endpoints. An entry "site=URL" is the truth of
// that site's devices only: asset ids repeat across sites.
func (r *runner) truths(ctx context.Context, t Target) (truthSet, []string) {
	var out truthSet
	var errs []string
	hc := r.cl.http
	for _, e := range t.Truth {
		site, base := SplitTruth(e)
		src, err := probeTruth(ctx, base, hc, time.Now())
		if err != nil {
			r.log.Warn("truth endpoint", "url", base, "err", err)
			errs = append(errs, err.Error())
			continue
		}
		out = append(out, siteTruth{site: site, src: src})
	}
	return out, errs
}

// SplitTruth splits a truth endpoint "site=URL" into its site and URL; a
// plain URL has no site.
func SplitTruth(e string) (site, base string) {
	if i, j := strings.Index(e, "="), strings.Index(e, "://"); i > 0 && (j < 0 || i < j) {
		return e[:i], e[i+1:]
	}
	return "", e
}

// observe watches the platform for one window: the live feed of each
// unit's site for arrival times, /readyz every second, and each unit's
// no-data bound. With faults, the fault of the (single) unit is injected
// at the start and undone after twice its no-data bound.
func (r *runner) observe(ctx context.Context, units []*unit, window time.Duration, faults FaultInjector) {
	start := time.Now()
	var undo func(context.Context) error
	noDataFrom := start
	if faults != nil {
		u := units[0]
		// The fault lasts FaultFor (platform_down), else the whole
		// window; after an outage the window goes on long enough for
		// the gateway's retry (at most 30 s apart) to send its queue.
		lasts := time.Duration(u.c.FaultFor)
		if lasts > 0 {
			window = lasts + max(window, 35*time.Second)
		} else {
			lasts = window
		}
		r.progress(u.c.ID, "start", "injecting "+u.c.Fault+" on "+u.site)
		var err error
		if ci, ok := faults.(ClockInjector); ok && u.c.Fault == "clock_offset" {
			undo, err = ci.InjectClock(ctx, u.site, time.Duration(u.c.ClockOffset))
		} else {
			undo, err = faults.Inject(ctx, u.c.Fault, u.site)
		}
		if err != nil {
			u.res.Status, u.res.Reason = NotRun, fmt.Sprintf("could not inject %s on %s: %v", u.c.Fault, u.site, err)
			return
		}
		undoAt := time.Now().Add(lasts)
		if lasts < window {
			noDataFrom = undoAt
		}
		defer func() {
			if undo != nil {
				r.undo(u, undo)
			}
		}()
		r.window = [2]time.Time{start, start.Add(window)}
		r.watch(ctx, units, window, noDataFrom, func(now time.Time) {
			if undo != nil && !now.Before(undoAt) {
				r.undo(u, undo)
				undo = nil
			}
		})
		return
	}
	for _, u := range units {
		r.progress(u.c.ID, "start", fmt.Sprintf("%d assets on %s", len(u.assets), u.site))
	}
	r.window = [2]time.Time{start, start.Add(window)}
	r.watch(ctx, units, window, noDataFrom, nil)
}

func (r *runner) undo(u *unit, undo func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := undo(ctx); err != nil {
		r.log.Warn("undo fault", "case", u.c.ID, "fault", u.c.Fault, "err", err)
		if u.res.Reason == "" {
			u.res.Reason = fmt.Sprintf("undoing %s failed: %v", u.c.Fault, err)
		}
	}
}

// watch is observe's loop: it ends after window plus grace, or early once
// every unit is suspended.
func (r *runner) watch(ctx context.Context, units []*unit, window time.Duration, noDataFrom time.Time, tick func(time.Time)) {
	start := r.window[0]
	r.arrivals = map[string]map[arrivalKey]arrival{}
	r.lastSeen = map[string]time.Time{}
	r.ledgerAt, r.ledgerErr = -1, nil
	if slices.ContainsFunc(units, func(u *unit) bool { return u.c.Pass.Check == "ledger" }) {
		r.ledgerAt, r.ledgerErr = r.cl.ledgerSize(ctx)
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	connected := map[string]bool{}
	sites := map[string]bool{}
	for _, u := range units {
		sites[u.site] = true
	}
	var mu sync.Mutex
	streamErr := map[string]error{}
	assetsOf := map[string][]string{}
	for _, u := range units {
		for _, a := range u.assets {
			assetsOf[u.site] = append(assetsOf[u.site], a.asset.ID)
		}
	}
	for site := range sites {
		r.arrivals[site] = map[arrivalKey]arrival{}
		wg.Go(func() {
			// Reopened until the window ends: a platform_down fault
			// breaks it, and the readings held back by the outage are
			// timed when they arrive after it. Each opening, the first
			// too, looks up what came before it: a platform stopped as
			// the window began is reached only after the gateways may
			// have sent their queues.
			r.cl.follow(sctx, site, time.Now, func() {
				mu.Lock()
				connected[site] = true
				mu.Unlock()
				r.catchUp(sctx, site, assetsOf[site], start, &mu)
			}, func(a arrival) {
				mu.Lock()
				k := arrivalKey{a.series, a.time}
				if _, seen := r.arrivals[site][k]; !seen {
					r.arrivals[site][k] = a
				}
				r.lastSeen[site+"\x00"+a.series.Asset] = a.at
				mu.Unlock()
			}, func() {
				// A burst (a gateway's queue after an outage) overflowed
				// the feed: time what it dropped by looking it up.
				r.catchUp(sctx, site, assetsOf[site], start, &mu)
			}, func(err error) {
				mu.Lock()
				streamErr[site] = err
				mu.Unlock()
			})
		})
	}
	defer func() {
		stop()
		wg.Wait()
	}()

	end := start.Add(window + grace)
	var notReady time.Time // since when /readyz fails; zero while it answers
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		now := time.Now()
		if tick != nil {
			tick(now)
		}
		// The platform not ready stops the cases that name it among their
		// suspension criteria; the others (FLT1.01, whose fault it is)
		// go on, bounded by their window and no-data bound.
		err := r.cl.ready(ctx)
		switch {
		case err != nil && notReady.IsZero():
			notReady = now
			r.log.Info("platform not ready", "err", err)
		case err == nil && !notReady.IsZero():
			r.log.Info("platform ready again", "after", now.Sub(notReady).Round(100*time.Millisecond))
			notReady = time.Time{}
		}
		if err != nil {
			for _, u := range units {
				if !u.decided && slices.Contains(u.c.Suspension.ComponentDown, ComponentPlatform) {
					u.decided = true
					u.res.Status, u.res.Reason = Suspended, fmt.Sprintf("the platform stopped being ready at %s: %v", now.UTC().Format("15:04:05"), err)
				}
			}
		}
		mu.Lock()
		for _, u := range units {
			nd := time.Duration(u.c.Suspension.NoDataWithin)
			if u.decided || nd <= 0 || !connected[u.site] || now.Sub(noDataFrom) < nd {
				continue
			}
			var silent []string
			for _, a := range u.assets {
				if last, ok := r.lastSeen[u.site+"\x00"+a.asset.ID]; !ok || last.Before(noDataFrom) {
					silent = append(silent, a.asset.ID)
				}
			}
			// A fault case stops only when nothing at all arrives: the
			// fault may silence one device on purpose.
			if len(silent) == len(u.assets) || (u.c.Fault == "" && len(silent) > 0) {
				u.decided = true
				u.res.Status, u.res.Reason = Suspended, r.noData(u, silent, nd)
			}
		}
		mu.Unlock()
		open := 0
		for _, u := range units {
			if !u.decided {
				open++
			}
		}
		if r.opt.Progress != nil {
			r.opt.Progress(Progress{Stage: "observe", Done: r.done, Total: r.total,
				Message: fmt.Sprintf("%s of %s observed, %d cases open", now.Sub(start).Truncate(time.Second), window, open)})
		}
		if open == 0 || !now.Before(end) {
			break
		}
		select {
		case <-ctx.Done():
			for _, u := range units {
				if !u.decided {
					u.decided = true
					u.res.Status, u.res.Reason = Suspended, "the run was stopped: "+ctx.Err().Error()
				}
			}
			return
		case <-t.C:
		}
	}
	mu.Lock()
	for site, err := range streamErr {
		if !connected[site] && err != nil {
			r.log.Warn("live feed unavailable; delays are not measured", "site", site, "err", err)
		}
	}
	mu.Unlock()
}

// catchUp times the readings of a site's assets that became queryable
// while its live feed was down (a platform restart) or that the feed
// dropped (a burst it could not keep up with): the feed has no replay, and
// they were queryable by now at the latest. The feed subscribes before it
// answers, so whatever it misses from now on is already queryable here.
func (r *runner) catchUp(ctx context.Context, site string, assets []string, from time.Time, mu *sync.Mutex) {
	at := time.Now()
	n := 0
	for _, id := range slices.Compact(slices.Sorted(slices.Values(assets))) {
		got, err := r.cl.readings(ctx, site, id, from, at.Add(time.Minute))
		if err != nil {
			r.log.Warn("readings missed by the live feed", "site", site, "asset", id, "err", err)
			continue
		}
		mu.Lock()
		for _, x := range got {
			k := arrivalKey{x.SeriesKey, x.Time}
			if _, seen := r.arrivals[site][k]; !seen {
				r.arrivals[site][k] = arrival{series: x.SeriesKey, time: x.Time, at: at}
				n++
				if last := r.lastSeen[site+"\x00"+id]; at.After(last) {
					r.lastSeen[site+"\x00"+id] = at
				}
			}
		}
		mu.Unlock()
	}
	r.log.Info("live feed back", "site", site, "readings_missed", n)
}

// noData words a suspension for assets of which nothing arrived.
func (r *runner) noData(u *unit, silent []string, nd time.Duration) string {
	names := silent
	if len(names) > 3 {
		names = append(slices.Clone(names[:3]), fmt.Sprintf("%d more", len(silent)-3))
	}
	msg := fmt.Sprintf("no reading of %s/%s reached the platform within %v", u.site, strings.Join(names, ", "), nd)
	if d, ok := r.opt.Faults.(Diagnoser); ok {
		if s := d.Diagnose(u.site); s != "" {
			msg += " (" + s + ")"
		}
	}
	return msg
}

// evaluate measures each asset of a unit against the truth of the last
// window and decides the unit.
func (r *runner) evaluate(ctx context.Context, u *unit) {
	r.progress(u.c.ID, "evaluate", u.site)
	from, to := r.window[0], r.window[1]
	if u.decided {
		return
	}
	var ledger map[string][]cim.Reading
	if u.c.Pass.Check == "ledger" {
		err := r.ledgerErr
		if err == nil {
			ledger, err = r.cl.ledgerReadings(ctx, max(r.ledgerAt, 0))
		}
		if err != nil {
			u.res.Status, u.res.Reason = Failed, "the ledger cannot be read: "+err.Error()
			return
		}
	}
	// A gateway clock ahead stamps each reading shift after the device's
	// cycle: the platform's window is read that much later and matched
	// with the cycles shift earlier.
	var shift time.Duration
	if u.c.Fault == "clock_offset" {
		shift = time.Duration(u.c.ClockOffset)
	}
	var reasons []string
	suspended := false
	measuredAny := false
	resetsSeen := 0
	for _, a := range u.assets {
		truth, err := a.src.cycles(ctx, a.asset.ID, from.Add(-truthMargin), to.Add(truthMargin))
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("the truth of %s cannot be read: %v", a.asset.ID, err))
			suspended = true
			continue
		}
		var got []cim.Reading
		if ledger != nil {
			got = inSpan(ledger[ledgerKey(u.site, a.asset.ID)], from.Add(-time.Second), to.Add(grace))
		} else if got, err = r.cl.readings(ctx, u.site, a.asset.ID, from.Add(shift-time.Second), to.Add(shift+grace)); err != nil {
			reasons = append(reasons, fmt.Sprintf("the readings of %s cannot be read: %v", a.asset.ID, err))
			suspended = true
			continue
		}
		stored := got // as the platform stamps them
		if shift != 0 {
			got = shifted(got, shift)
		}
		var arr []arrival
		for _, x := range r.arrivals[u.site] {
			x.time -= shift.Milliseconds()
			if x.series.Asset == a.asset.ID && !cim.TimeOf(x.time).Before(from) && cim.TimeOf(x.time).Before(to) {
				arr = append(arr, x)
			}
		}
		m := measure(a.asset.ID, from, to, truth, got, arr, r.cat)
		if u.c.Fault != "" && m.Cycles == 0 {
			continue // the device the fault silenced
		}
		measuredAny = true
		u.res.Assets = append(u.res.Assets, m.AssetResult)
		why := judge(u.c, u.site, m)
		if why == "" && u.c.Pass.EnergyDelta && ledger == nil {
			var resets int
			why, resets, err = r.cl.checkEnergy(ctx, u.site, a.asset.ID, stored, r.cat)
			resetsSeen += resets
			if err != nil {
				reasons = append(reasons, fmt.Sprintf("the energy of %s cannot be read: %v", a.asset.ID, err))
				suspended = true
				continue
			}
		}
		if why != "" {
			if shift != 0 {
				why += fmt.Sprintf(" (readings stamped %v ahead by the gateway's clock, matched with the cycles %v earlier)", shift, shift)
			}
			reasons = append(reasons, why)
		}
	}
	u.res.End = time.Now().UTC()
	switch {
	case suspended:
		u.res.Status = Suspended
	case !measuredAny:
		u.res.Status = Failed
		reasons = append(reasons, "no device of the case recorded a measuring cycle in the window")
	case len(reasons) == 0 && u.c.Fault == "counter_reset" && u.c.Pass.EnergyDelta && resetsSeen == 0:
		// Passing without a reset would prove nothing.
		u.res.Status = Failed
		reasons = append(reasons, "no energy register of the site dropped in the window: the counter reset was not seen")
	case len(reasons) > 0:
		u.res.Status = Failed
	default:
		u.res.Status = Passed
	}
	// What the platform refused explains a clock case that failed: a stamp
	// beyond cim.MaxFutureSkew is refused, naming its time.
	if shift != 0 && len(reasons) > 0 {
		if d, ok := r.opt.Faults.(Diagnoser); ok {
			if s := d.Diagnose(u.site); s != "" && !strings.Contains(u.res.Reason, s) {
				reasons = append(reasons, s)
			}
		}
	}
	if len(reasons) > 0 {
		if len(reasons) > 3 {
			reasons = append(reasons[:3], fmt.Sprintf("and %d more assets", len(reasons)-3))
		}
		msg := strings.Join(reasons, "; ")
		if u.res.Reason != "" {
			msg = u.res.Reason + "; " + msg
		}
		u.res.Reason = msg
	}
}

// shifted returns copies of readings stamped shift earlier.
func shifted(rs []cim.Reading, shift time.Duration) []cim.Reading {
	out := make([]cim.Reading, len(rs))
	for i, x := range rs {
		x.Time -= shift.Milliseconds()
		out[i] = x
	}
	return out
}

// inSpan keeps readings with times in [from, to).
func inSpan(rs []cim.Reading, from, to time.Time) []cim.Reading {
	var out []cim.Reading
	for _, x := range rs {
		if x.Time >= from.UnixMilli() && x.Time < to.UnixMilli() {
			out = append(out, x)
		}
	}
	return out
}

// failedDependency names a dependency of c that did not pass on the site
// (or, if it did not run there, anywhere); "" when none. A dependency not
// among the selected cases is the caller's choice and is not checked.
func failedDependency(c *Case, site string, status map[string]map[string]Status, passedAnywhere, selected map[string]bool) string {
	for _, d := range c.Dependencies {
		if !selected[d] {
			continue
		}
		if st, ok := status[d][site]; ok {
			if st != Passed {
				return d
			}
			continue
		}
		if !passedAnywhere[d] {
			return d
		}
	}
	return ""
}

// dependencyOrder orders cases so that each comes after its dependencies,
// keeping the given order otherwise.
func dependencyOrder(cases []*Case) []*Case {
	byID := map[string]*Case{}
	for _, c := range cases {
		byID[c.ID] = c
	}
	var out []*Case
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(c *Case)
	visit = func(c *Case) {
		if state[c.ID] != 0 {
			return // done, or a cycle the catalogue's loader reports
		}
		state[c.ID] = 1
		for _, d := range c.Dependencies {
			if dc, ok := byID[d]; ok {
				visit(dc)
			}
		}
		state[c.ID] = 2
		out = append(out, c)
	}
	for _, c := range cases {
		visit(c)
	}
	return out
}

func newRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

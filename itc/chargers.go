package itc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gridlink/gridlink/chargepoint"
	"github.com/gridlink/gridlink/cim"
)

// ChargerChoice is how Simulate runs a charging point as a simulated OCPP
// charger.
type ChargerChoice struct {
	// ID is the OCPP charge point identity; "" means "{site}-{asset}",
	// unique across sites as the central system requires.
	ID string
	// Quirks are the vendor habits the charger acts out.
	Quirks []chargepoint.Quirk
}

// SimIDTag is the RFID tag the simulated EVs present; Simulate registers
// it for each site with a simulated charger.
const SimIDTag = "GRIDLINK-SIM"

// simChargers are the simulated chargers and their truth endpoint, one
// path /{site}/{asset} per charger.
type simChargers struct {
	ln    net.Listener
	srv   *http.Server
	mux   *http.ServeMux
	cps   []*chargepoint.ChargePoint
	truth []string // "site=URL" per charger
	wg    sync.WaitGroup
}

// startChargers registers every chosen charging point of the sites with
// the platform (a fresh password each, and the site's RFID tag) and runs
// it as a simulated charger connected to ocppURL, with an EV plugged in
// for the whole run.
func (s *Simulation) startChargers(ctx context.Context, cl *client, sites []string, assets map[string][]cim.Asset,
	ocppURL string, choose func(string, cim.Asset) (ChargerChoice, bool), seed *uint64) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("charger truth: %w", err)
	}
	sc := &simChargers{ln: ln, mux: http.NewServeMux()}
	sc.srv = &http.Server{Handler: sc.mux, ReadHeaderTimeout: 5 * time.Second}
	go sc.srv.Serve(ln)
	s.chargers = sc
	for _, site := range sites {
		tagged := false
		for _, a := range assets[site] {
			if a.Type != cim.ChargingPoint {
				continue
			}
			ch, ok := choose(site, a)
			if !ok {
				continue
			}
			if ch.ID == "" {
				ch.ID = unsafeRE.ReplaceAllString(site+"-"+a.ID, "-")
			}
			if !tagged {
				if err := cl.do(ctx, http.MethodPost, "/api/v1/sites/"+site+"/idtags", nil, map[string]string{"tag": SimIDTag}, nil); err != nil {
					return fmt.Errorf("RFID tag of site %s: %w", site, err)
				}
				tagged = true
			}
			*seed++
			log := s.log.With("part", "charger", "site", site, "asset", a.ID, "charge_point", ch.ID)
			if err := sc.start(ctx, s.runCtx, cl, site, a.ID, ch, ocppURL, s.cycle, *seed, log); err != nil {
				return err
			}
		}
	}
	return nil
}

func (sc *simChargers) start(ctx, runCtx context.Context, cl *client, site, asset string, ch ChargerChoice,
	ocppURL string, cycle time.Duration, seed uint64, log *slog.Logger) error {
	var b [12]byte
	rand.Read(b[:]) // never fails
	password := hex.EncodeToString(b[:])
	reg := map[string]string{"id": ch.ID, "password": password, "asset": asset}
	if err := cl.do(ctx, http.MethodPost, "/api/v1/sites/"+site+"/chargepoints", nil, reg, nil); err != nil {
		return fmt.Errorf("register charger %s (asset %s of %s): %w", ch.ID, asset, site, err)
	}
	cp, err := chargepoint.New(chargepoint.Config{
		ID: ch.ID, Asset: asset, URL: strings.TrimRight(ocppURL, "/"), Password: password, Quirks: ch.Quirks,
		MeterValueInterval: cycle, HeartbeatInterval: 30 * time.Second,
		IDTags: []string{SimIDTag}, Seed: seed,
		// An EV plugs in at once and charges for the whole run.
		Plan:         chargepoint.SessionPlan{{After: 100 * time.Millisecond, CapacityWh: 1e6}},
		ReconnectMax: 5 * time.Second,
	}, log)
	if err != nil {
		return fmt.Errorf("charger %s (asset %s of %s): %w", ch.ID, asset, site, err)
	}
	path := "/" + site + "/" + asset
	sc.mux.Handle(path+"/", http.StripPrefix(path, cp.TruthHandler()))
	sc.cps = append(sc.cps, cp)
	sc.truth = append(sc.truth, site+"=http://"+sc.ln.Addr().String()+path)
	sc.wg.Add(1)
	go func() {
		defer sc.wg.Done()
		if err := cp.Run(runCtx); err != nil && runCtx.Err() == nil {
			log.Warn("charger stopped", "err", err)
		}
	}()
	return nil
}

// close waits for the chargers, which end with the simulation's run
// context, and stops their truth endpoint.
func (sc *simChargers) close() {
	sc.wg.Wait()
	sc.srv.Close()
}

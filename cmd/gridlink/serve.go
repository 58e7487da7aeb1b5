//go:build !edge

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/inventory"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/ocpp"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/postgres"
	"github.com/gridlink/gridlink/store/sqlite"
)

// AdminKeyFile is where serve writes the admin key it makes on first start.
const AdminKeyFile = "admin.key"

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(stderr, args)
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	p, err := startPlatform(ctx, cfg, stdout, logger)
	if err != nil {
		return err
	}
	defer p.Close()
	api, where := p.api, p.where

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	fmt.Fprintf(stdout, "gridlink: serving on %s://%s (store: %s)\n", scheme, ln.Addr(), where)
	logger.Info("serving", "addr", ln.Addr().String(), "store", where)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Let in-flight requests finish; live streams are ended by api.Close.
	logger.Info("shutting down")
	api.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// runningPlatform is the platform started in-process without its HTTP
// listener: the store, the API handler, the energy ledger with its sealer
// and, when configured, the OCPP central system. serve and demo share it.
type runningPlatform struct {
	st    store.Store
	where string // "sqlite" or "postgres"
	api   *platform.Server
	// ocppAddr is the central system's address ("" when not started).
	ocppAddr string
	// closers run in reverse order on Close.
	closers []func()
}

// Close stops what startPlatform started, in reverse order: the central
// system, the sealer and the ledger, the API, then the store.
func (p *runningPlatform) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// startPlatform opens the store, loads cfg.Sites, makes the first admin
// key, and starts the API, the energy ledger (with its sealer) and the
// OCPP central system, printing what serve prints. On error, what was
// started is stopped.
func startPlatform(ctx context.Context, cfg serveConfig, stdout io.Writer, logger *slog.Logger) (_ *runningPlatform, err error) {
	p := &runningPlatform{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st, where, err := openStore(ctx, storeOptions{data: cfg.Data, url: cfg.Store, noFsync: cfg.NoFsync, logger: logger})
	if err != nil {
		return nil, err
	}
	p.st, p.where = st, where
	p.closers = append(p.closers, func() {
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	})
	if cfg.Sites != "" {
		if err := loadSites(ctx, st, cfg.Sites, logger); err != nil {
			return nil, err
		}
	}
	if err := ensureAdminKey(ctx, st, cfg.Data, stdout); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api, err := platform.New(platform.Config{
		Store: st, Catalogue: cim.Default(), Logger: logger, Registerer: reg,
		MaxBodyBytes: cfg.MaxBodyBytes,
	})
	if err != nil {
		return nil, err
	}
	p.api = api
	p.closers = append(p.closers, func() { api.Close() })

	lg, err := startLedger(ctx, cfg, st, api, stdout, logger)
	if err != nil {
		return nil, err
	}
	sealCtx, stopSealer := context.WithCancel(ctx)
	sealerDone := make(chan struct{})
	go func() {
		defer close(sealerDone)
		runSealer(sealCtx, lg, st, time.Minute, logger.With("part", "ledger"))
	}()
	p.closers = append(p.closers, func() {
		// The sealer ends before the log closes; the log closes (signing
		// its last checkpoint) before the store does.
		stopSealer()
		<-sealerDone
		if err := lg.Close(); err != nil {
			logger.Error("close ledger", "err", err)
		}
	})

	if cfg.OCPPListen != "" {
		d := ocppDeps{st: st, api: api, now: time.Now}
		cs, err := ocpp.New(ocpp.Config{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey},
			ocpp.Deps{Registry: d, Sink: d, Sessions: d, IDTags: d, Logger: logger.With("part", "ocpp")})
		if err != nil {
			return nil, fmt.Errorf("ocpp: %w", err)
		}
		addr, err := cs.Start(cfg.OCPPListen)
		if err != nil {
			return nil, fmt.Errorf("ocpp: %w", err)
		}
		p.closers = append(p.closers, func() { cs.Close() })
		api.SetChargers(ocppCommands{cs})
		scheme := "ws"
		if cfg.TLSCert != "" {
			scheme = "wss"
		}
		p.ocppAddr = addr
		fmt.Fprintf(stdout, "gridlink: ocpp central system on %s://%s/ocpp/{chargePointId}\n", scheme, addr)
	}
	return p, nil
}

// loadSites puts every site and asset of the site files in dir.
func loadSites(ctx context.Context, st store.Store, dir string, logger *slog.Logger) error {
	files, err := inventory.LoadDir(os.DirFS(dir))
	if err != nil {
		return fmt.Errorf("sites: %w", err)
	}
	for _, f := range files {
		if err := st.PutSite(ctx, f.Site); err != nil {
			return err
		}
		for _, a := range f.Assets {
			a.Site = f.Site.ID
			if err := st.PutAsset(ctx, a); err != nil {
				return err
			}
		}
		logger.Info("loaded site", "site", f.Site.ID, "assets", len(f.Assets))
	}
	return nil
}

// ensureAdminKey makes the first admin key when the store has none and
// the data directory holds no admin.key: it is printed once and written to
// admin.key with mode 0600.
func ensureAdminKey(ctx context.Context, st store.Store, dataDir string, stdout io.Writer) error {
	path := filepath.Join(dataDir, AdminKeyFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Scope == string(auth.ScopeAdmin) && !k.Revoked() {
			fmt.Fprintf(stdout, "gridlink: the store has admin keys but %s is missing; make a new one with `gridlink keys create --scope admin`\n", path)
			return nil
		}
	}
	secret, key := auth.NewKey("", string(auth.ScopeAdmin), "admin (first start)", time.Now())
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin key: %w", err)
	}
	if err := st.CreateKey(ctx, key); err != nil {
		os.Remove(path)
		return err
	}
	fmt.Fprintf(stdout, "gridlink: created admin key (shown once, also in %s):\n%s\n", path, secret)
	return nil
}

// LedgerKeyFile is where serve keeps the energy ledger's log key when
// --ledger-key does not name a file: made on first start.
const LedgerKeyFile = "ledger.key"

// The store drivers keep the energy ledger.
var (
	_ store.Ledger = (*sqlite.Store)(nil)
	_ store.Ledger = (*postgres.Store)(nil)
)

// startLedger opens the energy ledger over the store with the log key
// (made on first start), prints the log's public key and connects the
// platform to it.
func startLedger(ctx context.Context, cfg serveConfig, st store.Store, api *platform.Server, stdout io.Writer, logger *slog.Logger) (*ledger.Log, error) {
	lst, ok := st.(store.Ledger)
	if !ok {
		return nil, fmt.Errorf("ledger: the store (%T) keeps no ledger", st)
	}
	path := cfg.LedgerKey
	if path == "" {
		path = filepath.Join(cfg.Data, LedgerKeyFile)
	}
	key, vkey, created, err := loadLedgerKey(path)
	if err != nil {
		return nil, err
	}
	var wits []note.Verifier
	for _, w := range cfg.LedgerWitnesses.Keys() {
		v, err := note.NewVerifier(w)
		if err != nil {
			return nil, fmt.Errorf("--ledger-witness %q: %w", w, err)
		}
		wits = append(wits, v)
	}
	lg, err := ledger.New(lst, ledger.Config{Origin: cfg.LedgerOrigin, Key: key, Witnesses: wits, Logger: logger.With("part", "ledger")})
	if err != nil {
		return nil, err
	}
	if err := api.SetLedger(platform.LedgerConfig{Log: lg, Key: key, PublicKey: vkey}); err != nil {
		lg.Close()
		return nil, err
	}
	if created {
		fmt.Fprintf(stdout, "gridlink: created the ledger log key in %s\n", path)
	}
	// Nodes sharing a store must share the log key too, or verifiers see
	// checkpoints signed by several keys.
	if cp, err := lg.Latest(ctx); err == nil {
		if v, verr := note.NewVerifier(vkey); verr == nil {
			if _, oerr := note.Open(cp.Note, note.VerifierList(v)); oerr != nil {
				fmt.Fprintf(stdout, "gridlink: warning: the ledger's latest checkpoint (size %d) is not signed by the log key %s; give every node sharing this store the same --ledger-key\n", cp.Size, key.Name())
				logger.Warn("ledger checkpoint signed by another log key", "size", cp.Size, "log_key", key.Name())
			}
		}
	}
	fmt.Fprintf(stdout, "gridlink: ledger log key %s (origin %q, %d witnesses)\n", vkey, cfg.LedgerOrigin, len(wits))
	logger.Info("ledger", "log_key", vkey, "origin", cfg.LedgerOrigin, "witnesses", len(wits))
	return lg, nil
}

// loadLedgerKey reads the log key from path, making one (mode 0600, named
// gridlink-ledger-<6 hex digits>) when the file does not exist. It returns
// the signer and its public key text.
func loadLedgerKey(path string) (note.Signer, string, bool, error) {
	data, err := os.ReadFile(path)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		var b [3]byte
		rand.Read(b[:]) // never fails
		priv, _, gerr := ledger.GenerateKey("gridlink-ledger-" + hex.EncodeToString(b[:]))
		if gerr != nil {
			return nil, "", false, gerr
		}
		data = []byte(priv + "\n")
		// O_EXCL: two nodes starting together on one data directory must
		// not each write a key.
		f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if ferr != nil {
			return nil, "", false, fmt.Errorf("ledger key: %w", ferr)
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, "", false, fmt.Errorf("ledger key: write %s: %w", path, werr)
		}
		created = true
	} else if err != nil {
		return nil, "", false, fmt.Errorf("ledger key: %w", err)
	}
	key, vkey, err := parseLedgerKey(data)
	if err != nil {
		return nil, "", false, fmt.Errorf("ledger key %s: %w", path, err)
	}
	return key, vkey, created, nil
}

// parseLedgerKey reads a signed-note private key file (its first line that
// is not empty) and derives the public key text, which note does not.
func parseLedgerKey(data []byte) (note.Signer, string, error) {
	var skey string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			skey = line
			break
		}
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+") {
		return nil, "", errors.New("not a signed-note private key (PRIVATE+KEY+<name>+<hash>+<base64>; gridlink ledger keygen makes one)")
	}
	key, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("not a valid signed-note private key: %w", err)
	}
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || Ed25519 seed)>
	// (the name has no '+'; the base64 may have).
	parts := strings.SplitN(strings.TrimPrefix(skey, "PRIVATE+KEY+"), "+", 3)
	if len(parts) != 3 {
		return nil, "", errors.New("not a signed-note private key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, "", errors.New("not an Ed25519 signed-note private key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey := parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, pub...))
	v, err := note.NewVerifier(vkey)
	if err != nil || v.KeyHash() != key.KeyHash() || v.Name() != key.Name() {
		return nil, "", errors.New("the public key derived from it does not match it")
	}
	return key, vkey, nil
}

// runSealer records the 15-minute energy of the ledger assets of every
// site now and every interval until ctx ends.
func runSealer(ctx context.Context, lg *ledger.Log, st store.Store, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := sealOnce(ctx, lg, st, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("seal energy records", "err", err)
		case n > 0:
			logger.Info("sealed energy records", "entries", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sealOnce seals the energy records of every site's ledger assets.
func sealOnce(ctx context.Context, lg *ledger.Log, st store.Store, now time.Time) (int, error) {
	sites, err := st.ListSites(ctx)
	if err != nil {
		return 0, fmt.Errorf("list sites: %w", err)
	}
	var assets []cim.Asset
	for _, site := range sites {
		as, err := st.ListAssets(ctx, site.ID)
		if err != nil {
			return 0, fmt.Errorf("list assets of site %q: %w", site.ID, err)
		}
		for _, a := range as {
			if a.Ledger {
				a.Site = site.ID
				assets = append(assets, a)
			}
		}
	}
	if len(assets) == 0 {
		return 0, nil
	}
	return lg.SealEnergy(ctx, now, assets, st)
}

//go:build !edge

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/inventory"
	"github.com/gridlink/gridlink/ocpp"
	"github.com/gridlink/gridlink/platform"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
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

	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, where, err := openStore(ctx, storeOptions{data: cfg.Data, url: cfg.Store, noFsync: cfg.NoFsync, logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()
	if cfg.Sites != "" {
		if err := loadSites(ctx, st, cfg.Sites, logger); err != nil {
			return err
		}
	}
	if err := ensureAdminKey(ctx, st, cfg.Data, stdout); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api, err := platform.New(platform.Config{
		Store: st, Catalogue: cim.Default(), Logger: logger, Registerer: reg,
		MaxBodyBytes: cfg.MaxBodyBytes,
	})
	if err != nil {
		return err
	}
	defer api.Close()

	if cfg.OCPPListen != "" {
		d := ocppDeps{st: st, api: api, now: time.Now}
		cs, err := ocpp.New(ocpp.Config{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey},
			ocpp.Deps{Registry: d, Sink: d, Sessions: d, IDTags: d, Logger: logger.With("part", "ocpp")})
		if err != nil {
			return fmt.Errorf("ocpp: %w", err)
		}
		addr, err := cs.Start(cfg.OCPPListen)
		if err != nil {
			return fmt.Errorf("ocpp: %w", err)
		}
		defer cs.Close()
		api.SetChargers(ocppCommands{cs})
		scheme := "ws"
		if cfg.TLSCert != "" {
			scheme = "wss"
		}
		fmt.Fprintf(stdout, "gridlink: ocpp central system on %s://%s/ocpp/{chargePointId}\n", scheme, addr)
	}

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

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/gateway"
	"github.com/gridlink/gridlink/profile"
)

// runGateway is `gridlink gateway`: the home energy management gateway.
func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "hems.yaml", "gateway configuration `file` (YAML)")
	data := fs.String("data", "", "queue `directory` (overrides the file's data)")
	status := fs.String("status", "", "status page `address` (overrides the file's status.listen; off turns it off)")
	level := fs.String("log-level", "", "log `level`: debug, info, warn, error (overrides the file)")
	profiling := fs.Bool("pprof", false, "serve Go's profiles under /debug/pprof/ on the status page's listener")
	check := fs.Bool("check", false, "check the configuration and its profiles, then exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cat := cim.Default()
	cfg, err := gateway.ReadConfig(*cfgPath, nil)
	if err != nil {
		return err
	}
	set, err := profile.Load(cat, cfg.Profiles)
	if err != nil {
		return err
	}
	if cfg, err = gateway.ReadConfig(*cfgPath, set); err != nil {
		return err
	}
	if *data != "" {
		cfg.Data = *data
	}
	if *status != "" {
		cfg.Status.Listen = *status
	}
	if *level != "" {
		cfg.LogLevel = *level
	}
	if *profiling {
		cfg.Status.Profiling = true
	}
	lvl, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%s: %d devices, configuration and profiles are valid\n", *cfgPath, len(cfg.Devices))
		return nil
	}
	if !cfg.Status.Profiling {
		// Memory profiling's bookkeeping takes about 1.5 MB once the
		// first sample is recorded; a Pi Zero has better uses for it.
		runtime.MemProfileRate = 0
	}
	if os.Getenv("GOGC") == "" {
		// Sized for a Raspberry Pi Zero: the live heap is a few MB, so a
		// tighter collection goal saves a few MB of RAM for little CPU.
		debug.SetGCPercent(50)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	g, err := gateway.Open(ctx, cfg, gateway.Options{Catalogue: cat, Profiles: set, Logger: log})
	if err != nil {
		return err
	}
	if a := g.StatusAddr(); a != "" {
		fmt.Fprintf(stdout, "status page on http://%s/status\n", a)
	}
	if a := g.BrokerAddr(); a != "" {
		fmt.Fprintf(stdout, "mqtt broker on %s\n", a)
	}
	return g.Run(ctx)
}

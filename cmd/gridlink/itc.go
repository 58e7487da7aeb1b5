//go:build !edge

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gridlink/gridlink/itc"
)

// errCasesFailed makes `gridlink itc run` exit 1 once the summary said
// which cases did not pass.
var errCasesFailed = errors.New("not every case passed")

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runITC is `gridlink itc list|run`: the integration test cases of the
// source document as executable checks against a running platform.
func runITC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: gridlink itc list [--dir DIR]")
		fmt.Fprintln(stderr, "       gridlink itc run --platform URL --key KEY [--site S]... [--case ID]... [--truth URL]... [--window 20s] [--report DIR]\n                    [--simulate [--ocpp URL] [--gateway-profiles DIR] [--ingest-key KEY]]")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "list":
		return runITCList(args[1:], stdout, stderr)
	case "run":
		return runITCRun(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "gridlink itc: unknown subcommand %q (want list or run)\n", args[0])
	return errUsage
}

// loadCatalogue reads a user folder of cases, or the embedded catalogue.
func loadCatalogue(dir string) (*itc.Catalogue, error) {
	if dir != "" {
		return itc.Load(dir)
	}
	return itc.Embedded()
}

func runITCList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("itc list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`directory` of case files (default: the embedded catalogue)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cat, err := loadCatalogue(*dir)
	if err != nil {
		return err
	}
	for _, c := range cat.Cases {
		deps := "-"
		if len(c.Dependencies) > 0 {
			deps = strings.Join(c.Dependencies, ",")
		}
		fmt.Fprintf(stdout, "%-8s type %d  %-22s needs %-18s %s\n", c.ID, c.IntegrationType, c.AssetUnderTest, deps, c.Name)
	}
	return nil
}

func runITCRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("itc run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var t itc.Target
	var sites, cases, truth stringList
	fs.StringVar(&t.Platform, "platform", "", "platform base `URL` (required)")
	fs.StringVar(&t.Key, "key", "", "API `key` that reads the sites (admin for --simulate and for storing the run)")
	fs.Var(&sites, "site", "site to test (repeatable; default every site the key lists)")
	fs.Var(&cases, "case", "case `id` to run (repeatable; default the whole catalogue)")
	fs.Var(&truth, "truth", "truth endpoint `URL` of simulators, or SITE=URL for one site's (repeatable)")
	window := fs.Duration("window", itc.DefaultWindow, "observation window")
	report := fs.String("report", "", "`directory` for report.md, junit.xml, report.json and report.html")
	simulate := fs.Bool("simulate", false, "simulate the sites' devices and gateways in this process")
	ocppURL := fs.String("ocpp", "", "with --simulate: the platform's OCPP central system `URL` (ws://host:8887/ocpp); the sites' charging points are then simulated as OCPP chargers")
	gwProfiles := fs.String("gateway-profiles", "", "with --simulate: a `directory` of profiles the gateways load instead of the embedded ones of the same name (a deliberately broken set-up: a wrong register scale)")
	ingestKey := fs.String("ingest-key", "", "with --simulate: the `key` the gateways present instead of a fresh one (a deliberately broken set-up: a wrong key)")
	dir := fs.String("dir", "", "`directory` of case files (default: the embedded catalogue)")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if t.Platform == "" || t.Key == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gridlink itc run: --platform and --key are required")
		fs.PrintDefaults()
		return errUsage
	}
	if (*ocppURL != "" || *gwProfiles != "" || *ingestKey != "") && !*simulate {
		fmt.Fprintln(stderr, "gridlink itc run: --ocpp, --gateway-profiles and --ingest-key shape the simulated set-up: they need --simulate")
		return errUsage
	}
	level, err := parseLevel(*logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cat, err := loadCatalogue(*dir)
	if err != nil {
		return err
	}
	selected := cat.Cases
	if len(cases) > 0 {
		if selected, err = cat.Select(cases); err != nil {
			return err
		}
	}
	t.Sites, t.Truth = sites, truth
	opt := itc.Options{Window: *window, Logger: log, Progress: progressLine(stderr)}
	if *simulate {
		fmt.Fprintln(stderr, "starting simulators and gateways…")
		s, err := itc.Simulate(ctx, t, itc.SimOptions{Seed: 1, OCPP: *ocppURL, GatewayProfiles: *gwProfiles, IngestKey: *ingestKey, Logger: log})
		if err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		defer s.Close()
		t.Truth = append(t.Truth, s.Truth()...)
		opt.Faults = s.Faults()
	}
	run, err := itc.Execute(ctx, selected, t, opt)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr)
	if err := itc.Summary(stdout, run); err != nil {
		return err
	}
	if *report != "" {
		if err := itc.WriteReports(*report, run); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
		fmt.Fprintf(stdout, "reports in %s\n", *report)
		if err := postRun(ctx, t, run); err != nil {
			fmt.Fprintf(stderr, "the run is not stored on the platform: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "run %s stored on the platform\n", run.ID)
		}
	}
	if c := run.Counts(); c[itc.Passed] != len(run.Results) || len(run.Results) == 0 {
		return errCasesFailed
	}
	return nil
}

// progressLine rewrites one status line on stderr.
func progressLine(w io.Writer) func(itc.Progress) {
	return func(p itc.Progress) {
		id := p.Case
		if id == "" {
			id = "all"
		}
		fmt.Fprintf(w, "\r\033[K[%d/%d] %s %s %s", p.Done, p.Total, id, p.Stage, p.Message)
	}
}

// postRun stores the run on the platform (POST /api/v1/itc/runs, admin).
func postRun(ctx context.Context, t itc.Target, run *itc.Run) error {
	body, err := json.Marshal(run)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(t.Platform, "/")+"/api/v1/itc/runs", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("POST /api/v1/itc/runs: %s %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

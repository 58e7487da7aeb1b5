//go:build !edge

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/mod/sumdb/note"

	"github.com/gridlink/gridlink/gateway"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/ledger/audit"
)

// ledgerAudit runs `gridlink ledger verify` and `gridlink ledger witness`.
func ledgerAudit(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	switch sub {
	case "verify":
		return runLedgerVerify(ctx, args, stdout, stderr)
	case "witness":
		return runLedgerWitness(ctx, args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "gridlink ledger: unknown subcommand %q (want keygen, verify or witness)\n", sub)
	return errUsage
}

// vkeys is a repeatable flag of signed-note public keys.
type vkeys []note.Verifier

func (k *vkeys) String() string {
	names := make([]string, 0, len(*k))
	for _, v := range *k {
		names = append(names, v.Name())
	}
	return strings.Join(names, ", ")
}

func (k *vkeys) Set(s string) error {
	v, err := note.NewVerifier(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a public key <name>+<hash>+<base64>", clipFlag(s))
	}
	*k = append(*k, v)
	return nil
}

func clipFlag(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// logKeyOf returns the log key from --log-key or --log-key-file, or, with
// neither, the one the platform serves (said on stderr: it trusts the
// platform for what the check is about).
func logKeyOf(ctx context.Context, c *audit.Client, text, file string, stderr io.Writer) (note.Verifier, error) {
	switch {
	case text != "" && file != "":
		return nil, errors.New("give --log-key or --log-key-file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--log-key-file: %w", err)
		}
		text = string(b)
	case text == "":
		served, err := c.LogKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetch the log key: %w", err)
		}
		fmt.Fprintf(stderr, "warning: trusting the log key the platform serves, %s; pin it with --log-key\n", served)
		text = served
	}
	v, err := note.NewVerifier(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("log key %q: not a public key <name>+<hash>+<base64>", clipFlag(strings.TrimSpace(text)))
	}
	return v, nil
}

// runLedgerVerify is `gridlink ledger verify`.
func runLedgerVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridlink ledger verify --platform URL --key KEY [flags]")
		fmt.Fprintln(stderr, "Exit status 0: no problem found; 1: problems (one a line) or the check could not run.")
		fs.PrintDefaults()
	}
	platform := fs.String("platform", "", "platform base `url` (required)")
	key := fs.String("key", "", "API `key`: read for a site's data, admin for every site's and the signers (default: $GRIDLINK_KEY)")
	logKey := fs.String("log-key", "", "the log's public `key` (default: the one the platform serves, trusted)")
	logKeyFile := fs.String("log-key-file", "", "`file` holding the log's public key")
	var witnesses, signers vkeys
	fs.Var(&witnesses, "witness", "a witness's public `key` whose cosignature the checkpoint must carry (repeatable)")
	fs.Var(&signers, "signer", "a trusted signer's public `key` (repeatable); others are fetched from the platform, which needs an admin key")
	state := fs.String("state", "", "`file` of the checkpoint verified last: the log must extend it (rollback and fork detection); updated when the log checks pass")
	compare := fs.Bool("from-store-readings", true, "compare the ledger with the platform's stored readings and recompute the 15-minute energy")
	origin := fs.String("origin", ledger.DefaultOrigin, "checkpoint `origin` line")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *platform == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *key == "" {
		*key = os.Getenv("GRIDLINK_KEY")
	}
	c := &audit.Client{BaseURL: *platform, Key: *key}
	lk, err := logKeyOf(ctx, c, *logKey, *logKeyFile, stderr)
	if err != nil {
		return err
	}
	opt := audit.VerifyOptions{LogKey: lk, Origin: *origin, Witnesses: witnesses, Signers: signers, State: *state, CompareReadings: *compare}
	var bar *progressbar.ProgressBar
	stage := ""
	if !*quiet {
		opt.Progress = func(s string, done, total int64) {
			if s != stage {
				if bar != nil {
					bar.Finish()
				}
				stage = s
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(s),
					progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			bar.Set64(done)
		}
	}
	rep, err := c.Verify(ctx, opt)
	if bar != nil {
		bar.Finish()
	}
	if rep != nil {
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, p.String())
		}
		for _, n := range rep.Notes {
			fmt.Fprintln(stdout, "note: "+n)
		}
		if err == nil {
			fmt.Fprintf(stdout, "checkpoint of %d entries signed by %s", rep.Size, lk.Name())
			if rep.Previous >= 0 {
				fmt.Fprintf(stdout, ", extends the %d verified before", rep.Previous)
			}
			if rep.StateSaved {
				fmt.Fprintf(stdout, "; state saved to %s", *state)
			}
			fmt.Fprintln(stdout)
			fmt.Fprintln(stdout, rep.Summary())
		}
	}
	if err != nil {
		return err
	}
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("%d problems found", n)
	}
	return nil
}

// runLedgerWitness is `gridlink ledger witness`.
func runLedgerWitness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledger witness", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridlink ledger witness --platform URL --key WITNESS_KEY_FILE --log-key VKEY --state FILE [flags]")
		fmt.Fprintln(stderr, "Exits non-zero on a fork or rollback, keeping the evidence beside the state file.")
		fs.PrintDefaults()
	}
	platform := fs.String("platform", "", "platform base `url` (required)")
	keyFile := fs.String("key", "", "`file` of the witness's private key, from gridlink ledger keygen (required)")
	logKey := fs.String("log-key", "", "the log's public `key` (required, or --log-key-file)")
	logKeyFile := fs.String("log-key-file", "", "`file` holding the log's public key")
	state := fs.String("state", "", "`file` of the last checkpoint cosigned (required)")
	every := fs.Duration("every", time.Minute, "how often to check for a new checkpoint")
	once := fs.Bool("once", false, "one round, then exit")
	origin := fs.String("origin", ledger.DefaultOrigin, "checkpoint `origin` line")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *platform == "" || *keyFile == "" || *state == "" || *logKey == "" && *logKeyFile == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *every <= 0 {
		return fmt.Errorf("--every %v: want a positive duration", *every)
	}
	lvl, err := parseLevel(*level)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	signer, err := gateway.ReadLedgerKey(*keyFile)
	if err != nil {
		return err
	}
	c := &audit.Client{BaseURL: *platform}
	lk, err := logKeyOf(ctx, c, *logKey, *logKeyFile, stderr)
	if err != nil {
		return err
	}
	opt := audit.WitnessOptions{Key: signer, LogKey: lk, Origin: *origin, State: *state, Logger: log}
	t := time.NewTicker(*every)
	defer t.Stop()
	for {
		res, err := c.Witness(ctx, opt)
		var fork *audit.ForkError
		switch {
		case errors.As(err, &fork):
			return err
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil && *once:
			return err
		case err != nil:
			log.Error("witness round failed; retrying", "err", err, "retry_in", *every)
		case *once:
			if res.Cosigned {
				fmt.Fprintf(stdout, "cosigned the checkpoint of %d entries (previous: %d)\n", res.Size, res.Previous)
			} else {
				fmt.Fprintf(stdout, "checkpoint of %d entries already cosigned\n", res.Size)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

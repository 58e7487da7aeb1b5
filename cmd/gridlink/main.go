// Command gridlink connects smart-grid assets to one data platform.
//
//	gridlink demo     everything on one machine: platform, simulated pilot sites, test cases
//	gridlink serve    the platform: ingest, storage, query APIs, live stream
//	gridlink keys     manage API keys
//	gridlink upload   send a batch file (CSV or NDJSON) to the platform
//	gridlink gateway  the home energy management gateway: devices → queue → platform
//	gridlink sim      device simulators on their real protocols
//	gridlink bench    measure ingest and query speed on this machine
//	gridlink ledger   energy ledger keys, verifier and witness
//	gridlink itc      the integration test cases: itc list|run
//
// Run "gridlink COMMAND -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return append(platformCommands(),
		command{"gateway", "run the home energy management gateway (HEMS) of a site", runGateway},
		command{"sim", "simulate devices on their real protocols, with their true values", runSim},
		command{"ledger", "energy ledger: ledger keygen|verify|witness", runLedger},
	)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "gridlink %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "gridlink: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks an error already explained by the flag package.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gridlink COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'gridlink COMMAND -h' for the flags of a command.")
}

// parseFlags parses args into fs, turning flag errors into errUsage.
// Flags may follow the arguments, as in "gridlink upload FILE --site S";
// "--" ends the flags. fs.Args holds the arguments afterwards.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return errUsage
		}
		left := fs.Args()
		if used := len(args) - len(left); len(left) == 0 || used > 0 && args[used-1] == "--" {
			rest = append(rest, left...)
			break
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
	return fs.Parse(append([]string{"--"}, rest...))
}

// parseLevel reads a log level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

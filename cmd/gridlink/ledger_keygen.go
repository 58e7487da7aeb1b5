package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/gridlink/gridlink/ledger"
)

// runLedger is `gridlink ledger keygen|verify|witness`. keygen is in every
// build (a gateway makes its signing key); verify and witness only in the
// platform build (ledgerAudit).
func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: gridlink ledger keygen|verify|witness [flags]")
		fmt.Fprintln(stderr, "  keygen   make a signing key (a gateway's, a witness's)")
		fmt.Fprintln(stderr, "  verify   check a platform's energy ledger against its checkpoint, signatures and stored readings")
		fmt.Fprintln(stderr, "  witness  cosign a platform's checkpoints that extend the last one cosigned")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	sub, args := args[0], args[1:]
	if sub == "keygen" {
		return runLedgerKeygen(args, stdout, stderr)
	}
	return ledgerAudit(ctx, sub, args, stdout, stderr)
}

// runLedgerKeygen is `gridlink ledger keygen --name NAME --out FILE`.
func runLedgerKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ledger keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "key `name`: the signer's id on the platform, e.g. gw-bristol-1 (required)")
	out := fs.String("out", "", "`file` for the private key, written 0600; it must not exist (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gridlink ledger keygen --name NAME --out FILE")
		fs.PrintDefaults()
		return errUsage
	}
	private, public, err := ledger.GenerateKey(*name)
	if err != nil {
		return err
	}
	if err := writeNewFile(*out, []byte(private+"\n")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key written to %s (keep it there; gateway config: ledger: {key: %s})\n", *out, *out)
	fmt.Fprintln(stdout, "public key (register it: POST /api/v1/sites/SITE/signers {\"public_key\": \"…\"}):")
	fmt.Fprintln(stdout, public)
	return nil
}

// writeNewFile writes a secret to a file that must not exist yet: an
// existing key is never overwritten.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: a key is never overwritten; remove it first or choose another file", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

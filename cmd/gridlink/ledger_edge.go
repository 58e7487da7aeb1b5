//go:build edge

package main

import (
	"context"
	"fmt"
	"io"
)

// ledgerAudit: the edge build has only `ledger keygen`.
func ledgerAudit(_ context.Context, sub string, _ []string, _, stderr io.Writer) error {
	if sub == "verify" || sub == "witness" {
		fmt.Fprintf(stderr, "gridlink ledger %s is not in the edge build (-tags edge); use the full gridlink binary\n", sub)
	} else {
		fmt.Fprintf(stderr, "gridlink ledger: unknown subcommand %q (want keygen)\n", sub)
	}
	return errUsage
}

//go:build !edge

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store/sqlite"
)

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gridlink keys create|list|revoke [flags]")
		return errUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data `directory` of the embedded store")
	url := fs.String("store", "", "PostgreSQL `url` instead of the embedded store")
	asJSON := fs.Bool("json", false, "print JSON")
	var site, scope, name *string
	switch sub {
	case "create":
		site = fs.String("site", "", "`site` the key is for (empty for admin)")
		scope = fs.String("scope", "ingest", "`scope`: ingest, read, read:restricted, admin")
		name = fs.String("name", "", "a `label` for the key, e.g. gw-1")
	case "list":
	case "revoke":
		fs.Usage = func() { fmt.Fprintln(stderr, "usage: gridlink keys revoke [flags] KEY-ID"); fs.PrintDefaults() }
	default:
		fmt.Fprintf(stderr, "gridlink keys: unknown subcommand %q (want create, list or revoke)\n", sub)
		return errUsage
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		// A mistyped --data must not make a new, empty store.
		if _, err := os.Stat(filepath.Join(*data, sqlite.FileName)); err != nil {
			return fmt.Errorf("no store in %s (start `gridlink serve --data %s` once, or give --store): %w", *data, *data, err)
		}
	}
	st, _, err := openStore(ctx, storeOptions{data: *data, url: *url, metaOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()

	switch sub {
	case "create":
		if err := auth.CheckGrant(*site, *scope); err != nil {
			return err
		}
		if *site != "" {
			if _, err := st.Site(ctx, *site); err != nil {
				return err
			}
		}
		secret, key := auth.NewKey(*site, *scope, *name, time.Now())
		if err := st.CreateKey(ctx, key); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"id": key.ID, "key": secret, "site": key.Site, "scope": key.Scope, "name": key.Name})
		}
		fmt.Fprintf(stdout, "key %s (site %q, scope %s) — shown once:\n%s\n", key.ID, key.Site, key.Scope, secret)
	case "list":
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			type row struct {
				ID        string     `json:"id"`
				Site      string     `json:"site"`
				Scope     string     `json:"scope"`
				Name      string     `json:"name"`
				CreatedAt time.Time  `json:"created_at"`
				RevokedAt *time.Time `json:"revoked_at,omitempty"`
			}
			rows := make([]row, 0, len(keys))
			for _, k := range keys {
				r := row{k.ID, k.Site, k.Scope, k.Name, k.CreatedAt, nil}
				if k.Revoked() {
					r.RevokedAt = &k.RevokedAt
				}
				rows = append(rows, r)
			}
			return json.NewEncoder(stdout).Encode(rows)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSITE\tSCOPE\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := "-"
			if k.Revoked() {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Site, k.Scope, k.Name, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		if err := st.RevokeKey(ctx, fs.Arg(0), time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
	}
	return nil
}

//go:build !edge

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/postgres"
	"github.com/gridlink/gridlink/store/sqlite"
)

// serveConfig is what `gridlink serve` runs with. A YAML file (--config)
// may hold every field; flags given on the command line win over it.
type serveConfig struct {
	// Data is the data directory: the SQLite database and admin.key.
	Data string `yaml:"data"`
	// Store is empty for the embedded SQLite store in Data, or a
	// postgres:// URL.
	Store string `yaml:"store"`
	// Listen is the address to serve on; port 0 picks a free one.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey, both set, serve HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Sites is a directory of site files (YAML) loaded at start.
	Sites string `yaml:"sites"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// NoFsync skips the fsync at commit (SQLite only): acknowledged readings
	// then survive a crash of the process, not a power cut.
	NoFsync bool `yaml:"no_fsync"`
	// MaxBodyBytes bounds a POST /api/v1/readings body; 0 means 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// OCPPListen, when set, is the address of the OCPP 1.6J central system
	// (charge points connect to ws://ADDR/ocpp/{id}; wss:// with TLS).
	OCPPListen string `yaml:"ocpp_listen"`
	// LedgerKey is the energy ledger's log key file (a signed-note private
	// key); empty means ledger.key in Data, created on first start.
	LedgerKey string `yaml:"ledger_key"`
	// LedgerOrigin is the first line of the ledger's checkpoints.
	LedgerOrigin string `yaml:"ledger_origin"`
	// LedgerWitnesses are the public keys of the witnesses whose
	// cosignatures the ledger accepts, one a line.
	LedgerWitnesses keyList `yaml:"ledger_witnesses"`
}

// keyList is a list of signed-note public keys, one a line: a string, so
// that serveConfig stays comparable. The flag adds one key each time it is
// given; YAML takes a sequence.
type keyList string

// Keys returns the keys of the list.
func (k keyList) Keys() []string {
	if k == "" {
		return nil
	}
	return strings.Split(string(k), "\n")
}

func (k *keyList) String() string { return strings.ReplaceAll(string(*k), "\n", ", ") }

// Set adds a key (flag.Value).
func (k *keyList) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || strings.ContainsAny(v, " \t\n") {
		return fmt.Errorf("%q is not a signed-note public key <name>+<hash>+<base64>", v)
	}
	if *k != "" {
		v = string(*k) + "\n" + v
	}
	*k = keyList(v)
	return nil
}

// UnmarshalYAML takes a sequence of keys.
func (k *keyList) UnmarshalYAML(n *yaml.Node) error {
	var list []string
	if err := n.Decode(&list); err != nil {
		return fmt.Errorf("line %d: ledger_witnesses: want a list of public keys", n.Line)
	}
	*k = ""
	for _, v := range list {
		if err := k.Set(v); err != nil {
			return fmt.Errorf("line %d: ledger_witnesses: %w", n.Line, err)
		}
	}
	return nil
}

func defaultServeConfig() serveConfig {
	return serveConfig{Data: "./data", Listen: "127.0.0.1:8080", LogLevel: "info", LedgerOrigin: "gridlink/ledger"}
}

func (c *serveConfig) flags(fs *flag.FlagSet) *string {
	cfgPath := fs.String("config", "", "YAML config `file` with the same settings (flags win)")
	fs.StringVar(&c.Data, "data", c.Data, "data `directory`")
	fs.StringVar(&c.Store, "store", c.Store, "PostgreSQL `url` (postgres://…); empty means embedded SQLite in the data directory")
	fs.StringVar(&c.Listen, "listen", c.Listen, "`address` to listen on")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate `file` (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS key `file` (PEM)")
	fs.StringVar(&c.Sites, "sites", c.Sites, "`directory` of site files (YAML) to load at start, e.g. examples/pilots")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn, error")
	fs.BoolVar(&c.NoFsync, "no-fsync", c.NoFsync, "do not fsync at commit (SQLite): faster, survives process crashes but not power cuts")
	fs.Int64Var(&c.MaxBodyBytes, "max-body", c.MaxBodyBytes, "largest POST /api/v1/readings body in `bytes` (0 = 1 MiB)")
	fs.StringVar(&c.OCPPListen, "ocpp-listen", c.OCPPListen, "`address` of the OCPP 1.6J central system for charge points (empty: off)")
	fs.StringVar(&c.LedgerKey, "ledger-key", c.LedgerKey, "energy ledger log key `file` (signed-note private key; default DATA/ledger.key, created on first start)")
	fs.StringVar(&c.LedgerOrigin, "ledger-origin", c.LedgerOrigin, "`origin` line of the ledger's checkpoints")
	fs.Var(&c.LedgerWitnesses, "ledger-witness", "public `key` of a witness whose ledger cosignatures are accepted (repeatable)")
	return cfgPath
}

// Validate checks the settings.
func (c serveConfig) Validate() error {
	if c.Data == "" {
		return errors.New("data directory is empty")
	}
	if c.Store != "" && !isPostgresURL(c.Store) {
		return fmt.Errorf("store %q: want empty (embedded SQLite) or a postgres:// URL", c.Store)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("max body %d is negative", c.MaxBodyBytes)
	}
	if c.LedgerOrigin == "" || strings.ContainsAny(c.LedgerOrigin, "\n") {
		return fmt.Errorf("ledger origin %q: want one non-empty line", c.LedgerOrigin)
	}
	return nil
}

// parseServeConfig reads flags, and the config file they name, flags
// winning. Help and flag errors go to out.
func parseServeConfig(out io.Writer, args []string) (serveConfig, error) {
	cfg := defaultServeConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	cfgPath := cfg.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q: serve takes flags only", fs.Arg(0))
	}
	if *cfgPath != "" {
		fromFile := defaultServeConfig()
		data, err := os.ReadFile(*cfgPath)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&fromFile); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", *cfgPath, err)
		}
		// Parse again on top of the file so that flags win.
		cfg = fromFile
		fs = flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(out)
		cfg.flags(fs)
		if err := parseFlags(fs, args); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// storeOptions say how a command opens the store.
type storeOptions struct {
	data, url string
	noFsync   bool
	metaOnly  bool // sites, assets and keys only (command line tools)
	logger    *slog.Logger
}

func openStore(ctx context.Context, o storeOptions) (store.Store, string, error) {
	if o.url != "" {
		s, err := postgres.Open(ctx, o.url, postgres.Options{Logger: o.logger})
		if err != nil {
			return nil, "", err
		}
		return s, "postgres", nil
	}
	s, err := sqlite.Open(ctx, o.data, sqlite.Options{Logger: o.logger, NoSync: o.noFsync, MetaOnly: o.metaOnly})
	if err != nil {
		return nil, "", err
	}
	return s, "sqlite " + s.Path(), nil
}

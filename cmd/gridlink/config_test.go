//go:build !edge

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeConfig writes a serve config file into a temporary directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gridlink.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseServeConfigDefaults(t *testing.T) {
	got, err := parseServeConfig(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{Data: "./data", Listen: "127.0.0.1:8080", LogLevel: "info", LedgerOrigin: "gridlink/ledger"}
	if got != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseServeConfigEmptyFileKeepsDefaults(t *testing.T) {
	path := writeConfig(t, "# nothing set\n")
	got, err := parseServeConfig(io.Discard, []string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultServeConfig(); got != want {
		t.Errorf("empty config file:\n got %+v\nwant %+v", got, want)
	}
}

// fileConfig sets every field of serveConfig to a value other than its
// default.
const fileConfig = `
data: /srv/gridlink
store: postgres://grid:secret@db.example:5432/gridlink
listen: 0.0.0.0:9443
tls_cert: /etc/gridlink/cert.pem
tls_key: /etc/gridlink/key.pem
sites: /etc/gridlink/sites
log_level: debug
no_fsync: true
max_body_bytes: 4194304
ocpp_listen: 0.0.0.0:8887
ledger_key: /etc/gridlink/ledger.key
ledger_origin: example.org/ledger
ledger_witnesses: [w1+01234567+AQ, w2+01234567+AQ]
`

func TestParseServeConfigFileSetsEveryField(t *testing.T) {
	got, err := parseServeConfig(io.Discard, []string{"--config", writeConfig(t, fileConfig)})
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{
		Data:         "/srv/gridlink",
		Store:        "postgres://grid:secret@db.example:5432/gridlink",
		Listen:       "0.0.0.0:9443",
		TLSCert:      "/etc/gridlink/cert.pem",
		TLSKey:       "/etc/gridlink/key.pem",
		Sites:        "/etc/gridlink/sites",
		LogLevel:     "debug",
		NoFsync:      true,
		MaxBodyBytes: 4 << 20,
		OCPPListen:   "0.0.0.0:8887",

		LedgerKey:       "/etc/gridlink/ledger.key",
		LedgerOrigin:    "example.org/ledger",
		LedgerWitnesses: "w1+01234567+AQ\nw2+01234567+AQ",
	}
	if got != want {
		t.Errorf("from file:\n got %+v\nwant %+v", got, want)
	}
	// A field added to serveConfig must be settable from the file, and this
	// test must learn about it.
	def := reflect.ValueOf(defaultServeConfig())
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if f.Tag.Get("yaml") == "" {
			t.Errorf("serveConfig.%s has no yaml tag", f.Name)
		}
		if v.Field(i).Equal(def.Field(i)) {
			t.Errorf("serveConfig.%s (yaml %q) is not set by the test's config file", f.Name, f.Tag.Get("yaml"))
		}
	}
}

func TestParseServeConfigFlagsWin(t *testing.T) {
	path := writeConfig(t, fileConfig)
	// Flags before and after --config, one of them set to its default
	// value and one switching a boolean of the file off.
	got, err := parseServeConfig(io.Discard, []string{
		"--listen", "127.0.0.1:8080",
		"--config", path,
		"--log-level", "warn",
		"--store", "",
		"--no-fsync=false",
		"--max-body", "1024",
		"--ocpp-listen", "127.0.0.1:9000",
		"--ledger-key", "/tmp/l.key",
		"--ledger-origin", "other/ledger",
		"--ledger-witness", "w3+01234567+AQ",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{
		Data:         "/srv/gridlink", // from the file
		Store:        "",
		Listen:       "127.0.0.1:8080",
		TLSCert:      "/etc/gridlink/cert.pem", // from the file
		TLSKey:       "/etc/gridlink/key.pem",  // from the file
		Sites:        "/etc/gridlink/sites",    // from the file
		LogLevel:     "warn",
		NoFsync:      false,
		MaxBodyBytes: 1024,
		OCPPListen:   "127.0.0.1:9000",

		LedgerKey:    "/tmp/l.key",
		LedgerOrigin: "other/ledger",
		// A repeatable flag adds to the file's list.
		LedgerWitnesses: "w1+01234567+AQ\nw2+01234567+AQ\nw3+01234567+AQ",
	}
	if got != want {
		t.Errorf("flags over file:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseServeConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // config file content; "" for none
		args []string
		want []string // substrings of the error
	}{
		{
			name: "unknown yaml field",
			file: "data: ./data\nlisten_addr: 127.0.0.1:9000\n",
			want: []string{"listen_addr"},
		},
		{
			name: "yaml field of the wrong type",
			file: "max_body_bytes: lots\n",
			want: []string{"lots"},
		},
		{
			name: "ledger witnesses not a list",
			file: "ledger_witnesses: w1+01234567+AQ\n",
			want: []string{"line 1", "ledger_witnesses", "list"},
		},
		{
			name: "empty ledger origin",
			args: []string{"--ledger-origin", ""},
			want: []string{"ledger origin"},
		},
		{
			name: "tls cert without key",
			args: []string{"--tls-cert", "cert.pem"},
			want: []string{"--tls-cert", "--tls-key"},
		},
		{
			name: "tls key without cert",
			args: []string{"--tls-key", "key.pem"},
			want: []string{"--tls-cert", "--tls-key"},
		},
		{
			name: "tls cert without key in the file",
			file: "tls_cert: cert.pem\n",
			want: []string{"--tls-cert", "--tls-key"},
		},
		{
			name: "bad log level",
			args: []string{"--log-level", "verbose"},
			want: []string{`"verbose"`, "debug, info, warn or error"},
		},
		{
			name: "bad log level in the file",
			file: "log_level: loud\n",
			want: []string{`"loud"`},
		},
		{
			name: "mysql store",
			args: []string{"--store", "mysql://root@localhost/grid"},
			want: []string{`"mysql://root@localhost/grid"`, "postgres://"},
		},
		{
			name: "sqlite file as store",
			args: []string{"--store", "./data/gridlink.db"},
			want: []string{`"./data/gridlink.db"`},
		},
		{
			name: "empty data directory",
			args: []string{"--data", ""},
			want: []string{"data directory"},
		},
		{
			name: "stray argument",
			args: []string{"--data", "/srv/gridlink", "examples/pilots", "--listen", ":9000"},
			want: []string{`unexpected argument "examples/pilots"`},
		},
		{
			name: "negative body limit",
			args: []string{"--max-body", "-1"},
			want: []string{"-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeConfig(t, tt.file)}, args...)
			}
			_, err := parseServeConfig(io.Discard, args)
			if err == nil {
				t.Fatalf("parseServeConfig(%q) succeeded, want an error", args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseServeConfigPostgresURLs(t *testing.T) {
	for _, u := range []string{"postgres://u@h/db", "postgresql://u:p@h:5432/db?sslmode=disable"} {
		cfg, err := parseServeConfig(io.Discard, []string{"--store", u})
		if err != nil {
			t.Errorf("--store %s: %v", u, err)
			continue
		}
		if cfg.Store != u {
			t.Errorf("--store %s: Store = %q", u, cfg.Store)
		}
	}
}

func TestParseServeConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := parseServeConfig(io.Discard, []string{"--config", path})
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("missing config file: err = %v, want one naming the file", err)
	}
}

func TestParseServeConfigBadFlag(t *testing.T) {
	_, err := parseServeConfig(io.Discard, []string{"--no-such-flag"})
	if !errors.Is(err, errUsage) {
		t.Fatalf("unknown flag: err = %v, want errUsage", err)
	}
}

// TestREADMEConfigParses checks that the config file shown in the README is
// one that serve accepts.
func TestREADMEConfigParses(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "A config file for `serve --config`")
	if !ok {
		t.Skip("README shows no config file")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README: no ```yaml block after the config file heading")
	}
	got, err := parseServeConfig(io.Discard, []string{"--config", writeConfig(t, block)})
	if err != nil {
		t.Fatalf("README config:\n%s\n%v", block, err)
	}
	if got.Sites != "examples/pilots" || got.Listen != "127.0.0.1:8080" {
		t.Errorf("README config parsed as %+v", got)
	}
}

// TestServeRefusesBadConfig runs serve through run: a bad configuration
// ends it with status 1 and a message before anything is opened.
func TestServeRefusesBadConfig(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--data", data, "--tls-cert", "cert.pem"}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("status %d, want 1; stderr:\n%s", code, &stderr)
	}
	if want := "gridlink serve: --tls-cert and --tls-key go together"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not contain %q", &stderr, want)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory made for a refused config: %v", err)
	}
}

// TestServeBadTLSFiles starts serve with certificate files that do not
// exist: it fails with a message instead of serving plain HTTP.
func TestServeBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"serve", "--data", dir, "--listen", "127.0.0.1:0",
		"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", filepath.Join(dir, "missing-key.pem")}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("status %d, want 1; stderr:\n%s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "tls:") || !strings.Contains(stderr.String(), "missing.pem") {
		t.Errorf("stderr does not explain the TLS failure:\n%s", &stderr)
	}
	if strings.Contains(stdout.String(), "serving on") {
		t.Errorf("serve says it is serving:\n%s", &stdout)
	}
}

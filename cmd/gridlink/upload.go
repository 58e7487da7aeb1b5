//go:build !edge

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
)

// uploadReport is the platform's reply to POST /api/v1/batches.
type uploadReport struct {
	Rows      int64 `json:"rows"`
	Accepted  int64 `json:"accepted"`
	Duplicate int64 `json:"duplicate"`
	Corrected int64 `json:"corrected"`
	Rejected  int64 `json:"rejected"`
	Errors    []struct {
		Line   int64  `json:"line"`
		Field  string `json:"field"`
		Value  string `json:"value"`
		Reason string `json:"reason"`
	} `json:"errors"`
	ErrorsTruncated int64 `json:"errors_truncated"`
}

func runUpload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("upload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gridlink upload [flags] FILE   (CSV or NDJSON, optionally .gz)")
		fs.PrintDefaults()
	}
	site := fs.String("site", "", "`site` to write to (required)")
	base := fs.String("url", "http://127.0.0.1:8080", "platform base `url`")
	key := fs.String("key", "", "API `key` (default: $GRIDLINK_KEY, else the data directory's admin.key)")
	data := fs.String("data", "./data", "data `directory` whose admin.key is used when no key is given")
	format := fs.String("format", "", "csv or ndjson (default: from the file name)")
	dryRun := fs.Bool("dry-run", false, "validate only, store nothing")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *site == "" {
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	secret, err := resolveKey(*key, *data)
	if err != nil {
		return err
	}
	contentType, err := batchContentType(path, *format)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var body io.Reader = f
	if !*quiet {
		bar := progressbar.DefaultBytes(fi.Size(), "uploading "+filepath.Base(path))
		defer bar.Finish()
		r := progressbar.NewReader(f, bar)
		body = &r
	}
	q := url.Values{"site": {*site}}
	if *dryRun {
		q.Set("dry_run", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*base, "/")+"/api/v1/batches?"+q.Encode(), body)
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("upload: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
	}
	var rep uploadReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("upload: reply: %w", err)
	}
	fmt.Fprintln(stdout)
	verb := "stored"
	if *dryRun {
		verb = "would store (dry run)"
	}
	fmt.Fprintf(stdout, "%d rows: %d accepted, %d duplicate, %d corrected, %d rejected; %s\n",
		rep.Rows, rep.Accepted, rep.Duplicate, rep.Corrected, rep.Rejected, verb)
	for _, e := range rep.Errors {
		fmt.Fprintf(stdout, "  line %d: field %q: value %q: %s\n", e.Line, e.Field, e.Value, e.Reason)
	}
	if rep.ErrorsTruncated > 0 {
		fmt.Fprintf(stdout, "  … and %d more rejected rows\n", rep.ErrorsTruncated)
	}
	if rep.Rejected > 0 {
		return fmt.Errorf("%d rows rejected", rep.Rejected)
	}
	return nil
}

// resolveKey picks the API key: the flag, $GRIDLINK_KEY, or admin.key.
func resolveKey(flagKey, dataDir string) (string, error) {
	if flagKey != "" {
		return flagKey, nil
	}
	if k := os.Getenv("GRIDLINK_KEY"); k != "" {
		return k, nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, AdminKeyFile))
	if err != nil {
		return "", errors.New("no API key: give --key, set GRIDLINK_KEY, or point --data at a directory with admin.key")
	}
	return strings.TrimSpace(string(b)), nil
}

func batchContentType(path, format string) (string, error) {
	if format == "" {
		name := strings.TrimSuffix(strings.ToLower(path), ".gz")
		switch {
		case strings.HasSuffix(name, ".csv"):
			format = "csv"
		case strings.HasSuffix(name, ".ndjson"), strings.HasSuffix(name, ".jsonl"):
			format = "ndjson"
		default:
			return "", fmt.Errorf("cannot tell the format of %s from its name: give --format csv or ndjson", path)
		}
	}
	switch format {
	case "csv":
		return "text/csv", nil
	case "ndjson":
		return "application/x-ndjson", nil
	}
	return "", fmt.Errorf("format %q: want csv or ndjson", format)
}

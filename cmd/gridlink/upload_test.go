//go:build !edge

package main

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to name in a temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// csvRows makes n CSV rows of one series, a second apart from base, with
// values 0, 1, …, in kW.
func csvRows(asset, quantity string, base time.Time, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s,%s,%s,%d,kW\n", asset, quantity, base.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339Nano), i)
	}
	return b.String()
}

// TestUpload runs `gridlink upload` against one platform process. Each
// subtest writes its own series of the Bristol pilot site.
func TestUpload(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, "--data", dataDir, "--sites", pilotsDir)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	upload := func(t *testing.T, file string, extra ...string) (int, string, string) {
		t.Helper()
		args := append([]string{"upload", file, "--site", "bristol", "--url", srv.url, "--quiet"}, extra...)
		return gridlink(t, args...)
	}

	t.Run("bad row", func(t *testing.T) {
		const asset = "house-01/meter"
		ts := func(i int) string { return base.Add(time.Duration(i) * time.Second).Format(time.RFC3339) }
		file := writeFile(t, "readings.csv", "asset,quantity,time,value,unit\n"+
			asset+",active_power,"+ts(0)+",1.5,kW\n"+
			asset+",active_power,"+ts(1)+",1.6,kW\n"+
			asset+",activ_power,"+ts(2)+",1.7,kW\n"+ // line 4: unknown quantity
			asset+",active_power,"+ts(3)+",1.8,kW\n")
		code, out, errs := upload(t, file, "--key", srv.key)
		if code != 1 {
			t.Fatalf("status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if want := "4 rows: 3 accepted, 0 duplicate, 0 corrected, 1 rejected; stored"; !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
		if want := `line 4: field "quantity": value "activ_power": unknown quantity`; !strings.Contains(out, want) {
			t.Errorf("stdout does not name the bad line (%q):\n%s", want, out)
		}
		if !strings.Contains(errs, "gridlink upload: 1 rows rejected") {
			t.Errorf("stderr does not say rows were rejected:\n%s", errs)
		}
		// The good rows are stored, converted from kW to W.
		pts := points(t, srv.url, srv.key, "bristol", asset, "active_power")
		want := []float64{1500, 1600, 1800}
		if len(pts) != len(want) {
			t.Fatalf("%d readings stored, want %d: %v", len(pts), len(want), pts)
		}
		for i, p := range pts {
			if p[1] != want[i] {
				t.Errorf("reading %d = %v W, want %v", i, p[1], want[i])
			}
		}
	})

	t.Run("dry run", func(t *testing.T) {
		const asset = "house-01/clamp"
		file := writeFile(t, "readings.csv", csvRows(asset, "active_power", base, 5))
		code, out, errs := upload(t, file, "--key", srv.key, "--dry-run")
		if code != 0 {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if want := "5 rows: 5 accepted, 0 duplicate, 0 corrected, 0 rejected; would store (dry run)"; !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
		if pts := points(t, srv.url, srv.key, "bristol", asset, ""); len(pts) != 0 {
			t.Errorf("dry run stored %d readings: %v", len(pts), pts)
		}
	})

	t.Run("gzip", func(t *testing.T) {
		const asset = "house-01/emonpi"
		path := filepath.Join(t.TempDir(), "readings.csv.gz")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		if _, err := zw.Write([]byte("asset,quantity,time,value,unit\n" + csvRows(asset, "active_power", base, 50))); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		code, out, errs := upload(t, path, "--key", srv.key)
		if code != 0 {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if want := "50 rows: 50 accepted"; !strings.Contains(out, want) {
			t.Errorf("stdout does not contain %q:\n%s", want, out)
		}
		if pts := points(t, srv.url, srv.key, "bristol", asset, "active_power"); len(pts) != 50 || pts[49][1] != 49000 {
			t.Errorf("stored %d readings (%v), want 50 ending with 49000 W", len(pts), pts)
		}
	})

	t.Run("ndjson and the key from GRIDLINK_KEY", func(t *testing.T) {
		const asset = "house-02/meter"
		var b strings.Builder
		for i := range 3 {
			fmt.Fprintf(&b, `{"asset":%q,"quantity":"active_power","time":%d,"value":%d,"unit":"W"}`+"\n",
				asset, base.Add(time.Duration(i)*time.Second).UnixMilli(), 100+i)
		}
		t.Setenv("GRIDLINK_KEY", srv.key)
		code, out, errs := upload(t, writeFile(t, "readings.jsonl", b.String()))
		if code != 0 {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if !strings.Contains(out, "3 rows: 3 accepted") {
			t.Errorf("stdout:\n%s", out)
		}
	})

	t.Run("the key from the data directory and a second upload", func(t *testing.T) {
		const asset = "house-03/meter"
		t.Setenv("GRIDLINK_KEY", "")
		file := writeFile(t, "readings.csv", csvRows(asset, "active_power", base, 4))
		code, out, errs := upload(t, file, "--data", dataDir)
		if code != 0 {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		// The same file again: every row is a duplicate.
		code, out, errs = upload(t, file, "--data", dataDir)
		if code != 0 {
			t.Fatalf("second upload: status %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if want := "4 rows: 0 accepted, 4 duplicate"; !strings.Contains(out, want) {
			t.Errorf("second upload: stdout does not contain %q:\n%s", want, out)
		}
	})

	t.Run("format given for an unknown extension", func(t *testing.T) {
		const asset = "house-01/battery"
		file := writeFile(t, "export.txt", csvRows(asset, "active_power", base, 2))
		code, out, errs := upload(t, file, "--key", srv.key, "--format", "csv")
		if code != 0 {
			t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
		if !strings.Contains(out, "2 rows: 2 accepted") {
			t.Errorf("stdout:\n%s", out)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		file := writeFile(t, "readings.csv", csvRows("house-01/meter", "active_power", base, 1))
		code, out, errs := upload(t, file, "--key", "glk_not-a-key")
		if code != 1 || !strings.Contains(errs, "401") {
			t.Errorf("status %d, want 1 and a 401 message\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
	})

	t.Run("unknown site", func(t *testing.T) {
		file := writeFile(t, "readings.csv", csvRows("house-01/meter", "active_power", base, 1))
		code, out, errs := gridlink(t, "upload", file, "--site", "atlantis", "--url", srv.url, "--quiet", "--key", srv.key)
		// The platform answers either with an error naming the site or
		// with every row rejected; either way nothing is stored.
		if code != 1 || strings.Contains(out, "1 accepted") {
			t.Errorf("status %d, want 1 and nothing accepted\nstdout:\n%s\nstderr:\n%s", code, out, errs)
		}
	})
}

// TestUploadRefused covers the mistakes upload reports before it sends
// anything; no platform is running.
func TestUploadRefused(t *testing.T) {
	t.Setenv("GRIDLINK_KEY", "")
	const noServer = "http://127.0.0.1:1"
	csv := writeFile(t, "readings.csv", "house-01/meter,active_power,1700000000000,1\n")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{
			name: "format not in the name",
			args: []string{"upload", writeFile(t, "readings.dat", "x\n"), "--site", "bristol", "--key", "glk_x", "--url", noServer, "--quiet"},
			code: 1,
			want: []string{"readings.dat", "cannot tell the format", "--format csv or ndjson"},
		},
		{
			name: "unknown format",
			args: []string{"upload", csv, "--format", "xml", "--site", "bristol", "--key", "glk_x", "--url", noServer, "--quiet"},
			code: 1,
			want: []string{`format "xml"`},
		},
		{
			name: "no key",
			args: []string{"upload", csv, "--site", "bristol", "--data", t.TempDir(), "--url", noServer, "--quiet"},
			code: 1,
			want: []string{"no API key", "--key", "GRIDLINK_KEY", "admin.key"},
		},
		{
			name: "no site",
			args: []string{"upload", csv, "--key", "glk_x", "--url", noServer},
			code: 2,
			want: []string{"usage: gridlink upload"},
		},
		{
			name: "no file",
			args: []string{"upload", "--site", "bristol", "--key", "glk_x", "--url", noServer},
			code: 2,
			want: []string{"usage: gridlink upload"},
		},
		{
			name: "missing file",
			args: []string{"upload", filepath.Join(t.TempDir(), "gone.csv"), "--site", "bristol", "--key", "glk_x", "--url", noServer, "--quiet"},
			code: 1,
			want: []string{"gone.csv"},
		},
		{
			name: "platform not running",
			args: []string{"upload", csv, "--site", "bristol", "--key", "glk_x", "--url", noServer, "--quiet"},
			code: 1,
			want: []string{"gridlink upload: upload:", "127.0.0.1:1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := gridlink(t, tt.args...)
			if code != tt.code {
				t.Fatalf("status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errs)
				}
			}
		})
	}
}

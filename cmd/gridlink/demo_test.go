//go:build !edge

package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `gridlink demo` as a user would, with a short window: the
// platform, the four pilot sites' simulated devices behind their gateways
// and the OCPP chargers start in one process, the whole catalogue runs,
// the summary says every seed case passed, the printed page answers while the
// demo runs, and the process ends by itself with exit status 0.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	cmd := exec.CommandContext(t.Context(), binary, "demo", "--for", "100s", "--window", "10s", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	open := regexp.MustCompile(`^open (http://\S+/\?key=(\S+))$`)
	passedRE := regexp.MustCompile(`^gridlink demo: (\d+) of (\d+) seed cases passed$`)
	var page, key string
	var passed []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if m := passedRE.FindStringSubmatch(line); m != nil {
			passed = m
		}
		if m := open.FindStringSubmatch(line); m != nil {
			page, key = m[1], m[2]
			break
		}
	}
	if page == "" {
		cmd.Wait()
		t.Fatalf("the demo printed no page address:\n%s\nstderr:\n%s", out.String(), tail(stderr.String(), 3000))
	}

	// The page and the API answer while the demo runs.
	resp, err := http.Get(page)
	if err != nil {
		t.Fatalf("GET %s: %v", page, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("GET %s: %d %q", page, resp.StatusCode, tail(string(body), 200))
	}
	base := strings.TrimSuffix(page, "/?key="+key)
	var sites struct{ Sites []struct{ ID string } }
	if code := call(t, "GET", base+"/api/v1/sites", key, nil, &sites); code != http.StatusOK || len(sites.Sites) != 4 {
		t.Errorf("GET /api/v1/sites with the printed key: %d, %d sites", code, len(sites.Sites))
	}
	var runs struct {
		Runs []map[string]any `json:"runs"`
	}
	if code := call(t, "GET", base+"/api/v1/itc/runs", key, nil, &runs); code != http.StatusOK || len(runs.Runs) != 1 {
		t.Errorf("GET /api/v1/itc/runs: %d, %d runs; want the demo's run kept", code, len(runs.Runs))
	}

	go io.Copy(io.Discard, stdout)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the demo did not stop by itself after --for 100s")
	}
	if passed == nil || passed[1] != passed[2] || err != nil {
		t.Errorf("the demo ended with %v; not every case passed:\n%s\nstderr:\n%s", err, out.String(), tail(stderr.String(), 3000))
	}
	t.Logf("demo output:\n%s", out.String())
}

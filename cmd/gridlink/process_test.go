//go:build !edge

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is the gridlink executable built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gridlink-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gridlink")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build gridlink: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `gridlink serve` process.
type server struct {
	cmd    *exec.Cmd
	url    string
	key    string // the admin key, when this start created it
	stderr *bytes.Buffer
	exited chan struct{}
}

var servingLine = regexp.MustCompile(`serving on (https?://\S+)`)

// startServer runs `gridlink serve` with args and waits until it serves.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: s.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.exited
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("gridlink serve exited before serving:\n%s", s.stderr)
			}
			if strings.HasPrefix(line, "glk_") {
				s.key = line
			}
			if m := servingLine.FindStringSubmatch(line); m != nil {
				s.url = m[1]
				go io.Copy(io.Discard, stdoutRest(lines))
				return s
			}
		case <-deadline:
			t.Fatalf("gridlink serve did not start within 60 s:\n%s", s.stderr)
		}
	}
}

func stdoutRest(lines <-chan string) io.Reader {
	r, w := io.Pipe()
	go func() {
		for l := range lines {
			fmt.Fprintln(w, l)
		}
		w.Close()
	}()
	return r
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// call sends a JSON request and decodes a JSON reply into out.
func call(t *testing.T, method, url, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: reply %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

type reading struct {
	Asset    string  `json:"asset"`
	Quantity string  `json:"quantity"`
	Time     int64   `json:"time"`
	Value    float64 `json:"value"`
}

type seriesReply struct {
	Series []struct {
		Asset, Quantity string
		Points          [][2]float64
	}
}

// TestKillDuringIngest sends readings without pause, kills the platform
// with SIGKILL in the middle, restarts it and checks that every reading it
// had acknowledged is there, once, with its value.
func TestKillDuringIngest(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		killDuringIngest(t, func() []string { return []string{"--data", dir} })
	})
	t.Run("postgres", func(t *testing.T) {
		url := testPostgresDB(t)
		dir := t.TempDir()
		killDuringIngest(t, func() []string { return []string{"--data", dir, "--store", url} })
	})
}

func killDuringIngest(t *testing.T, args func() []string) {
	srv := startServer(t, args()...)
	if srv.key == "" {
		t.Fatal("first start printed no admin key")
	}
	key := srv.key
	if code := call(t, "POST", srv.url+"/api/v1/sites", key, map[string]string{"id": "crash", "name": "Crash"}, nil); code/100 != 2 {
		t.Fatalf("create site: %d", code)
	}
	for _, a := range []string{"m1", "m2", "m3", "m4"} {
		if code := call(t, "POST", srv.url+"/api/v1/sites/crash/assets", key, map[string]string{"id": a, "type": "smart_meter"}, nil); code/100 != 2 {
			t.Fatalf("create asset: %d", code)
		}
	}
	var (
		mu    sync.Mutex
		acked = map[string]float64{} // asset/time -> value
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	base := time.Now().Add(-time.Hour).UnixMilli()
	for w, asset := range []string{"m1", "m2", "m3", "m4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				batch := make([]reading, 50)
				for j := range batch {
					n := i*len(batch) + j
					batch[j] = reading{asset, "active_power", base + int64(n), float64(n%1000) + float64(w)/10}
				}
				b, _ := json.Marshal(map[string]any{"readings": batch})
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.url+"/api/v1/readings?site=crash", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				var rep struct{ Accepted int }
				json.NewDecoder(resp.Body).Decode(&rep)
				resp.Body.Close()
				if resp.StatusCode != 200 || rep.Accepted != len(batch) {
					continue
				}
				mu.Lock()
				for _, r := range batch {
					acked[fmt.Sprintf("%s/%d", r.Asset, r.Time)] = r.Value
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no reading was acknowledged before the kill:\n%s", srv.stderr)
	}

	again := startServer(t, args()...)
	var got seriesReply
	if code := call(t, "GET", again.url+"/api/v1/readings?site=crash", key, nil, &got); code != 200 {
		t.Fatalf("query after restart: %d", code)
	}
	seen := map[string]int{}
	for _, s := range got.Series {
		for _, p := range s.Points {
			k := fmt.Sprintf("%s/%d", s.Asset, int64(p[0]))
			seen[k]++
			if v, ok := acked[k]; ok && v != p[1] {
				t.Errorf("%s: value %v after restart, acknowledged %v", k, p[1], v)
			}
		}
	}
	missing := 0
	for k := range acked {
		if seen[k] != 1 {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged reading %s found %d times after restart", k, seen[k])
			}
		}
	}
	t.Logf("acknowledged %d readings before SIGKILL; %d stored after restart; %d missing", len(acked), len(seen), missing)
}

package platform

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/loadgen"
	"github.com/gridlink/gridlink/store"
)

// nullStore acknowledges writes without storing them, to measure the API
// alone.
type nullStore struct{ store.Store }

func (nullStore) Write(_ context.Context, _ string, rs []cim.Reading) (store.WriteResult, error) {
	return store.WriteResult{Accepted: len(rs)}, nil
}

// BenchmarkSingleReading posts one reading per request from parallel
// clients through a real HTTP server, and reports requests per second.
//
// The sub-benchmarks: "sqlite" is the whole path down to a SQLite commit;
// "nullstore" leaves the store out, to show the cost of the API; the
// "rawclient" variants replace net/http's client, whose cost on the same
// cores otherwise exceeds the server's, by a minimal HTTP/1.1 client on
// keep-alive connections.
func BenchmarkSingleReading(b *testing.B) {
	null := func(c *Config) { c.Store = nullStore{c.Store} }
	b.Run("sqlite", func(b *testing.B) { benchSingle(b, nil) })
	b.Run("nullstore", func(b *testing.B) { benchSingle(b, null) })
	b.Run("sqlite-rawclient", func(b *testing.B) { benchRaw(b, nil) })
	b.Run("nullstore-rawclient", func(b *testing.B) { benchRaw(b, null) })
}

func benchSingle(b *testing.B, mod func(*Config)) {
	var mods []func(*Config)
	if mod != nil {
		mods = append(mods, mod)
	}
	f := newFixture(b, mods...)
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := f.ts.URL + "/api/v1/readings"
	auth := "Bearer " + f.ingest
	var clock atomic.Int64
	clock.Store(time.Now().Add(-48 * time.Hour).UnixMilli())
	b.SetParallelism(32) // 64 connections on 2 cores, as many gateways
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var body []byte
		for pb.Next() {
			body = append(body[:0], `{"asset":"house-01/meter","quantity":"active_power","unit":"W","time":`...)
			body = strconv.AppendInt(body, clock.Add(1), 10)
			body = append(body, `,"value":1234.5}`...)
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", auth)
			res, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// benchRaw posts readings over plain TCP connections, one request at a time
// on each, parsing only the status line and Content-Length of replies.
func benchRaw(b *testing.B, mod func(*Config)) {
	var mods []func(*Config)
	if mod != nil {
		mods = append(mods, mod)
	}
	f := newFixture(b, mods...)
	addr := strings.TrimPrefix(f.ts.URL, "http://")
	var clock atomic.Int64
	clock.Store(time.Now().Add(-48 * time.Hour).UnixMilli())
	b.SetParallelism(32) // 64 connections on 2 cores, as many gateways
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	headers := []string{"Content-Type: application/json", "Authorization: Bearer " + f.ingest}
	b.RunParallel(func(pb *testing.PB) {
		conn, err := loadgen.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		var body []byte
		for pb.Next() {
			body = append(body[:0], `{"asset":"house-01/meter","quantity":"active_power","unit":"W","time":`...)
			body = strconv.AppendInt(body, clock.Add(1), 10)
			body = append(body, `,"value":1234.5}`...)
			status, reply, err := conn.Post("/api/v1/readings", headers, body)
			if err != nil || status != 200 {
				b.Errorf("status %d, %q, %v", status, reply, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

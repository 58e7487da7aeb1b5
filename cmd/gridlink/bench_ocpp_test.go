//go:build !edge

package main

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

// TestBenchOCPP runs a small `gridlink bench ocpp` through the built
// binary: the platform is its child process, every light charger connects,
// boots and has its MeterValues answered and stored.
func TestBenchOCPP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a platform and 20 chargers for seconds")
	}
	out, err := exec.CommandContext(t.Context(), binary, "bench", "ocpp", "--chargers", "20", "--for", "3s", "--interval", "500ms", "--json", "--quiet").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("bench ocpp: %v\n%s", err, stderr)
	}
	var r ocppBenchResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("bench ocpp output: %v\n%s", err, out)
	}
	if r.Chargers != 20 || r.Connected != 20 || r.Booted != 20 || r.Held != 20 || r.Dropped != 0 {
		t.Errorf("chargers %d, connected %d, booted %d, held %d, dropped %d; want 20 held", r.Chargers, r.Connected, r.Booted, r.Held, r.Dropped)
	}
	if r.MeterAnswered == 0 || r.MeterErrored != 0 || r.Latency.Count != r.MeterAnswered {
		t.Errorf("MeterValues sent %d, answered %d, errored %d, timed %d", r.MeterSent, r.MeterAnswered, r.MeterErrored, r.Latency.Count)
	}
	if r.Latency.P99 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
		t.Errorf("handling time p50 %v p99 %v max %v ms: want 0 < p50 ≤ p99 ≤ max", r.Latency.P50, r.Latency.P99, r.Latency.Max)
	}
	if r.RSSBeforeMB <= 0 || r.RSSEndMB <= 0 || r.CPUSeconds < 0 {
		t.Errorf("platform RSS %v → %v MB, CPU %v s", r.RSSBeforeMB, r.RSSEndMB, r.CPUSeconds)
	}
	// Every answered MeterValues is durable: its 5 readings are stored.
	var meter int64
	for _, q := range []string{"ev_energy_register", "ev_charging_power", "current"} {
		meter += r.ReadingsByQuantity[q]
	}
	if meter != r.ReadingsExpected {
		t.Errorf("meter readings stored %d, want %d (%v)", meter, r.ReadingsExpected, r.ReadingsByQuantity)
	}
	if !r.CleanExit {
		t.Errorf("platform exit: %s", r.ExitError)
	}
}

// TestLatHist checks the latency histogram's quantiles against exact ones.
func TestLatHist(t *testing.T) {
	var h latHist
	for i := 1; i <= 10000; i++ {
		h.add(time.Duration(i) * 10 * time.Microsecond) // 0.01 … 100 ms
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}} {
		got := h.quantile(c.q)
		if got < c.want || got > c.want*1.02 {
			t.Errorf("quantile %v = %v ms, want %v ms (+2 %%)", c.q, got, c.want)
		}
	}
	for b := range 64 * 30 {
		if lo, hi := latValue(b), latValue(b+1); hi <= lo || latBucket(hi) != b+1 || latBucket(lo) != b {
			t.Fatalf("bucket %d: bound %d, next %d (buckets %d, %d)", b, lo, hi, latBucket(lo), latBucket(hi))
		}
	}
}

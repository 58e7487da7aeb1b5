package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/store"
)

// Benchmark data: 1,000 series × 1,000 seconds, ordered by time and then
// series, as a batch export is.
const (
	benchSeries = 1000
	benchSecs   = 1000
	benchRows   = benchSeries * benchSecs
	benchStart  = int64(1764237600123) // 2025-11-27T10:00:00.123Z
)

var benchNow = time.UnixMilli(benchStart + benchSecs*1000)

type benchFormat int

const (
	fmtCSVMillis benchFormat = iota
	fmtCSVRFC3339
	fmtNDJSON
	fmtJSON
)

func benchData(f benchFormat) []byte {
	var b bytes.Buffer
	b.Grow(benchRows * 110)
	if f == fmtJSON {
		b.WriteString(`{"readings":[`)
	}
	for s := 0; s < benchSecs; s++ {
		ms := benchStart + int64(s)*1000
		for a := 0; a < benchSeries; a++ {
			v := strconv.FormatFloat(float64((a*7919+s*104729)%500000)/10, 'f', -1, 64)
			switch f {
			case fmtCSVMillis:
				fmt.Fprintf(&b, "house-%04d/meter,active_power,%d,%s\n", a, ms, v)
			case fmtCSVRFC3339:
				fmt.Fprintf(&b, "house-%04d/meter,active_power,%s,%s\n", a,
					time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z"), v)
			case fmtNDJSON:
				fmt.Fprintf(&b, `{"asset":"house-%04d/meter","quantity":"active_power","time":%d,"value":%s,"unit":"W"}`+"\n", a, ms, v)
			case fmtJSON:
				if s+a > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"asset":"house-%04d/meter","quantity":"active_power","time":%d,"value":%s,"unit":"W"}`, a, ms, v)
			}
		}
	}
	if f == fmtJSON {
		b.WriteString(`]}`)
	}
	return b.Bytes()
}

// benchDecode decodes and normalises every row, as Run's decoding goroutine
// does, and reports rows/s, ns/row and allocs/row.
func benchDecode(b *testing.B, f benchFormat, open func(io.Reader) Decoder) {
	data := benchData(f)
	cat := cim.Default()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuNanos()
	b.ResetTimer()
	for b.Loop() {
		dec := open(bytes.NewReader(data))
		n := 0
		for {
			row, err := dec.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cat.Normalize(row.Input, benchNow); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchRows {
			b.Fatalf("%d rows, want %d", n, benchRows)
		}
	}
	b.StopTimer()
	cpu := cpuNanos() - cpu0
	runtime.ReadMemStats(&ms1)
	rows := float64(b.N) * benchRows
	b.ReportMetric(float64(cpu)/rows, "cpu-ns/row")
	b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/rows, "allocs/row")
}

func BenchmarkCSV(b *testing.B) {
	b.Run("millis", func(b *testing.B) { benchDecode(b, fmtCSVMillis, NewCSV) })
	b.Run("rfc3339", func(b *testing.B) { benchDecode(b, fmtCSVRFC3339, NewCSV) })
}

func BenchmarkNDJSON(b *testing.B) { benchDecode(b, fmtNDJSON, NewNDJSON) }

func BenchmarkJSON(b *testing.B) { benchDecode(b, fmtJSON, NewJSON) }

// BenchmarkRun is the batch path end to end: decode, validate, batch and hand
// over to a sink that only counts, on the caller's goroutine plus the
// writer's.
func BenchmarkRun(b *testing.B) {
	for _, c := range []struct {
		name string
		f    benchFormat
		open func(io.Reader) Decoder
	}{{"csv", fmtCSVMillis, NewCSV}, {"ndjson", fmtNDJSON, NewNDJSON}} {
		b.Run(c.name, func(b *testing.B) {
			data := benchData(c.f)
			opts := Options{Catalogue: cim.Default(), Now: func() time.Time { return benchNow }}
			sink := func(_ context.Context, rs []cim.Reading) (store.WriteResult, error) {
				return store.WriteResult{Accepted: len(rs)}, nil
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu0 := cpuNanos()
			for b.Loop() {
				rep, err := Run(context.Background(), c.open(bytes.NewReader(data)), sink, opts)
				if err != nil || rep.Accepted != benchRows {
					b.Fatalf("%+v %v", rep, err)
				}
			}
			rows := float64(b.N) * benchRows
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/rows, "ns/row")
			b.ReportMetric(float64(cpuNanos()-cpu0)/rows, "cpu-ns/row")
		})
	}
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	csvBody    = "asset,quantity,time,value\nm,active_power,1764237600123,1\nm,active_power,1764237601123,2\n"
	ndjsonBody = `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}` + "\n" +
		`{"asset":"m","quantity":"active_power","time":1764237601123,"value":2}` + "\n"
	jsonBody = `{"readings":[{"asset":"m","quantity":"active_power","time":1764237600123,"value":1},` +
		`{"asset":"m","quantity":"active_power","time":1764237601123,"value":2}]}`
)

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestOpen(t *testing.T) {
	rowsAt := func(p1, p2 int) []string {
		return []string{
			want(p1, "m", "active_power", t0, 1, "", "", ""),
			want(p2, "m", "active_power", t0+1000, 2, "", "", ""),
		}
	}
	tests := []struct {
		contentType string
		body        string
		rows        []string
	}{
		{"text/csv", csvBody, rowsAt(2, 3)},
		{"text/csv; charset=utf-8", csvBody, rowsAt(2, 3)},
		{"application/csv", csvBody, rowsAt(2, 3)},
		{"application/x-ndjson", ndjsonBody, rowsAt(1, 2)},
		{"application/jsonl", ndjsonBody, rowsAt(1, 2)},
		{"Application/JSON; charset=UTF-8", jsonBody, rowsAt(0, 1)},
	}
	for _, tc := range tests {
		for _, zip := range []bool{false, true} {
			body := []byte(tc.body)
			if zip {
				body = gz(t, tc.body)
			}
			dec, err := Open(bytes.NewReader(body), tc.contentType)
			if err != nil {
				t.Fatalf("%s (gzip %v): %v", tc.contentType, zip, err)
			}
			got := decodeAll(t, dec)
			equalStrings(t, tc.contentType, got.rows, tc.rows)
			if got.fatal != nil || len(got.errs) > 0 {
				t.Errorf("%s (gzip %v): errors %v, final %v", tc.contentType, zip, got.errs, got.fatal)
			}
		}
	}
}

func TestOpenUnsupported(t *testing.T) {
	for _, ct := range []string{"text/plain", "", "application/gzip", "nonsense;;"} {
		_, err := Open(strings.NewReader(csvBody), ct)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `content type "`+ct+`"`) {
			t.Errorf("Open(%q) = %v, want ErrUnsupported naming the type", ct, err)
		}
	}
}

func TestOpenBrokenGzip(t *testing.T) {
	big := strings.Repeat(ndjsonBody, 5000)
	full := gz(t, big)
	corrupt := bytes.Clone(full)
	for i := len(corrupt) / 2; i < len(corrupt)/2+16; i++ {
		corrupt[i] ^= 0x55
	}
	badCRC := bytes.Clone(full)
	badCRC[len(badCRC)-8] ^= 1 // the CRC-32 in the trailer
	tests := []struct {
		name    string
		body    []byte
		openErr bool
	}{
		{"truncated in the header", full[:5], true},
		{"bad header", []byte("\x1f\x8b\x00garbage"), true},
		{"truncated in the data", full[:len(full)/2], false},
		{"truncated in the trailer", full[:len(full)-3], false},
		{"corrupt data", corrupt, false},
		{"bad checksum", badCRC, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, ct := range []string{TypeNDJSON, TypeCSV, TypeJSON} {
				dec, err := Open(bytes.NewReader(tc.body), ct)
				if tc.openErr {
					var ie *InputError
					if !errors.As(err, &ie) {
						t.Errorf("%s: Open error %v, want an *InputError", ct, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: Open: %v", ct, err)
				}
				got := decodeAll(t, dec)
				var ie *InputError
				if !errors.As(got.fatal, &ie) {
					t.Errorf("%s: final error %v, want an *InputError", ct, got.fatal)
				}
			}
		})
	}
}

func TestOpenRequest(t *testing.T) {
	req := func(body []byte, contentType, encoding string) *http.Request {
		r := httptest.NewRequest("POST", "/api/v1/readings", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		if encoding != "" {
			r.Header.Set("Content-Encoding", encoding)
		}
		return r
	}
	t.Run("gzip encoding", func(t *testing.T) {
		dec, err := OpenRequest(req(gz(t, jsonBody), TypeJSON, "gzip"), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, dec); len(got.rows) != 2 || got.fatal != nil {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("gzip without saying so", func(t *testing.T) {
		dec, err := OpenRequest(req(gz(t, csvBody), TypeCSV, ""), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, dec); len(got.rows) != 2 || got.fatal != nil {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("exactly at the limit", func(t *testing.T) {
		dec, err := OpenRequest(req([]byte(jsonBody), TypeJSON, "identity"), int64(len(jsonBody)))
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, dec); len(got.rows) != 2 || got.fatal != nil {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		for _, ct := range []string{TypeJSON, TypeCSV, TypeNDJSON} {
			body := map[string]string{TypeJSON: jsonBody, TypeCSV: csvBody, TypeNDJSON: ndjsonBody}[ct]
			dec, err := OpenRequest(req([]byte(body), ct, ""), int64(len(body)-1))
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeAll(t, dec); !errors.Is(got.fatal, ErrTooLarge) {
				t.Errorf("%s: final error %v, want ErrTooLarge", ct, got.fatal)
			}
		}
	})
	t.Run("decompressed over the limit", func(t *testing.T) {
		body := strings.Repeat(ndjsonBody, 1000)
		dec, err := OpenRequest(req(gz(t, body), TypeNDJSON, "gzip"), 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeAll(t, dec); !errors.Is(got.fatal, ErrTooLarge) {
			t.Errorf("final error %v, want ErrTooLarge", got.fatal)
		}
	})
	t.Run("unsupported encoding", func(t *testing.T) {
		_, err := OpenRequest(req([]byte(jsonBody), TypeJSON, "br"), 0)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `"br"`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("gzip encoding of a body that is not gzip", func(t *testing.T) {
		_, err := OpenRequest(req([]byte(jsonBody), TypeJSON, "gzip"), 0)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("got %v, want an *InputError", err)
		}
	})
}

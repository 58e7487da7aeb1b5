package ingest

import (
	"strings"
	"testing"
)

func TestNDJSON(t *testing.T) {
	long := `{"asset":"` + strings.Repeat("x", MaxRecord) + `"}`
	tests := []struct {
		name  string
		in    string
		rows  []string
		errs  []string
		fatal string
	}{
		{
			name: "good",
			in: `{"asset":"house-01/meter","quantity":"active_power","time":"2026-11-27T10:00:00.250Z","value":1234.5,"unit":"W","phase":"L1"}` + "\n" +
				`{"value":-1e3,"time":1764237600123,"quantity":"active_power","asset":"m"}` + "\n" +
				` { "asset" : "m" , "quantity" : "relay_state" , "time" : "1764237600123" , "value" : "on" , "unit" : null , "phase" : null } `,
			rows: []string{
				want(1, "house-01/meter", "active_power", ms("2026-11-27T10:00:00.250Z"), 1234.5, "W", "L1", ""),
				want(2, "m", "active_power", t0, -1000, "", "", ""),
				want(3, "m", "relay_state", t0, 0, "", "", "on"),
			},
		},
		{
			name: "blank lines, CRLF and a byte order mark",
			in:   "\xef\xbb\xbf\r\n" + `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}` + "\r\n\n  \n" + `{"asset":"n","quantity":"active_power","time":1764237600123,"value":2}`,
			rows: []string{
				want(2, "m", "active_power", t0, 1, "", "", ""),
				want(5, "n", "active_power", t0, 2, "", "", ""),
			},
		},
		{
			name: "escapes",
			in:   `{"asset":"h\u00e9\"\\\/\n\t\ud83d\ude00\ud800","quantity":"active_power","time":1764237600123,"value":0}`,
			rows: []string{want(1, "hé\"\\/\n\t😀\uFFFD", "active_power", t0, 0, "", "", "")},
		},
		{
			name: "syntax errors",
			in: `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1` + "\n" +
				`{"asset":"m",}` + "\n" +
				`{"asset":m}` + "\n" +
				`{"asset":"m"} x` + "\n" +
				`{"asset":"m","quantity":"active_power","time":01,"value":1}` + "\n" +
				`{"asset":"a` + "\t" + `b"}` + "\n" +
				`{"asset":"\x"}` + "\n" +
				`[` + strings.Repeat("[", 300) + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}`,
			rows: []string{want(9, "m", "active_power", t0, 1, "", "", "")},
			errs: []string{
				"line 1: invalid JSON: unexpected end: want ',' or '}' after a field",
				`line 2: invalid JSON at column 14: unexpected '}': want a field name`,
				`line 3: invalid JSON at column 10: unexpected 'm': want a value`,
				`line 4: invalid JSON at column 15: unexpected 'x': data after the object`,
				`line 5: invalid JSON at column 48: unexpected '1': want ',' or '}' after a field`,
				`line 6: invalid JSON at column 12: unexpected byte 0x09: control character in string`,
				`line 7: invalid JSON at column 12: unexpected 'x': invalid escape`,
				`line 8: invalid JSON at column 257: unexpected '[': nested too deeply`,
			},
		},
		{
			name: "not an object",
			in:   "[1,2]\n5\n\"x\"\nnull\n",
			errs: []string{
				`line 1: value "[1,2]": not an object`,
				`line 2: value "5": not an object`,
				`line 3: value "\"x\"": not an object`,
				`line 4: value "null": not an object`,
			},
		},
		{
			name: "field problems",
			in: `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1,"colour":{"r":[1,2]}}` + "\n" +
				`{"asset":5,"quantity":"active_power","time":1764237600123,"value":1}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":{},"value":1}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":true}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":null}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":1,"unit":5}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":1,"value":2}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":1e999}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123.5,"value":1}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":"2026-13-01","value":1}` + "\n" +
				`{"asset":"m","quantity":"active_power","time":1764237600123,"value":""}` + "\n" +
				`{"Asset":"m","quantity":"active_power","time":1764237600123,"value":1}` + "\n" +
				`{}` + "\n",
			errs: []string{
				`line 1: field "colour": unknown field (want asset, quantity, time, value, unit or phase)`,
				`line 2: field "asset": value "5": not a string`,
				`line 3: field "time": value "{}": not a string or number`,
				`line 4: field "value": value "true": not a number or string`,
				`line 5: field "value": value "null": not a number or string`,
				`line 6: field "unit": value "5": not a string`,
				`line 7: field "value": missing`,
				`line 8: field "value": given twice`,
				`line 9: field "value": value "1e999": number out of the range of a 64-bit float`,
				`line 10: field "time": value "1764237600123.5": not an RFC 3339 time or Unix milliseconds`,
				`line 11: field "time": value "2026-13-01": not an RFC 3339 time or Unix milliseconds`,
				`line 12: field "value": empty`,
				`line 13: field "Asset": unknown field (want asset, quantity, time, value, unit or phase)`,
				`line 14: field "asset": missing`,
			},
		},
		{
			name: "syntax error wins over a field problem",
			in:   `{"colour":1,"asset":}`,
			errs: []string{`line 1: invalid JSON at column 21: unexpected '}': want a value`},
		},
		{
			name: "line longer than 1 MiB",
			in:   long + "\n" + `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}` + "\n",
			rows: []string{want(2, "m", "active_power", t0, 1, "", "", "")},
			errs: []string{"line 1: line longer than 1 MiB"},
		},
		{name: "empty", in: ""},
		{name: "blank", in: "\n\r\n \n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(t, NewNDJSON(strings.NewReader(tc.in)))
			equalStrings(t, "rows", got.rows, tc.rows)
			equalStrings(t, "errors", got.errs, tc.errs)
			checkFatal(t, got.fatal, tc.fatal)
			checkIncreasing(t, got.pos)
			got = decodeAll(t, NewNDJSON(iotestOneByte(tc.in)))
			equalStrings(t, "rows read byte by byte", got.rows, tc.rows)
		})
	}
}

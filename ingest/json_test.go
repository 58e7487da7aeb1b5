package ingest

import (
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	const good = `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}`
	tests := []struct {
		name  string
		in    string
		rows  []string
		errs  []string
		fatal string
	}{
		{
			name: "good",
			in: `{"readings":[{"asset":"house-01/meter","quantity":"active_power","time":"2026-11-27T10:00:00.250Z","value":1234.5,"unit":"W","phase":"L1"},` +
				` {"asset":"d","quantity":"door_window_state","time":"2026-11-27T11:00:00.250999+01:00","value":"open"}]}`,
			rows: []string{
				want(0, "house-01/meter", "active_power", ms("2026-11-27T10:00:00.250Z"), 1234.5, "W", "L1", ""),
				want(1, "d", "door_window_state", ms("2026-11-27T10:00:00.250Z"), 0, "", "", "open"),
			},
		},
		{
			name: "other keys are skipped, a byte order mark too",
			in:   "\xef\xbb\xbf" + `{"gateway":{"id":[1,"x"]},"readings":[` + good + `],"batch":"b-1"}` + "\n",
			rows: []string{want(0, "m", "active_power", t0, 1, "", "", "")},
		},
		{name: "no readings", in: `{"readings":[]}`},
		{
			name: "bad elements",
			in:   `{"readings":[5,` + good + `,{"asset":"m","quantity":"active_power","time":1764237600123,"value":1e999},{"asset":1},["x"],{"x":1},` + good + `]}`,
			rows: []string{want(1, "m", "active_power", t0, 1, "", "", ""), want(6, "m", "active_power", t0, 1, "", "", "")},
			errs: []string{
				`readings[0]: value "5": not an object`,
				`readings[2]: field "value": value "1e999": number out of the range of a 64-bit float`,
				`readings[3]: field "asset": value "1": not a string`,
				`readings[4]: value "[\"x\"]": not an object`,
				`readings[5]: field "x": unknown field (want asset, quantity, time, value, unit or phase)`,
			},
		},
		{name: "empty body", in: "", fatal: "byte 0: malformed JSON: unexpected end of input"},
		{name: "not an object", in: `[{"readings":[]}]`, fatal: "byte 1: not a JSON object"},
		{name: "no readings array", in: `{"reading":[]}`, fatal: `byte 14: no "readings" array`},
		{name: "readings not an array", in: `{"readings":{}}`, fatal: `"readings" is not an array`},
		{name: "readings twice", in: `{"readings":[],"readings":[]}`, fatal: `"readings" given twice`},
		{
			name:  "syntax error in an element",
			in:    `{"readings":[` + good + `,{"asset":}]}`,
			rows:  []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "readings[1] at byte 93: malformed JSON: invalid character '}' looking for beginning of value",
		},
		{
			name:  "missing comma",
			in:    `{"readings":[` + good + ` ` + good + `]}`,
			rows:  []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "readings[1] at byte 84: malformed JSON: expected comma after array element",
		},
		{
			name:  "truncated",
			in:    `{"readings":[` + good + `,{"asset":"m"`,
			rows:  []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "malformed JSON: unexpected end of input",
		},
		{
			name:  "data after the object",
			in:    `{"readings":[]} {}`,
			fatal: "data after the object",
		},
		{
			name:  "element larger than 1 MiB",
			in:    `{"readings":[` + good + `,{"asset":"` + strings.Repeat("x", MaxRecord+100) + `"}]}`,
			rows:  []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "readings[1] at byte 84: value larger than 1048576 bytes",
		},
		{
			name:  "other key larger than 1 MiB",
			in:    `{"x":"` + strings.Repeat("x", MaxRecord+100) + `","readings":[]}`,
			fatal: "value larger than 1048576 bytes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(t, NewJSON(strings.NewReader(tc.in)))
			equalStrings(t, "rows", got.rows, tc.rows)
			equalStrings(t, "errors", got.errs, tc.errs)
			checkFatal(t, got.fatal, tc.fatal)
			checkIncreasing(t, got.pos)
		})
	}
}

package ingest

import (
	"slices"
	"testing"
)

func TestBodyParser(t *testing.T) {
	const good = `{"asset":"m","quantity":"active_power","time":1764237600123,"value":1}`
	tests := []struct {
		name, in, fatal string
		out             []string // want(...) of a reading, Error() of a refused one
	}{
		{name: "one reading", in: " " + good + "\n", out: []string{want(0, "m", "active_power", t0, 1, "", "", "")}},
		{
			name: "array",
			in: `[{"asset":"house-01/meter","quantity":"active_power","time":"2026-11-27T10:00:00.250Z","value":1234.5,"unit":"W","phase":"L1"},` +
				` {"asset":"d","quantity":"door_window_state","time":1.7642376e12,"value":"open","unit":null}]`,
			out: []string{
				want(0, "house-01/meter", "active_power", ms("2026-11-27T10:00:00.250Z"), 1234.5, "W", "L1", ""),
				want(1, "d", "door_window_state", 1764237600000, 0, "", "", "open"),
			},
		},
		{
			name: "readings member, other members ignored",
			in:   `{"gateway":{"id":[1,"x"]},"readings":[` + good + `,` + good + `],"batch":"b-1"}`,
			out:  []string{want(0, "m", "active_power", t0, 1, "", "", ""), want(1, "m", "active_power", t0, 1, "", "", "")},
		},
		{name: "no readings", in: `{"readings":[]}`},
		{name: "empty array", in: `[ ]`},
		{
			name: "refused readings",
			in: `[5,{"asset":"m","quantity":"active_power","time":1764237600123.5,"value":1},{"asset":1},{"x":1,"asset":2},` +
				`{"asset":"m","asset":"m"},{"readings":[]},{"asset":"m","quantity":"q","time":"2026-13-01","value":1},` +
				`{"asset":"m","quantity":"q","time":1,"value":""},{"asset":"m","quantity":"q","value":1},` + good + `]`,
			out: []string{
				`readings[0]: value "5": not an object`,
				`readings[1]: field "time": value "1764237600123.5": not an RFC 3339 time or Unix milliseconds`,
				`readings[2]: field "asset": value "1": not a string`,
				`readings[3]: field "x": ` + reasonUnknown,
				`readings[4]: field "asset": given twice`,
				`readings[5]: field "readings": ` + reasonUnknown,
				`readings[6]: field "time": value "2026-13-01": not an RFC 3339 time or Unix milliseconds`,
				`readings[7]: field "value": empty`,
				`readings[8]: field "time": missing`,
				want(9, "m", "active_power", t0, 1, "", "", ""),
			},
		},
		{name: "one refused reading", in: `{"asset":"m"}`, out: []string{`readings[0]: field "quantity": missing`}},
		{name: "unknown top-level field", in: `{"gateway":"g"}`, out: []string{`readings[0]: field "gateway": ` + reasonUnknown}},
		{name: "empty body", in: " ", fatal: "byte 1: malformed JSON: unexpected end: want a value"},
		{name: "not an object", in: `"x"`, fatal: "byte 0: not a JSON object or an array of readings"},
		{name: "bad literal", in: `nul`, fatal: "byte 3: malformed JSON: unexpected end: want null"},
		{name: "data after", in: good + ` x`, out: []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "byte 71: malformed JSON: unexpected 'x': data after the readings"},
		{name: "readings not an array", in: `{"readings":{}}`, fatal: `byte 12: "readings" is not a JSON array`},
		{name: "readings twice", in: `{"readings":[],"readings":[]}`, fatal: `byte 26: "readings" given twice`},
		{name: "reading and readings", in: `{"readings":[],"asset":"m"}`, fatal: `byte 0: a JSON object holds either one reading or a "readings" array, not both`},
		{
			name:  "syntax error in a reading",
			in:    `{"readings":[` + good + `,{"asset":}]}`,
			out:   []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "readings[1] at byte 93: malformed JSON: unexpected '}': want a value",
		},
		{
			name:  "missing comma",
			in:    `[` + good + ` ` + good + `]`,
			out:   []string{want(0, "m", "active_power", t0, 1, "", "", "")},
			fatal: "readings[1] at byte 72: malformed JSON: unexpected '{': want ',' or ']' after a reading",
		},
		{name: "array not closed", in: `[1,`, out: []string{`readings[0]: value "1": not an object`},
			fatal: "readings[1] at byte 3: malformed JSON: unexpected end: want a value"},
		{name: "control byte", in: "\x00", fatal: "byte 0: malformed JSON: unexpected byte 0x00: want a value"},
	}
	var p BodyParser // reused, as a server does
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out []string
			err := p.Parse([]byte(tt.in), func(r Row, e *RowError) {
				if e != nil {
					out = append(out, e.Error())
					return
				}
				if r.PosKind != PosIndex {
					t.Errorf("reading %d: PosKind %q", r.Pos, r.PosKind)
				}
				out = append(out, rowString(r))
			})
			if !slices.Equal(out, tt.out) {
				equalStrings(t, "readings", out, tt.out)
			}
			switch {
			case tt.fatal == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.fatal != "" && (err == nil || err.Error() != tt.fatal):
				t.Errorf("error %v, want %s", err, tt.fatal)
			}
		})
	}
}

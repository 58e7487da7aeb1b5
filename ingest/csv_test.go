package ingest

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
)

func cimInput(asset, quantity string, ms int64, value float64, unit, phase string) cim.Input {
	return cim.Input{Asset: asset, Quantity: quantity, Time: ms, Value: value, Unit: unit, Phase: phase}
}

const t0 = int64(1764237600123) // 2025-11-27T10:00:00.123Z

func TestCSV(t *testing.T) {
	long := strings.Repeat("x", MaxRecord+10)
	tests := []struct {
		name  string
		in    string
		rows  []string
		errs  []string
		fatal string // substring of the final error
	}{
		{
			name: "no header",
			in:   "house-01/meter,active_power,1764237600123,1234.5\n",
			rows: []string{want(1, "house-01/meter", "active_power", t0, 1234.5, "", "", "")},
		},
		{
			name: "no header, unit and phase, no final newline",
			in:   "a,voltage,1764237600123,230.1,V\na,voltage,1764237600123,0.2301,kV,L2",
			rows: []string{
				want(1, "a", "voltage", t0, 230.1, "V", "", ""),
				want(2, "a", "voltage", t0, 0.2301, "kV", "L2", ""),
			},
		},
		{
			name: "header in another order, any case",
			in:   "Value,TIME,phase,Asset,unit,quantity\n-5,2026-11-27T10:00:00.250Z,L1,m,kW,active_power\n",
			rows: []string{want(2, "m", "active_power", ms("2026-11-27T10:00:00.250Z"), -5, "kW", "L1", "")},
		},
		{
			name: "header without the optional columns",
			in:   "asset,quantity,time,value\nm,active_power,1764237600123,1\n",
			rows: []string{want(2, "m", "active_power", t0, 1, "", "", "")},
		},
		{
			name: "quoted header",
			in:   "\"asset\",\"quantity\",\"time\",\"value\"\nm,active_power,1764237600123,1\n",
			rows: []string{want(2, "m", "active_power", t0, 1, "", "", "")},
		},
		{
			name: "blank and comment lines count",
			in:   "# exported by gridlink\n\nasset,quantity,time,value\n   \n# more\nm,active_power,1764237600123,1\n\n",
			rows: []string{want(6, "m", "active_power", t0, 1, "", "", "")},
		},
		{
			name: "CRLF",
			in:   "asset,quantity,time,value,unit\r\nm,active_power,1764237600123,1,W\r\n\r\nm,active_power,1764237600123,2,\r\n",
			rows: []string{
				want(2, "m", "active_power", t0, 1, "W", "", ""),
				want(4, "m", "active_power", t0, 2, "", "", ""),
			},
		},
		{
			name: "byte order mark",
			in:   "\xef\xbb\xbfasset,quantity,time,value\nm,active_power,1764237600123,1\n",
			rows: []string{want(2, "m", "active_power", t0, 1, "", "", "")},
		},
		{
			name: "spaces around fields",
			in:   " m , active_power ,\t1764237600123 , 1.5 \n",
			rows: []string{want(1, "m", "active_power", t0, 1.5, "", "", "")},
		},
		{
			name: "RFC 3339 with offset and nanoseconds",
			in:   "m,active_power,2026-11-27T11:00:00.123999999+01:00,1\nm,active_power,2026-11-27t10:00:00z,1\n",
			rows: []string{
				want(1, "m", "active_power", ms("2026-11-27T10:00:00.123Z"), 1, "", "", ""),
				want(2, "m", "active_power", ms("2026-11-27T10:00:00Z"), 1, "", "", ""),
			},
		},
		{
			name: "quoted fields",
			in: "\"house \"\"A\"\", meter\",\"active_power\",\"1764237600123\",\"1234.5\"\n" +
				"\"multi\nline\",active_power,1764237600123,1\n" +
				"m , \"active_power\" ,1764237600123,1\r\n" +
				"m,active_power,1764237600123,\"\"\n" +
				"last,active_power,1764237600123,1",
			rows: []string{
				want(1, `house "A", meter`, "active_power", t0, 1234.5, "", "", ""),
				want(2, "multi\nline", "active_power", t0, 1, "", "", ""),
				want(4, "m", "active_power", t0, 1, "", "", ""),
				want(6, "last", "active_power", t0, 1, "", "", ""),
			},
			errs: []string{`line 5: field "value": missing`},
		},
		{
			name: "state names and other text values",
			in:   "door,door_window_state,1764237600123,open\nm,active_power,1764237600123,NaN\nm,active_power,1764237600123,-Inf\n",
			rows: []string{
				want(1, "door", "door_window_state", t0, 0, "", "", "open"),
				want(2, "m", "active_power", t0, math.NaN(), "", "", ""),
				want(3, "m", "active_power", t0, math.Inf(-1), "", "", ""),
			},
		},
		{
			name: "bad quoting",
			in: "ho\"use,active_power,1764237600123,1\n" +
				"\"m\"x,active_power,1764237600123,1\n" +
				"m,active_power,1764237600123,1\n" +
				"\"open,active_power,1764237600123,1\n" +
				"m,active_power,1764237600123,2\n",
			rows: []string{
				want(3, "m", "active_power", t0, 1, "", "", ""),
				want(5, "m", "active_power", t0, 2, "", "", ""),
			},
			errs: []string{
				`line 1: bare " in unquoted field`,
				`line 2: extraneous " in quoted field`,
				`line 4: quoted field not closed`,
			},
		},
		{
			name: "wrong column count",
			in:   "m,active_power,1764237600123\nm,active_power,1764237600123,1,W,L1,x\n,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,\n",
			errs: []string{
				"line 1: 3 fields, want 4 to 6 (asset,quantity,time,value[,unit][,phase])",
				"line 2: 7 fields, want 4 to 6 (asset,quantity,time,value[,unit][,phase])",
				"line 3: 41 fields, want 4 to 6 (asset,quantity,time,value[,unit][,phase])",
			},
		},
		{
			name: "wrong column count with a header",
			in:   "asset,quantity,time,value,unit\nm,active_power,1764237600123,1\n",
			errs: []string{"line 2: 4 fields, want 5 as in the header"},
		},
		{
			name: "bad times",
			in: "asset,quantity,time,value\n" +
				"m,active_power,2026-13-01,1\n" +
				"m,active_power,,1\n" +
				"m,active_power,2026-02-29T00:00:00Z,1\n" +
				"m,active_power,1764237600123.5,1\n" +
				"m,active_power,2026-11-27T10:00:00,1\n",
			errs: []string{
				`line 2: field "time": value "2026-13-01": not an RFC 3339 time or Unix milliseconds`,
				`line 3: field "time": missing`,
				`line 4: field "time": value "2026-02-29T00:00:00Z": not an RFC 3339 time or Unix milliseconds`,
				`line 5: field "time": value "1764237600123.5": not an RFC 3339 time or Unix milliseconds`,
				`line 6: field "time": value "2026-11-27T10:00:00": not an RFC 3339 time or Unix milliseconds`,
			},
		},
		{
			name: "bad values",
			in:   "m,active_power,1764237600123,1e999\nm,active_power,1764237600123,\n",
			errs: []string{
				`line 1: field "value": value "1e999": number out of the range of a 64-bit float`,
				`line 2: field "value": missing`,
			},
		},
		{
			name: "line longer than 1 MiB",
			in:   "m,active_power,1764237600123,1\n" + long + "\nm,active_power,1764237600123,2\n",
			rows: []string{
				want(1, "m", "active_power", t0, 1, "", "", ""),
				want(3, "m", "active_power", t0, 2, "", "", ""),
			},
			errs: []string{"line 2: line longer than 1 MiB"},
		},
		{
			name: "quote not closed within 1 MiB",
			in:   "\"m\n" + long + "\nm,active_power,1764237600123,2\n",
			rows: []string{want(3, "m", "active_power", t0, 2, "", "", "")},
			errs: []string{"line 1: quoted field not closed within 1 MiB", "line 2: line longer than 1 MiB"},
		},
		{
			name:  "unknown column",
			in:    "asset,quantity,timestamp,value\nm,active_power,1764237600123,1\n",
			fatal: `line 1: csv header: unknown column "timestamp" (want asset, quantity, time, value, unit, phase)`,
		},
		{
			name:  "column twice",
			in:    "asset,quantity,time,value,Value\n",
			fatal: `line 1: csv header: column "value" given twice`,
		},
		{
			name:  "required column missing",
			in:    "\n\nasset,quantity,value\n",
			fatal: `line 3: csv header: no "time" column`,
		},
		{name: "empty", in: ""},
		{name: "only a header", in: "asset,quantity,time,value\n"},
		{name: "only a byte order mark", in: "\xef\xbb\xbf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeAll(t, NewCSV(strings.NewReader(tc.in)))
			equalStrings(t, "rows", got.rows, tc.rows)
			equalStrings(t, "errors", got.errs, tc.errs)
			checkFatal(t, got.fatal, tc.fatal)
			checkIncreasing(t, got.pos)
		})
	}
}

func checkFatal(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("final error %v, want none", err)
	case want != "" && err == nil:
		t.Errorf("no final error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("final error %q, want it to contain %q", err, want)
	case want != "":
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("final error %v is a %T, want an *InputError", err, err)
		}
	}
}

func checkIncreasing(t *testing.T, pos []int) {
	t.Helper()
	for i := 1; i < len(pos); i++ {
		if pos[i] <= pos[i-1] {
			t.Errorf("positions do not increase: %v", pos)
			return
		}
	}
}

// TestCSVSmallReads feeds the decoder one byte at a time, so that every
// record crosses buffer refills.
func TestCSVSmallReads(t *testing.T) {
	in := "asset,quantity,time,value\n\"a,\"\"b\"\"\nc\",active_power,1764237600123,1\r\n# x\nm,active_power,1764237600123,2\n"
	got := decodeAll(t, NewCSV(iotestOneByte(in)))
	equalStrings(t, "rows", got.rows, []string{
		want(2, "a,\"b\"\nc", "active_power", t0, 1, "", "", ""),
		want(5, "m", "active_power", t0, 2, "", "", ""),
	})
	if got.fatal != nil || len(got.errs) > 0 {
		t.Errorf("errors %v, final %v", got.errs, got.fatal)
	}
}

package modbus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/device"
)

// python is Debian's interpreter, which has python3-pymodbus; a pyenv
// python3 on PATH may not.
const python = "/usr/bin/python3"

// startPymodbus runs testdata/pymodbus_server.py with the given registers
// (unit → table → address → value) and returns its address.
func startPymodbus(t *testing.T, regs map[int]map[string]map[int]uint16) string {
	t.Helper()
	if err := exec.Command(python, "-c", "import pymodbus.server").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s cannot import pymodbus (install python3-pymodbus): %v", python, err)
		}
		t.Skipf("%s cannot import pymodbus: %v", python, err)
	}
	js := map[string]map[string]map[string]uint16{}
	for unit, tables := range regs {
		u := map[string]map[string]uint16{}
		for tbl, rs := range tables {
			m := map[string]uint16{}
			for a, v := range rs {
				m[strconv.Itoa(a)] = v
			}
			u[tbl] = m
		}
		js[strconv.Itoa(unit)] = u
	}
	data, err := json.Marshal(js)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "registers.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*hangGuard)
	cmd := exec.CommandContext(ctx, python, "testdata/pymodbus_server.py", file)
	var stderr bytes.Buffer // pymodbus logs every exception it answers
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel() // kills the server
		cmd.Wait()
		if t.Failed() {
			t.Logf("pymodbus stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if p, ok := strings.CutPrefix(s.Text(), "PORT "); ok {
				line <- p
				break
			}
		}
		close(line)
		for s.Scan() { // drain
		}
	}()
	port, ok := <-line
	if !ok {
		t.Fatal("pymodbus server ended without printing its port")
	}
	return "127.0.0.1:" + port
}

// TestAgainstPymodbus reads register maps served by pymodbus, a Modbus
// implementation independent of the one the simulator uses, and checks
// values computed by hand from the devices' register maps.
func TestAgainstPymodbus(t *testing.T) {
	hr := func(kv ...int) map[int]uint16 {
		m := map[int]uint16{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = uint16(kv[i+1])
		}
		return m
	}
	sunspec := hr(40000, 0x5375, 40001, 0x6E53, 40002, 1, 40003, 66)
	for a := 40004; a < 40070; a++ {
		sunspec[a] = 0
	}
	sunspec[40004], sunspec[40005] = 'g'<<8|'r', 'i'<<8|'d' // Mn "grid"
	m103 := []int{
		103, 50, // ID, L
		1520, 510, 505, 0xFFFF, 0xFFFE, // A, AphA, AphB, AphC (not implemented), A_SF -2
		0xFFFF, 0xFFFF, 0xFFFF, // PPV: not implemented
		2301, 2298, 2310, 0xFFFF, // PhVphA..C, V_SF -1
		12345, 0xFFFF, // W, W_SF -1
		5002, 0xFFFE, // Hz, Hz_SF -2
		0x8000, 0x8000, 0x8000, 0x8000, 0x8000, 0x8000, // VA, VAr, PF and their SFs
		0x00BC, 0x614E, 1, // WH acc32 12345678, WH_SF 1
	}
	for i, v := range m103 {
		sunspec[40070+i] = uint16(v)
	}
	for a := 40070 + len(m103); a < 40122; a++ {
		sunspec[a] = 0xFFFF
	}
	sunspec[40122], sunspec[40123] = 0xFFFF, 0
	addr := startPymodbus(t, map[int]map[string]map[int]uint16{
		85: {"holding": hr(
			33, 0xFFFF, 34, 0xFB2E, // int32 -1234 W
			18, 0x0001, 19, 0xE240, // uint32 123456 × 0.01 kWh
			16, 0, 17, 5000, // 50.00 kWh
			23, 54, 24, 0xFFF6, 25, 0, // 5.4 A, -1.0 A, 0 A
			258, 553, // 55.3 %
			294, 0xFC18, // -1000 W: AlphaESS charging
			1055, 0, 1056, 2500, // PV1 2500 W
			1086, 0x0001, 1087, 0x81CD, // 98765 × 0.1 kWh
		)},
		100: {"holding": hr(820, 0xFF38, 821, 150, 822, 0, 840, 524, 841, 0xFF9C, 842, 0xFDF8, 843, 87, 844, 2, 850, 1234)},
		225: {"holding": hr(262, 235, 304, 990)},
		227: {"holding": hr(3, 2301, 4, 2298, 5, 2310, 6, 52, 7, 0xFFFB, 8, 0)},
		1: {"holding": hr(
			19000, 0x4366, 19001, 0x28F6, 19002, 0x4365, 19003, 0x999A, 19004, 0x4367, 19005, 0x5C29,
			19012, 0x4128, 19013, 0, 19014, 0x4134, 19015, 0, 19016, 0x411C, 19017, 0,
			19026, 0x45E2, 19027, 0x9400, 19034, 0x45E7, 19035, 0x4000, 19042, 0xC496, 19043, 0x0800,
			19068, 0x4996, 19069, 0xB43E, 19076, 0x48A8, 19077, 0xC9D0,
		)},
		126: {"holding": sunspec},
	})
	type want map[chanKey]float64
	cases := []struct {
		profile string
		unit    int
		want    want
	}{
		{"alphaess-smile5", 0, want{
			{"active_power", ""}: -1234, {"energy_active_import", ""}: 1234560, {"energy_active_export", ""}: 50000,
			{"current", "L1"}: 5.4, {"current", "L2"}: -1, {"current", "L3"}: 0,
			{"battery_soc", ""}: 55.3, {"battery_power", ""}: 1000, {"pv_power", ""}: 2500,
			{"pv_energy_generated", ""}: 9876500,
		}},
		{"victron-gx", 0, want{
			{"active_power", "L1"}: -200, {"active_power", "L2"}: 150, {"active_power", "L3"}: 0,
			{"battery_voltage", ""}: 52.4, {"battery_current", ""}: -10, {"battery_power", ""}: -520,
			{"battery_soc", ""}: 87, {"battery_state", ""}: 2, {"pv_power", ""}: 1234,
			{"temperature", ""}: 23.5, {"battery_soh", ""}: 99,
			{"voltage", "L1"}: 230.1, {"voltage", "L2"}: 229.8, {"voltage", "L3"}: 231,
			{"current", "L1"}: 5.2, {"current", "L2"}: -0.5, {"current", "L3"}: 0,
		}},
		{"transformer-box", 0, want{
			{"voltage", "L1"}: 230.16, {"voltage", "L2"}: 229.60, {"voltage", "L3"}: 231.36,
			{"current", "L1"}: 10.5, {"current", "L2"}: 11.25, {"current", "L3"}: 9.75,
			{"active_power", ""}: 7250.5, {"apparent_power", ""}: 7400, {"reactive_power", ""}: -1200.25,
			{"energy_active_import", ""}: 1234567.75, {"energy_active_export", ""}: 345678.5,
		}},
		{"sunspec-inverter", 126, want{
			{"pv_power", ""}: 1234.5, {"pv_energy_generated", ""}: 123456780,
			{"current", "L1"}: 5.10, {"current", "L2"}: 5.05, // L3 holds "not implemented"
			{"voltage", "L1"}: 230.1, {"voltage", "L2"}: 229.8, {"voltage", "L3"}: 231.0,
			{"frequency", ""}: 50.02,
		}},
	}
	cat := cim.Default()
	for _, c := range cases {
		t.Run(c.profile, func(t *testing.T) {
			p := mustProfile(t, cat, c.profile)
			pl, err := NewPoller(p, device.Config{Address: addr, UnitID: c.unit}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			for range 2 {
				vals, err := poll(t, pl)
				if err != nil {
					t.Fatal(err)
				}
				got := map[chanKey]float64{}
				for _, v := range vals {
					got[chanKey{v.Quantity, v.Phase}] = canonical(t, cat, v)
				}
				if len(got) != len(c.want) {
					t.Errorf("got %d values %v, want %d", len(got), got, len(c.want))
				}
				for k, w := range c.want {
					g, ok := got[k]
					// float32 registers hold the nearest float32.
					tol := 1e-9 * math.Max(1, math.Abs(w))
					if c.profile == "transformer-box" {
						tol = math.Abs(w) * 1e-7
					}
					if !ok || math.Abs(g-w) > tol {
						t.Errorf("%s %s = %v (present %v), want %v", k.q, k.ph, g, ok, w)
					}
				}
			}
		})
	}
}

//go:build !edge

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestITCList lists the embedded catalogue, one line per case.
func TestITCList(t *testing.T) {
	code, out, errOut := gridlink(t, "itc", "list")
	if code != 0 {
		t.Fatalf("itc list: exit %d\n%s", code, errOut)
	}
	for _, id := range []string{"ITC1.01", "ITC2.01", "IT10.01", "FLT1.01"} {
		if !strings.Contains(out, id) {
			t.Errorf("itc list lacks %s:\n%s", id, out)
		}
	}
	if code, _, errOut := gridlink(t, "itc", "run", "--platform", "http://127.0.0.1:1", "--key", "k", "--case", "ITC99.99"); code != 1 || !strings.Contains(errOut, "ITC99.99") {
		t.Errorf("unknown case: exit %d, %s", code, errOut)
	}
	if code, _, _ := gridlink(t, "itc", "run"); code != 2 {
		t.Errorf("itc run without --platform: exit %d, want 2", code)
	}
}

// TestITCRunSimulate runs `gridlink itc run --simulate --ocpp URL` against
// `gridlink serve` in another process: the smart meter, plug and charging
// point cases pass, measured against simulators, a gateway and an OCPP
// charger the runner started itself, the reports are written, and the exit
// code says so. A case whose asset the site lacks is not run and makes the
// exit code 1.
func TestITCRunSimulate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run")
	}
	dir := t.TempDir()
	siteDir := filepath.Join(dir, "sites")
	os.MkdirAll(siteDir, 0o755)
	os.WriteFile(filepath.Join(siteDir, "bristol.yaml"), []byte(`site: {id: bristol, name: Bristol, country: GB, timezone: Europe/London}
assets:
  - {id: house-01/meter, type: smart_meter, make: Eastron, model: SDM630}
  - {id: house-01/plug-01, type: energy_asset, make: TP-Link, model: Kasa KP115}
  - {id: evse-01, type: charging_point, make: Alfen, model: Eve Single}
`), 0o644)
	ocppAddr := freeAddr(t)
	plat := startServer(t, "--data", filepath.Join(dir, "data"), "--sites", siteDir, "--ocpp-listen", ocppAddr)
	report := filepath.Join(dir, "report")
	cmd := exec.Command(binary, "itc", "run", "--platform", plat.url, "--key", plat.key, "--simulate", "--ocpp", "ws://"+ocppAddr+"/ocpp",
		"--case", "ITC1.01", "--case", "ITC4.01", "--case", "ITC2.01", "--window", "5s", "--report", report)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("itc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), tail(stderr.String(), 3000))
	}
	out := stdout.String()
	for _, want := range []string{"ITC1.01", "ITC4.01", "ITC2.01", "passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(report, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		Results []struct {
			Case, Status string
			Assets       []struct{ Asset string }
		}
	}
	if err := json.Unmarshal(b, &run); err != nil || len(run.Results) != 3 {
		t.Fatalf("report.json: %v, %s", err, b)
	}
	for _, r := range run.Results {
		if r.Status != "passed" || len(r.Assets) != 1 {
			t.Errorf("%+v", r)
		}
	}
	for _, f := range []string{"report.md", "junit.xml", "report.html"} {
		if _, err := os.Stat(filepath.Join(report, f)); err != nil {
			t.Error(err)
		}
	}
	t.Logf("itc run:\n%s", out)

	// A deliberately broken set-up: the gateways read the meter with a
	// register scale 10 × too large. ITC1.01 fails naming the asset,
	// quantity and both values; ITC4.01 (the plug) still passes.
	src, err := os.ReadFile("../../profile/profiles/eastron-sdm630.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(string(src), "quantity: active_power, unit: W}", "quantity: active_power, unit: W, scale: 10}", 1)
	profiles := filepath.Join(dir, "profiles")
	os.MkdirAll(profiles, 0o755)
	os.WriteFile(filepath.Join(profiles, "eastron-sdm630.yaml"), []byte(wrong), 0o644)
	cmd = exec.Command(binary, "itc", "run", "--platform", plat.url, "--key", plat.key, "--simulate", "--gateway-profiles", profiles,
		"--case", "ITC1.01", "--case", "ITC4.01", "--window", "3s")
	b, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "house-01/meter active_power total at") ||
		!strings.Contains(string(b), "the platform holds") || !regexp.MustCompile(`ITC4.01 +bristol +passed`).Match(b) {
		t.Errorf("wrong scale: exit %d\n%s", cmd.ProcessState.ExitCode(), b)
	}
	// A gateway with a wrong key: nothing arrives, the case is suspended
	// saying so.
	cmd = exec.Command(binary, "itc", "run", "--platform", plat.url, "--key", plat.key, "--simulate", "--ingest-key", "glk_wrong_key_000000000000000000",
		"--case", "ITC1.01", "--window", "10s")
	b, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "suspended") || !strings.Contains(string(b), "unauthorized") {
		t.Errorf("wrong key: exit %d\n%s", cmd.ProcessState.ExitCode(), b)
	}

	// Without a truth of the charger (no --simulate): ITC2.01 is not run,
	// exit 1.
	cmd = exec.Command(binary, "itc", "run", "--platform", plat.url, "--key", plat.key, "--case", "ITC2.01", "--window", "1s")
	b, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(b), "no charging_point with a device truth") {
		t.Errorf("ITC2.01 without a charger: exit %d\n%s", cmd.ProcessState.ExitCode(), b)
	}
}

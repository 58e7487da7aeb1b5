package gateway

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/profile"
)

const goodConfig = `
site: bristol
platform: {url: "https://cdmp.example.org", key_file: ingest.key}
queue: {max_bytes: 32MiB}
broker:
  listen: 127.0.0.1:1883
  users: [{username: plug-01, password: secret-secret}]
devices:
  - {asset: house-01/meter, profile: eastron-sdm630, address: 192.168.1.10, interval: 1s}
`

func TestParseConfig(t *testing.T) {
	set, err := profile.Embedded(cim.Default())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig([]byte(goodConfig), "hems.yaml", set)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.MaxBytes != 32<<20 || c.Data != DefaultData || c.Status.Listen != DefaultStatus || c.Platform.BatchSize != DefaultBatchSize {
		t.Errorf("defaults or sizes wrong: %+v", c)
	}
	if c.Devices[0].Interval.Seconds() != 1 {
		t.Errorf("interval = %v", c.Devices[0].Interval)
	}
}

func TestParseConfigErrorsNameLineAndField(t *testing.T) {
	set, _ := profile.Embedded(cim.Default())
	cases := []struct{ change, want string }{
		{"site: bristol", `hems.yaml:2: site: "Bristol!"`},
		{"queue: {max_bytes: 32MiB}", `hems.yaml:4: size "lots"`},
		{"profile: eastron-sdm630", `hems.yaml:9: devices[0].profile: profile "nope" is not known`},
		{"interval: 1s", `hems.yaml:9: devices[0].interval: 10ms: want at least 100ms`},
		{"address: 192.168.1.10, ", `devices[0].address: missing address`},
		{"key_file: ingest.key", `platform: give exactly one of key and key_file`},
		{"password: secret-secret", `broker.users[0].password: password shorter than 8`},
		{"devices:", `hems.yaml:9: field devicez not found`},
	}
	repl := map[string]string{
		"site: bristol":             `site: "Bristol!"`,
		"queue: {max_bytes: 32MiB}": `queue: {max_bytes: lots}`,
		"profile: eastron-sdm630":   "profile: nope",
		"interval: 1s":              "interval: 10ms",
		"address: 192.168.1.10, ":   "",
		"key_file: ingest.key":      "key_file: ingest.key, key: glk_x",
		"password: secret-secret":   "password: short",
		"devices:":                  "devices: []\ndevicez:",
	}
	for _, c := range cases {
		in := strings.Replace(goodConfig, c.change, repl[c.change], 1)
		_, err := ParseConfig([]byte(in), "hems.yaml", set)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("with %q:\n got %v\nwant …%s…", repl[c.change], err, c.want)
		}
	}
}

func promRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

package httpjson

import (
	"embed"
	"encoding/json"
	"fmt"

	"github.com/gridlink/gridlink/profile"
)

// devices holds recorded replies of real devices (each with a .src file
// naming its public origin) that simulators start from.
//
//go:embed devices/*.json
var devices embed.FS

// base names a recorded reply, or a part of one, or gives a document built
// from a device's documented schema where no recording exists.
type base struct {
	file  string // in devices/
	sub   string // a path inside the file; "" for the whole file
	built string // a document written here, when file is ""
}

// baseDocs are the simulators' starting documents by profile name and
// request path (as the profile writes it).
var baseDocs = map[string]map[string]base{
	"shelly-em-http":         {"/status": {file: "shelly-em-status.json"}},
	"shelly-plug-s-http":     {"/status": {file: "shelly-plug-s-meters-excerpt.json"}},
	"shelly-dw2-http":        {"/status": {file: "shelly-door-window-status.json"}},
	"netatmo-homecoach":      {"/api/gethomecoachsdata?device_id={device_id}": {file: "netatmo-gethomecoachsdata.json"}},
	"smartthings-aeotec-ms6": {"/v1/devices/{device_id}/status": {file: "smartthings-aeotec-ms6-status.json"}},
	"tesla-powerwall2": {
		"/api/meters/aggregates":         {file: "powerwall-aggregates.json"},
		"/api/system_status/soe":         {file: "powerwall-soe.json"},
		"/api/system_status/grid_status": {file: "powerwall-grid-status.json"},
	},
	"hue-bridge-sensors": {
		"/api/{username}/sensors/{temp_id}":     {file: "hue-v1-sensors.json", sub: "6"},
		"/api/{username}/sensors/{light_id}":    {file: "hue-v1-sensors.json", sub: "5"},
		"/api/{username}/sensors/{presence_id}": {file: "hue-v1-sensors.json", sub: "4"},
	},
	// No capture of the TQ meters is public; these follow the schema in
	// devices/tq-em-http-api.txt (EM300) and the EM420 reply logged in
	// evcc-io/evcc issue 16765.
	"tq-em300": {"/mum-webservice/data.php": {built: `{"serial":"72102414","status":0}`}},
	"tq-em420": {"/api/json/{device}/values/smart-meter": {built: `{"smart-meter":{"configuration_id":"84b6174e6d51f10809793fc105951e0851def70b","status":"STATUS_OK","timestamp":{"seconds":1729699542,"nanos":583875718},"values":{}}}`}},
}

// quirk is how a device deviates from plain JSON over HTTP.
type quirk struct {
	contentType string // instead of application/json
	trailer     string // bytes after the JSON document
}

// quirks by profile name: TQ EM300 firmware 2.04 sends its JSON as
// text/html with a trailing '#'.
var quirks = map[string]quirk{
	"tq-em300": {contentType: "text/html; charset=UTF-8", trailer: "#"},
}

// BaseDocument returns the starting document of a profile's request: a
// recorded reply of the real device where one exists, or nil.
func BaseDocument(profileName, requestPath string) ([]byte, error) {
	b, ok := baseDocs[profileName][requestPath]
	if !ok {
		return nil, nil
	}
	if b.file == "" {
		return []byte(b.built), nil
	}
	data, err := devices.ReadFile("devices/" + b.file)
	if err != nil {
		return nil, err
	}
	if b.sub == "" {
		return data, nil
	}
	doc, err := DecodeBody(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.file, err)
	}
	p, err := profile.ParsePath(b.sub)
	if err != nil {
		return nil, err
	}
	part, ok := p.Get(doc)
	if !ok {
		return nil, fmt.Errorf("%s has no %s", b.file, b.sub)
	}
	return json.Marshal(part)
}

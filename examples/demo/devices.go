// Package demo holds what `gridlink demo` simulates: devices.yaml maps
// every asset of the pilot sites (examples/pilots) to the device profile
// whose simulator stands for it, to a simulated OCPP charger, or to
// nothing with the reason. `gridlink itc run --simulate` uses the same
// mapping.
package demo

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/yamlpos"
	"github.com/gridlink/gridlink/inventory"
	"github.com/gridlink/gridlink/profile"
)

//go:embed devices.yaml
var devicesYAML []byte

// Mapping is devices.yaml: the measuring cycle of the simulators, the
// gateways' default poll interval, and one Device per asset.
type Mapping struct {
	Cycle    time.Duration
	Interval time.Duration
	// Devices in file order.
	Devices []Device
}

// Device says what simulates one asset. Exactly one of Profile,
// ChargePoint and None is set.
type Device struct {
	Site, Asset string
	// Profile is the device profile a simulator runs, behind the site's
	// gateway; Vars fill its placeholders.
	Profile string
	Vars    map[string]string
	// ChargePoint, when not nil, makes the asset a simulated OCPP charger
	// connected straight to the platform.
	ChargePoint *ChargePoint
	// None says why the asset is not simulated.
	None string
	// Interval is the gateway's poll interval (the mapping's default when
	// the file gives none).
	Interval time.Duration
	// Ledger marks a ledger asset whose readings the gateway signs.
	Ledger bool
	// Note says where a profile only stands in for the real device.
	Note string
	// Line is where the device is in the file.
	Line int
}

// ChargePoint is a simulated OCPP 1.6J charger's set-up.
type ChargePoint struct {
	// ID is the charger's OCPP identity, registered for the asset: the
	// file's id, or the asset id when it gives none. Identities are one
	// namespace on a central system while asset ids are per site, so
	// Parse refuses an identity two chargers share.
	ID     string
	Quirks []string
}

// maxChargePointID is the longest OCPP identity package chargepoint takes
// (OCPP 1.6's chargeBoxIdentity is CiString48).
const maxChargePointID = 48

// Error is one problem at one line of a mapping file.
type Error = yamlpos.Error

// Embedded returns the shipped devices.yaml.
func Embedded() (*Mapping, error) { return Parse("devices.yaml", devicesYAML) }

// Quirks known to package chargepoint.
var knownQuirks = []string{"alfen", "wallbox", "empty-vendor"}

// Parse reads a mapping strictly: an unknown field, a device with none or
// several of profile/chargepoint/none, a bad duration or a duplicate asset
// is an error naming file, line and field. name names the file in errors.
func Parse(name string, data []byte) (*Mapping, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: name, Msg: "empty file"}
	}
	p := parser{file: name}
	m := p.top(root.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return m, nil
}

type parser struct {
	file string
	errs []error
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// pairs walks a mapping node's keys and values, refusing anything else
// and duplicate keys.
func (p *parser) pairs(n *yaml.Node, field string, fn func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "want a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.fail(k, field, "want a plain key")
			continue
		}
		if seen[k.Value] {
			p.fail(k, join(field, k.Value), "given twice")
			continue
		}
		seen[k.Value] = true
		fn(k, v)
	}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func (p *parser) duration(n *yaml.Node, field string) time.Duration {
	if n.Kind != yaml.ScalarNode {
		p.fail(n, field, "want a duration such as 1s")
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d <= 0 {
		p.fail(n, field, "%q is not a positive duration such as 1s", n.Value)
		return 0
	}
	return d
}

func (p *parser) text(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, field, "want text")
		return ""
	}
	return n.Value
}

func (p *parser) top(n *yaml.Node) *Mapping {
	m := &Mapping{Cycle: time.Second, Interval: 500 * time.Millisecond}
	var sites *yaml.Node
	p.pairs(n, "", func(k, v *yaml.Node) {
		switch k.Value {
		case "cycle":
			m.Cycle = p.duration(v, "cycle")
		case "interval":
			m.Interval = p.duration(v, "interval")
		case "sites":
			sites = v
		default:
			p.fail(k, k.Value, "unknown field (known: cycle, interval, sites)")
		}
	})
	if sites == nil {
		p.fail(n, "sites", "missing")
		return m
	}
	p.pairs(sites, "sites", func(sk, sv *yaml.Node) {
		site := sk.Value
		if !validID(site) {
			p.fail(sk, "sites."+site, "site id %q: want lower-case letters, digits, - and _", site)
		}
		p.pairs(sv, "sites."+site, func(ak, av *yaml.Node) {
			if !validAssetID(ak.Value) {
				p.fail(ak, "sites."+site, "asset id %q: want lower-case letters, digits, -, _ and /", ak.Value)
				return
			}
			d := p.device(site, ak.Value, av)
			d.Line = ak.Line
			m.Devices = append(m.Devices, d)
		})
	})
	// The default interval may come after the sites in the file.
	for i := range m.Devices {
		if m.Devices[i].Interval == 0 {
			m.Devices[i].Interval = m.Interval
		}
	}
	p.uniqueChargePoints(m.Devices)
	return m
}

// uniqueChargePoints refuses an OCPP identity that two chargers share: a
// central system tells chargers apart by identity alone.
func (p *parser) uniqueChargePoints(ds []Device) {
	first := map[string]Device{}
	for _, d := range ds {
		if d.ChargePoint == nil || d.ChargePoint.ID == "" {
			continue
		}
		id := d.ChargePoint.ID
		if o, ok := first[id]; ok {
			p.errs = append(p.errs, &Error{File: p.file, Line: d.Line, Field: "sites." + d.Site + "." + d.Asset + ".chargepoint.id",
				Msg: fmt.Sprintf("OCPP identity %q is also sites.%s.%s's (line %d): identities are one namespace on a central system; give each charger an id of its own",
					id, o.Site, o.Asset, o.Line)})
			continue
		}
		first[id] = d
	}
}

func (p *parser) device(site, asset string, n *yaml.Node) Device {
	d := Device{Site: site, Asset: asset}
	field := "sites." + site + "." + asset
	kinds := 0
	p.pairs(n, field, func(k, v *yaml.Node) {
		f := join(field, k.Value)
		switch k.Value {
		case "profile":
			d.Profile = p.text(v, f)
			if d.Profile == "" {
				p.fail(v, f, "empty: name a profile (gridlink sim --list)")
			}
			kinds++
		case "chargepoint":
			d.ChargePoint = p.chargePoint(v, f)
			if d.ChargePoint.ID == "" {
				// The asset id stands for the identity where it can be one.
				if validChargePointID(asset) {
					d.ChargePoint.ID = asset
				} else {
					p.fail(v, join(f, "id"), "asset id %q cannot be an OCPP identity: give the charger an id (1 to %d letters, digits, - _ .)", asset, maxChargePointID)
				}
			}
			kinds++
		case "none":
			d.None = p.text(v, f)
			if d.None == "" {
				p.fail(v, f, "say why the asset is not simulated")
			}
			kinds++
		case "vars":
			d.Vars = map[string]string{}
			p.pairs(v, f, func(vk, vv *yaml.Node) { d.Vars[vk.Value] = p.text(vv, join(f, vk.Value)) })
		case "interval":
			d.Interval = p.duration(v, f)
		case "ledger":
			if v.Kind != yaml.ScalarNode || (v.Value != "true" && v.Value != "false") {
				p.fail(v, f, "want true or false")
			}
			d.Ledger = v.Value == "true"
		case "note":
			d.Note = p.text(v, f)
		default:
			p.fail(k, f, "unknown field (known: profile, chargepoint, none, vars, interval, ledger, note)")
		}
	})
	if n.Kind == yaml.MappingNode && kinds != 1 {
		p.fail(n, field, "give exactly one of profile, chargepoint and none")
	}
	if d.None != "" && (d.Ledger || d.Vars != nil) {
		p.fail(n, field, "an asset that is not simulated takes no vars and no ledger mark")
	}
	if d.ChargePoint != nil && (d.Ledger || d.Vars != nil) {
		p.fail(n, field, "a charge point's readings are signed by the platform, not a gateway: no ledger mark or vars")
	}
	return d
}

func (p *parser) chargePoint(n *yaml.Node, field string) *ChargePoint {
	cp := &ChargePoint{}
	p.pairs(n, field, func(k, v *yaml.Node) {
		f := join(field, k.Value)
		switch k.Value {
		case "id":
			id := p.text(v, f)
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				return // text said so
			}
			if !validChargePointID(id) {
				p.fail(v, f, "OCPP identity %q: want 1 to %d letters, digits, - _ .", id, maxChargePointID)
				return
			}
			cp.ID = id
		case "quirks":
			if v.Kind != yaml.SequenceNode {
				p.fail(v, f, "want a list")
				return
			}
			for _, q := range v.Content {
				s := p.text(q, f)
				if !slices.Contains(knownQuirks, s) {
					p.fail(q, f, "unknown quirk %q (known: %s)", s, strings.Join(knownQuirks, ", "))
					continue
				}
				cp.Quirks = append(cp.Quirks, s)
			}
		default:
			p.fail(k, f, "unknown field (known: id, quirks)")
		}
	})
	return cp
}

// validChargePointID reports whether s can be an OCPP identity: the last
// path element of the charger's URL and its basic-auth user name, so no
// characters that need escaping there, and no ':' (it ends a basic-auth
// user name).
func validChargePointID(s string) bool {
	if s == "" || len(s) > maxChargePointID {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return false
		}
	}
	return true
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validAssetID(s string) bool {
	if s == "" || len(s) > 128 || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return false
	}
	for _, part := range strings.Split(s, "/") {
		if !validID(part) {
			return false
		}
	}
	return true
}

// Get returns the device of an asset of a site.
func (m *Mapping) Get(site, asset string) (Device, bool) {
	for _, d := range m.Devices {
		if d.Site == site && d.Asset == asset {
			return d, true
		}
	}
	return Device{}, false
}

// Check holds the mapping against the sites and the profiles: every asset
// of every site is mapped, every device is an asset of its site, each
// profile exists, a physiological sensor is no ledger asset. name names
// the mapping file in errors.
func (m *Mapping) Check(name string, sites []inventory.File, set *profile.Set) error {
	var errs []error
	assets := map[string]cim.Asset{}
	for _, f := range sites {
		for _, a := range f.Assets {
			assets[f.Site.ID+" "+a.ID] = a
			if _, ok := m.Get(f.Site.ID, a.ID); !ok {
				errs = append(errs, &Error{File: name, Field: "sites." + f.Site.ID, Msg: fmt.Sprintf("asset %s (%s) is not mapped: give it a profile, a chargepoint or none", a.ID, a.Type)})
			}
		}
	}
	for _, d := range m.Devices {
		at := &Error{File: name, Line: d.Line, Field: "sites." + d.Site + "." + d.Asset}
		a, ok := assets[d.Site+" "+d.Asset]
		switch {
		case !ok:
			at.Msg = "no such asset in the site files"
		case d.Profile != "" && set != nil:
			if _, found := set.Get(d.Profile); !found {
				at.Msg = fmt.Sprintf("profile %q does not exist", d.Profile)
			}
		case d.ChargePoint != nil && a.Type != cim.ChargingPoint:
			at.Msg = fmt.Sprintf("a simulated charge point for an asset of type %s", a.Type)
		}
		if ok && d.Ledger && a.Type == cim.PhysiologicalSensor {
			at.Msg = "a physiological sensor's health data never goes to the ledger"
		}
		if at.Msg != "" {
			errs = append(errs, at)
		}
	}
	return errors.Join(errs...)
}

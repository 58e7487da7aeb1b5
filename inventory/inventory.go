// Package inventory reads site files: YAML documents that describe one site
// (tenant) and its assets, which the platform loads at startup
// (serve --sites DIR). The four pilot sites are in examples/pilots.
//
//	site: {id: bristol, name: Bristol, country: GB, timezone: Europe/London}
//	assets:
//	  - id: house-01/meter
//	    type: smart_meter
//	    make: Shelly
//	    model: EM
//	    household: house-01
//	    location: {lat: 51.45, lon: -2.59}
//
// Decoding is strict: unknown fields are errors, and every error names the
// file and line.
package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/internal/yamlpos"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest site file Parse reads, in bytes. Real files are
// a few kilobytes; the limit keeps a wrong path from reading a disk image.
const MaxFileSize = 1 << 20

// File is one parsed site file. Every asset's Site is the file's site id.
type File struct {
	Site   cim.Site
	Assets []cim.Asset
}

// Error is one problem at one place in a site file. Line is 0 when the
// problem concerns the whole file.
type Error = yamlpos.Error

// document is the file's shape; pointers tell a missing section from an
// empty one.
type document struct {
	Site   *cim.Site   `yaml:"site"`
	Assets []cim.Asset `yaml:"assets"`
}

// Parse decodes and checks one site file; name is used in error messages.
// It reports every problem it finds, joined (errors.Join), each an *Error.
func Parse(data []byte, name string) (File, error) {
	if len(data) > MaxFileSize {
		return File{}, &Error{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}
	}
	// Decode twice: once into nodes for the line of each asset and field,
	// once strictly into the types, which reports unknown fields.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return File{}, syntaxError(name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return File{}, &Error{File: name, Msg: "empty file: want a site and its assets"}
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return File{}, &Error{File: name, Line: top.Line, Msg: "want a mapping with site and assets"}
	}
	c := checker{file: name, assetNodes: valueOf(top, "assets")}
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return File{}, syntaxError(name, err)
		}
		// Type errors leave the rest decoded: check it too, so that the
		// user sees every problem at once.
		for _, msg := range te.Errors {
			c.typeError(msg)
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		c.errorf(extra.Line, "more than one YAML document; want one site per file")
	}
	f := c.check(doc, top)
	if err := c.result(); err != nil {
		return File{}, err
	}
	return f, nil
}

// syntaxError turns the YAML parser's "yaml: line 3: ..." into an *Error.
func syntaxError(name string, err error) *Error {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	return &Error{File: name, Line: line, Msg: msg}
}

// splitLine splits "line 14: msg" into 14 and msg.
func splitLine(s string) (int, string) {
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return line, tail
			}
		}
	}
	return 0, s
}

// typeError records one of the decoder's messages ("line 14: field foo not
// found in type cim.Asset"), rephrased in the file's terms.
func (c *checker) typeError(msg string) {
	line, msg := splitLine(msg)
	if field, typ, ok := strings.Cut(msg, " not found in type "); ok && strings.HasPrefix(field, "field ") {
		field = strings.TrimPrefix(field, "field ")
		if _, named := c.assetAt(line); named && typ == "cim.Asset" {
			msg = fmt.Sprintf("unknown field %q", field) // errorf names the asset
		} else {
			msg = fmt.Sprintf("unknown field %q in %s", field, describeType(typ, false))
		}
	} else if got, typ, ok := strings.Cut(msg, " into "); ok && strings.HasPrefix(got, "cannot unmarshal ") {
		msg = fmt.Sprintf("got %s, want %s", strings.TrimPrefix(got, "cannot unmarshal "), describeType(typ, true))
	}
	c.errorf(line, "%s", msg)
}

// describeType names a Go type of the decoder's messages as the file sees it.
func describeType(typ string, article bool) string {
	var s string
	switch strings.TrimPrefix(typ, "*") {
	case "inventory.document":
		s = "a mapping with site and assets"
	case "cim.Site":
		s = "a site (id, name, country, timezone)"
	case "[]cim.Asset":
		s = "a list of assets"
	case "cim.Asset":
		s = "an asset (id, type, name, make, model, household, location)"
	case "cim.Location":
		s = "a location (lat, lon, address)"
	case "float64":
		s = "a number"
	case "string", "cim.AssetType":
		s = "a string"
	default:
		return typ
	}
	if !article {
		// "unknown field in an asset (...)" reads better as "in asset".
		s = strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ")
		s, _, _ = strings.Cut(s, " (")
	}
	return s
}

package inventory

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gridlink/gridlink/cim"
	"go.yaml.in/yaml/v3"
)

// checker collects the problems of one file, so that a user fixes them in
// one round instead of one per start.
type checker struct {
	file       string
	assetNodes *yaml.Node // the assets sequence, for naming the asset of a line
	errs       []error
	n          int // problems found, including those not kept
}

// maxErrors is how many problems of one file are reported; past that, a
// count stands for the rest.
const maxErrors = 50

// result returns the problems found, or nil.
func (c *checker) result() error {
	if c.n > maxErrors {
		c.errs = append(c.errs, &Error{File: c.file, Msg: fmt.Sprintf("%d more problems", c.n-maxErrors)})
	}
	return errors.Join(c.errs...)
}

// errorf records a problem; a line inside an asset's entry gets that asset
// named, unless the message already does.
func (c *checker) errorf(line int, format string, args ...any) {
	c.n++
	if c.n > maxErrors {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if id, ok := c.assetAt(line); ok && !strings.HasPrefix(msg, "asset ") {
		msg = fmt.Sprintf("asset %q: %s", id, msg)
	}
	c.errs = append(c.errs, &Error{File: c.file, Line: line, Msg: msg})
}

// assetAt returns the id of the asset whose entry spans line.
func (c *checker) assetAt(line int) (string, bool) {
	if c.assetNodes == nil || c.assetNodes.Kind != yaml.SequenceNode || line <= 0 {
		return "", false
	}
	// Entries are in line order; the asset is the last one starting at or
	// before line. Binary search keeps a file with many errors linear.
	items := c.assetNodes.Content
	i := sort.Search(len(items), func(i int) bool { return items[i].Line > line }) - 1
	if i < 0 {
		return "", false
	}
	if id := valueOf(items[i], "id"); id != nil && id.Kind == yaml.ScalarNode && id.Value != "" {
		return id.Value, true
	}
	return "", false
}

// check validates the decoded document; top is the same document as nodes,
// for line numbers.
func (c *checker) check(doc document, top *yaml.Node) File {
	siteNode := valueOf(top, "site")
	if doc.Site == nil {
		c.errorf(top.Line, "no site section")
		return File{}
	}
	site := *doc.Site
	c.checkSite(site, siteNode)

	assets := make([]cim.Asset, 0, len(doc.Assets))
	seen := make(map[string]int, len(doc.Assets)) // id -> line
	for i, a := range doc.Assets {
		var n *yaml.Node
		if c.assetNodes != nil && c.assetNodes.Kind == yaml.SequenceNode && i < len(c.assetNodes.Content) {
			n = c.assetNodes.Content[i]
		}
		line := lineOf(n, "")
		if a.ID == "" {
			c.errorf(line, "asset %d has no id", i+1)
		} else if err := cim.CheckAssetID(a.ID); err != nil {
			c.errorf(lineOf(n, "id"), "asset %q: invalid id: %s", a.ID, reason(err))
		} else if first, dup := seen[a.ID]; dup {
			c.errorf(lineOf(n, "id"), "asset %q: defined twice (first on line %d)", a.ID, first)
		} else {
			seen[a.ID] = lineOf(n, "id")
		}
		if a.Type == "" {
			c.errorf(line, "asset %q: no type", a.ID)
		} else if _, err := cim.ParseAssetType(string(a.Type)); err != nil {
			c.errorf(lineOf(n, "type"), "asset %q: unknown asset type %q", a.ID, a.Type)
		}
		if err := a.CheckLedger(); err != nil {
			c.errorf(lineOf(n, "ledger"), "asset %q: ledger: %s", a.ID, reason(err))
		}
		if a.Site != "" && a.Site != site.ID {
			c.errorf(lineOf(n, "site"), "asset %q: site %q differs from the file's site %q", a.ID, a.Site, site.ID)
		}
		a.Site = site.ID
		if a.Household != "" && !isLowerID(a.Household) {
			c.errorf(lineOf(n, "household"), "asset %q: household %q: want lowercase letters, digits and '-'", a.ID, a.Household)
		}
		if l := a.Location; l != nil {
			if l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
				c.errorf(lineOf(n, "location"), "asset %q: location (%g, %g) is not a latitude and longitude", a.ID, l.Latitude, l.Longitude)
			}
		}
		assets = append(assets, a)
	}
	return File{Site: site, Assets: assets}
}

func (c *checker) checkSite(s cim.Site, n *yaml.Node) {
	switch {
	case s.ID == "":
		c.errorf(lineOf(n, ""), "site has no id")
	case !isLowerID(s.ID):
		c.errorf(lineOf(n, "id"), "site id %q: want lowercase letters, digits and '-'", s.ID)
	}
	if s.Name == "" {
		c.errorf(lineOf(n, ""), "site %q has no name", s.ID)
	}
	if s.Country != "" && !isCountryCode(s.Country) {
		c.errorf(lineOf(n, "country"), "site %q: country %q: want an ISO 3166-1 alpha-2 code such as GB", s.ID, s.Country)
	}
	// The zone's shape only: loading it would need tzdata on the host,
	// which a minimal container may lack.
	if s.Timezone != "" && !isZoneName(s.Timezone) {
		c.errorf(lineOf(n, "timezone"), "site %q: timezone %q: want an IANA name such as Europe/London", s.ID, s.Timezone)
	}
}

// reason strips the field and value from a cim.FieldError, which the
// message here already names.
func reason(err error) string {
	if fe, ok := err.(*cim.FieldError); ok {
		return fe.Reason
	}
	return err.Error()
}

// valueOf returns the value node of key in mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// lineOf returns the line of key's value in mapping n, or of n itself when
// key is "" or absent, or 0 without a node.
func lineOf(n *yaml.Node, key string) int {
	if v := valueOf(n, key); v != nil {
		return v.Line
	}
	if n != nil {
		return n.Line
	}
	return 0
}

func isLowerID(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}

func isCountryCode(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

func isZoneName(s string) bool {
	if s == "UTC" {
		return true
	}
	if len(s) > 64 || s[0] == '/' || s[len(s)-1] == '/' {
		return false
	}
	slash := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '/':
			slash = true
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '_', b == '-', b == '+':
		default:
			return false
		}
	}
	return slash
}

// Package yamlpos finds where a field is in a YAML document, so that errors
// found after decoding (a wrong quantity, a missing profile) can still name
// the line, as editors and people expect.
package yamlpos

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Line returns the line of the deepest node of path (map keys as strings,
// sequence indices as ints) that exists in the document root, or 0.
func Line(root *yaml.Node, path ...any) int {
	if root == nil || root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return 0
	}
	n := root.Content[0]
	line := n.Line
	for _, k := range path {
		var next *yaml.Node
		switch k := k.(type) {
		case int:
			if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
				next = n.Content[k]
			}
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// Field writes a path the way people read it: devices[3].profile.
func Field(path ...any) string {
	var b strings.Builder
	for _, k := range path {
		switch k := k.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(k) + "]")
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(k)
		}
	}
	return b.String()
}

// Error is a problem in a YAML file, rendered as "file:line: field: what is
// wrong", the form editors jump to; line and field are left out when
// unknown.
type Error struct {
	File  string
	Line  int    // 0 when unknown
	Field string // e.g. pass_criteria.check; "" when the whole file is at fault
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

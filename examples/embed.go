// Package examples embeds the shipped example files that commands use
// without a checkout: the four pilot sites of the seed (pilots/*.yaml),
// which `gridlink demo` loads.
package examples

import (
	"embed"
	"io/fs"
)

//go:embed pilots/*.yaml
var pilots embed.FS

// Pilots returns the pilot site files (athens.yaml, benetutti.yaml,
// bristol.yaml, steinheim.yaml) as a file system for inventory.LoadDir.
func Pilots() fs.FS {
	sub, err := fs.Sub(pilots, "pilots")
	if err != nil {
		panic(err) // the embedded directory exists: a build error otherwise
	}
	return sub
}

package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// LoadDir parses every *.yaml and *.yml file at the top of fsys (not in
// subdirectories; names starting with a dot are skipped), in name order. It
// reports the problems of all files at once, and a site defined in two
// files. A directory without site files gives no files and no error.
func LoadDir(fsys fs.FS) ([]File, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read site directory: %w", err)
	}
	var (
		files []File
		errs  []error
		sites = map[string]string{} // site id -> file name
	)
	for _, e := range entries {
		name := e.Name()
		ext := path.Ext(name)
		if e.IsDir() || strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read site file: %w", err))
			continue
		}
		f, err := Parse(data, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := sites[f.Site.ID]; dup {
			errs = append(errs, &Error{File: name, Msg: fmt.Sprintf("site %q is already defined in %s", f.Site.ID, first)})
			continue
		}
		sites[f.Site.ID] = name
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return files, nil
}

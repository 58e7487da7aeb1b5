package profile

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/gridlink/gridlink/cim"
)

//go:embed profiles/*.yaml
var embedded embed.FS

// Set is a collection of profiles by name.
type Set struct {
	byName map[string]*Profile
}

// Get returns the profile of that name.
func (s *Set) Get(name string) (*Profile, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// All lists the profiles sorted by name.
func (s *Set) All() []*Profile {
	out := make([]*Profile, 0, len(s.byName))
	for _, p := range s.byName {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Profile) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Embedded loads the profiles shipped in the binary.
func Embedded(cat *cim.Catalogue) (*Set, error) {
	s := &Set{byName: map[string]*Profile{}}
	sub, err := fs.Sub(embedded, "profiles")
	if err != nil {
		return nil, err
	}
	if err := s.add(sub, "embedded:", cat, false); err != nil {
		return nil, err
	}
	return s, nil
}

// Load loads the embedded profiles and then, when dir is not empty, the
// *.yaml files of dir; a user profile replaces an embedded one of the same
// name. Every bad file is reported.
func Load(cat *cim.Catalogue, dir string) (*Set, error) {
	s, err := Embedded(cat)
	if err != nil || dir == "" {
		return s, err
	}
	if err := s.add(os.DirFS(dir), dir+string(os.PathSeparator), cat, true); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Set) add(fsys fs.FS, prefix string, cat *cim.Catalogue, replace bool) error {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return err
	}
	more, _ := fs.Glob(fsys, "*.yml")
	names = append(names, more...)
	slices.Sort(names)
	var errs []error
	seen := map[string]string{}
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("profile %s%s: %w", prefix, name, err))
			continue
		}
		p, err := Parse(data, prefix+path.Base(name), cat)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := seen[p.Name]; dup {
			errs = append(errs, &Error{File: p.Source, Field: "name", Msg: fmt.Sprintf("%q is also the name of %s", p.Name, other)})
			continue
		}
		seen[p.Name] = p.Source
		if _, exists := s.byName[p.Name]; exists && !replace {
			errs = append(errs, &Error{File: p.Source, Field: "name", Msg: fmt.Sprintf("%q is defined twice", p.Name)})
			continue
		}
		s.byName[p.Name] = p
	}
	return errors.Join(errs...)
}

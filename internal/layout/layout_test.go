package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pkg is one package of the module as `go list -json` describes it.
type pkg struct {
	ImportPath   string
	Name         string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Error        *struct{ Err string }
}

// module is the module's path and its packages, listed once.
type module struct {
	path string
	pkgs []pkg
}

// listModule runs `go list` in the module root.
func listModule(t *testing.T) module {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	modPath, err := goCmd(root, "list", "-m")
	if err != nil {
		t.Fatal(err)
	}
	out, err := goCmd(root, "list", "-e", "-json=ImportPath,Name,Imports,TestImports,XTestImports,Error", "./...")
	if err != nil {
		t.Fatal(err)
	}
	m := module{path: strings.TrimSpace(modPath)}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Logf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		m.pkgs = append(m.pkgs, p)
	}
	return m
}

func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &goError{args, err, stderr.String()}
	}
	return string(out), nil
}

type goError struct {
	args   []string
	err    error
	stderr string
}

func (e *goError) Error() string {
	return "go " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}

// rel returns an import path relative to the module ("store/sqlite"), the
// module's own path as ".", and ok false for a path outside the module.
func (m module) rel(importPath string) (string, bool) {
	if importPath == m.path {
		return ".", true
	}
	r, ok := strings.CutPrefix(importPath, m.path+"/")
	return r, ok
}

// std reports whether an import path is of the standard library: its
// first element has no dot.
func std(importPath string) bool {
	first, _, _ := strings.Cut(importPath, "/")
	return !strings.Contains(first, ".")
}

// under reports whether rel is dir or a package below it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// connectors are the gateway's protocol drivers and the parts beside them.
var connectors = []string{"modbus", "mqtt", "httpjson", "kasa", "sim", "queue", "uplink"}

// drivers are the store implementations: only cmd wires one in.
var drivers = []string{"store/sqlite", "store/postgres", "store/memstore"}

func isDriver(rel string) bool {
	for _, d := range drivers {
		if under(rel, d) {
			return true
		}
	}
	return false
}

// rule is one constraint on the imports of the packages it applies to.
type rule struct {
	name string
	// applies picks the importing packages (module-relative paths).
	applies func(rel string) bool
	// tests makes the rule hold for the test imports too.
	tests bool
	// allowed judges one import: module imports get their relative path
	// (inModule true), others their full path.
	allowed func(imp string, inModule bool) bool
}

func rules() []rule {
	notUnder := func(dirs ...string) func(string, bool) bool {
		return func(imp string, inModule bool) bool {
			if !inModule {
				return true
			}
			for _, d := range dirs {
				if under(imp, d) {
					return false
				}
			}
			return true
		}
	}
	return []rule{
		{
			name:    "cim imports only the standard library",
			applies: func(rel string) bool { return rel == "cim" },
			allowed: func(imp string, inModule bool) bool { return !inModule && std(imp) },
		},
		{
			name:    "store imports only cim and the standard library",
			applies: func(rel string) bool { return rel == "store" },
			allowed: func(imp string, inModule bool) bool { return inModule && imp == "cim" || !inModule && std(imp) },
		},
		{
			name:    "store/... never imports platform, ingest or cmd",
			applies: func(rel string) bool { return strings.HasPrefix(rel, "store/") },
			tests:   true,
			allowed: notUnder("platform", "ingest", "cmd"),
		},
		{
			name:    "ingest never imports platform or a store driver",
			applies: func(rel string) bool { return under(rel, "ingest") },
			tests:   true,
			allowed: func(imp string, inModule bool) bool {
				return !inModule || !under(imp, "platform") && !isDriver(imp)
			},
		},
		{
			name:    "platform/... imports neither cmd nor a store driver (outside its tests)",
			applies: func(rel string) bool { return under(rel, "platform") },
			allowed: func(imp string, inModule bool) bool {
				return !inModule || !under(imp, "cmd") && !isDriver(imp)
			},
		},
		{
			name:    "only cmd/... imports store/sqlite or store/postgres (outside tests)",
			applies: func(rel string) bool { return !under(rel, "cmd") },
			allowed: notUnder("store/sqlite", "store/postgres"),
		},
		{
			name:    "device and profile import only cim, each other and the standard library",
			applies: func(rel string) bool { return rel == "device" || rel == "profile" },
			allowed: func(imp string, inModule bool) bool {
				return !inModule || imp == "cim" || imp == "device" || imp == "internal/yamlpos"
			},
		},
		{
			name:    "connectors, simulators, queue and uplink never import platform, ingest, gateway or a store",
			applies: func(rel string) bool { return slices.Contains(connectors, rel) },
			allowed: notUnder("platform", "ingest", "gateway", "store", "cmd"),
		},
		{
			name:    "gateway never imports platform, ingest or a store",
			applies: func(rel string) bool { return rel == "gateway" },
			allowed: notUnder("platform", "ingest", "store", "cmd"),
		},
		{
			name:    "nothing imports cmd/...",
			applies: func(string) bool { return true },
			tests:   true,
			allowed: notUnder("cmd"),
		},
	}
}

// TestImportArrows checks every rule against every package of the module.
func TestImportArrows(t *testing.T) {
	m := listModule(t)
	seen := map[string]bool{}
	for _, p := range m.pkgs {
		if r, ok := m.rel(p.ImportPath); ok {
			seen[r] = true
		}
	}
	// The rules below would pass vacuously if the listing missed these.
	for _, want := range []string{"cim", "store", "store/sqlite", "store/postgres", "ingest", "platform", "cmd/gridlink", "device", "profile", "modbus", "httpjson", "kasa"} {
		if !seen[want] {
			t.Fatalf("go list did not list %s/%s", m.path, want)
		}
	}
	for _, r := range rules() {
		for _, p := range m.pkgs {
			from, ok := m.rel(p.ImportPath)
			if !ok || !r.applies(from) {
				continue
			}
			check := func(kind string, imports []string) {
				for _, imp := range imports {
					rel, inModule := m.rel(imp)
					if inModule && rel == from {
						continue // an external test package importing its package
					}
					target := imp
					if inModule {
						target = rel
					}
					if !r.allowed(target, inModule) {
						t.Errorf("%s: %s%s imports %s", r.name, from, kind, imp)
					}
				}
			}
			check("", p.Imports)
			if r.tests {
				check(" (test)", p.TestImports)
				check(" (external test)", p.XTestImports)
			}
		}
	}
}

// TestPackageNames checks that no package has a catch-all name.
func TestPackageNames(t *testing.T) {
	banned := map[string]bool{"util": true, "utils": true, "common": true, "helper": true, "helpers": true}
	for _, p := range listModule(t).pkgs {
		if banned[p.Name] || banned[path.Base(p.ImportPath)] {
			t.Errorf("package %s (name %s): name it after what it holds, not util, common or helper", p.ImportPath, p.Name)
		}
	}
}

// TestRulesCatchViolations feeds made-up packages to the rules: each
// forbidden arrow is reported, each allowed one is not.
func TestRulesCatchViolations(t *testing.T) {
	const mod = "example.com/grid"
	m := module{path: mod}
	violates := func(from, imp string, test bool) bool {
		rel, inModule := m.rel(imp)
		target := imp
		if inModule {
			target = rel
		}
		for _, r := range rules() {
			if r.applies(from) && (!test || r.tests) && !r.allowed(target, inModule) {
				return true
			}
		}
		return false
	}
	tests := []struct {
		from, imp string
		test      bool
		want      bool
	}{
		{"cim", "strings", false, false},
		{"cim", "go.yaml.in/yaml/v3", false, true},
		{"cim", mod + "/store", false, true},
		{"store", mod + "/cim", false, false},
		{"store", mod + "/ingest", false, true},
		{"store", "github.com/jackc/pgx/v5", false, true},
		{"store/sqlite", mod + "/store/chunk", false, false},
		{"store/sqlite", mod + "/platform/auth", false, true},
		{"store/postgres", mod + "/ingest", true, true},
		{"store/memstore", mod + "/cmd/gridlink", false, true},
		{"ingest", mod + "/store", false, false},
		{"ingest", mod + "/store/sqlite", true, true},
		{"ingest", mod + "/platform", false, true},
		{"platform", mod + "/store/postgres", false, true},
		{"platform", mod + "/store/sqlite", true, false},
		{"platform/auth", mod + "/store/memstore", false, true},
		{"platform", mod + "/ingest", false, false},
		{"inventory", mod + "/store/sqlite", false, true},
		{"cmd/gridlink", mod + "/store/sqlite", false, false},
		{"internal/loadgen", mod + "/cmd/gridlink", true, true},
	}
	for _, tt := range tests {
		if got := violates(tt.from, tt.imp, tt.test); got != tt.want {
			t.Errorf("%s importing %s (test %v): violation %v, want %v", tt.from, tt.imp, tt.test, got, tt.want)
		}
	}
}

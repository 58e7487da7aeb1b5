//go:build !edge

package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		name    string
		verbose bool
		rest    []string
		err     error
	}{
		{args: nil, rest: []string{}},
		{args: []string{"a.csv", "--name", "n", "-v"}, name: "n", verbose: true, rest: []string{"a.csv"}},
		{args: []string{"--name", "n", "a.csv", "b.csv", "-v"}, name: "n", verbose: true, rest: []string{"a.csv", "b.csv"}},
		{args: []string{"a.csv", "--", "-v", "--name"}, rest: []string{"a.csv", "-v", "--name"}},
		{args: []string{"--", "-v"}, rest: []string{"-v"}},
		{args: []string{"-", "-v"}, verbose: true, rest: []string{"-"}},
		{args: []string{"a.csv", "--nope"}, err: errUsage},
		{args: []string{"a.csv", "--name"}, err: errUsage},
		{args: []string{"a.csv", "-h"}, err: flag.ErrHelp},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		name := fs.String("name", "", "")
		verbose := fs.Bool("v", false, "")
		err := parseFlags(fs, tt.args)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("parseFlags(%q) = %v, want %v", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseFlags(%q): %v", tt.args, err)
			continue
		}
		if *name != tt.name || *verbose != tt.verbose || !slices.Equal(fs.Args(), tt.rest) {
			t.Errorf("parseFlags(%q): name %q, v %v, args %q; want %q, %v, %q",
				tt.args, *name, *verbose, fs.Args(), tt.name, tt.verbose, tt.rest)
		}
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: gridlink COMMAND"},
		{[]string{"help"}, 0, "usage: gridlink COMMAND"},
		{[]string{"--help"}, 0, "upload"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"keys", "list", "-h"}, 0, "-data"},
		{[]string{"upload", "-h"}, 0, "usage: gridlink upload"},
	}
	for _, tt := range tests {
		code, _, errs := gridlink(t, tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("gridlink %q: status %d, stderr %q; want %d and %q", tt.args, code, errs, tt.code, tt.want)
		}
	}
}

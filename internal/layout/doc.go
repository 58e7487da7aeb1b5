// Package layout has no code, only a test that keeps the import arrows of
// the module pointing one way: from cmd, the one place that wires things
// together, towards the domain model in cim. The README's layout table
// names what each package holds; the test says what each may import.
package layout

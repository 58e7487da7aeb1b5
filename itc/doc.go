// Package itc turns the source document's integration test cases (its
// section 5: the template of table 10 and cases ITC1.01 to IT10.01 of
// tables 11–24) into executable checks. The catalogue is data — one YAML
// file per case, embedded from cases/ — and a run measures each case's pass
// criteria against a running platform through its public API: per
// measuring cycle, the value the platform holds equals the register the
// device held; every cycle arrived (completeness); and the delay from the
// device's reading to the value being queryable.
package itc

//go:build edge

package main

// platformCommands is empty in the edge build (-tags edge): a gateway
// binary without the platform.
func platformCommands() []command { return nil }

//go:build unix

package ingest

import "syscall"

// cpuNanos returns the CPU time the process has used, user and system, so
// that benchmarks can report a cost per row that other load on the machine
// does not inflate.
func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package queue

import (
	"fmt"
	"io"
	"os"
)

// lockDir creates the lock file; without flock it cannot keep a second
// process out.
func lockDir(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	return f, nil
}

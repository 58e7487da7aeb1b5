package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/ledger"
)

// Checkpoint is a signed checkpoint that opened with the log key: its note
// text and the tree it commits to.
type Checkpoint struct {
	Note []byte
	Size int64
	Root tlog.Hash
	note *note.Note
}

// OpenCheckpoint checks a checkpoint note's signatures (the log key's and
// every witness's given) and parses its body.
func OpenCheckpoint(msg []byte, origin string, log note.Verifier, witnesses ...note.Verifier) (Checkpoint, error) {
	size, root, n, err := ledger.OpenCheckpoint(msg, origin, log, witnesses...)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Note: msg, Size: size, Root: root, note: n}, nil
}

// maxState bounds a state file: a checkpoint with a few cosignatures.
const maxState = 64 << 10

// ReadState reads a state file: the checkpoint note a previous run
// verified or cosigned. found is false when the file does not exist.
func ReadState(path, origin string, log note.Verifier) (cp Checkpoint, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("state file: %w", err)
	}
	defer f.Close()
	b := make([]byte, maxState+1)
	n, _ := readFull(f, b)
	if n > maxState {
		return Checkpoint{}, false, fmt.Errorf("state file %s: larger than %d bytes: not a checkpoint", path, maxState)
	}
	cp, err = parseState(b[:n], origin, log)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("state file %s: %w", path, err)
	}
	return cp, true, nil
}

// parseState opens a state file's bytes: the checkpoint note as saved.
func parseState(b []byte, origin string, log note.Verifier) (Checkpoint, error) {
	cp, err := OpenCheckpoint(b, origin, log)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("saved checkpoint: %w", err)
	}
	return cp, nil
}

func readFull(f *os.File, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// WriteState saves a checkpoint note to path, atomically: a crash leaves
// the old state or the new one.
func WriteState(path string, cp []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(cp)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

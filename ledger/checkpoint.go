package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultOrigin is the checkpoint origin line when Config.Origin is empty.
const DefaultOrigin = "gridlink/ledger"

// FormatCheckpoint returns a checkpoint body (C2SP tlog-checkpoint, no
// extension lines):
//
//	<origin>
//	<size>
//	<base64 root>
func FormatCheckpoint(origin string, size int64, root tlog.Hash) []byte {
	b := make([]byte, 0, len(origin)+70)
	b = append(b, origin...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, root[:])
	return append(b, '\n')
}

// parseCheckpoint parses a checkpoint body written by FormatCheckpoint.
func parseCheckpoint(text, origin string) (int64, tlog.Hash, error) {
	lines := bytes.SplitAfter([]byte(text), []byte("\n"))
	if len(lines) != 4 || len(lines[3]) != 0 {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint: want 3 lines (origin, size, root), have %q", clip(text))
	}
	if got := string(bytes.TrimSuffix(lines[0], []byte("\n"))); got != origin {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint: origin %q, want %q", clip(got), origin)
	}
	sizeText := string(bytes.TrimSuffix(lines[1], []byte("\n")))
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeText {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint: size %q is not a decimal tree size", clip(sizeText))
	}
	rootText := bytes.TrimSuffix(lines[2], []byte("\n"))
	var root tlog.Hash
	if n, err := base64.StdEncoding.Decode(root[:], rootText); err != nil || n != len(root) || base64.StdEncoding.EncodedLen(len(root)) != len(rootText) {
		return 0, tlog.Hash{}, fmt.Errorf("checkpoint: root %q is not 32 bytes of base64", clip(string(rootText)))
	}
	return size, root, nil
}

// OpenCheckpoint verifies a signed checkpoint note: it must carry a valid
// signature of the log key and of every witness given (signatures of other
// keys are ignored), and its body must be a checkpoint of this origin.
func OpenCheckpoint(msg []byte, origin string, log note.Verifier, witnesses ...note.Verifier) (size int64, root tlog.Hash, n *note.Note, err error) {
	if log == nil {
		return 0, tlog.Hash{}, nil, errors.New("open checkpoint: no log key")
	}
	vs := append([]note.Verifier{log}, witnesses...)
	n, err = note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return 0, tlog.Hash{}, nil, fmt.Errorf("open checkpoint: %w", err)
	}
	for _, v := range vs {
		if !signedBy(n, v) {
			return 0, tlog.Hash{}, nil, fmt.Errorf("open checkpoint: no signature of %s", v.Name())
		}
	}
	size, root, err = parseCheckpoint(n.Text, origin)
	if err != nil {
		return 0, tlog.Hash{}, nil, err
	}
	return size, root, n, nil
}

// signedBy reports whether n has a verified signature of v's key.
func signedBy(n *note.Note, v note.Verifier) bool {
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			return true
		}
	}
	return false
}

// VerifyInclusion checks that data is the record at index in the tree of
// size entries whose root is root.
func VerifyInclusion(p tlog.RecordProof, index, size int64, root tlog.Hash, data []byte) error {
	if index < 0 || index >= size {
		return fmt.Errorf("inclusion proof: index %d outside a tree of size %d", index, size)
	}
	if err := tlog.CheckRecord(p, size, root, index, tlog.RecordHash(data)); err != nil {
		return fmt.Errorf("inclusion proof of entry %d in tree of size %d: %w", index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size from with root fromRoot
// is a prefix of the tree of size to with root toRoot.
func VerifyConsistency(p tlog.TreeProof, from int64, fromRoot tlog.Hash, to int64, toRoot tlog.Hash) error {
	switch {
	case from < 0 || from > to:
		return fmt.Errorf("consistency proof: sizes %d → %d are not a growing tree", from, to)
	case from == 0:
		// The empty tree is a prefix of every tree.
		if len(p) != 0 {
			return fmt.Errorf("consistency proof from the empty tree: want no hashes, have %d", len(p))
		}
		return nil
	case from == to:
		if len(p) != 0 || fromRoot != toRoot {
			return fmt.Errorf("consistency proof %d → %d: the roots differ", from, to)
		}
		return nil
	}
	if err := tlog.CheckTree(p, to, toRoot, from, fromRoot); err != nil {
		return fmt.Errorf("consistency proof %d → %d: %w", from, to, err)
	}
	return nil
}

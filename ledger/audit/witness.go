package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/ledger"
)

// WitnessOptions configure Client.Witness.
type WitnessOptions struct {
	// Key is the witness's private key; the platform must be configured
	// with its public key (serve --ledger-witness).
	Key note.Signer
	// LogKey is the log's public key.
	LogKey note.Verifier
	// Origin is the checkpoint origin; "" means ledger.DefaultOrigin.
	Origin string
	// State is the file of the last checkpoint this witness cosigned;
	// required. Evidence of a fork is written beside it.
	State string
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock for evidence file names; nil means time.Now.
	Now func() time.Time
}

// WitnessResult is one round of the witness.
type WitnessResult struct {
	Size     int64  // the checkpoint's size
	Previous int64  // the size last cosigned; -1 on the first round
	Cosigned bool   // a cosignature was posted (false: nothing new)
	Note     []byte // the checkpoint as the platform stored it after cosigning
}

// ForkError is a checkpoint that does not extend the one the witness
// cosigned before: the log was rolled back or forked. The witness does not
// cosign it, and keeps both checkpoints (and the proof) in Evidence.
type ForkError struct {
	Previous, Current Checkpoint
	Reason            string
	Evidence          string // file holding both checkpoints; "" if it could not be written
}

func (e *ForkError) Error() string {
	s := fmt.Sprintf("log forked or rolled back: %s (cosigned before: size %d root %s; now: size %d root %s)",
		e.Reason, e.Previous.Size, e.Previous.Root, e.Current.Size, e.Current.Root)
	if e.Evidence != "" {
		s += "; evidence in " + e.Evidence
	}
	return s
}

// Witness runs one round: it fetches the checkpoint, verifies the log's
// signature, checks that it extends the checkpoint it cosigned last (a
// consistency proof), cosigns it keeping the signatures it has, posts the
// cosigned note and saves it as the new state. A checkpoint that does not
// extend the last is a *ForkError.
func (c *Client) Witness(ctx context.Context, opt WitnessOptions) (WitnessResult, error) {
	res := WitnessResult{Previous: -1}
	switch {
	case opt.Key == nil:
		return res, errors.New("witness: no witness key")
	case opt.LogKey == nil:
		return res, errors.New("witness: no log key")
	case opt.State == "":
		return res, errors.New("witness: no state file")
	}
	if opt.Origin == "" {
		opt.Origin = ledger.DefaultOrigin
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	msg, err := c.Checkpoint(ctx)
	if err != nil {
		return res, err
	}
	cp, err := OpenCheckpoint(msg, opt.Origin, opt.LogKey)
	if err != nil {
		return res, fmt.Errorf("the platform's checkpoint does not verify with the log key: %w", err)
	}
	res.Size = cp.Size
	prev, found, err := ReadState(opt.State, opt.Origin, opt.LogKey)
	if err != nil {
		return res, err
	}
	if found {
		res.Previous = prev.Size
		var proof tlog.TreeProof
		reason := ""
		switch {
		case cp.Size < prev.Size:
			reason = fmt.Sprintf("the checkpoint has %d entries, fewer than the %d cosigned before", cp.Size, prev.Size)
		case cp.Size == prev.Size && cp.Root != prev.Root:
			reason = fmt.Sprintf("the checkpoint of %d entries has another root than the one cosigned before", cp.Size)
		case cp.Size > prev.Size:
			if proof, err = c.Consistency(ctx, prev.Size, cp.Size); err != nil {
				return res, err
			}
			if err := ledger.VerifyConsistency(proof, prev.Size, prev.Root, cp.Size, cp.Root); err != nil {
				reason = err.Error()
			}
		}
		if reason != "" {
			fe := &ForkError{Previous: prev, Current: cp, Reason: reason}
			fe.Evidence, err = writeEvidence(opt, prev, cp, proof)
			if err != nil {
				log.Error("witness: evidence not saved", "err", err)
			}
			log.Error("witness: the log forked or rolled back; not cosigning", "reason", reason,
				"cosigned_before", string(prev.Note), "now", string(cp.Note), "evidence", fe.Evidence)
			return res, fe
		}
		if cp.Size == prev.Size && hasSig(cp.note, opt.Key) {
			res.Note = msg
			return res, nil // cosigned already, and the platform kept it
		}
	}
	// Keep every signature the note has: the log's and other witnesses'
	// (unverified here; the platform checks them).
	n := &note.Note{Text: cp.note.Text, Sigs: append(append([]note.Signature(nil), cp.note.Sigs...), cp.note.UnverifiedSigs...)}
	cosigned, err := note.Sign(n, opt.Key)
	if err != nil {
		return res, fmt.Errorf("cosign: %w", err)
	}
	stored, err := c.Cosign(ctx, cosigned)
	if err != nil {
		return res, fmt.Errorf("post cosignature: %w", err)
	}
	sc, err := OpenCheckpoint(stored, opt.Origin, opt.LogKey)
	if err != nil || sc.Size != cp.Size || sc.Root != cp.Root || !hasSig(sc.note, opt.Key) {
		return res, fmt.Errorf("post cosignature: the platform's reply is not the checkpoint with this witness's cosignature: %q", clip(string(stored)))
	}
	if err := WriteState(opt.State, cosigned); err != nil {
		return res, err
	}
	res.Cosigned, res.Note = true, stored
	log.Info("witness: cosigned", "size", cp.Size, "root", cp.Root.String(), "previous", res.Previous)
	return res, nil
}

// hasSig reports whether n carries a signature of the signer's key.
func hasSig(n *note.Note, s note.Signer) bool {
	for _, sigs := range [][]note.Signature{n.Sigs, n.UnverifiedSigs} {
		for _, g := range sigs {
			if g.Name == s.Name() && g.Hash == s.KeyHash() {
				return true
			}
		}
	}
	return false
}

// writeEvidence keeps both checkpoints and the proof beside the state.
func writeEvidence(opt WitnessOptions, prev, cur Checkpoint, proof tlog.TreeProof) (string, error) {
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	path := opt.State + ".fork-" + now().UTC().Format("20060102T150405Z")
	var b bytes.Buffer
	fmt.Fprintf(&b, "# gridlink ledger witness: fork or rollback detected %s\n", now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# checkpoint cosigned before (size %d):\n%s\n", prev.Size, prev.Note)
	fmt.Fprintf(&b, "# checkpoint served now (size %d):\n%s\n", cur.Size, cur.Note)
	if len(proof) > 0 {
		fmt.Fprintf(&b, "# consistency proof %d → %d served now:\n", prev.Size, cur.Size)
		for _, h := range proof {
			fmt.Fprintln(&b, h.String())
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	return path, nil
}

package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
)

func TestWitnessCosignsGrowth(t *testing.T) {
	e := newEnv(t)
	e.fill()
	state := filepath.Join(t.TempDir(), "witness", "state")
	w := e.client("")
	opt := WitnessOptions{Key: e.witness, LogKey: e.logV, State: state}
	res, err := w.Witness(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cosigned || res.Previous != -1 || res.Size != 104 {
		t.Fatalf("first round %+v", res)
	}
	// The platform serves the checkpoint with the cosignature now.
	cp, err := e.client("").Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(cp, "", e.logV, e.witV); err == nil {
		t.Fatal("opened with an empty origin") // the origin is checked
	}
	if _, err := OpenCheckpoint(cp, "gridlink/ledger", e.logV, e.witV); err != nil {
		t.Fatalf("served checkpoint lacks the cosignature: %v\n%s", err, cp)
	}
	// Nothing new: nothing to cosign.
	if res, err = w.Witness(t.Context(), opt); err != nil || res.Cosigned || res.Previous != 104 {
		t.Fatalf("second round %+v, %v", res, err)
	}
	// Growth: a consistency proof, a new cosignature.
	e.send([]cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base+24*5*60_000, 1300)}, e.gw)
	e.checkpoint()
	if res, err = w.Witness(t.Context(), opt); err != nil || !res.Cosigned || res.Previous != 104 || res.Size != 106 {
		t.Fatalf("third round %+v, %v", res, err)
	}
	saved, found, err := ReadState(state, "", e.logV)
	if err == nil && found {
		t.Fatal("state opened with an empty origin")
	}
	if saved, _, err = ReadState(state, "gridlink/ledger", e.logV); err != nil || saved.Size != 106 {
		t.Fatalf("state %+v, %v", saved, err)
	}
}

func TestWitnessRefusesFork(t *testing.T) {
	e := newEnv(t)
	e.send([]cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base, 1000)}, e.gw)
	old := e.checkpoint()
	e.fill()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	opt := WitnessOptions{Key: e.witness, LogKey: e.logV, State: state, Now: func() time.Time { return now }}
	w := e.client("")
	if _, err := w.Witness(t.Context(), opt); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(state)

	cases := []struct {
		name   string
		serve  func() []byte
		reason string
	}{
		{"rolled back", func() []byte { return old.Note }, "the checkpoint has 2 entries, fewer than the 105 cosigned before"},
		{"same size, other root", func() []byte { return e.signCheckpoint(105, tlog.RecordHash([]byte("fork"))) }, "the checkpoint of 105 entries has another root"},
		{"grown from another tree", func() []byte {
			e.send([]cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base+24*5*60_000, 1300)}, e.gw)
			cp := e.checkpoint()
			return e.signCheckpoint(cp.Size, tlog.RecordHash([]byte("fork")))
		}, "consistency proof 105 → 107"},
	}
	for i, c := range cases {
		now = now.Add(time.Duration(i+1) * time.Second)
		served := c.serve()
		e.mw.mu.Lock()
		e.mw.checkpoint = served
		e.mw.mu.Unlock()
		_, err := w.Witness(t.Context(), opt)
		var fe *ForkError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.reason) {
			t.Fatalf("%s: %v, want a fork naming %q", c.name, err, c.reason)
		}
		evidence, rerr := os.ReadFile(fe.Evidence)
		if rerr != nil || !bytes.Contains(evidence, before) || !bytes.Contains(evidence, fe.Current.Note) {
			t.Fatalf("%s: evidence %s: %v\n%s", c.name, fe.Evidence, rerr, evidence)
		}
		if after, _ := os.ReadFile(state); !bytes.Equal(after, before) {
			t.Fatalf("%s: the state changed", c.name)
		}
	}
}

func TestWitnessErrors(t *testing.T) {
	e := newEnv(t)
	e.fill()
	state := filepath.Join(t.TempDir(), "state")
	_, otherLog, _ := newKey(t, "test-log")
	if _, err := e.client("").Witness(t.Context(), WitnessOptions{Key: e.witness, LogKey: otherLog, State: state}); err == nil || !strings.Contains(err.Error(), "does not verify with the log key") {
		t.Fatalf("wrong log key: %v", err)
	}
	// A witness the platform is not configured with: refused.
	stranger, _, _ := newKey(t, "stranger")
	if _, err := e.client("").Witness(t.Context(), WitnessOptions{Key: stranger, LogKey: e.logV, State: state}); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("unknown witness: %v", err)
	}
	if _, err := os.Stat(state); err == nil {
		t.Fatal("state saved for a refused cosignature")
	}
	os.WriteFile(state, []byte("not a checkpoint\n"), 0o600)
	if _, err := e.client("").Witness(t.Context(), WitnessOptions{Key: e.witness, LogKey: e.logV, State: state}); err == nil || !strings.Contains(err.Error(), "state file "+state) {
		t.Fatalf("damaged state: %v", err)
	}
}

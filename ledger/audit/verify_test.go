package audit

import (
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ledger"
	"github.com/gridlink/gridlink/store"
)

// TestVerifyHonestLog checks that a log nobody changed verifies with no
// problem, value for value, and that the state file then follows it.
func TestVerifyHonestLog(t *testing.T) {
	e := newEnv(t)
	e.fill()
	state := filepath.Join(t.TempDir(), "verify.state")
	var stages []string
	rep, err := e.client(e.read).Verify(t.Context(), VerifyOptions{
		LogKey: e.logV, Signers: []note.Verifier{e.gwV}, State: state, CompareReadings: true,
		Progress: func(stage string, done, total int64) {
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
			if done > total {
				t.Errorf("progress %s %d of %d", stage, done, total)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("problems in an honest log:\n%s", problems(rep))
	}
	// 24 cycles of 3 ledger readings, 24 batches, 8 quarter hours of the
	// meter's import register.
	if rep.Readings != 72 || rep.Batches != 24 || rep.Energy != 8 || rep.Hidden != 0 || !rep.TreeVerified ||
		rep.SignaturesChecked != 24 || rep.BatchesUnchecked != 0 || rep.ReadingsCompared != 72 || rep.EnergyCompared != 8 || !rep.StateSaved {
		t.Fatalf("report %+v", rep)
	}
	if !slices.Equal(stages, []string{"entries", "readings", "energy"}) {
		t.Errorf("progress stages %v", stages)
	}
	if s := rep.Summary(); !strings.Contains(s, "104 entries") || !strings.Contains(s, "0 problems") {
		t.Errorf("summary %q", s)
	}

	// More readings: the next run checks that the log grew from the one
	// it verified, and moves the state on.
	e.send([]cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base+24*5*60_000, 1300)}, e.gw)
	e.checkpoint()
	rep = e.verify(state)
	if len(rep.Problems) != 0 || rep.Previous != 104 || rep.Size != 106 || !rep.StateSaved {
		t.Fatalf("second run: %+v\n%s", rep, problems(rep))
	}

	// A key of another site sees hashes only: the tree still verifies.
	secret := e.otherSiteKey()
	rep, err = e.client(secret).Verify(t.Context(), VerifyOptions{LogKey: e.logV, CompareReadings: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Hidden != 106 || !rep.TreeVerified || rep.ReadingsCompared != 0 {
		t.Fatalf("other site's view: %+v\n%s", rep, problems(rep))
	}
}

// TestVerifyPlatformSigned checks the readings the platform signs with
// the log key (its own charge points).
func TestVerifyPlatformSigned(t *testing.T) {
	e := newEnv(t)
	if _, err := e.srv.WriteOwn(t.Context(), site, []cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base, 5)}); err != nil {
		t.Fatal(err)
	}
	e.checkpoint()
	rep := e.verify("")
	if len(rep.Problems) != 0 || rep.SignaturesChecked != 1 {
		t.Fatalf("%+v\n%s", rep, problems(rep))
	}
}

// TestVerifySignerKeysFromPlatform: without --signer the keys come from
// the platform's list of the site's signers; a signer removed from it no
// longer vouches for its batches.
func TestVerifySignerKeysFromPlatform(t *testing.T) {
	e := newEnv(t)
	e.fill()
	rep, err := e.client(e.read).Verify(t.Context(), VerifyOptions{LogKey: e.logV})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.SignaturesChecked != 24 || rep.BatchesUnchecked != 0 {
		t.Fatalf("%+v\n%s", rep, problems(rep))
	}
	e.call(http.MethodDelete, "/api/v1/sites/"+site+"/signers/gw-bristol-1", e.admin, nil, nil, http.StatusOK, http.StatusNoContent)
	rep, err = e.client(e.read).Verify(t.Context(), VerifyOptions{LogKey: e.logV})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, rep, "kind=batch site=bristol", "batch signed by gw-bristol-1, which is not a registered signer of site bristol")
}

// TestTamperingIsCaught changes the platform's data in the ways the issue
// names and checks that Verify says what and where.
func TestTamperingIsCaught(t *testing.T) {
	// A reading entry of the meter's import register, cycle 5.
	cycle5 := func(e *env) store.LedgerEntry {
		return e.entryOf(ledger.KindReading, func(x store.LedgerEntry) bool {
			return x.Asset == meter && x.Quantity == "energy_active_import" && x.Time == e.base+5*5*60_000
		})
	}

	t.Run("stored reading changed", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		x := cycle5(e)
		if _, err := e.mem.Write(t.Context(), site, []cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, x.Time, 9999)}); err != nil {
			t.Fatal(err)
		}
		rep := e.verify("")
		wantProblem(t, rep, "entry "+itoa(x.Index)+" kind=reading site=bristol asset=house-01/meter quantity=energy_active_import phase=total time="+msText(x.Time),
			"the stored reading differs", "(ledger 1062.5, platform 9999)")
		// The energy of its quarter hour and the next changed with it.
		wantProblem(t, rep, "kind=energy", "asset=house-01/meter", "time="+msText(e.base+15*60_000), "another energy for this interval", "(ledger 37.5, platform 8974)")
		if !rep.TreeVerified {
			t.Errorf("the log itself is intact, yet the tree did not verify:\n%s", problems(rep))
		}
	})

	t.Run("stored reading deleted", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		x := cycle5(e)
		// memstore has no delete: stand in with a changed time.
		if _, err := e.mem.Write(t.Context(), site, []cim.Reading{rd(meter, "active_power", cim.PhaseL1, e.base+5*5*60_000, 0)}); err != nil {
			t.Fatal(err)
		}
		rep := e.verify("")
		wantProblem(t, rep, "asset=house-01/meter quantity=active_power phase=L1 time="+msText(x.Time), "the stored reading differs", "(ledger 101.25, platform 0)")
	})

	t.Run("entry missing from the entries", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		e.mw.mu.Lock()
		e.mw.dropEntry = 9
		e.mw.mu.Unlock()
		rep := e.verify("")
		wantProblem(t, rep, "entry 9: missing", "entries 8 then 10")
		if rep.TreeVerified {
			t.Error("tree verified with an entry missing")
		}
	})

	t.Run("entry deleted and the log renumbered", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		state := filepath.Join(t.TempDir(), "verify.state")
		if rep := e.verify(state); len(rep.Problems) != 0 {
			t.Fatalf("first run:\n%s", problems(rep))
		}
		x := cycle5(e)
		var rewritten []store.LedgerEntry
		e.st.set(func(all []store.LedgerEntry) []store.LedgerEntry {
			out := slices.Delete(slices.Clone(all), int(x.Index), int(x.Index)+1)
			for i := int(x.Index); i < len(out); i++ {
				out[i].Index = int64(i)
			}
			rewritten = out
			return out
		}, true)
		// The old checkpoint still served: its tree cannot be proved.
		rep := e.verify("")
		wantProblem(t, rep, "entry 103: missing")
		wantProblem(t, rep, "log: the platform cannot prove the tree of its own checkpoint of 104 entries")
		wantProblem(t, rep, "kind=batch site=bristol", "count 3, but 2 new readings")
		wantProblem(t, rep, "asset=house-01/meter quantity=energy_active_import", "reading entry that no signed batch covers")

		// A careful operator signs a checkpoint of the rewritten log: the
		// state of the last run and the batch signatures still catch it.
		leaves := make([]tlog.Hash, len(rewritten))
		for i, x := range rewritten {
			leaves[i] = tlog.RecordHash(x.Data)
		}
		e.mw.mu.Lock()
		e.mw.checkpoint = e.signCheckpoint(int64(len(leaves)), treeHash(t, leaves))
		e.mw.mu.Unlock()
		rep = e.verify(state)
		wantProblem(t, rep, "log: log rolled back", "the checkpoint has 103 entries, fewer than the 104 verified before")
		wantProblem(t, rep, "kind=batch site=bristol", "count 3, but 2 new readings")
		if !rep.TreeVerified || rep.StateSaved {
			t.Errorf("tree verified %v (want true: it is the signed tree), state saved %v", rep.TreeVerified, rep.StateSaved)
		}
	})

	t.Run("two entries reordered", func(t *testing.T) {
		for _, careful := range []bool{false, true} {
			e := newEnv(t)
			e.fill()
			x := cycle5(e)
			e.st.set(func(all []store.LedgerEntry) []store.LedgerEntry {
				out := slices.Clone(all)
				a, b := out[x.Index], out[x.Index+1]
				a.Index, b.Index = b.Index, a.Index
				out[x.Index], out[x.Index+1] = b, a
				return out
			}, careful)
			rep := e.verify("")
			if !careful {
				wantProblem(t, rep, "entry "+itoa(x.Index)+" kind=reading", "data does not hash to its leaf hash")
				wantProblem(t, rep, "entry "+itoa(x.Index+1)+" kind=reading", "data does not hash to its leaf hash")
			}
			wantProblem(t, rep, "entry "+itoa(x.Index)+" kind=reading", "the tree the checkpoint signs holds another entry here")
			wantProblem(t, rep, "kind=batch", "the readings at entries "+itoa(x.Index), "do not match the digest the batch signed")
		}
	})

	t.Run("batch signature forged", func(t *testing.T) {
		for _, careful := range []bool{false, true} {
			e := newEnv(t)
			e.fill()
			x := cycle5(e)
			// The operator logs a batch "signed" by the gateway with a key
			// of its own, over the same readings.
			forger, _, _ := newKey(t, "gw-bristol-1")
			bx := e.entryOf(ledger.KindBatch, func(b store.LedgerEntry) bool { return b.Index > x.Index })
			d, err := ledger.DecodeEntry(bx.Data)
			if err != nil {
				t.Fatal(err)
			}
			bt := d.Batch()
			if bt.Signature, err = forger.Sign(ledger.BatchMessage(bt.Site, bt.Count, bt.Digest)); err != nil {
				t.Fatal(err)
			}
			forged, err := ledger.EncodeBatch(bt)
			if err != nil {
				t.Fatal(err)
			}
			e.st.set(func(all []store.LedgerEntry) []store.LedgerEntry {
				out := slices.Clone(all)
				out[bx.Index].Data = forged
				return out
			}, careful)
			rep := e.verify("")
			wantProblem(t, rep, "entry "+itoa(bx.Index)+" kind=batch site=bristol", "batch signature forged or altered", "signer gw-bristol-1 over 3 readings")
			if careful {
				wantProblem(t, rep, "entry "+itoa(bx.Index)+" kind=batch", "the tree the checkpoint signs holds another entry here")
			} else {
				wantProblem(t, rep, "entry "+itoa(bx.Index)+" kind=batch", "data does not hash to its leaf hash")
			}
		}
	})

	t.Run("reading entry value changed", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		x := cycle5(e)
		d, _ := ledger.DecodeEntry(x.Data)
		r := d.Reading(meter)
		r.Value = 2000
		changed, err := ledger.EncodeReading(r, d.Signer, d.Subject)
		if err != nil {
			t.Fatal(err)
		}
		e.st.set(func(all []store.LedgerEntry) []store.LedgerEntry {
			out := slices.Clone(all)
			out[x.Index].Data, out[x.Index].Value = changed, 2000
			return out
		}, true)
		rep := e.verify("")
		wantProblem(t, rep, "entry "+itoa(x.Index)+" kind=reading", "asset=house-01/meter", "the tree the checkpoint signs holds another entry here")
		wantProblem(t, rep, "kind=batch", "do not match the digest the batch signed")
		wantProblem(t, rep, "entry "+itoa(x.Index)+" kind=reading", "the stored reading differs", "(ledger 2000, platform 1062.5)")
	})

	t.Run("log rolled back", func(t *testing.T) {
		e := newEnv(t)
		e.send([]cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base, 1000)}, e.gw)
		old := e.checkpoint()
		e.fill()
		state := filepath.Join(t.TempDir(), "verify.state")
		if rep := e.verify(state); len(rep.Problems) != 0 || !rep.StateSaved {
			t.Fatalf("first run: %+v\n%s", rep, problems(rep))
		}
		e.mw.mu.Lock()
		e.mw.checkpoint = old.Note
		e.mw.mu.Unlock()
		rep := e.verify(state)
		wantProblem(t, rep, "log: log rolled back", "the checkpoint has 2 entries, fewer than the 105 verified before")
		if rep.StateSaved {
			t.Error("the state moved back to the rolled-back checkpoint")
		}
	})

	t.Run("log forked", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		state := filepath.Join(t.TempDir(), "verify.state")
		if rep := e.verify(state); len(rep.Problems) != 0 {
			t.Fatalf("first run:\n%s", problems(rep))
		}
		cp := e.checkpoint()
		e.mw.mu.Lock()
		e.mw.checkpoint = e.signCheckpoint(cp.Size, tlog.RecordHash([]byte("another tree")))
		e.mw.mu.Unlock()
		rep := e.verify(state)
		wantProblem(t, rep, "log: log forked", "the checkpoint of 104 entries has another root than the one verified before")
		wantProblem(t, rep, "the tree the checkpoint signs holds another entry here")

		// Grown, but not from the tree verified before.
		e.mw.mu.Lock()
		e.mw.checkpoint = nil
		e.mw.mu.Unlock()
		e.send([]cim.Reading{rd(meter, "energy_active_import", cim.PhaseTotal, e.base+24*5*60_000, 1300)}, e.gw)
		e.checkpoint()
		other := e.signCheckpoint(100, tlog.RecordHash([]byte("a fork")))
		if err := WriteState(state, other); err != nil {
			t.Fatal(err)
		}
		rep = e.verify(state)
		wantProblem(t, rep, "log: log forked or rewritten", "does not extend the 100 verified before")
	})

	t.Run("checkpoint not signed by the log key", func(t *testing.T) {
		e := newEnv(t)
		e.fill()
		_, other, _ := newKey(t, "test-log") // the name of the log key, another key
		rep, err := e.client(e.read).Verify(t.Context(), VerifyOptions{LogKey: other})
		if err != nil {
			t.Fatal(err)
		}
		wantProblem(t, rep, "log: the platform's checkpoint does not verify")
	})
}

func TestVerifyWitnessRequired(t *testing.T) {
	e := newEnv(t)
	e.fill()
	rep, err := e.client(e.read).Verify(t.Context(), VerifyOptions{LogKey: e.logV, Witnesses: []note.Verifier{e.witV}})
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, rep, "does not verify", "test-witness")
	state := filepath.Join(t.TempDir(), "witness.state")
	if _, err := e.client("").Witness(t.Context(), WitnessOptions{Key: e.witness, LogKey: e.logV, State: state}); err != nil {
		t.Fatal(err)
	}
	rep, err = e.client(e.read).Verify(t.Context(), VerifyOptions{LogKey: e.logV, Witnesses: []note.Verifier{e.witV}, Signers: []note.Verifier{e.gwV}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("after the witness cosigned:\n%s", problems(rep))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// treeHash is the RFC 6962 root of leaves.
func treeHash(t *testing.T, leaves []tlog.Hash) tlog.Hash {
	t.Helper()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), h, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	root, err := tlog.TreeHash(int64(len(leaves)), r)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestVerifyOmittedReadings: a batch of which the platform refused signed
// readings (a value out of range, a time from a clock ahead) verifies with
// no problem, its digest rebuilt with the refused readings' hashes; a
// changed hash in "omitted" is caught.
func TestVerifyOmittedReadings(t *testing.T) {
	for _, careful := range []bool{false, true} {
		e := newEnv(t)
		future := time.Now().Add(3 * time.Hour).UnixMilli()
		e.send([]cim.Reading{
			rd(meter, "energy_active_import", cim.PhaseTotal, e.base, 1000),
			rd(meter, "energy_active_import", cim.PhaseTotal, e.base+60_000, -5), // out of range
			rd(plainAsset, "active_power", cim.PhaseTotal, e.base, 7),
			rd(battery, "battery_soc", cim.PhaseTotal, future, 50), // gateway clock ahead
			rd(battery, "battery_soc", cim.PhaseTotal, e.base, 40),
		}, e.gw)
		e.checkpoint()
		rep := e.verify("")
		if len(rep.Problems) != 0 || rep.Readings != 2 || rep.Batches != 1 || rep.SignaturesChecked != 1 || rep.ReadingsCompared != 2 {
			t.Fatalf("honest log with omitted readings: %+v\n%s", rep, problems(rep))
		}

		bx := e.entryOf(ledger.KindBatch, nil)
		d, err := ledger.DecodeEntry(bx.Data)
		if err != nil {
			t.Fatal(err)
		}
		bt := d.Batch()
		if bt.Count != 4 || len(bt.Omitted) != 2 || bt.Omitted[0].Pos != 1 || bt.Omitted[1].Pos != 2 {
			t.Fatalf("batch entry %s", bx.Data)
		}
		// The operator swaps a refused reading's hash for another's.
		bt.Omitted[1].Hash, _ = ledger.ReadingHash(ledger.Reading{Site: site, Asset: battery, Quantity: "battery_soc", Time: future, Value: 99})
		changed, err := ledger.EncodeBatch(bt)
		if err != nil {
			t.Fatal(err)
		}
		e.st.set(func(all []store.LedgerEntry) []store.LedgerEntry {
			out := slices.Clone(all)
			out[bx.Index].Data = changed
			return out
		}, careful)
		rep = e.verify("")
		wantProblem(t, rep, "entry "+itoa(bx.Index)+" kind=batch site=bristol", "do not match the digest the batch signed", "refused readings at positions 1, 2")
		if careful {
			wantProblem(t, rep, "entry "+itoa(bx.Index)+" kind=batch", "the tree the checkpoint signs holds another entry here")
		} else {
			wantProblem(t, rep, "entry "+itoa(bx.Index)+" kind=batch", "data does not hash to its leaf hash")
		}
	}
}

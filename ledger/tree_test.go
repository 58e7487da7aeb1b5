package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/gridlink/gridlink/store"
	"github.com/gridlink/gridlink/store/memstore"
)

// The RFC 6962 test data of certificate-transparency / transparency-dev
// (testonly/constants.go): eight leaf inputs, the node hashes of every
// complete subtree by level, the roots of the trees of size 1..8 and some
// inclusion and consistency proofs.
var (
	ctLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	ctNodes  = [][]string{
		{"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
			"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7", "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
			"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
			"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"},
		{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
			"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"},
		{"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"},
		{"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"},
	}
	ctRoots = []string{
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", // empty tree
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	ctInclusion = []struct {
		index, size int64
		proof       []string
	}{
		{0, 1, nil},
		{0, 2, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"}},
		{1, 2, []string{"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"}},
		{2, 3, []string{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
		{1, 5, []string{"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
		{0, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{5, 8, []string{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
	}
	ctConsistency = []struct {
		from, to int64
		proof    []string
	}{
		{1, 1, nil},
		{1, 8, []string{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
		{6, 8, []string{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
		{2, 5, []string{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
	}
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hashOf(t testing.TB, s string) tlog.Hash {
	var h tlog.Hash
	copy(h[:], unhex(t, s))
	return h
}

func hexProof(p []tlog.Hash) []string {
	var out []string
	for _, h := range p {
		out = append(out, hex.EncodeToString(h[:]))
	}
	return out
}

// appendRaw appends entries with arbitrary data through the Log's own
// transaction builder, one transaction per chunk.
func appendRaw(t testing.TB, st store.Ledger, chunks ...[][]byte) {
	t.Helper()
	for _, chunk := range chunks {
		err := st.UpdateLedger(t.Context(), func(tx store.LedgerTx) error {
			b := newBuilder(t.Context(), tx)
			for _, d := range chunk {
				if err := b.add(store.LedgerEntry{Kind: KindBatch, Site: "s", Data: d}, tlog.RecordHash(d)); err != nil {
					return err
				}
			}
			return tx.Append(t.Context(), b.entries, b.hashes)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testKey(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func newTestLog(t testing.TB, st store.Ledger, cfg Config) *Log {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key, _ = testKey(t, "log")
	}
	l, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestRFC6962KnownAnswers(t *testing.T) {
	ctx := t.Context()
	st := memstore.New()
	var leaves [][]byte
	for i, s := range ctLeaves {
		leaves = append(leaves, unhex(t, s))
		if got := tlog.RecordHash(leaves[i]); got != hashOf(t, ctNodes[0][i]) {
			t.Errorf("leaf hash %d = %x, want %s", i, got, ctNodes[0][i])
		}
	}
	for level := 1; level < len(ctNodes); level++ {
		for i, want := range ctNodes[level] {
			if got := tlog.NodeHash(hashOf(t, ctNodes[level-1][2*i]), hashOf(t, ctNodes[level-1][2*i+1])); got != hashOf(t, want) {
				t.Errorf("node hash level %d index %d = %x, want %s", level, i, got, want)
			}
		}
	}
	// Appended in uneven transactions, so hashes cross transactions.
	appendRaw(t, st, leaves[:3], leaves[3:4], leaves[4:])
	l := newTestLog(t, st, Config{})
	for level := range ctNodes {
		for i, want := range ctNodes[level] {
			got, err := st.LedgerHashes(ctx, []int64{tlog.StoredHashIndex(level, int64(i))})
			if err != nil || tlog.Hash(got[0]) != hashOf(t, want) {
				t.Errorf("stored hash level %d index %d = %x, %v; want %s", level, i, got, err, want)
			}
		}
	}
	for n, want := range ctRoots {
		got, err := tlog.TreeHash(int64(n), l.committedHashes(ctx))
		if err != nil || got != hashOf(t, want) {
			t.Errorf("root of size %d = %x, %v; want %s", n, got, err, want)
		}
	}
	for _, v := range ctInclusion {
		p, err := l.Inclusion(ctx, v.index, v.size)
		if err != nil {
			t.Fatal(err)
		}
		if got := hexProof(p); strings.Join(got, ",") != strings.Join(v.proof, ",") {
			t.Errorf("inclusion %d in %d = %v, want %v", v.index, v.size, got, v.proof)
		}
		if err := VerifyInclusion(p, v.index, v.size, hashOf(t, ctRoots[v.size]), leaves[v.index]); err != nil {
			t.Errorf("inclusion %d in %d: %v", v.index, v.size, err)
		}
	}
	for _, v := range ctConsistency {
		p, err := l.Consistency(ctx, v.from, v.to)
		if err != nil {
			t.Fatal(err)
		}
		if got := hexProof(p); strings.Join(got, ",") != strings.Join(v.proof, ",") {
			t.Errorf("consistency %d → %d = %v, want %v", v.from, v.to, got, v.proof)
		}
		if err := VerifyConsistency(p, v.from, hashOf(t, ctRoots[v.from]), v.to, hashOf(t, ctRoots[v.to])); err != nil {
			t.Errorf("consistency %d → %d: %v", v.from, v.to, err)
		}
	}
	// The checkpoint of the whole tree carries the size-8 root.
	c, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	size, root, _, err := OpenCheckpoint(c.Note, DefaultOrigin, l.self)
	if err != nil || size != 8 || root != hashOf(t, ctRoots[8]) {
		t.Fatalf("checkpoint %q: size %d root %x, %v", c.Note, size, root, err)
	}
}

// mth is RFC 6962's Merkle Tree Hash, written from the RFC's definition
// as an independent check of the stored-hash tree.
func mth(leaves [][]byte) tlog.Hash {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := mth(leaves[:k]), mth(leaves[k:])
		return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	}
}

func TestProofsProperty(t *testing.T) {
	ctx := t.Context()
	r := rand.New(rand.NewPCG(7, 8))
	st := memstore.New()
	var leaves [][]byte
	for len(leaves) < 300 {
		var chunk [][]byte
		for range 1 + r.IntN(40) {
			d := make([]byte, r.IntN(40))
			for i := range d {
				d[i] = byte(r.Uint32())
			}
			chunk = append(chunk, d)
		}
		appendRaw(t, st, chunk)
		leaves = append(leaves, chunk...)
	}
	l := newTestLog(t, st, Config{})
	roots := make([]tlog.Hash, len(leaves)+1)
	for n := range roots {
		var err error
		if roots[n], err = tlog.TreeHash(int64(n), l.committedHashes(ctx)); err != nil {
			t.Fatal(err)
		}
		if want := mth(leaves[:n]); roots[n] != want {
			t.Fatalf("root of size %d = %x, RFC 6962 says %x", n, roots[n], want)
		}
	}
	flip := func(p []tlog.Hash, i, bit int) []tlog.Hash {
		q := append([]tlog.Hash(nil), p...)
		q[i][bit/8] ^= 1 << (bit % 8)
		return q
	}
	for range 300 {
		size := 1 + r.Int64N(int64(len(leaves)))
		index := r.Int64N(size)
		p, err := l.Inclusion(ctx, index, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(p, index, size, roots[size], leaves[index]); err != nil {
			t.Fatalf("inclusion %d in %d: %v", index, size, err)
		}
		for i := range p {
			for _, bit := range []int{0, r.IntN(256), 255} {
				if VerifyInclusion(flip(p, i, bit), index, size, roots[size], leaves[index]) == nil {
					t.Fatalf("inclusion %d in %d verifies with bit %d of hash %d flipped", index, size, bit, i)
				}
			}
		}
		if VerifyInclusion(p, index, size, roots[size], append(leaves[index], 0)) == nil {
			t.Fatalf("inclusion %d in %d verifies other data", index, size)
		}
		if other := r.Int64N(size); other != index && VerifyInclusion(p, other, size, roots[size], leaves[index]) == nil {
			t.Fatalf("inclusion %d in %d verifies at index %d", index, size, other)
		}

		to := 1 + r.Int64N(int64(len(leaves)))
		from := r.Int64N(to + 1)
		cp, err := l.Consistency(ctx, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(cp, from, roots[from], to, roots[to]); err != nil {
			t.Fatalf("consistency %d → %d: %v", from, to, err)
		}
		for i := range cp {
			for _, bit := range []int{0, r.IntN(256), 255} {
				if VerifyConsistency(flip(cp, i, bit), from, roots[from], to, roots[to]) == nil {
					t.Fatalf("consistency %d → %d verifies with bit %d of hash %d flipped", from, to, bit, i)
				}
			}
		}
		if from > 0 && from < to && VerifyConsistency(cp, from, roots[from-1], to, roots[to]) == nil {
			t.Fatalf("consistency %d → %d verifies another old root", from, to)
		}
	}
	// Out of range requests are errors, not panics.
	n := int64(len(leaves))
	for _, c := range [][2]int64{{-1, n}, {n, n}, {0, n + 1}, {0, 0}} {
		if _, err := l.Inclusion(ctx, c[0], c[1]); err == nil {
			t.Errorf("Inclusion(%d, %d) succeeded", c[0], c[1])
		}
	}
	for _, c := range [][2]int64{{-1, n}, {2, 1}, {0, n + 1}} {
		if _, err := l.Consistency(ctx, c[0], c[1]); err == nil {
			t.Errorf("Consistency(%d, %d) succeeded", c[0], c[1])
		}
	}
}

func TestOpenCheckpoint(t *testing.T) {
	logS, logV := testKey(t, "log")
	witS, witV := testKey(t, "witness")
	_, otherV := testKey(t, "other")
	root := tlog.RecordHash([]byte("x"))
	body := FormatCheckpoint("o", 42, root)
	if want := "o\n42\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"; string(body) != want {
		t.Fatalf("body %q", body)
	}
	signed, err := note.Sign(&note.Note{Text: string(body)}, logS)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(&note.Note{Text: string(body)}, logS, witS)
	if err != nil {
		t.Fatal(err)
	}
	if size, r, _, err := OpenCheckpoint(signed, "o", logV); err != nil || size != 42 || r != root {
		t.Fatalf("OpenCheckpoint = %d %x %v", size, r, err)
	}
	if _, _, _, err := OpenCheckpoint(cosigned, "o", logV, witV); err != nil {
		t.Fatalf("cosigned: %v", err)
	}
	if _, _, _, err := OpenCheckpoint(cosigned, "o", logV); err != nil {
		t.Fatalf("cosigned, witness not asked for: %v", err)
	}
	for _, tt := range []struct {
		name string
		msg  []byte
		vs   []note.Verifier
		want string
	}{
		{"no witness signature", signed, []note.Verifier{logV, witV}, "no signature of witness"},
		{"other log key", signed, []note.Verifier{otherV}, "open checkpoint"},
		{"wrong origin", signed, []note.Verifier{logV}, `origin "o", want "p"`},
		{"altered size", bytes.Replace(signed, []byte("42"), []byte("43"), 1), []note.Verifier{logV}, "open checkpoint"},
	} {
		origin := "o"
		if strings.Contains(tt.want, "origin") {
			origin = "p"
		}
		_, _, _, err := OpenCheckpoint(tt.msg, origin, tt.vs[0], tt.vs[1:]...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
	ext, _ := note.Sign(&note.Note{Text: string(body) + "extension\n"}, logS)
	if _, _, _, err := OpenCheckpoint(ext, "o", logV); err == nil {
		t.Error("a checkpoint with an extension line opened")
	}
}

func FuzzOpenCheckpoint(f *testing.F) {
	logS, logV := testKey(f, "log")
	witS, witV := testKey(f, "witness")
	body := FormatCheckpoint("gridlink/ledger", 7, tlog.RecordHash(nil))
	signed, _ := note.Sign(&note.Note{Text: string(body)}, logS)
	cosigned, _ := note.Sign(&note.Note{Text: string(body)}, logS, witS)
	f.Add(signed)
	f.Add(cosigned)
	f.Add([]byte("gridlink/ledger\n-1\nAAAA\n\n— log AAAA\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		size, root, n, err := OpenCheckpoint(msg, "gridlink/ledger", logV, witV)
		if err != nil {
			return
		}
		if size < 0 || n == nil || n.Text != string(FormatCheckpoint("gridlink/ledger", size, root)) {
			t.Fatalf("opened %q as size %d root %x", msg, size, root)
		}
	})
}

// Package ledger is gridlink's energy ledger: signed meter readings and
// 15-minute energy records in an append-only Merkle log (RFC 6962 hashing
// through golang.org/x/mod/sumdb/tlog), with signed checkpoints in the C2SP
// tlog-checkpoint format (golang.org/x/mod/sumdb/note), inclusion and
// consistency proofs, and witness cosignatures.
//
// Trust starts where the reading is taken: a gateway (or the platform, for
// the charge points it speaks OCPP with) signs each batch of readings of
// ledger assets with its Ed25519 key; the platform checks the signature
// before it stores anything and appends the readings, then a batch entry
// holding the signature. The log makes every entry's order and content
// checkable by anyone holding a checkpoint; the signatures make each
// reading attributable to the party that took it.
//
// Personal data stays off the log: an entry names its asset only by a keyed
// pseudonym, and the operational store keeps the readable record next to
// it. Erasing a member deletes the key and the readable record; the tree
// keeps an unlinkable hash. Health data never enters the ledger.
package ledger

// Entries are RFC 8785 (JCS) JSON with "v":1 (see EncodeReading,
// EncodeBatch, EncodeEnergy; DecodeEntry is their strict inverse):
//
//	{"kind":"reading","phase":P,"quantity":Q,"signer":K,"site":S,"subject":SUBJ,"time":T,"v":1,"value":V}
//	{"count":N,"digest":B64,"first":I,"kind":"batch","omitted":[[pos,B64],...],"refs":[[pos,idx],...],"signature":B64,"signer":K,"site":S,"v":1}
//	{"end":T2,"kind":"energy","quantity":Q,"rev":R,"site":S,"start":T1,"subject":SUBJ,"v":1,"wh":X}
//
// Times are UTC Unix milliseconds, base64 is standard with padding, and
// integers stay within ±(2^53−1) so that every JSON implementation reads
// them exactly. A batch entry's readings, in signed order, are the reading
// entries [first, batch index) interleaved with refs: {pos, idx} says the
// reading at position pos is the earlier entry idx, logged before with
// the same value, and with omitted (present only when not empty): the
// reading at pos was signed but refused by the platform (a value out of
// range, a time outside the accepted window), and B64 is the SHA-256 of its
// canonical encoding, so the signature still verifies. Each leaf is tlog.RecordHash(entry bytes); a checkpoint
// is the signed note "<origin>\n<size>\n<base64 root>\n".
//
// Log appends through one writer goroutine that gathers concurrent
// AppendBatch calls into one store transaction (group commit).

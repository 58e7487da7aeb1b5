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

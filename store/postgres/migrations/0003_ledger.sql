-- 0003: the energy ledger, and the ledger mark of assets.

ALTER TABLE assets ADD COLUMN ledger boolean NOT NULL DEFAULT false;

-- The log's entries. An entry whose readable part was erased keeps idx,
-- kind, site and t and has NULL data, asset, quantity, phase and value.
-- t is UTC Unix milliseconds.
CREATE TABLE ledger_entries (
	idx      bigint PRIMARY KEY,
	kind     text NOT NULL,
	site     text NOT NULL,
	data     bytea,
	asset    text,
	quantity text,
	phase    text,
	t        bigint NOT NULL,
	value    double precision
);

-- LastEntry's lookup (equality on every column). It leads with the time,
-- so that appends, which come roughly in time order, go to the right edge
-- of the index instead of a page per asset; EraseSubject, rare, scans the
-- table in chunks of idx instead.
CREATE INDEX ledger_entries_key ON ledger_entries (t, site, asset, quantity, phase, idx);

-- The Merkle tree's stored hashes (tlog storage indexes), 32 to a row: row
-- grp holds hashes grp*32 … grp*32+31 concatenated, the last row growing
-- as the log does. 1 KiB rows stay in the heap page (no TOAST).
CREATE TABLE ledger_hashes (
	grp    bigint PRIMARY KEY,
	hashes bytea NOT NULL
);

-- The number of committed entries, kept by every append in its
-- transaction: reading it is O(1), unlike count(*).
CREATE TABLE ledger_state (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	size bigint NOT NULL
);
INSERT INTO ledger_state (size) VALUES (0);

CREATE TABLE ledger_checkpoints (
	size bigint PRIMARY KEY,
	note bytea NOT NULL,
	at   timestamptz NOT NULL
);

-- The keys behind members' pseudonyms. A NULL key marks an erased subject:
-- no new key is ever made for it.
CREATE TABLE ledger_subjects (
	site  text NOT NULL,
	asset text NOT NULL,
	key   bytea,
	PRIMARY KEY (site, asset)
);

-- Signer ids are unique across sites.
CREATE TABLE ledger_signers (
	id         text PRIMARY KEY,
	site       text NOT NULL,
	public_key bytea NOT NULL
);

-- 0008: the ledger Log's reading marks (per series, the newest time of its
-- logged readings), saved when a Log closes so that the next start scans
-- only the entries appended after them. At most one row: the last Log to
-- close wins. data is the Log's own encoding; upto the number of entries
-- it reflects.
CREATE TABLE ledger_marks (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	upto bigint NOT NULL CHECK (upto >= 0),
	data bytea NOT NULL
);

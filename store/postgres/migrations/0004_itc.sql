-- 0004: the results of integration test runs (gridlink itc), one row per
-- run with the run's JSON as the platform received it. start_t is UTC Unix
-- milliseconds; the index serves the listing, newest first.

CREATE TABLE itc_runs (
	id      text PRIMARY KEY,
	start_t bigint NOT NULL,
	body    bytea NOT NULL
);

CREATE INDEX itc_runs_start ON itc_runs (start_t DESC, id DESC);

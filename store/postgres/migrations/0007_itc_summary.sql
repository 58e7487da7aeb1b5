-- 0007: each integration test run keeps the platform's summary beside its
-- body, so that listing runs reads no body (bodies of megabytes are TOASTed
-- out of line, so a row's summary is read without them). Runs stored before
-- get an empty summary: the store cannot parse bodies, and the platform
-- summarises those from their bodies when it lists them.

ALTER TABLE itc_runs ADD COLUMN summary bytea NOT NULL DEFAULT ''::bytea;

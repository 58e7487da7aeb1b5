-- 0006: each rollup keeps the counter's reset-aware increase from its first
-- to its last reading (store/rollup's Inc): the sum over neighbouring
-- readings of v - previous, or of v where v dropped (a counter reset).
-- NULL only between the merge of new readings into a rollup and its
-- recomputation in the same transaction (store/postgres/rollup.go).

ALTER TABLE rollups_15m ADD COLUMN inc double precision;

UPDATE rollups_15m r SET inc = x.inc
FROM (
	SELECT series_id, bucket,
		coalesce(sum(CASE WHEN v >= p THEN v - p ELSE v END) FILTER (WHERE p IS NOT NULL), 0) AS inc
	FROM (
		SELECT series_id, t - ((t % 900000) + 900000) % 900000 AS bucket, v,
			lag(v) OVER (PARTITION BY series_id, t - ((t % 900000) + 900000) % 900000 ORDER BY t) AS p
		FROM readings
	) y
	GROUP BY series_id, bucket
) x
WHERE r.series_id = x.series_id AND r.bucket = x.bucket;

-- A rollup whose readings are gone (erased) keeps no increase.
UPDATE rollups_15m SET inc = 0 WHERE inc IS NULL;

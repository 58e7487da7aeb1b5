-- 0001: the tables of the storage contract.

CREATE TABLE sites (
	id       text PRIMARY KEY,
	name     text NOT NULL,
	country  text NOT NULL,
	timezone text NOT NULL
);

CREATE TABLE assets (
	site         text NOT NULL REFERENCES sites (id),
	id           text NOT NULL,
	type         text NOT NULL,
	name         text NOT NULL,
	make         text NOT NULL,
	model        text NOT NULL,
	household    text NOT NULL,
	has_location boolean NOT NULL,
	latitude     double precision NOT NULL,
	longitude    double precision NOT NULL,
	address      text NOT NULL,
	PRIMARY KEY (site, id)
);

CREATE TABLE keys (
	id         text PRIMARY KEY,
	hash       bytea NOT NULL UNIQUE,
	site       text NOT NULL,
	scope      text NOT NULL,
	name       text NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz
);

-- A series is (site, asset, quantity, phase); readings refer to it by id.
-- Rows are never deleted, so ids can be cached.
CREATE TABLE series (
	id       serial PRIMARY KEY,
	site     text NOT NULL,
	asset    text NOT NULL,
	quantity text NOT NULL,
	phase    text NOT NULL,
	UNIQUE (site, asset, quantity, phase)
);

-- t is UTC Unix milliseconds.
CREATE TABLE readings (
	series_id integer NOT NULL,
	t         bigint NOT NULL,
	v         double precision NOT NULL,
	PRIMARY KEY (series_id, t)
);

-- One row per series and 15-minute bucket (bucket = start, Unix ms,
-- aligned to the epoch) that holds at least one reading; kept equal to what
-- the readings of the bucket give, in the transaction that writes them.
CREATE TABLE rollups_15m (
	series_id integer NOT NULL,
	bucket    bigint NOT NULL,
	n         integer NOT NULL,
	sum       double precision NOT NULL,
	min       double precision NOT NULL,
	max       double precision NOT NULL,
	first_t   bigint NOT NULL,
	first_v   double precision NOT NULL,
	last_t    bigint NOT NULL,
	last_v    double precision NOT NULL,
	PRIMARY KEY (series_id, bucket)
);

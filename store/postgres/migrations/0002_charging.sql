-- 0002: charging points: sessions, charge point credentials and RFID tags.
-- Times are UTC Unix milliseconds, NULL when unset.

CREATE TABLE sessions (
	site           text NOT NULL REFERENCES sites (id),
	charge_point   text NOT NULL,
	transaction_id bigint NOT NULL,
	connector      integer NOT NULL,
	id_tag         text NOT NULL,
	start_ms       bigint,
	stop_ms        bigint,
	meter_start_wh double precision NOT NULL,
	meter_stop_wh  double precision NOT NULL,
	stop_reason    text NOT NULL,
	updated_ms     bigint NOT NULL,
	-- start_ms, or stop_ms while the start is unknown: what lists order by.
	order_ms       bigint NOT NULL,
	PRIMARY KEY (site, charge_point, transaction_id)
);

CREATE INDEX sessions_site_order ON sessions (site, order_ms);

-- Charge point ids are unique across sites: a charger connects at
-- /ocpp/{id} without naming its site.
CREATE TABLE charge_point_secrets (
	charge_point text PRIMARY KEY,
	site         text NOT NULL REFERENCES sites (id),
	sha256       bytea NOT NULL CHECK (length(sha256) = 32)
);

-- tag_key is the tag in ASCII upper case: OCPP compares IdTokens
-- case-insensitively.
CREATE TABLE id_tags (
	site       text NOT NULL REFERENCES sites (id),
	tag_key    text NOT NULL,
	tag        text NOT NULL,
	expires_ms bigint,
	PRIMARY KEY (site, tag_key)
);

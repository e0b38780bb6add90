-- Raw mail bytes live apart from the inbound row (as on SQLite, where an
-- UPDATE rewrites the whole row): state changes never touch the bytes.
CREATE TABLE inbound_raw (
    inbound_id BIGINT PRIMARY KEY REFERENCES inbound (id) ON DELETE CASCADE,
    raw BYTEA NOT NULL
);
ALTER TABLE inbound_raw ALTER COLUMN raw SET STORAGE EXTERNAL;
INSERT INTO inbound_raw (inbound_id, raw) SELECT id, raw FROM inbound;
ALTER TABLE inbound DROP COLUMN raw;

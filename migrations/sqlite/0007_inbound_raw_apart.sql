-- Raw mail bytes live apart from the inbound row: SQLite rewrites a whole
-- row on every UPDATE, so each claim and each "done" rewrote the mail's
-- bytes (and their WAL pages) again.
CREATE TABLE inbound_raw (
    inbound_id INTEGER PRIMARY KEY REFERENCES inbound (id) ON DELETE CASCADE,
    raw BLOB NOT NULL
);
INSERT INTO inbound_raw (inbound_id, raw) SELECT id, raw FROM inbound;
ALTER TABLE inbound DROP COLUMN raw;

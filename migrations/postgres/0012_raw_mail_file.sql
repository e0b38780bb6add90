-- SQLite's 0012 moves raw mail to a file of its own (SQLite has one write
-- lock per file) and names a row's bytes there by `raw_key`. Here many
-- writers share the database and the bytes stay in `inbound_raw`: the
-- column is added so that both backends share the statements that store
-- inbound mail, and stays NULL.
ALTER TABLE inbound ADD COLUMN raw_key TEXT;

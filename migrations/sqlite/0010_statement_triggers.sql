-- Nothing to change on SQLite: it has only row-level triggers (PostgreSQL's
-- 0010 makes its message triggers statement-level), and its indexes end on
-- the rowid already (the queue's tie-break on the id). Kept so that both
-- backends share their migration versions.
SELECT 1;

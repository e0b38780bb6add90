-- Nothing to change on PostgreSQL: its search vectors are kept by
-- statement-level triggers (0010), one update per ticket per statement.
-- SQLite's 0013 moves its full-text writes to the commit. Kept so that both
-- backends share their migration versions.
SELECT 1;

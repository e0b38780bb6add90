-- Nothing to change on PostgreSQL: its ticket numbers come from the
-- sequence `ticket_ref_seq` inside the INSERT already (0004). SQLite's 0014
-- draws them inside the INSERT too. Kept so that both backends share their
-- migration versions.
SELECT 1;

-- PostgreSQL moves reference numbers to a sequence in this version; SQLite
-- (one writer at a time) keeps the counter row. Nothing to do here.
SELECT 1;

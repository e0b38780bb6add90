-- The full-text documents of new tickets and new messages are written once
-- per transaction, at its commit (`store::SEARCH_CATCH_UP`), no longer by a
-- trigger per row. FTS5 writes its pending terms out as a new segment at
-- the end of every statement that touched it: a trigger per message made
-- one segment (and its merges) per mail, ~70 µs of the write lock each on
-- the ingest path; once per batch of mails it is one segment per batch.
-- Two counters say how far the documents go: every ticket and message with
-- a larger id is still to be indexed (a commit that did not catch up, or
-- rows written by hand, are caught up by the next one). Moves (merges) and
-- deletes keep their triggers.
DROP TRIGGER ticket_search_insert;
DROP TRIGGER ticket_search_message;

INSERT INTO counters (name, value) VALUES
    ('search_ticket', (SELECT COALESCE(MAX(id), 0) FROM tickets)),
    ('search_message', (SELECT COALESCE(MAX(id), 0) FROM messages));

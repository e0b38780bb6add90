-- Full-text search of the queue (FTS5): one document per ticket, its subject
-- and its requester's address and name as they were when it was opened, then
-- the text of its replies and notes (system messages are left out: they
-- would make every ticket match "status" or "changed"). Kept by triggers, so
-- that every path that writes a message (gateway, console, API, merge) keeps
-- it; a document stops growing past 1 MB of text.
CREATE VIRTUAL TABLE ticket_search USING fts5(doc, tokenize = 'unicode61 remove_diacritics 2');

INSERT INTO ticket_search (rowid, doc)
SELECT t.id, t.subject || char(10) || r.email || ' ' || r.first_name || ' ' || r.last_name || char(10) || COALESCE(
    (SELECT group_concat(m.body_text, char(10)) FROM messages m WHERE m.ticket_id = t.id AND m.kind <> 'system'), '')
FROM tickets t JOIN requesters r ON r.id = t.requester_id;

CREATE TRIGGER ticket_search_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO ticket_search (rowid, doc)
    SELECT NEW.id, NEW.subject || char(10) || r.email || ' ' || r.first_name || ' ' || r.last_name
    FROM requesters r WHERE r.id = NEW.requester_id;
END;

CREATE TRIGGER ticket_search_delete AFTER DELETE ON tickets BEGIN
    DELETE FROM ticket_search WHERE rowid = OLD.id;
END;

CREATE TRIGGER ticket_search_message AFTER INSERT ON messages WHEN NEW.kind <> 'system' BEGIN
    UPDATE ticket_search SET doc = doc || char(10) || NEW.body_text
    WHERE rowid = NEW.ticket_id AND length(doc) < 1000000;
END;

CREATE TRIGGER ticket_search_moved AFTER UPDATE OF ticket_id ON messages WHEN NEW.kind <> 'system' BEGIN
    UPDATE ticket_search SET doc = doc || char(10) || NEW.body_text
    WHERE rowid = NEW.ticket_id AND length(doc) < 1000000;
END;

-- The queue's common filters, covered: status badges count from it, and a
-- status + priority filter reads it in the order of the last update.
CREATE INDEX tickets_status_priority ON tickets (status, priority, updated_at, merged_into_id);

-- Full-text search of the queue: a tsvector per ticket (its subject and its
-- requester's address and name as they were when it was opened, then
-- the text of its replies and notes; system messages left out), kept by
-- triggers so that every path writing a message keeps it, and a GIN index.
-- Positions are stripped (they are not used for ranking) and a vector stops
-- growing at 100,000 lexemes, well inside PostgreSQL's 1 MB limit.
ALTER TABLE tickets ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;

UPDATE tickets t SET search = strip(to_tsvector('simple', t.subject || ' ' ||
    (SELECT translate(r.email, '@.+_-', '     ') || ' ' || r.first_name || ' ' || r.last_name FROM requesters r WHERE r.id = t.requester_id)
    || ' ' || COALESCE(
    (SELECT string_agg(m.body_text, ' ') FROM messages m WHERE m.ticket_id = t.id AND m.kind <> 'system'), '')));

CREATE INDEX tickets_search ON tickets USING GIN (search);

CREATE FUNCTION postdesk_ticket_search_subject() RETURNS trigger AS $$
BEGIN
    NEW.search := strip(to_tsvector('simple', NEW.subject || ' ' || COALESCE(
        (SELECT translate(r.email, '@.+_-', '     ') || ' ' || r.first_name || ' ' || r.last_name
         FROM requesters r WHERE r.id = NEW.requester_id), '')));
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ticket_search_insert BEFORE INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION postdesk_ticket_search_subject();

CREATE FUNCTION postdesk_ticket_search_message() RETURNS trigger AS $$
BEGIN
    IF NEW.kind <> 'system' THEN
        UPDATE tickets SET search = strip(search || to_tsvector('simple', left(NEW.body_text, 200000)))
        WHERE id = NEW.ticket_id AND length(search) < 100000;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ticket_search_message AFTER INSERT OR UPDATE OF ticket_id ON messages
    FOR EACH ROW EXECUTE FUNCTION postdesk_ticket_search_message();


-- The queue's common filters: status + priority in the order of the last update.
CREATE INDEX tickets_status_priority ON tickets (status, priority, updated_at);

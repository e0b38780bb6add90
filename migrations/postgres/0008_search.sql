-- Full-text search of the queue: one tsvector per ticket in a table of its
-- own (its subject and its requester's address and name as they were when it
-- was opened, then the text of its replies and notes; system messages left
-- out), kept by triggers so that every path writing a message keeps it, with
-- a GIN index. Apart from `tickets` so that the rows the queue reads stay
-- narrow and a new message does not rewrite the ticket row. Positions are
-- stripped (no ranking) and a vector stops growing at 100,000 lexemes, well
-- inside PostgreSQL's 1 MB limit.
CREATE TABLE ticket_search (
    ticket_id BIGINT PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    search tsvector NOT NULL
);

INSERT INTO ticket_search (ticket_id, search)
SELECT t.id, strip(to_tsvector('simple', t.subject || ' ' ||
    translate(r.email, '@.+_-', '     ') || ' ' || r.first_name || ' ' || r.last_name || ' ' ||
    COALESCE((SELECT string_agg(m.body_text, ' ') FROM messages m WHERE m.ticket_id = t.id AND m.kind <> 'system'), '')))
FROM tickets t JOIN requesters r ON r.id = t.requester_id;

CREATE INDEX ticket_search_gin ON ticket_search USING GIN (search);

CREATE FUNCTION postdesk_ticket_search_open() RETURNS trigger AS $$
BEGIN
    INSERT INTO ticket_search (ticket_id, search)
    SELECT NEW.id, strip(to_tsvector('simple', NEW.subject || ' ' ||
        translate(r.email, '@.+_-', '     ') || ' ' || r.first_name || ' ' || r.last_name))
    FROM requesters r WHERE r.id = NEW.requester_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ticket_search_insert AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION postdesk_ticket_search_open();

CREATE FUNCTION postdesk_ticket_search_message() RETURNS trigger AS $$
BEGIN
    IF NEW.kind <> 'system' THEN
        UPDATE ticket_search SET search = strip(search || to_tsvector('simple', left(NEW.body_text, 200000)))
        WHERE ticket_id = NEW.ticket_id AND length(search) < 100000;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ticket_search_message AFTER INSERT OR UPDATE OF ticket_id ON messages
    FOR EACH ROW EXECUTE FUNCTION postdesk_ticket_search_message();

-- The queue's common filters: status + priority in the order of the last
-- update; and the status badges, counted from an index alone.
CREATE INDEX tickets_status_priority ON tickets (status, priority, updated_at);
CREATE INDEX tickets_status_live ON tickets (status) WHERE merged_into_id IS NULL;

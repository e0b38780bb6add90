-- A statement that writes many messages (a merge moving a thread, a bulk
-- load) counts them, records their Message-IDs and appends their text to
-- each ticket's search vector once per ticket, not once per message. With
-- row-level triggers, ten messages to one ticket in one transaction left
-- ten versions of its `tickets` and `ticket_search` rows, none of which
-- could be pruned before the commit: the tables grew to ten times their
-- live size and a search read ten times the pages it needed.
DROP TRIGGER message_added ON messages;
DROP TRIGGER ticket_search_message ON messages;
DROP FUNCTION postdesk_message_added();
DROP FUNCTION postdesk_ticket_search_message();

CREATE FUNCTION postdesk_messages_added() RETURNS trigger AS $$
BEGIN
    UPDATE tickets t SET message_count = t.message_count + n.added,
        last_message_at = n.latest, updated_at = n.latest
    FROM (SELECT ticket_id, COUNT(*) AS added, MAX(created_at) AS latest
          FROM added GROUP BY ticket_id) n
    WHERE t.id = n.ticket_id;
    INSERT INTO mail_ids (message_id, ticket_id, direction, created_at)
    SELECT mail_message_id, ticket_id, 'in', created_at FROM added
    WHERE mail_message_id IS NOT NULL ORDER BY id
    ON CONFLICT (message_id) DO NOTHING;
    UPDATE ticket_search s SET search = strip(s.search || to_tsvector('simple', left(n.text, 200000)))
    FROM (SELECT ticket_id, string_agg(body_text, ' ' ORDER BY id) AS text
          FROM added WHERE kind <> 'system' GROUP BY ticket_id) n
    WHERE s.ticket_id = n.ticket_id AND length(s.search) < 100000;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER messages_added AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION postdesk_messages_added();

-- Messages moved to another ticket (a merge) join its search vector.
CREATE FUNCTION postdesk_messages_moved() RETURNS trigger AS $$
BEGIN
    UPDATE ticket_search s SET search = strip(s.search || to_tsvector('simple', left(n.text, 200000)))
    FROM (SELECT m.ticket_id, string_agg(m.body_text, ' ' ORDER BY m.id) AS text
          FROM moved m JOIN before_move b ON b.id = m.id
          WHERE m.kind <> 'system' AND m.ticket_id <> b.ticket_id
          GROUP BY m.ticket_id) n
    WHERE s.ticket_id = n.ticket_id AND length(s.search) < 100000;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER messages_moved AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS before_move NEW TABLE AS moved
    FOR EACH STATEMENT EXECUTE FUNCTION postdesk_messages_moved();

-- The queue's orders end on the id: with it in the index, the first page
-- of a long list is read in order from the index, not sorted.
DROP INDEX tickets_updated;
CREATE INDEX tickets_updated ON tickets (updated_at, id);
DROP INDEX tickets_created;
CREATE INDEX tickets_created ON tickets (created_at, id);

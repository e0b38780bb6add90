-- A ticket's message count is what people wrote (replies and notes), not
-- the system's notes of status changes and the like: the console's Messages
-- column said 5 for a ticket with two replies.
CREATE OR REPLACE FUNCTION postdesk_messages_added() RETURNS trigger AS $$
BEGIN
    UPDATE tickets t SET message_count = t.message_count + n.added,
        last_message_at = n.latest, updated_at = n.latest
    FROM (SELECT ticket_id, COUNT(*) FILTER (WHERE kind <> 'system') AS added,
                 MAX(created_at) AS latest
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

UPDATE tickets t SET message_count =
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id AND m.kind <> 'system');

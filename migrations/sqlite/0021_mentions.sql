-- @mentions in internal notes (src/domain/mention.rs): one row for each
-- agent a note names, until that agent opens the ticket (seen_at).
CREATE TABLE mentions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    by_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    seen_at BIGINT
);
CREATE UNIQUE INDEX mentions_once ON mentions (message_id, user_id);
CREATE INDEX mentions_unseen ON mentions (user_id, seen_at, ticket_id);

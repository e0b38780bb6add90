-- "How did we do?" (docs/guide.md): every rating a requester gives a
-- ticket, kept as history (a reopened and again resolved ticket is rated
-- again); the latest one is the ticket's.
CREATE TABLE ratings (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    requester_id BIGINT REFERENCES requesters (id) ON DELETE SET NULL,
    rating TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
    comment TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ratings_ticket ON ratings (ticket_id, id);
CREATE INDEX ratings_created ON ratings (created_at);

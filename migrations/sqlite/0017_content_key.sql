-- The loop guard's content key (SPEC §6): a digest of the letters of the
-- mail that opened a ticket, so that a responder answering from a new
-- address each time, with the same words, is capped across its tickets.
ALTER TABLE tickets ADD COLUMN content_key TEXT;
CREATE INDEX tickets_content_key ON tickets (content_key) WHERE content_key IS NOT NULL;

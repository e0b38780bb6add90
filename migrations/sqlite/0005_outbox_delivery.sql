-- The outbox worker: the loop guard counts mail sent to an address and on a
-- ticket in the last hour; `outbox list` pages by state.
CREATE INDEX outbox_recipient_sent ON outbox (recipient, sent_at);
CREATE INDEX outbox_ticket_sent ON outbox (ticket_id, sent_at);
CREATE INDEX outbox_state_id ON outbox (state, id);

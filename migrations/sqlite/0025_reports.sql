-- Reports (docs/agent-guide.md, "Reports"): what they read by time.
--
-- The time a ticket's SLA clock had paused when its first agent reply went
-- out: its first-response time counts only the pauses before that reply.
-- Tickets answered before this was kept are taken as not paused before it
-- (a ticket is nearly always answered before it waits on the customer).
ALTER TABLE tickets ADD COLUMN sla_first_response_paused_ms BIGINT;
UPDATE tickets SET sla_first_response_paused_ms = 0 WHERE first_response_at IS NOT NULL;
CREATE INDEX tickets_first_response ON tickets (first_response_at);
-- Replies sent by the team, by time: the only messages a report counts.
CREATE INDEX messages_staff_replies ON messages (created_at, author_user_id, ticket_id)
    WHERE kind = 'reply' AND author_kind = 'agent';
-- The backlog a report counts: tickets not resolved, by opening time.
CREATE INDEX tickets_unresolved ON tickets (created_at)
    WHERE status IN ('open', 'in_progress', 'pending', 'on_hold');

-- A requester's portal session opened by a ticket's link is scoped to that
-- ticket (SPEC §7: mails get forwarded); NULL for an address-wide session
-- (the link requested on the portal) and for staff.
ALTER TABLE web_sessions ADD COLUMN ticket_id BIGINT;

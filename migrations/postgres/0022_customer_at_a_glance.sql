-- The customer at a glance (docs/guide.md): an agent-only note about a
-- requester, and the domain of their address (its tickets grouped as an
-- organisation's when no organisation is set).
ALTER TABLE requesters ADD COLUMN agent_note TEXT NOT NULL DEFAULT '';
ALTER TABLE requesters ADD COLUMN domain TEXT GENERATED ALWAYS AS (lower(split_part(email, '@', 2))) STORED;
CREATE INDEX requesters_domain ON requesters (domain);
CREATE INDEX requesters_organisation ON requesters (lower(organisation)) WHERE organisation <> '';

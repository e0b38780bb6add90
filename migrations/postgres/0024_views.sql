-- Saved views of the queue (docs/guide.md): a name and the queue's query
-- string; shared with the team (no owner) or an agent's own. The console's
-- three presets become ordinary shared views an admin can change.
CREATE TABLE views (
    id BIGSERIAL PRIMARY KEY,
    owner_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    position INTEGER NOT NULL DEFAULT 100,
    created_at BIGINT NOT NULL
);
CREATE INDEX views_owner ON views (owner_id, position);
INSERT INTO views (owner_id, name, query, position, created_at) VALUES
    (NULL, 'My open tickets', 'status=open%2Cin_progress%2Cpending%2Con_hold&assignee=me', 1, 0),
    (NULL, 'Urgent unassigned', 'status=open%2Cin_progress%2Cpending%2Con_hold&priority=urgent&assignee=none', 2, 0),
    (NULL, 'SLA breaching', 'status=open%2Cin_progress%2Cpending%2Con_hold&sla=warning%2Cbreached', 3, 0);

-- Canned replies and macros (docs/guide.md, "Canned replies and macros").
-- A row with no owner is shared with the team; one with an owner is that
-- agent's own and shown to nobody else. The set_* columns make it a macro:
-- each one that is not NULL is a field change applied with the reply, in
-- one transaction. set_assignee is 'me' (whoever applies it), '' (nobody)
-- or an agent's address; add_tags is a comma-separated list added to the
-- ticket's tags.
CREATE TABLE canned_responses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    set_status TEXT,
    set_priority TEXT,
    set_category TEXT,
    set_assignee TEXT,
    add_tags TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX canned_responses_owner ON canned_responses (owner_id, title);

-- postdesk schema, version 1 (PostgreSQL). Times are milliseconds since the Unix
-- epoch (BIGINT); flags are 0/1 integers. Keep in step with migrations/sqlite.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Named counters; `ticket_ref` gives reference numbers that never repeat.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket_ref', 0);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    password_hash TEXT,
    active BIGINT NOT NULL DEFAULT 1,
    notify_prefs TEXT NOT NULL DEFAULT '{}',
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE requesters (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    organisation TEXT NOT NULL DEFAULT '',
    notify_prefs TEXT NOT NULL DEFAULT '{}',
    undeliverable_at BIGINT,
    undeliverable_reason TEXT,
    created_at BIGINT NOT NULL
);

CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    requester_id BIGINT REFERENCES requesters (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE mailboxes (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    settings TEXT NOT NULL,
    from_config BIGINT NOT NULL DEFAULT 0,
    paused BIGINT NOT NULL DEFAULT 0,
    uidvalidity BIGINT,
    last_uid BIGINT,
    last_ok_at BIGINT,
    last_error TEXT,
    last_error_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE tickets (
    id BIGSERIAL PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT NOT NULL,
    category TEXT NOT NULL,
    channel TEXT NOT NULL,
    requester_id BIGINT NOT NULL REFERENCES requesters (id),
    assignee_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    mailbox_id BIGINT REFERENCES mailboxes (id) ON DELETE SET NULL,
    due_at BIGINT,
    related_kind TEXT,
    related_id TEXT,
    linked_ticket_id BIGINT REFERENCES tickets (id) ON DELETE SET NULL,
    merged_into_id BIGINT REFERENCES tickets (id) ON DELETE SET NULL,
    message_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_message_at BIGINT NOT NULL,
    first_response_at BIGINT,
    resolved_at BIGINT,
    closed_at BIGINT,
    sla_paused_ms BIGINT NOT NULL DEFAULT 0,
    sla_paused_since BIGINT,
    sla_state TEXT NOT NULL DEFAULT 'none',
    sla_due_at BIGINT
);
CREATE INDEX tickets_status_updated ON tickets (status, updated_at);
CREATE INDEX tickets_updated ON tickets (updated_at);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_priority ON tickets (priority, updated_at);
CREATE INDEX tickets_category ON tickets (category, updated_at);
CREATE INDEX tickets_channel ON tickets (channel, updated_at);
CREATE INDEX tickets_assignee ON tickets (assignee_id, status);
CREATE INDEX tickets_requester ON tickets (requester_id, updated_at);
CREATE INDEX tickets_sla ON tickets (sla_state, updated_at);
CREATE INDEX tickets_sla_due ON tickets (sla_due_at);
CREATE INDEX tickets_resolved ON tickets (status, resolved_at);
CREATE INDEX tickets_subject ON tickets (subject);
CREATE INDEX tickets_message_count ON tickets (message_count);

CREATE TABLE participants (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    requester_id BIGINT NOT NULL REFERENCES requesters (id) ON DELETE CASCADE,
    role TEXT NOT NULL DEFAULT 'cc',
    PRIMARY KEY (ticket_id, requester_id)
);
CREATE INDEX participants_requester ON participants (requester_id);

CREATE TABLE ticket_tags (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (ticket_id, tag)
);
CREATE INDEX ticket_tags_tag ON ticket_tags (tag);

CREATE TABLE inbound (
    id BIGSERIAL PRIMARY KEY,
    mailbox_id BIGINT REFERENCES mailboxes (id) ON DELETE SET NULL,
    uidvalidity BIGINT,
    uid BIGINT,
    dedup_key TEXT NOT NULL,
    raw BYTEA NOT NULL,
    state TEXT NOT NULL DEFAULT 'new',
    reason TEXT,
    silent BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claim_until BIGINT,
    ticket_id BIGINT REFERENCES tickets (id) ON DELETE SET NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT
);
CREATE UNIQUE INDEX inbound_uid ON inbound (mailbox_id, uidvalidity, uid);
CREATE INDEX inbound_dedup ON inbound (dedup_key);
CREATE INDEX inbound_state ON inbound (state, id);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('reply', 'note', 'system')),
    author_kind TEXT NOT NULL,
    author_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    author_requester_id BIGINT REFERENCES requesters (id) ON DELETE SET NULL,
    body_text TEXT NOT NULL,
    full_text TEXT,
    body_html TEXT,
    mail_message_id TEXT,
    inbound_id BIGINT REFERENCES inbound (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX messages_ticket ON messages (ticket_id, id);
CREATE INDEX messages_mail_id ON messages (mail_message_id);

-- Every Message-ID postdesk sent or received, for matching replies.
CREATE TABLE mail_ids (
    message_id TEXT PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mail_ids_ticket ON mail_ids (ticket_id);

-- Attachment contents, content-addressed, shared by every daemon.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL
);

CREATE TABLE attachments (
    id BIGSERIAL PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_id TEXT,
    inline BIGINT NOT NULL DEFAULT 0,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256)
);
CREATE INDEX attachments_message ON attachments (message_id);

CREATE TABLE read_marks (
    ticket_id BIGINT NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,
    last_message_id BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, viewer)
);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT REFERENCES tickets (id) ON DELETE CASCADE,
    notice TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by TEXT,
    claim_until BIGINT,
    mail_message_id TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- What the gateway could tell of an inbound message (SPEC §5.11): whether
-- its sender was verified ("verified: dmarc=pass …", "unverified: …",
-- "failed: …"), and a notice about how it was read (HTML too deep or too
-- large to render, shown as plain text). Both NULL for messages not from mail.
ALTER TABLE messages ADD COLUMN verification TEXT;
ALTER TABLE messages ADD COLUMN notice TEXT;

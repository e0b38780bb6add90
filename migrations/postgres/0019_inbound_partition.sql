-- The processing partition of each stored mail (src/mail/conversation.rs):
-- mails of one partition are processed in arrival order, one batch at a
-- time across daemons; mails of different partitions side by side. A reply
-- takes the partition of the mail it answers, found by the hash of its
-- Message-ID. Mail stored before this migration stays in partition 0, in
-- its order.
ALTER TABLE inbound ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
ALTER TABLE inbound ADD COLUMN msg_hash BIGINT;
CREATE INDEX inbound_waiting ON inbound (part, id) WHERE state = 'new';
CREATE INDEX inbound_msg_hash ON inbound (msg_hash);

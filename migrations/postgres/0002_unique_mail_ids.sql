-- A received or sent Message-ID lands on at most one message: a second copy
-- of the same mail (another mailbox, another daemon) is a duplicate, not a
-- second message.
DROP INDEX messages_mail_id;
CREATE UNIQUE INDEX messages_mail_id ON messages (mail_message_id);
CREATE INDEX inbound_mailbox_dedup ON inbound (mailbox_id, dedup_key);

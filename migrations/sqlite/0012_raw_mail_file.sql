-- The bytes of inbound mail move to a file of their own beside the main
-- database (`PATH.mail`, see `store::MailFile`): a poller's writes of raw
-- mail no longer hold the main file's one write lock. A row names its bytes
-- there by `raw_key`; rows stored before keep theirs in `inbound_raw`
-- (`raw_key` NULL), where they are still read.
ALTER TABLE inbound ADD COLUMN raw_key TEXT;

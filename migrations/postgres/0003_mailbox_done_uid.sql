-- The highest UID whose post-processing (seen / move / delete) is done, so a
-- crash between storing mail and telling the server is finished on restart.
ALTER TABLE mailboxes ADD COLUMN done_uid BIGINT;

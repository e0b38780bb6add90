-- Raw mail and attachment bytes are stored out of line without compression:
-- attachments are mostly compressed already (PDF, images, archives) and
-- pglz spent ~30 ms per 200 KB attachment trying, on the ingest hot path.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE inbound ALTER COLUMN raw SET STORAGE EXTERNAL;

-- PostgreSQL only: raw mail and attachment bytes stored without pglz
-- compression. SQLite never compresses; kept so both backends share versions.
SELECT 1;

//! The migrations of each backend and the full-text catch-up run after them.

use super::*;

/// SQLite: writes the full-text documents (FTS5 `ticket_search`, one per
/// ticket) of the tickets and messages past the counters `search_ticket` and
/// `search_message`, in three statements for any number of rows (FTS5 writes
/// a segment per statement that touches it). A new ticket's document is its
/// subject, its requester's address and name, then the text of its messages;
/// an older ticket's grows by its new messages' text until it passes 1 MB.
/// System messages are left out. Public for loads that write rows by hand
/// (the queue bench).
pub const SEARCH_CATCH_UP: &str = "\
INSERT INTO ticket_search (rowid, doc) \
SELECT t.id, t.subject || char(10) || r.email || ' ' || r.first_name || ' ' || r.last_name || \
    COALESCE(char(10) || (SELECT group_concat(m.body_text, char(10) ORDER BY m.id) FROM messages m \
        WHERE m.ticket_id = t.id AND m.kind <> 'system'), '') \
FROM tickets t JOIN requesters r ON r.id = t.requester_id \
WHERE t.id > (SELECT value FROM counters WHERE name = 'search_ticket'); \
UPDATE ticket_search SET doc = doc || char(10) || (SELECT group_concat(m.body_text, char(10) ORDER BY m.id) \
    FROM messages m WHERE m.ticket_id = ticket_search.rowid AND m.kind <> 'system' \
    AND m.id > (SELECT value FROM counters WHERE name = 'search_message')) \
WHERE rowid IN (SELECT ticket_id FROM messages WHERE kind <> 'system' \
        AND id > (SELECT value FROM counters WHERE name = 'search_message')) \
    AND rowid <= (SELECT value FROM counters WHERE name = 'search_ticket') \
    AND length(doc) < 1000000; \
UPDATE counters SET value = CASE name \
    WHEN 'search_ticket' THEN (SELECT COALESCE(MAX(id), value) FROM tickets) \
    ELSE (SELECT COALESCE(MAX(id), value) FROM messages) END \
WHERE name IN ('search_ticket', 'search_message');";

pub(super) async fn catch_up_search(conn: &mut sqlx::Transaction<'static, Any>) -> Result<()> {
    sqlx::raw_sql(SEARCH_CATCH_UP).execute(&mut **conn).await?;
    Ok(())
}

macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal),+ $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($file),
            MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str(include_str!(concat!("../../migrations/", $dir, "/", $file, ".sql"))),
            false,
        )),+]
    };
}

pub(super) fn migrator(backend: Backend) -> Migrator {
    // Same versions on both backends; a new migration is added to both lists.
    let list = match backend {
        Backend::Sqlite => {
            migrations!("sqlite": 1 => "0001_init", 2 => "0002_unique_mail_ids", 3 => "0003_mailbox_done_uid", 4 => "0004_ticket_ref_sequence", 5 => "0005_outbox_delivery", 6 => "0006_bytes_uncompressed", 7 => "0007_inbound_raw_apart", 8 => "0008_search", 9 => "0009_message_triggers", 10 => "0010_statement_triggers", 11 => "0011_unchanged_times", 12 => "0012_raw_mail_file", 13 => "0013_search_at_commit", 14 => "0014_ticket_ref_in_insert", 15 => "0015_message_verification", 16 => "0016_session_scope", 17 => "0017_content_key", 18 => "0018_count_people_messages", 19 => "0019_inbound_partition", 20 => "0020_canned_responses", 21 => "0021_mentions", 22 => "0022_customer_at_a_glance", 23 => "0023_satisfaction", 24 => "0024_views", 25 => "0025_reports")
        }
        Backend::Postgres => {
            migrations!("postgres": 1 => "0001_init", 2 => "0002_unique_mail_ids", 3 => "0003_mailbox_done_uid", 4 => "0004_ticket_ref_sequence", 5 => "0005_outbox_delivery", 6 => "0006_bytes_uncompressed", 7 => "0007_inbound_raw_apart", 8 => "0008_search", 9 => "0009_message_triggers", 10 => "0010_statement_triggers", 11 => "0011_unchanged_times", 12 => "0012_raw_mail_file", 13 => "0013_search_at_commit", 14 => "0014_ticket_ref_in_insert", 15 => "0015_message_verification", 16 => "0016_session_scope", 17 => "0017_content_key", 18 => "0018_count_people_messages", 19 => "0019_inbound_partition", 20 => "0020_canned_responses", 21 => "0021_mentions", 22 => "0022_customer_at_a_glance", 23 => "0023_satisfaction", 24 => "0024_views", 25 => "0025_reports")
        }
    };
    Migrator::with_migrations(list)
}

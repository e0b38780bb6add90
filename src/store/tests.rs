//! The store's connections: placeholders, pools, commits, checkpoints,
//! catching up hand-written rows, waiting for a writer, migrations.
use super::{Backend, Commits, ForeignKeys, Marks, Store, migrator};

#[test]
fn marks_are_anonymous_on_sqlite_and_numbered_on_postgres() {
    assert_eq!(
        Marks::new(Backend::Sqlite).rows(2, 3),
        "(?, ?, ?), (?, ?, ?)"
    );
    let mut marks = Marks::new(Backend::Postgres);
    assert_eq!(marks.rows(2, 2), "($1, $2), ($3, $4)");
    let mut text = String::from(" AND x = ");
    marks.push_to(&mut text);
    assert_eq!(text, " AND x = $5");
}

/// Only the pool made for ingest leaves foreign keys unchecked.
#[tokio::test]
async fn only_the_ingest_pool_leaves_foreign_keys_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url, 1, "TKT").await.unwrap();
    let ingest = store
        .dedicated(1, Commits::Unflushed, ForeignKeys::Unchecked)
        .await
        .unwrap();
    let checked = |pool: sqlx::AnyPool| async move {
        sqlx::query_scalar::<_, i64>("PRAGMA foreign_keys")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(checked(store.pool.clone()).await, 1);
    assert_eq!(checked(ingest.pool.clone()).await, 0);
}

/// The daemon's connections flush every commit; the ingest processor's
/// own pool leaves that to the next flushed commit.
#[tokio::test]
async fn only_the_processors_pool_leaves_commits_unflushed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url, 1, "TKT").await.unwrap();
    let own = store
        .dedicated(1, Commits::Unflushed, ForeignKeys::Checked)
        .await
        .unwrap();
    let flushed = store
        .dedicated(1, Commits::Flushed, ForeignKeys::Checked)
        .await
        .unwrap();
    let synchronous = |s: &Store| {
        let pool = s.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // 2 is FULL, 1 NORMAL.
    assert_eq!(synchronous(&store).await, 2);
    assert_eq!(synchronous(&flushed).await, 2);
    assert_eq!(synchronous(&own).await, 1);
    // Statement journals in memory (2), not in temporary files: each
    // statement of a multi-statement transaction journals the pages it
    // changes, which was two thirds of the ingest's write calls.
    let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
        .fetch_one(&own.pool)
        .await
        .unwrap();
    assert_eq!(temp_store, 2);
    // Raw mail, written once and read once, gets a small page cache;
    // the main file keeps SQLite's default.
    let cache = |pool: sqlx::AnyPool, pragma: &'static str| async move {
        sqlx::query_scalar::<_, i64>(pragma)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let small = -i64::from(super::MAIL_CACHE_KIB);
    assert_eq!(
        cache(own.pool.clone(), "PRAGMA mail.cache_size").await,
        small
    );
    assert_eq!(
        cache(own.pool.clone(), "PRAGMA main.cache_size").await,
        -2000
    );
    let mail = store.mail.as_ref().unwrap().pool.clone();
    assert_eq!(cache(mail, "PRAGMA cache_size").await, small);
}

/// The main file's log is copied into the database by the
/// checkpointer soon after a commit, not left to SQLite's threshold
/// (far above the megabyte written here).
#[tokio::test]
async fn commits_are_checkpointed_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::connect(&format!("sqlite://{}", path.display()), 2, "TKT")
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(autocheckpoint, i64::from(super::WAL_AUTOCHECKPOINT));
    let size = |path: &std::path::Path| std::fs::metadata(path).unwrap().len();
    let grown = async |path: &std::path::Path, before: u64| {
        let mut waited = 0;
        while size(path) < before + (1 << 20) {
            assert!(waited < 500, "the commit to {path:?} was not checkpointed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            waited += 1;
        }
    };
    let before = size(&path);
    store
        .put_setting("big", &"x".repeat(1 << 20))
        .await
        .unwrap();
    grown(&path, before).await;

    // The mail file too, by its own checkpointer.
    let mail = store.mail.clone().unwrap();
    let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(&mail.pool)
        .await
        .unwrap();
    assert_eq!(autocheckpoint, i64::from(super::WAL_AUTOCHECKPOINT));
    let mail_path = dir.path().join("t.db.mail");
    let before = size(&mail_path);
    let mut tx = mail.begin().await.unwrap();
    sqlx::query("INSERT INTO raw (key, raw) VALUES ($1, $2)")
        .bind("big")
        .bind(vec![7u8; 1 << 20])
        .execute(&mut *tx.conn)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    grown(&mail_path, before).await;
    store.close().await;
}

/// A migrated SQLite store in `dir`, and its URL.
async fn migrated(dir: &tempfile::TempDir) -> (Store, String) {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url, 2, "TKT").await.unwrap();
    store.migrate().await.unwrap();
    (store, url)
}

/// Tickets and messages written by hand (as a bulk load does) reach
/// SQLite's full-text search at the next catch-up, and a thread's
/// document keeps growing across catch-ups.
#[tokio::test]
async fn hand_written_rows_are_caught_up_by_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = migrated(&dir).await;
    let write = |sql: &'static str| {
        let pool = store.pool.clone();
        async move { sqlx::raw_sql(sql).execute(&pool).await.unwrap() }
    };
    let matches = |word: &'static str| {
        let pool = store.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM ticket_search WHERE ticket_search MATCH $1",
            )
            .bind(word)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    write(
        "INSERT INTO requesters (email, first_name, last_name, created_at) \
         VALUES ('zed@example.org', 'Zed', 'Zulu', 1); \
         INSERT INTO tickets (number, subject, status, priority, category, channel, requester_id, \
         created_at, updated_at, last_message_at) VALUES (1, 'Kettle', 'open', 'normal', 'general', \
         'email', 1, 1, 1, 1); \
         INSERT INTO messages (ticket_id, kind, author_kind, body_text, created_at) \
         VALUES (1, 'reply', 'requester', 'a quokka', 1), (1, 'system', 'system', 'numbat', 1);",
    )
    .await;
    assert_eq!(matches("quokka").await, 0);
    store.catch_up_search().await.unwrap();
    for word in ["kettle", "zulu", "quokka"] {
        assert_eq!(matches(word).await, 1, "{word}");
    }
    assert_eq!(matches("numbat").await, 0, "system messages are left out");
    write(
        "INSERT INTO messages (ticket_id, kind, author_kind, body_text, created_at) \
         VALUES (1, 'reply', 'requester', 'a wombat', 2)",
    )
    .await;
    store.catch_up_search().await.unwrap();
    assert_eq!(matches("wombat").await, 1);
    assert_eq!(matches("quokka").await, 1);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM ticket_search")
            .fetch_one(&store.pool)
            .await
            .unwrap(),
        1,
        "one document per ticket"
    );
    store.close().await;
}

/// A write transaction that reads before it writes does not fail with
/// "database is locked" while another connection holds SQLite's write
/// lock (another process, or a dropped transaction whose rollback has
/// not run yet): it waits for the lock at its start.
#[tokio::test]
async fn a_transaction_waits_for_a_writer_elsewhere() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = migrated(&dir).await;
    let mut other = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO settings (key, value) VALUES ('k', 'other')")
        .execute(&mut other)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    });
    let mut tx = store.begin().await.unwrap();
    let before: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = 'k'")
        .fetch_optional(&mut *tx.conn)
        .await
        .unwrap();
    assert_eq!(before, None);
    sqlx::query("INSERT INTO settings (key, value) VALUES ('k', 'ours')")
        .execute(&mut *tx.conn)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    release.await.unwrap();
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("ours"));
    store.close().await;
}

/// Every migration file of each backend is registered, under the same
/// versions on both (a file left out of the list is silently never run).
#[test]
fn every_migration_file_is_registered() {
    for (backend, dir) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut files: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".sql")
                    .map(String::from)
            })
            .collect();
        files.sort();
        let listed: Vec<String> = migrator(backend)
            .iter()
            .map(|m| m.description.to_string())
            .collect();
        assert_eq!(listed, files, "migrations/{dir}");
        let versions: Vec<i64> = migrator(backend).iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=files.len() as i64).collect::<Vec<_>>());
    }
}

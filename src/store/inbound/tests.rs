//! Storing fetched mail: bytes before rows, read back where they live.
use super::{Fetched, Stored};
use crate::store::Store;
use std::time::Duration;

#[test]
fn raw_inserts_stay_under_the_byte_budget() {
    let small = [0u8; 300];
    let big = [0u8; 1500];
    let mails: Vec<(&str, &[u8])> = vec![
        ("a", &small),
        ("b", &small),
        ("c", &small),
        ("d", &big),
        ("e", &small),
    ];
    let runs: Vec<Vec<&str>> = super::byte_chunks(&mails, 1000)
        .map(|run| run.iter().map(|(k, _)| *k).collect())
        .collect();
    assert_eq!(runs, [vec!["a", "b", "c"], vec!["d"], vec!["e"]]);
    let many = vec![("k", &small[..1]); 1200];
    let sizes: Vec<usize> = super::byte_chunks(&many, usize::MAX)
        .map(<[_]>::len)
        .collect();
    assert_eq!(sizes, [500, 500, 200]);
    assert_eq!(super::byte_chunks(&[], 1000).count(), 0);
}

async fn sqlite_store(dir: &tempfile::TempDir) -> (Store, i64) {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url, 4, "TKT").await.unwrap();
    store.migrate().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let mailbox: i64 = sqlx::query_scalar(
        "INSERT INTO mailboxes (name, address, settings, from_config, created_at) \
         VALUES ('support', 'support@example.test', '{}', 0, 0) RETURNING id",
    )
    .fetch_one(&mut *tx.conn)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (store, mailbox)
}

async fn claim(store: &Store) -> Vec<super::RawMail> {
    let mut mails = store.claim_raw_rows("me", 5, 1000, 10).await.unwrap();
    store.load_raw(&mut mails).await.unwrap();
    mails
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

/// A poller's bytes are committed to the mail file without the main
/// file's write lock: while another transaction holds that lock they
/// are already there, and the rows follow once it is released.
#[tokio::test]
async fn fetched_bytes_commit_to_the_mail_file_before_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mailbox) = sqlite_store(&dir).await;
    let holder = store.begin().await.unwrap();
    let poller = store.clone();
    let storing = tokio::spawn(async move {
        let mails = [
            Fetched {
                uid: 7,
                raw: b"Subject: a\r\n\r\none",
                quarantine: None,
            },
            Fetched {
                uid: 8,
                raw: b"Subject: b\r\n\r\ntwo",
                quarantine: Some("too large".into()),
            },
        ];
        poller
            .store_fetched(mailbox, 3, &mails, false, None, 1)
            .await
            .unwrap()
    });
    let keys = "SELECT COUNT(*) FROM mail.raw WHERE key IN ('imap:1:3:7', 'imap:1:3:8')";
    let mut waited = 0;
    while count(&store, keys).await < 2 {
        assert!(waited < 500, "the bytes waited for the main write lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM inbound").await, 0);
    drop(holder);
    let stored = storing.await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM inbound_raw").await, 0);
    let (state, _, raw) = store.inbound(stored[0].1).await.unwrap().unwrap();
    assert_eq!(
        (state.as_str(), &raw[..]),
        ("new", &b"Subject: a\r\n\r\none"[..])
    );
    let quarantined = store.quarantined(10).await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(
        (quarantined[0].reason.as_str(), quarantined[0].size),
        ("too large", 17)
    );
    // Fetched again (after a crash before the server was told): nothing new.
    let again = [Fetched {
        uid: 7,
        raw: b"Subject: a\r\n\r\none",
        quarantine: None,
    }];
    assert!(
        store
            .store_fetched(mailbox, 3, &again, false, None, 2)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = claim(&store).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].raw, b"Subject: a\r\n\r\none");
}

/// A piped mail's bytes go to the mail file with its transaction, a
/// rolled-back one leaves no row, and a row stored before the mail file
/// existed is still read from `inbound_raw`.
#[tokio::test]
async fn piped_and_older_mail_is_read_where_it_lives() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mailbox) = sqlite_store(&dir).await;
    let mut tx = store.begin().await.unwrap();
    tx.store_raw(Some(mailbox), "<a@x>", b"first try", false, 1)
        .await
        .unwrap();
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let Stored::New(piped) = tx
        .store_raw(Some(mailbox), "<a@x>", b"piped", false, 1)
        .await
        .unwrap()
    else {
        panic!("a rolled-back mail counted as stored")
    };
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let again = tx
        .store_raw(Some(mailbox), "<a@x>", b"other", false, 2)
        .await
        .unwrap();
    assert_eq!(again, Stored::Duplicate(piped));
    let older: i64 = sqlx::query_scalar(
        "INSERT INTO inbound (mailbox_id, dedup_key, received_at) VALUES (NULL, 'old', 0) RETURNING id",
    )
    .fetch_one(&mut *tx.conn)
    .await
    .unwrap();
    sqlx::query("INSERT INTO inbound_raw (inbound_id, raw) VALUES ($1, $2)")
        .bind(older)
        .bind(&b"older"[..])
        .execute(&mut *tx.conn)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.inbound(piped).await.unwrap().unwrap().2, b"piped");
    assert_eq!(store.inbound(older).await.unwrap().unwrap().2, b"older");
    let claimed = claim(&store).await;
    let raws: Vec<&[u8]> = claimed.iter().map(|m| &m.raw[..]).collect();
    assert_eq!(raws, [&b"piped"[..], &b"older"[..]]);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM inbound_raw").await,
        1,
        "new mail went to inbound_raw"
    );
}

//! Measures one statement's round trip through sqlx (`SELECT $1`, 20,000
//! times on one connection): from the multi-threaded runtime, and from a
//! single-threaded runtime on a thread pinned to one core with a pool
//! opened there (how `app.rs` runs the ingest processor).
//!
//!     cargo run --release --example roundtrip [-- postgres://postgres@127.0.0.1:5432/test]

use std::time::Instant;

async fn measure(label: &str, pool: &sqlx::AnyPool) {
    let mut conn = pool.acquire().await.expect("a connection");
    let n = 20_000;
    let started = Instant::now();
    for i in 0..n {
        let _: (i64,) = sqlx::query_as("SELECT $1")
            .bind(i as i64)
            .fetch_one(&mut *conn)
            .await
            .expect("the query runs");
    }
    let each = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label}: {each:.1} µs per statement");
}

#[tokio::main]
async fn main() {
    sqlx::any::install_default_drivers();
    let db = std::env::temp_dir().join("postdesk-roundtrip.db");
    let _ = std::fs::remove_file(&db);
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("sqlite:{}?mode=rwc", db.display()));
    let open = |url: String| async move {
        sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .expect("the database opens")
    };
    measure("multi-threaded runtime", &open(url.clone()).await).await;
    std::thread::spawn(move || {
        if let Some(core) = core_affinity::get_core_ids().and_then(|c| c.last().copied()) {
            core_affinity::set_for_current(core);
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(async move {
                measure("pinned single-threaded runtime", &open(url).await).await;
            });
    })
    .join()
    .expect("the thread ends");
}

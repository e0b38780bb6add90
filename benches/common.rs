//! What the benchmarks share: command-line flags and a throw-away
//! PostgreSQL database on the machine's server.

#![allow(dead_code)]

use std::process::Command;

const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The value after `name` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Creates database `name`; returns its URL.
pub fn create_pg(name: &str) -> String {
    let ok = Command::new("psql")
        .args([PG_ADMIN, "-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "CREATE DATABASE {name} (is PostgreSQL up? scripts/ensure-postgres)"
    );
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// Drops database `name`, whoever is still connected.
pub fn drop_pg(name: &str) {
    let _ = Command::new("psql")
        .args([
            PG_ADMIN,
            "-qc",
            &format!("DROP DATABASE {name} WITH (FORCE)"),
        ])
        .status();
}

/// A line of `/proc/PID/status` in kB, as MB.
fn status_mb(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Peak resident memory of a process (`self` or a pid), MB.
pub fn peak_rss_mb(pid: &str) -> f64 {
    status_mb(pid, "VmHWM:")
}

/// Resident memory of a process now (`self` or a pid), MB.
pub fn rss_mb(pid: &str) -> f64 {
    status_mb(pid, "VmRSS:")
}

/// A fresh database for a benchmark: on PostgreSQL (`kind` "postgres") one
/// named `postdesk_{what}_{pid}`, else a SQLite file in `work`. Its URL,
/// and the PostgreSQL name to drop at the end.
pub fn bench_database(kind: &str, what: &str, work: &std::path::Path) -> (String, Option<String>) {
    if kind == "postgres" {
        let name = format!("postdesk_{what}_{}", std::process::id());
        (create_pg(&name), Some(name))
    } else {
        (
            format!("sqlite://{}", work.join("bench.db").display()),
            None,
        )
    }
}

/// An admin account on `store` and an API token of it.
pub async fn admin_with_token(store: &postdesk::store::Store) -> (postdesk::store::User, String) {
    let admin = store
        .insert_user(
            &postdesk::store::NewUser {
                email: "admin@example.org".parse().unwrap(),
                name: "Ada Admin".into(),
                role: postdesk::domain::Role::Admin,
                password_hash: "x".into(),
            },
            1,
        )
        .await
        .unwrap();
    let token = postdesk::secrets::new_api_token();
    store
        .insert_api_token(
            admin.id,
            &postdesk::secrets::token_digest(&token),
            "bench",
            1,
        )
        .await
        .unwrap();
    (admin, token)
}

/// The machine's CPU time so far, seconds: (busy, all), from `/proc/stat`
/// (user, nice, system, irq, softirq, steal are busy; idle and iowait not).
pub fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0) / 100.0;
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    (busy, busy + at(3) + at(4))
}

/// CPU seconds (user, system) of each thread of process `pid`, by thread
/// name, threads of the same name summed.
pub fn thread_cpu(pid: u32) -> Vec<(String, (f64, f64))> {
    let mut by_name: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (name) state ppid … utime stime …": fields after the name.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| {
            rest.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let entry = by_name.entry(name).or_default();
        entry.0 += field(11) / 100.0;
        entry.1 += field(12) / 100.0;
    }
    by_name.into_iter().collect()
}

/// A process's I/O so far, from `/proc/PID/io`: (write calls, bytes handed to
/// `write`/`pwrite`, read calls, bytes read), zero where unreadable.
pub fn process_io(pid: u32) -> (u64, u64, u64, u64) {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("syscw:"),
        field("wchar:"),
        field("syscr:"),
        field("rchar:"),
    )
}

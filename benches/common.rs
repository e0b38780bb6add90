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

/// Peak resident memory of a process (`self` or a pid), MB.
pub fn peak_rss_mb(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

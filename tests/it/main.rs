//! The integration tests: one binary. Real SQLite files and a real
//! PostgreSQL (a fresh database per test, dropped afterwards), the real web
//! server on port 0, the real `postdesk` binary.
//!
//! Plain `cargo test` runs what needs nothing but this repository (SQLite
//! and the pure scenarios); `cargo test --features stack` (what
//! `scripts/test` runs) adds everything bound to the real stack:
//! PostgreSQL, Dovecot, Postfix, a name server, Chromium and the corpus in
//! `../shared/corpus`. Without the feature those tests are not built at all,
//! never skipped while counted as passing.

// Helpers used only by the stack-bound tests.
#![cfg_attr(not(feature = "stack"), allow(dead_code, unused_imports))]

mod actions;
mod api;
#[cfg(feature = "stack")]
mod browser;
mod canned;
mod cli;
#[cfg(feature = "stack")]
mod cluster;
mod console;
#[cfg(feature = "stack")]
mod corpus;
#[cfg(feature = "stack")]
mod crash;
mod customers;
mod gateway;
mod helpers;
#[cfg(feature = "stack")]
mod imap;
mod live;
#[cfg(feature = "stack")]
mod logs;
mod mentions;
#[cfg(feature = "stack")]
mod oauth;
#[cfg(feature = "stack")]
mod outbound;
mod portal;
mod replies;
mod reports;
mod satisfaction;
mod scheduler;
#[cfg(feature = "stack")]
mod shutdown;
mod views;

//! The integration tests: one binary. Real SQLite files and a real
//! PostgreSQL (a fresh database per test, dropped afterwards), the real web
//! server on port 0, the real `postdesk` binary.

mod actions;
mod api;
mod browser;
mod cli;
mod cluster;
mod console;
mod corpus;
mod crash;
mod gateway;
mod helpers;
mod imap;
mod oauth;
mod outbound;
mod portal;
mod replies;
mod scheduler;
mod shutdown;

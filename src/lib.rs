//! postdesk: an email-driven help desk.
//!
//! The modules, in the order a mail meets them:
//!
//! - [`config`]: typed settings from defaults, `postdesk.toml` and the environment.
//! - [`domain`]: the ticket model and every pure decision (status rules, permissions, SLA).
//! - [`gateway`]: IMAP pollers under mailbox leases, the processor, matching, in-process
//!   DKIM/SPF/DMARC checks (DNS), pipe and import.
//! - [`mail`]: parsing, classification, reply extraction, composing outgoing mail.
//! - [`oauth`]: OAuth2 access tokens for XOAUTH2 mail accounts.
//! - [`store`]: all the SQL, on SQLite or PostgreSQL; nothing else knows which.
//! - [`actions`]: each change of a ticket as one transaction with its system message.
//! - [`outbox`]: delivers queued notifications over SMTP, threaded and loop-safe.
//! - [`scheduler`]: auto-close and SLA refresh, sleeping until the next due time.
//! - [`web`]: health, metrics, the JSON API and the requester portal.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`net`]: TLS client configuration shared by the IMAP and SMTP connections.
//! - [`secrets`]: password hashes, API tokens as digests, secrets masked in output.
//! - [`app`]: builds the whole daemon from settings and runs it until shutdown.
//! - [`cli`]: one short function per subcommand.

pub mod actions;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod outbox;
pub mod scheduler;
pub mod secrets;
pub mod store;
pub mod web;

//! Delivering the outbox (SPEC §6): a worker claims due notifications,
//! renders them from the templates, sends them over pooled SMTP connections
//! and records the outcome: sent with its Message-ID, retried with backoff
//! after a transient failure, failed with the server's answer after a
//! permanent one, held by the loop guard, or suppressed.

pub mod render;
pub mod smtp;
pub mod worker;

pub use render::{Rendered, Templates};
pub use smtp::{SendError, SmtpPool};
pub use worker::{Outcome, Worker};

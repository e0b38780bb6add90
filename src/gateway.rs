//! Mail in: the IMAP pollers and the leases that spread them over daemons,
//! the processor (raw mail → ticket or reply, one transaction per batch),
//! the matching rules, and the pipe/import entry points.

pub mod imap;
pub mod import;
pub mod matching;
pub mod poller;
pub mod processor;
pub mod sender_check;
pub mod supervisor;

use crate::config::Settings;
use crate::mail::token::SigningKey;
use crate::store::{Store, StoreError};

/// The install's signing key: from `security.secret_key`, or generated once
/// and kept in the database so every daemon signs alike.
pub async fn signing_key(settings: &Settings, store: &Store) -> Result<SigningKey, StoreError> {
    if let Some(secret) = &settings.security.secret_key
        && let Ok(value) = secret.reveal("security.secret_key")
    {
        return Ok(SigningKey::new(value.as_bytes()));
    }
    let generated = crate::secrets::new_api_token();
    let stored = store.setting_or_insert("secret_key", &generated).await?;
    Ok(SigningKey::new(stored.as_bytes()))
}

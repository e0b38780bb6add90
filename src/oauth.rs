//! OAuth2 for mail accounts (XOAUTH2 over IMAP and SMTP): an access token
//! obtained from a refresh token at the account's token endpoint, cached and
//! refreshed before it expires. When the endpoint rotates the refresh token,
//! the new one is stored in the database *before* the access token is used,
//! so a crash never leaves postdesk holding only a token the provider has
//! already retired.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use crate::config::{Account, ConfigError, OAuth2Settings};
use crate::store::{Store, StoreError};

/// How long a token endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes read from a token endpoint's answer.
const MAX_ANSWER: usize = 64 * 1024;

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("OAuth2 token endpoint {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "OAuth2 token endpoint {url} refused the refresh token ({error}{detail}): authorise the mailbox again and store the new refresh token"
    )]
    Refused {
        url: String,
        error: String,
        detail: String,
    },
    #[error("OAuth2 token endpoint {url} answered {status} with no usable token: {reason}")]
    BadAnswer {
        url: String,
        status: u16,
        reason: String,
    },
    #[error(transparent)]
    Secret(#[from] ConfigError),
    #[error("storing the rotated refresh token failed: {0}")]
    Store(#[from] StoreError),
}

/// The XOAUTH2 initial response (RFC-less, but what Google, Microsoft and
/// Dovecot agree on): `user=U^Aauth=Bearer T^A^A`.
pub fn xoauth2_response(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

#[derive(Debug, Deserialize)]
struct Granted {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Denied {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// When to refresh a token that lives `lifetime`: a minute before it
/// expires, or after three quarters of a short life.
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime - (lifetime / 4).min(Duration::from_secs(60))
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Access tokens for every OAuth2 account of the daemon. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    store: Store,
    http: reqwest::Client,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

/// Where a rotated refresh token of an account is kept (settings table).
fn stored_key(account: &Account, oauth: &OAuth2Settings) -> String {
    let id = format!(
        "{}\n{}\n{}",
        oauth.token_url, oauth.client_id, account.username
    );
    format!(
        "oauth2_refresh_token:{}",
        crate::secrets::bytes_digest(id.as_bytes())
    )
}

impl Tokens {
    /// Tokens kept in `store` (rotated refresh tokens) and in memory.
    pub fn new(store: Store) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Tokens {
            store,
            http,
            cache: Arc::default(),
        }
    }

    /// A valid access token for `account`, refreshed when due.
    pub async fn access_token(
        &self,
        account: &Account,
        oauth: &OAuth2Settings,
    ) -> Result<String, OAuthError> {
        let key = stored_key(account, oauth);
        // One refresh at a time per daemon: a second caller waits and reuses it.
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&key)
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let refresh = match self.store.setting(&key).await? {
            Some(rotated) => rotated,
            None => oauth.refresh_token.reveal("oauth2.refresh_token")?,
        };
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh.clone()),
            ("client_id", oauth.client_id.clone()),
        ];
        if let Some(secret) = &oauth.client_secret {
            form.push(("client_secret", secret.reveal("oauth2.client_secret")?));
        }
        if let Some(scope) = &oauth.scope {
            form.push(("scope", scope.clone()));
        }
        let url = oauth.token_url.clone();
        let unreachable = |e: reqwest::Error| OAuthError::Unreachable {
            url: url.clone(),
            reason: e.without_url().to_string(),
        };
        let started = Instant::now();
        let mut answer = self
            .http
            .post(&oauth.token_url)
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = answer.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(OAuthError::BadAnswer {
                    url,
                    status,
                    reason: format!("more than {MAX_ANSWER} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_slice::<Denied>(&body) {
                Ok(d) => OAuthError::Refused {
                    url,
                    error: d.error,
                    detail: d
                        .error_description
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default(),
                },
                Err(_) => OAuthError::BadAnswer {
                    url,
                    status,
                    reason: "not an OAuth2 error document".into(),
                },
            });
        }
        let granted: Granted =
            serde_json::from_slice(&body).map_err(|e| OAuthError::BadAnswer {
                url: url.clone(),
                status,
                reason: e.to_string(),
            })?;
        if let Some(rotated) = granted.refresh_token.filter(|r| *r != refresh) {
            self.store.put_setting(&key, &rotated).await?;
            tracing::info!(account = %account.username, "OAuth2 refresh token rotated and stored");
        }
        let lifetime = Duration::from_secs(granted.expires_in.unwrap_or(3600));
        cache.insert(
            key,
            Cached {
                token: granted.access_token.clone(),
                refresh_at: started + refresh_after(lifetime),
            },
        );
        Ok(granted.access_token)
    }

    /// Forgets a cached access token the server refused, so that the next
    /// attempt fetches a fresh one.
    pub async fn forget(&self, account: &Account, oauth: &OAuth2Settings) {
        self.cache.lock().await.remove(&stored_key(account, oauth));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_a_minute_early_or_after_three_quarters_of_a_short_life() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(4)),
            Duration::from_secs(3)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_xoauth2_response_has_its_separators() {
        assert_eq!(
            xoauth2_response("a@example.test", "T"),
            "user=a@example.test\u{1}auth=Bearer T\u{1}\u{1}"
        );
    }
}

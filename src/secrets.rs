//! Passwords and tokens: argon2id hashes for passwords, random API tokens
//! stored only as SHA-256 digests.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};

/// Random bytes from the operating system.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS generator failing leaves no safe way on; this is the one place
    // a panic is the right answer (it happens at account creation, never
    // while handling network input).
    getrandom::fill(&mut buf).expect("the operating system's random generator is unavailable");
    buf
}

/// A new API token as shown to its owner once: `pd_` and 64 hex digits.
pub fn new_api_token() -> String {
    format!("pd_{}", hex::encode(random_bytes::<32>()))
}

/// The digest under which a token is stored and looked up.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// SHA-256 of some bytes, hex.
pub fn bytes_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A random password for a new account: 20 characters from an unambiguous alphabet.
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<20>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("password could not be hashed: {0}")]
pub struct HashError(String);

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// `hash_password` on a blocking thread: argon2 spends tens of
/// milliseconds of CPU, which must not stall the async workers.
pub async fn hash_password_off_thread(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| HashError(e.to_string()))?
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A URL with its credentials masked: the password of `user:password@`
/// and the value of any `password=` / `sslpassword=` / `token=` query
/// parameter. Anything that is not such a URL comes back as it was.
pub fn mask_url(s: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.into();
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    out.push_str(scheme);
    out.push_str("://");
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":********");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if ["password", "sslpassword", "token", "secret", "access_token"]
                            .contains(&k.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{k}=********")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&masked.join("&"));
        }
        None => out.push_str(tail),
    }
    if out == s { s.into() } else { out.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_tokens_differ() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        let (a, b) = (new_api_token(), new_api_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert_eq!(token_digest(&a).len(), 64);
        assert_eq!(new_password().len(), 20);
    }
}

#[cfg(test)]
mod mask_tests {
    use super::mask_url;

    #[test]
    fn credentials_in_urls_are_masked() {
        assert_eq!(
            mask_url("postgres://u:p@h/db"),
            "postgres://u:********@h/db"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            mask_url("postgres://h/db?user=u&password=p&sslmode=require"),
            "postgres://h/db?user=u&password=********&sslmode=require"
        );
        assert_eq!(mask_url("sqlite://postdesk.db"), "sqlite://postdesk.db");
        assert_eq!(mask_url("not a url"), "not a url");
        assert_eq!(
            mask_url("https://a:b:c@x.example"),
            "https://a:********@x.example"
        );
        assert_eq!(mask_url("redis://:pw@h"), "redis://:********@h");
    }
}

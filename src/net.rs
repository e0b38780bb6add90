//! TLS client configuration shared by the IMAP and SMTP connections: rustls
//! with the ring provider, the webpki roots plus an account's own CA file.

use std::sync::Arc;
use tokio_rustls::rustls;

use crate::config::Account;

/// A rustls client configuration trusting the webpki roots and, when the
/// account names one, its extra CA certificate file (PEM).
pub fn client_tls_config(account: &Account) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &account.ca_file {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(file)) {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| e.to_string())?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

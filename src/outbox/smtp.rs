//! SMTP connections for the outbox, one pool per account. lettre speaks
//! SMTP; we open the TCP socket ourselves with `TCP_NODELAY` (lettre 0.11.23
//! does not set it, and delayed ACKs then cost 40 ms a mail: see
//! FACTS.md) and keep the connections for reuse.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::config::{Account, TlsMode};

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: 4xx, timeouts, refused connections.
    #[error("{0}")]
    Transient(String),
    /// The server refused for good (5xx); its answer.
    #[error("{0}")]
    Permanent(String),
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        if e.is_permanent() {
            SendError::Permanent(e.to_string())
        } else {
            SendError::Transient(e.to_string())
        }
    }
}

/// A rustls stream lettre can talk over (implicit TLS).
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// Open connections to one SMTP account, at most `size` at a time.
pub struct SmtpPool {
    account: Account,
    /// Access tokens, for an account that signs in with OAuth2.
    tokens: Option<crate::oauth::Tokens>,
    timeout: Duration,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    permits: Semaphore,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.account.host)
            .field("port", &self.account.port)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    /// A pool for `account` with up to `size` connections; nothing is
    /// opened until the first mail.
    pub fn new(account: Account, size: usize, timeout: Duration) -> Self {
        SmtpPool {
            account,
            tokens: None,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1)),
        }
    }

    /// Signs in with XOAUTH2 and access tokens from `tokens` when the
    /// account has `oauth2` settings.
    pub fn with_tokens(mut self, tokens: crate::oauth::Tokens) -> Self {
        self.tokens = Some(tokens);
        self
    }

    fn transient(&self, what: impl std::fmt::Display) -> SendError {
        SendError::Transient(format!(
            "SMTP {}:{}: {what}",
            self.account.host, self.account.port
        ))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let a = &self.account;
        let tcp = TcpStream::connect((a.host.as_str(), a.port))
            .await
            .map_err(|e| self.transient(format!("cannot connect: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| self.transient(format!("cannot set TCP_NODELAY: {e}")))?;
        let hello = ClientId::default();
        let stream: Box<dyn AsyncTokioStream> = match a.tls {
            TlsMode::Implicit => {
                let config = crate::net::client_tls_config(a)
                    .map_err(|e| self.transient(format!("TLS: {e}")))?;
                let name = ServerName::try_from(a.host.clone())
                    .map_err(|e| self.transient(format!("TLS: {e}")))?;
                let tls = TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.transient(format!("TLS: {e}")))?;
                Box::new(TlsStream(tls))
            }
            TlsMode::Starttls | TlsMode::None => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello).await?;
        if a.tls == TlsMode::Starttls {
            conn.starttls(self.starttls_parameters()?, &hello).await?;
        }
        if let Some(oauth) = &a.oauth2 {
            let tokens = self.tokens.as_ref().ok_or_else(|| {
                self.transient("the account signs in with OAuth2, but no token source was given")
            })?;
            let token = tokens
                .access_token(a, oauth)
                .await
                .map_err(|e| self.transient(e))?;
            let signed_in = conn
                .auth(
                    &[Mechanism::Xoauth2],
                    &Credentials::new(a.username.clone(), token),
                )
                .await;
            if let Err(e) = signed_in {
                // A refused token is not used again; the sign-in is retried later.
                tokens.forget(a, oauth).await;
                return Err(self.transient(format!("XOAUTH2: {e}")));
            }
        } else if !a.username.is_empty() {
            let password = match &a.password {
                Some(secret) => secret
                    .reveal("smtp.password")
                    .map_err(|e| self.transient(e))?,
                None => String::new(),
            };
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(a.username.clone(), password),
            )
            .await?;
        }
        Ok(conn)
    }

    fn starttls_parameters(&self) -> Result<TlsParameters, SendError> {
        let mut b = TlsParameters::builder(self.account.host.clone());
        if let Some(path) = &self.account.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| self.transient(format!("{}: {e}", path.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| self.transient(format!("{}: {e}", path.display())))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| self.transient(format!("TLS: {e}")))
    }

    async fn send_on(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<String, SendError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, bytes)).await {
            Ok(Ok(response)) => Ok(response.message().collect::<Vec<_>>().join(" ")),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(self.transient(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// Sends one mail; returns the server's answer. A reused connection the
    /// server has closed meanwhile is replaced once, transparently.
    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.transient("the pool is closed"))?;
        let reused = self.idle.lock().expect("pool lock").pop();
        let fresh = reused.is_none();
        let mut conn = match reused {
            Some(c) => c,
            None => self.open().await?,
        };
        let mut result = self.send_on(&mut conn, envelope, bytes).await;
        if !fresh && matches!(result, Err(SendError::Transient(_))) {
            // An idle connection the server timed out, or a server restarted.
            conn = self.open().await?;
            result = self.send_on(&mut conn, envelope, bytes).await;
        }
        if result.is_ok() && !conn.has_broken() {
            self.idle.lock().expect("pool lock").push(conn);
        }
        result
    }

    async fn open(&self) -> Result<AsyncSmtpConnection, SendError> {
        tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| self.transient(format!("no greeting within {:?}", self.timeout)))?
    }

    /// Says goodbye on every idle connection.
    pub async fn close(&self) {
        let conns: Vec<_> = std::mem::take(&mut *self.idle.lock().expect("pool lock"));
        for mut c in conns {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.quit()).await;
        }
    }
}

//! The IMAP connection: TCP, then implicit TLS, STARTTLS or plain (loopback
//! only), through rustls with the ring provider; then LOGIN, or XOAUTH2 with
//! an OAuth2 access token. Everything has
//! a timeout so a silent server cannot hang a poller.

use std::fmt::Debug;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::config::{Account, TlsMode};
use crate::oauth::{Tokens, xoauth2_response};

/// Any stream a session can run over.
pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}

/// A logged-in IMAP session.
pub type Session = async_imap::Session<Box<dyn ImapStream>>;

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why talking to the IMAP server failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("login as {0} refused: {1}")]
    Login(String, String),
    #[error("IMAP: {0}")]
    Protocol(#[from] async_imap::error::Error),
    #[error("{0}")]
    Secret(#[from] crate::config::ConfigError),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the server closed the connection")]
    Closed,
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthError),
    #[error("{0} signs in with OAuth2, but no token source was given")]
    NoTokens(String),
}

async fn tls_wrap(account: &Account, tcp: TcpStream) -> Result<Box<dyn ImapStream>, ImapError> {
    let name = ServerName::try_from(account.host.clone())
        .map_err(|e| ImapError::Tls(account.host.clone(), e.to_string()))?;
    let config = crate::net::client_tls_config(account)
        .map_err(|e| ImapError::Tls(account.host.clone(), e))?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| ImapError::Tls(account.host.clone(), e.to_string()))?;
    Ok(Box::new(tls))
}

async fn open(account: &Account, tokens: Option<&Tokens>) -> Result<Session, ImapError> {
    let addr = format!("{}:{}", account.host, account.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| ImapError::Connect(addr.clone(), e))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn ImapStream> = match account.tls {
        TlsMode::Implicit => tls_wrap(account, tcp).await?,
        TlsMode::None => Box::new(tcp),
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            client
                .read_response()
                .await
                .map_err(|e| ImapError::Connect(addr.clone(), e))?
                .ok_or(ImapError::Closed)?;
            client.run_command_and_check_ok("STARTTLS", None).await?;
            return login(
                account,
                tokens,
                async_imap::Client::new(tls_wrap(account, client.into_inner()).await?),
            )
            .await;
        }
    };
    let mut client = async_imap::Client::new(stream);
    client
        .read_response()
        .await
        .map_err(|e| ImapError::Connect(addr, e))?
        .ok_or(ImapError::Closed)?;
    login(account, tokens, client).await
}

/// Answers the server's XOAUTH2 challenges: the token first, then an empty
/// line to the error document a refusing server sends.
struct XOAuth2(Option<String>);

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}

async fn login(
    account: &Account,
    tokens: Option<&Tokens>,
    client: async_imap::Client<Box<dyn ImapStream>>,
) -> Result<Session, ImapError> {
    if let Some(oauth) = &account.oauth2 {
        let tokens = tokens.ok_or_else(|| ImapError::NoTokens(account.username.clone()))?;
        let token = tokens.access_token(account, oauth).await?;
        let answer = xoauth2_response(&account.username, &token);
        return match client.authenticate("XOAUTH2", XOAuth2(Some(answer))).await {
            Ok(session) => Ok(session),
            Err((e, _)) => {
                // A token the server refuses is not used again.
                tokens.forget(account, oauth).await;
                Err(ImapError::Login(
                    account.username.clone(),
                    format!("XOAUTH2: {e}"),
                ))
            }
        };
    }
    let password = match &account.password {
        Some(secret) => secret.reveal("imap.password")?,
        None => String::new(),
    };
    client
        .login(&account.username, &password)
        .await
        .map_err(|(e, _)| ImapError::Login(account.username.clone(), e.to_string()))
}

/// Connects and logs in with a password, within [`CONNECT_TIMEOUT`].
pub async fn connect(account: &Account) -> Result<Session, ImapError> {
    connect_with(account, None).await
}

/// Connects and logs in, with XOAUTH2 and an access token from `tokens`
/// when the account is an OAuth2 one, within [`CONNECT_TIMEOUT`].
pub async fn connect_with(
    account: &Account,
    tokens: Option<&Tokens>,
) -> Result<Session, ImapError> {
    tokio::time::timeout(CONNECT_TIMEOUT, open(account, tokens))
        .await
        .map_err(|_| ImapError::Timeout(CONNECT_TIMEOUT))?
}

/// What a read-only connection test found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub messages: u32,
    pub uidvalidity: Option<u32>,
    pub idle: bool,
    pub r#move: bool,
}

/// Connects, logs in and EXAMINEs the folder (read-only: nothing changes).
pub async fn probe(
    account: &Account,
    tokens: Option<&Tokens>,
    folder: &str,
) -> Result<Probe, ImapError> {
    let mut session = connect_with(account, tokens).await?;
    let caps = session.capabilities().await?;
    let mailbox = session.examine(folder).await?;
    let _ = session.logout().await;
    Ok(Probe {
        messages: mailbox.exists,
        uidvalidity: mailbox.uid_validity,
        idle: caps.has_str("IDLE"),
        r#move: caps.has_str("MOVE"),
    })
}

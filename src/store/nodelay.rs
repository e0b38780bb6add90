//! TCP_NODELAY for PostgreSQL connections. sqlx 0.9.0 opens its TCP sockets
//! without it (a regression: transact-rs/sqlx#4335, fixed by #4336 but not
//! released yet), so a statement carrying a large parameter — a raw mail, an
//! attachment — waits about 40 ms for the server's delayed ACK. Measured on
//! the ingest bench: 178 mails/s over TCP against 387/s over the Unix socket.
//! Until a release carries the fix, every new pool connection sets the option
//! on this process's sockets to the database's port. Remove this module when
//! sqlx sets it itself.

/// Sets TCP_NODELAY on every TCP socket of this process whose peer port is
/// `port` (the database's; idempotent, so sockets set before are untouched
/// in effect). Linux only; elsewhere nothing happens.
#[cfg(target_os = "linux")]
pub(crate) fn set_on_sockets_to(port: u16) {
    use std::os::fd::{BorrowedFd, RawFd};
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the borrow lives only for the three socket calls below.
        // A descriptor closed in between makes them fail with EBADF, and
        // one reused for something else fails the peer-port check.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let ours = socket
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port);
        if ours && socket.tcp_nodelay().is_ok_and(|on| !on) {
            let _ = socket.set_tcp_nodelay(true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_on_sockets_to(_port: u16) {}

/// The TCP port of a `postgres://` URL; `None` when it names a Unix socket
/// (`?host=/run/postgresql`), which has no Nagle delay.
pub(crate) fn tcp_port(url: &str) -> Option<u16> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).ok()?;
    (options.get_socket().is_none() && !options.get_host().starts_with('/'))
        .then(|| options.get_port())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{set_on_sockets_to, tcp_port};

    #[test]
    fn the_port_comes_from_the_url_and_unix_sockets_are_skipped() {
        assert_eq!(tcp_port("postgres://u@127.0.0.1:5433/db"), Some(5433));
        assert_eq!(tcp_port("postgres://u@db.example.org/db"), Some(5432));
        assert_eq!(
            tcp_port("postgres://u@localhost/db?host=/run/postgresql"),
            None
        );
    }

    #[test]
    fn sockets_to_the_port_get_nodelay_and_others_do_not() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to_a = std::net::TcpStream::connect(a.local_addr().unwrap()).unwrap();
        let to_b = std::net::TcpStream::connect(b.local_addr().unwrap()).unwrap();
        assert!(!to_a.nodelay().unwrap());
        set_on_sockets_to(a.local_addr().unwrap().port());
        assert!(to_a.nodelay().unwrap());
        assert!(!to_b.nodelay().unwrap());
    }
}

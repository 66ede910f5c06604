//! The one error type of the SSH transport, with a kind callers branch on.

use std::fmt;

use async_ssh2_lite::ssh2;

/// What went wrong, for callers that react differently (mark a step in
/// doubt, tell the operator to check a host key, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SshErrorKind {
    /// `~/.ssh/config` (or a file it includes) cannot be read or parsed.
    Config,
    /// The host cannot be reached: name resolution, TCP connect, the SSH
    /// handshake, or the connect timeout.
    Connect,
    /// The host offered a key the known_hosts file does not hold, and the
    /// policy is [`super::HostKeyPolicy::Strict`].
    HostKeyUnknown,
    /// The host offered a key other than the one on file for it (or one
    /// marked `@revoked`). Refused under every policy.
    HostKeyChanged,
    /// The known_hosts file cannot be read, or a new key cannot be added.
    KnownHostsFile,
    /// No way of logging in worked.
    Auth,
    /// The connection broke while a command ran (or was being started or
    /// stopped): whether it ran, and how far, is unknown.
    ConnectionLost,
    /// The server refused a channel or a request on it (too many sessions,
    /// exec not allowed, the command's process group unknown).
    Channel,
}

impl fmt::Display for SshErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SshErrorKind::Config => "ssh configuration",
            SshErrorKind::Connect => "cannot connect",
            SshErrorKind::HostKeyUnknown => "unknown host key",
            SshErrorKind::HostKeyChanged => "host key changed",
            SshErrorKind::KnownHostsFile => "known_hosts file",
            SshErrorKind::Auth => "authentication failed",
            SshErrorKind::ConnectionLost => "connection lost",
            SshErrorKind::Channel => "channel refused",
        })
    }
}

/// An SSH operation on one host failed.
///
/// Displays as `HOST: MESSAGE`, where `HOST` is the plan's name of the host
/// and the message says what was tried and where it looked.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {message}")]
pub struct SshError {
    kind: SshErrorKind,
    host: String,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SshError {
    pub(crate) fn new(kind: SshErrorKind, host: &str, message: impl Into<String>) -> SshError {
        SshError {
            kind,
            host: host.to_owned(),
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> SshError {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> SshErrorKind {
        self.kind
    }

    /// The plan's name of the host (or the alias looked up).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The message without the host name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a command may have run, in part or in full, on the host: the
    /// caller cannot count it as done nor as not done.
    pub fn is_in_doubt(&self) -> bool {
        self.kind == SshErrorKind::ConnectionLost
    }
}

/// The libssh2 error codes that mean the connection itself is gone.
const SOCKET_SEND: i32 = -7;
const TIMEOUT: i32 = -9;
const SOCKET_DISCONNECT: i32 = -13;
const SOCKET_TIMEOUT: i32 = -30;
const SOCKET_RECV: i32 = -43;
const BAD_SOCKET: i32 = -45;

/// Whether an error from async-ssh2-lite means the TCP connection or the
/// SSH transport is broken (as opposed to a refusal on a live connection).
pub(crate) fn is_connection_error(error: &async_ssh2_lite::Error) -> bool {
    match error {
        async_ssh2_lite::Error::Io(_) => true,
        async_ssh2_lite::Error::Ssh2(e) => match e.code() {
            ssh2::ErrorCode::Session(code) => matches!(
                code,
                SOCKET_SEND
                    | TIMEOUT
                    | SOCKET_DISCONNECT
                    | SOCKET_TIMEOUT
                    | SOCKET_RECV
                    | BAD_SOCKET
            ),
            ssh2::ErrorCode::SFTP(_) => false,
        },
        async_ssh2_lite::Error::Other(_) => false,
    }
}

/// A short text for an async-ssh2-lite error (its `Display` is `Debug`).
pub(crate) fn describe(error: &async_ssh2_lite::Error) -> String {
    match error {
        async_ssh2_lite::Error::Io(e) => e.to_string(),
        async_ssh2_lite::Error::Ssh2(e) => e.message().to_owned(),
        async_ssh2_lite::Error::Other(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_host_then_message() {
        let e = SshError::new(SshErrorKind::Auth, "web1", "no key worked");
        assert_eq!(e.to_string(), "web1: no key worked");
        assert_eq!(e.kind(), SshErrorKind::Auth);
        assert!(!e.is_in_doubt());
        assert!(SshError::new(SshErrorKind::ConnectionLost, "web1", "gone").is_in_doubt());
    }

    #[test]
    fn socket_errors_are_connection_errors() {
        let lost = async_ssh2_lite::Error::Ssh2(ssh2::Error::from_errno(ssh2::ErrorCode::Session(
            SOCKET_DISCONNECT,
        )));
        assert!(is_connection_error(&lost));
        let refused = async_ssh2_lite::Error::Ssh2(ssh2::Error::from_errno(
            ssh2::ErrorCode::Session(-22), // LIBSSH2_ERROR_CHANNEL_FAILURE
        ));
        assert!(!is_connection_error(&refused));
    }
}

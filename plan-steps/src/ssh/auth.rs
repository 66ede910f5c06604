//! Logging in: the ssh-agent first, then key files, and a clear list of
//! what was tried when nothing worked.

use std::path::Path;

use async_ssh2_lite::{AsyncSession, Error as LiteError};

use super::config::SshTarget;
use super::error::{describe, is_connection_error, SshError, SshErrorKind};
use super::socket::SessionSocket;

/// libssh2: the key file cannot be read or decoded.
const ERROR_FILE: i32 = -16;
/// libssh2: the server refused the key.
const ERROR_AUTHENTICATION_FAILED: i32 = -18;
/// libssh2: the server refused the signature (wrong key for the user).
const ERROR_PUBLICKEY_UNVERIFIED: i32 = -19;

/// Authenticates `ssh` as `target.user`, or says everything it tried.
pub(crate) async fn authenticate(
    ssh: &AsyncSession<SessionSocket>,
    target: &SshTarget,
) -> Result<(), SshError> {
    let user = target.user.as_str();
    let lost = |e: LiteError| {
        let message = format!(
            "the connection to {} broke while logging in: {}",
            target.host_port(),
            describe(&e)
        );
        SshError::new(SshErrorKind::Connect, &target.name, message).with_source(e)
    };
    // Not asking for the methods first: that "none" attempt costs sshd's
    // delay for failed attempts (5-10 ms), every connection. They are asked
    // for only to explain a failure.
    let mut tried = Vec::new();
    if target.use_agent {
        match agent(ssh, user).await {
            Ok(()) => return Ok(()),
            Err(Tried::Lost(e)) => return Err(lost(e)),
            Err(Tried::Failed(note)) => tried.push(format!("ssh-agent: {note}")),
        }
    } else {
        tried.push("ssh-agent: not used (SSH_AUTH_SOCK is not set)".to_owned());
    }

    let explicit = target.identity.iter().map(|p| (p, true));
    let fallbacks = target.fallback_identities.iter().map(|p| (p, false));
    for (key, named) in explicit.chain(fallbacks) {
        if !key.exists() {
            // Missing default keys are normal; a key someone named is not.
            tried.push(format!(
                "{}: {}",
                key.display(),
                if named { "no such file" } else { "absent" }
            ));
            continue;
        }
        match key_file(ssh, user, key).await {
            Ok(()) => return Ok(()),
            Err(Tried::Lost(e)) => return Err(lost(e)),
            Err(Tried::Failed(note)) => tried.push(format!("{}: {note}", key.display())),
        }
    }
    if let Ok(methods) = ssh.auth_methods(user).await {
        if !methods.split(',').any(|m| m == "publickey") {
            return Err(SshError::new(
                SshErrorKind::Auth,
                &target.name,
                format!(
                    "cannot log in as {}: the server offers only `{methods}`, and cutover logs \
                     in with keys (ssh-agent or key files)",
                    target.display()
                ),
            ));
        }
    }
    Err(SshError::new(
        SshErrorKind::Auth,
        &target.name,
        format!(
            "cannot log in as {}; tried {}",
            target.display(),
            tried.join("; ")
        ),
    ))
}

/// Why one way of logging in did not work.
enum Tried {
    /// It was refused or unusable; the note says how.
    Failed(String),
    /// The connection broke.
    Lost(LiteError),
}

fn failed(e: LiteError) -> Tried {
    if is_connection_error(&e) {
        Tried::Lost(e)
    } else {
        Tried::Failed(describe(&e))
    }
}

async fn agent(ssh: &AsyncSession<SessionSocket>, user: &str) -> Result<(), Tried> {
    let mut agent = ssh.agent().map_err(failed)?;
    agent
        .connect()
        .await
        .map_err(|e| Tried::Failed(format!("cannot reach it ({})", describe(&e))))?;
    agent.list_identities().await.map_err(failed)?;
    let identities = agent.identities().map_err(failed)?;
    if identities.is_empty() {
        let _ = agent.disconnect().await;
        return Err(Tried::Failed("it holds no keys".to_owned()));
    }
    let mut refused = Vec::new();
    for identity in &identities {
        match agent.userauth(user, identity).await {
            Ok(()) if ssh.authenticated() => {
                let _ = agent.disconnect().await;
                return Ok(());
            }
            Ok(()) => refused.push(identity.comment().to_owned()),
            Err(e) if is_connection_error(&e) => return Err(Tried::Lost(e)),
            Err(_) => refused.push(identity.comment().to_owned()),
        }
    }
    let _ = agent.disconnect().await;
    Err(Tried::Failed(format!(
        "the server accepted none of its {} key(s) ({})",
        identities.len(),
        refused.join(", ")
    )))
}

async fn key_file(ssh: &AsyncSession<SessionSocket>, user: &str, key: &Path) -> Result<(), Tried> {
    match ssh.userauth_pubkey_file(user, None, key, None).await {
        Ok(()) if ssh.authenticated() => Ok(()),
        Ok(()) => Err(Tried::Failed(
            "accepted, yet more authentication is required".to_owned(),
        )),
        Err(e) if is_connection_error(&e) => Err(Tried::Lost(e)),
        Err(e) => {
            let code = match &e {
                LiteError::Ssh2(e) => match e.code() {
                    async_ssh2_lite::ssh2::ErrorCode::Session(code) => Some(code),
                    async_ssh2_lite::ssh2::ErrorCode::SFTP(_) => None,
                },
                _ => None,
            };
            Err(Tried::Failed(match code {
                Some(ERROR_AUTHENTICATION_FAILED | ERROR_PUBLICKEY_UNVERIFIED) => {
                    "refused by the server".to_owned()
                }
                Some(ERROR_FILE) => format!(
                    "cannot be used ({}; a key with a passphrase must be loaded into ssh-agent)",
                    describe(&e)
                ),
                _ => describe(&e),
            }))
        }
    }
}

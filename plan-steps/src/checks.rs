//! Checks that need no shell: a TCP port that accepts connections, and an
//! HTTP(S) URL that answers with an expected status.

use std::time::Duration;

/// Whether `address:port` accepts a TCP connection within `timeout`.
pub async fn tcp_open(address: &str, port: u16, timeout: Duration) -> Result<bool, String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((address, port))).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(_)) => Ok(false),
        Err(_) => Err(format!(
            "connecting to {address}:{port} timed out after {}s",
            timeout.as_secs()
        )),
    }
}

/// The settings of every HTTP client here (checks, webhooks, etcd): no
/// more than `timeout` in all, no redirect followed (a check may expect a
/// 301; a webhook or etcd that redirects is misconfigured), and every status
/// an answer for the caller to judge, not an error.
pub(crate) fn http_config(
    timeout: Duration,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
}

/// The status `url` answers a GET with (redirects are not followed, so a
/// check can expect a 301). Errors are failures to get any answer.
pub async fn http_status(url: &str, timeout: Duration) -> Result<u16, String> {
    let url = url.to_owned();
    let request = tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = http_config(timeout).build().into();
        agent
            .get(&url)
            .call()
            .map(|response| response.status().as_u16())
            .map_err(|e| format!("GET {url}: {e}"))
    });
    request
        .await
        .map_err(|e| format!("the HTTP check did not finish: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback answering with `status`.
    async fn serve(status: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                let reply =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn reads_the_status_without_following_redirects() {
        let port = serve("200 OK").await;
        assert_eq!(
            http_status(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5)).await,
            Ok(200)
        );
        let port = serve("301 Moved Permanently").await;
        assert_eq!(
            http_status(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5)).await,
            Ok(301)
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_for_http_and_false_for_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        assert!(
            http_status(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5))
                .await
                .is_err()
        );
        assert_eq!(
            tcp_open("127.0.0.1", port, Duration::from_secs(5)).await,
            Ok(false)
        );
    }
}

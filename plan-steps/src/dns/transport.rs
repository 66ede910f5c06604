//! One TSIG-signed exchange with the authoritative server, over TCP.
//!
//! TCP rather than UDP: an update is never sent twice behind our back, an
//! answer is never truncated, and a forged answer would have to guess a
//! connection, not only an id. hickory-proto builds, signs and verifies the
//! messages; the exchange itself is ours so that the server's own verdict
//! (its response code and TSIG error) reaches the caller intact.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::TSigner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::{AuthFailure, DnsErrorKind};

/// The DNS port, when the plan's server does not say.
const DNS_PORT: u16 = 53;

/// The authoritative server: a host name or address, and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Server {
    host: String,
    port: u16,
}

impl Server {
    /// Reads `host:port`, `host`, `[v6]:port`, `[v6]` or a bare IPv6 address.
    pub(super) fn parse(text: &str) -> Result<Self, DnsErrorKind> {
        let invalid = || DnsErrorKind::InvalidServer(text.to_owned());
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self {
                host: ip.to_string(),
                port: DNS_PORT,
            });
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| invalid())?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(invalid)?)),
            }
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(invalid)?,
            None => DNS_PORT,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Signs `request`, sends it, and returns the server's answer once its
/// signature is verified.
///
/// Errors: the server's TSIG error (BADKEY, BADSIG, BADTIME) or an unsigned
/// NOTAUTH is [`DnsErrorKind::Authentication`], as is an answer that is not
/// signed or does not verify; other response codes are left to the caller.
pub(super) async fn exchange(
    server: &Server,
    signer: &TSigner,
    timeout: Duration,
    mut request: Message,
) -> Result<Message, DnsErrorKind> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut verifier = request
        .finalize(signer, now)
        .map_err(|e| DnsErrorKind::Protocol(format!("cannot sign: {e}")))?;
    let bytes = request
        .to_vec()
        .map_err(|e| DnsErrorKind::Protocol(format!("cannot encode: {e}")))?;
    let answer = tokio::time::timeout(timeout, round_trip(server, &bytes))
        .await
        .map_err(|_| DnsErrorKind::Timeout { after: timeout })?
        .map_err(DnsErrorKind::Network)?;
    let response = Message::from_vec(&answer).map_err(|e| DnsErrorKind::Protocol(e.to_string()))?;
    if response.metadata.message_type != MessageType::Response
        || response.metadata.id != request.metadata.id
    {
        return Err(DnsErrorKind::Protocol(
            "the answer is not to our message".into(),
        ));
    }
    let rcode = response.metadata.response_code;
    match response.signature() {
        Some(tsig) => {
            if let Some(error) = tsig.data.error {
                return Err(DnsErrorKind::Authentication(match error {
                    TsigError::BadKey => AuthFailure::UnknownKey,
                    TsigError::BadSig => AuthFailure::BadSignature,
                    TsigError::BadTime => AuthFailure::BadTime,
                    other => AuthFailure::Other(u16::from(other)),
                }));
            }
            let verified = verifier.as_mut().map(|verifier| verifier.verify(&answer));
            if !matches!(verified, Some(Ok(_))) {
                return Err(DnsErrorKind::Authentication(
                    AuthFailure::AnswerDidNotVerify,
                ));
            }
        }
        None if rcode == ResponseCode::NotAuth => {
            return Err(DnsErrorKind::Authentication(AuthFailure::NotAuthorized));
        }
        // A success must be authentic to be believed; a failure fails
        // anyway, and its response code says more than "unsigned".
        None if matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {
            return Err(DnsErrorKind::Authentication(AuthFailure::UnsignedAnswer));
        }
        None => {}
    }
    Ok(response)
}

async fn round_trip(server: &Server, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let too_long = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "message longer than 65535 bytes",
        )
    };
    let length = u16::try_from(message.len()).map_err(|_| too_long())?;
    let mut stream = TcpStream::connect((server.host.as_str(), server.port)).await?;
    stream.set_nodelay(true)?;
    // RFC 1035 4.2.2: each message is prefixed with its length; one write
    // so the message leaves in one segment.
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await?;
    let mut length = [0; 2];
    stream.read_exact(&mut length).await?;
    let mut answer = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

/// The mnemonic of a response code, as dig prints it.
pub(super) fn rcode_name(rcode: ResponseCode) -> String {
    let name = match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        ResponseCode::BADVERS => "BADVERS",
        other => return format!("RCODE {}", u16::from(other)),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(text: &str) -> Option<(String, u16)> {
        Server::parse(text).ok().map(|s| (s.host, s.port))
    }

    #[test]
    fn servers_read_like_dig_and_nsupdate_write_them() {
        let some = |host: &str, port| Some((host.to_owned(), port));
        assert_eq!(server("127.0.0.1:5353"), some("127.0.0.1", 5353));
        assert_eq!(server("127.0.0.1"), some("127.0.0.1", 53));
        assert_eq!(server("ns1.example.org:53"), some("ns1.example.org", 53));
        assert_eq!(server("ns1.example.org"), some("ns1.example.org", 53));
        assert_eq!(server("[::1]:5353"), some("::1", 5353));
        assert_eq!(server("[::1]"), some("::1", 53));
        assert_eq!(server("::1"), some("::1", 53));
        for bad in [
            "",
            ":53",
            "host:",
            "host:0",
            "host:99999",
            "[::1",
            "[x]:53",
            "[::1]53",
            "a b:53",
            "a:b:c",
        ] {
            assert_eq!(server(bad), None, "{bad}");
        }
        assert_eq!(
            Server::parse("[::1]:5353").unwrap().to_string(),
            "[::1]:5353"
        );
        assert_eq!(
            Server::parse("127.0.0.1").unwrap().to_string(),
            "127.0.0.1:53"
        );
    }

    /// A server that answers one message with what `answer` makes of it.
    async fn one_answer(answer: impl FnOnce(Message) -> Message + Send + 'static) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut length = [0; 2];
            stream.read_exact(&mut length).await.unwrap();
            let mut request = vec![0; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut request).await.unwrap();
            let reply = answer(Message::from_vec(&request).unwrap())
                .to_vec()
                .unwrap();
            let length = u16::try_from(reply.len()).unwrap().to_be_bytes();
            stream
                .write_all(&[&length[..], &reply].concat())
                .await
                .unwrap();
        });
        Server {
            host: "127.0.0.1".into(),
            port,
        }
    }

    fn response_to(request: &Message, rcode: ResponseCode) -> Message {
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.response_code = rcode;
        response.add_queries(request.queries.iter().cloned());
        response
    }

    fn signer(secret: &[u8]) -> TSigner {
        super::super::key::TsigKey::new("lab-key", "hmac-sha256", secret.to_vec())
            .unwrap()
            .signer()
    }

    fn query() -> Message {
        let mut message = Message::query();
        message.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("www.lab.test.").unwrap(),
            hickory_proto::rr::RecordType::A,
        ));
        message
    }

    #[tokio::test]
    async fn answers_are_believed_only_when_signed_with_our_key() {
        let timeout = Duration::from_secs(5);
        // Signed with another secret under the same key name.
        let server = one_answer(|request| {
            let mut response = response_to(&request, ResponseCode::NoError);
            response.finalize(&signer(b"another secret"), 0).unwrap();
            response
        })
        .await;
        let result = exchange(&server, &signer(b"our secret"), timeout, query()).await;
        assert!(matches!(
            result,
            Err(DnsErrorKind::Authentication(
                AuthFailure::AnswerDidNotVerify
            ))
        ));

        // Not signed at all.
        let server = one_answer(|request| response_to(&request, ResponseCode::NoError)).await;
        let result = exchange(&server, &signer(b"our secret"), timeout, query()).await;
        assert!(matches!(
            result,
            Err(DnsErrorKind::Authentication(AuthFailure::UnsignedAnswer))
        ));

        // An unsigned NOTAUTH: the server did not accept our key.
        let server = one_answer(|request| response_to(&request, ResponseCode::NotAuth)).await;
        let result = exchange(&server, &signer(b"our secret"), timeout, query()).await;
        assert!(matches!(
            result,
            Err(DnsErrorKind::Authentication(AuthFailure::NotAuthorized))
        ));

        // An answer to another message.
        let server = one_answer(|request| {
            let mut response = response_to(&request, ResponseCode::NoError);
            response.metadata.id = request.metadata.id.wrapping_add(1);
            response
        })
        .await;
        let result = exchange(&server, &signer(b"our secret"), timeout, query()).await;
        assert!(matches!(result, Err(DnsErrorKind::Protocol(_))));
    }

    #[test]
    fn rcodes_are_named_as_dig_names_them() {
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::NotZone), "NOTZONE");
        assert_eq!(rcode_name(ResponseCode::from(0, 12)), "RCODE 12");
    }
}

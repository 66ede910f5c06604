//! One run at a time across machines: a lock held as an etcd lease
//! (`--lock etcd://HOST:PORT/PREFIX`).
//!
//! The journal's own lock keeps two runs of a journal apart on one machine;
//! operators on two bastions have two journals. This lock is a key in etcd,
//! `PREFIX/<service>`, created only if absent and bound to a lease: it lives
//! while the run keeps the lease alive, goes when the run revokes the lease
//! on exit, and expires after the lease's TTL when the holder's machine dies
//! or loses its network. Its value names the holder (user@host, pid, since),
//! so a refusal can say who runs.
//!
//! It speaks etcd's v3 JSON gateway (`/v3/kv/txn`, `/v3/lease/...`, served
//! by every etcd since 3.3 on its client port) over HTTP: no gRPC stack, no
//! code generation. A thread keeps the lease alive every third of its TTL;
//! when it cannot prove the lease is still held (no successful keep-alive
//! for two thirds of the TTL, or etcd says the lease is gone) it raises
//! [`EtcdLock::lost`], and the run stops starting steps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use data_encoding::BASE64;
use serde_json::{json, Value};

use crate::journal_file::Holder;
pub use plan_core::LockUrl;

/// The lease's TTL when not given: long enough to ride out a short network
/// blip, short enough that a dead holder's lock frees itself soon.
pub const LOCK_TTL: Duration = Duration::from_secs(15);

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdLockError {
    /// Someone else holds it.
    #[error("another run holds the lock {key} in etcd{}", holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    Held {
        /// The key.
        key: String,
        /// Who, when the value says.
        holder: Option<Holder>,
    },
    /// etcd could not be reached or answered something else.
    #[error("cannot take the lock {key} in etcd at {endpoint}: {message}")]
    Etcd {
        /// The key.
        key: String,
        /// Where.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
}

/// The lock, held while this value lives (and its lease is kept alive).
pub struct EtcdLock {
    endpoint: String,
    key: String,
    lease: String,
    lost: Arc<Mutex<Option<String>>>,
    lost_flag: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    keeper: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EtcdLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdLock")
            .field("endpoint", &self.endpoint)
            .field("key", &self.key)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl EtcdLock {
    /// Takes the lock of `service` at `url` as a lease of `ttl` (at least
    /// 2 s, etcd's minimum), or says who holds it.
    pub fn acquire(url: &LockUrl, service: &str, ttl: Duration) -> Result<EtcdLock, EtcdLockError> {
        let key = url.key(service);
        let failed = |message: String| EtcdLockError::Etcd {
            key: key.clone(),
            endpoint: url.endpoint.clone(),
            message,
        };
        let ttl_s = ttl.as_secs().max(2);
        let timeout = Duration::from_secs(5);
        let granted = post(
            &url.endpoint,
            "/v3/lease/grant",
            &json!({ "TTL": ttl_s }),
            timeout,
        )
        .map_err(&failed)?;
        let lease =
            id_text(&granted["ID"]).ok_or_else(|| failed(format!("no lease in {granted}")))?;
        let holder = serde_json::to_string(&Holder::me()).map_err(|e| failed(e.to_string()))?;
        let k = BASE64.encode(key.as_bytes());
        let txn = json!({
            "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": k, "value": BASE64.encode(holder.as_bytes()), "lease": lease}}],
            "failure": [{"request_range": {"key": k}}],
        });
        let answer = match post(&url.endpoint, "/v3/kv/txn", &txn, timeout) {
            Ok(answer) => answer,
            Err(message) => {
                revoke(&url.endpoint, &lease);
                return Err(failed(message));
            }
        };
        if answer["succeeded"] != Value::Bool(true) {
            revoke(&url.endpoint, &lease);
            let holder = answer["responses"][0]["response_range"]["kvs"][0]["value"]
                .as_str()
                .and_then(|v| BASE64.decode(v.as_bytes()).ok())
                .and_then(|v| serde_json::from_slice::<Holder>(&v).ok());
            return Err(EtcdLockError::Held { key, holder });
        }
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let keeper = {
            let (endpoint, lease, lost, lost_flag, stop) = (
                url.endpoint.clone(),
                lease.clone(),
                Arc::clone(&lost),
                Arc::clone(&lost_flag),
                Arc::clone(&stop),
            );
            let ttl = Duration::from_secs(ttl_s);
            std::thread::spawn(move || keep_alive(&endpoint, &lease, ttl, &lost, &lost_flag, &stop))
        };
        Ok(EtcdLock {
            endpoint: url.endpoint.clone(),
            key,
            lease,
            lost,
            lost_flag,
            stop,
            keeper: Some(keeper),
        })
    }

    /// The key held.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why the lock can no longer be proven held, once that is so.
    pub fn lost(&self) -> Option<String> {
        if !self.lost_flag.load(Ordering::SeqCst) {
            return None;
        }
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    /// A flag raised when the lock is lost, for a driver to poll.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.lost_flag)
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(keeper) = self.keeper.take() {
            // It sleeps in short steps and each request is bounded.
            let _ = keeper.join();
        }
        revoke(&self.endpoint, &self.lease);
    }
}

/// Keeps `lease` alive every third of `ttl` until `stop`; raises `lost`
/// when two thirds of the TTL pass without a keep-alive etcd confirmed, or
/// etcd says the lease is gone.
fn keep_alive(
    endpoint: &str,
    lease: &str,
    ttl: Duration,
    lost: &Mutex<Option<String>>,
    lost_flag: &AtomicBool,
    stop: &AtomicBool,
) {
    let every = ttl / 3;
    let mut confirmed = Instant::now();
    let mut next = Instant::now() + every;
    let give_up = ttl * 2 / 3;
    let say = |why: String| {
        if let Ok(mut l) = lost.lock() {
            *l = Some(why);
        }
        lost_flag.store(true, Ordering::SeqCst);
    };
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        next = Instant::now() + every;
        let left = give_up.saturating_sub(confirmed.elapsed());
        let timeout = left.clamp(Duration::from_millis(200), every);
        match post(
            endpoint,
            "/v3/lease/keepalive",
            &json!({ "ID": lease }),
            timeout,
        ) {
            Ok(answer) => match id_text(&answer["result"]["TTL"]) {
                Some(ttl) if ttl != "0" => confirmed = Instant::now(),
                _ => {
                    say("etcd says the lock's lease is gone (it expired or was revoked)".into());
                    return;
                }
            },
            Err(message) => {
                if confirmed.elapsed() >= give_up {
                    say(format!(
                        "no keep-alive of the lock's lease was confirmed for {}s (the last: {message}); \
                         its {}s TTL may have run out, and another run may hold it",
                        confirmed.elapsed().as_secs(),
                        ttl.as_secs()
                    ));
                    return;
                }
            }
        }
    }
}

/// Revokes `lease`, best effort (it expires anyway).
fn revoke(endpoint: &str, lease: &str) {
    let _ = post(
        endpoint,
        "/v3/lease/revoke",
        &json!({ "ID": lease }),
        Duration::from_secs(2),
    );
}

/// An int64 of the gateway's JSON: a string, or a number.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// POSTs `body` to etcd's gateway at `path`; the answer's JSON, or why not.
fn post(endpoint: &str, path: &str, body: &Value, timeout: Duration) -> Result<Value, String> {
    // etcd is the team's own, reached directly: never through a proxy of
    // the environment.
    let agent: ureq::Agent = crate::checks::http_config(timeout)
        .proxy(None)
        .build()
        .into();
    let mut response = agent
        .post(&format!("{endpoint}{path}"))
        .header("Content-Type", "application/json")
        .send(body.to_string().as_str())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    // The keep-alive answers with a stream, one JSON object per line: the
    // first line is the answer (the rest is not waited for).
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(response.body_mut().as_reader());
        while first.trim().is_empty() {
            first.clear();
            if reader.read_line(&mut first).map_err(|e| e.to_string())? == 0 {
                break;
            }
        }
    }
    let first = first.trim();
    let value: Value = serde_json::from_str(first).map_err(|e| {
        format!(
            "HTTP {status}, not JSON ({e}): {}",
            first.chars().take(200).collect::<String>()
        )
    })?;
    if !(200..300).contains(&status) {
        return Err(format!(
            "HTTP {status}: {}",
            value["error"]
                .as_str()
                .or(value["message"].as_str())
                .unwrap_or("?")
        ));
    }
    Ok(value)
}

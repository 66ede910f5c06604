//! The TCP socket under a libssh2 session, and how tasks wait on it.
//!
//! async-ssh2-lite runs each libssh2 call non-blocking and, when it would
//! block, waits through an [`AsyncSessionStream`]. Its own tokio streams
//! sleep a millisecond after every wait and never clear tokio's readiness
//! (libssh2 reads the socket itself), so every wait costs one to two
//! milliseconds: several per command. This socket waits for real instead.
//!
//! # Many tasks, one socket
//!
//! Several tasks use one session at once (a command and the channel that
//! stops it, parallel checks on one host). libssh2 reads whatever packets
//! arrive, for any channel, into its buffers: a task reading channel A can
//! take channel B's data off the socket, and B, waiting for the socket to
//! become readable, would wait for ever. So readability is watched by one
//! task per session, the *watcher*, and every waiter registers here:
//!
//! 1. The watcher waits for the socket to become readable: for each arrival
//!    of bytes (each readiness event of the reactor) it starts a new
//!    *generation* and wakes every waiter; each retries its libssh2 call.
//!    It does so even when the bytes are gone by the time it runs: another
//!    task's libssh2 call may have read them, packets for other channels
//!    included, into libssh2's buffers, and only a retry of each waiter's
//!    call takes them from there. (An earlier watcher peeked for unread
//!    bytes instead, and so could forget such an arrival: every task then
//!    waited for ever, seen once with eight commands on one session.)
//! 2. A call that would block on reading has drained the socket: it reports
//!    the generation it started in. Once a call started in the current
//!    generation reports, the watcher clears the readiness (unless a newer
//!    event came meanwhile) and waits again.
//! 3. A waiter registers, then looks whether the generation moved since its
//!    call began; if so it retries at once, so no wake-up is lost.
//!
//! Waits for writing (a full send buffer, rare here) use tokio's write
//! readiness directly; the call is retried inside `try_io`, so tokio forgets
//! the readiness only when the retry still cannot send.
//!
//! # A host that vanishes
//!
//! A host that crashes or drops off the network sends no reset: a command
//! without a deadline would wait for ever. So the socket has TCP keepalive
//! (probes after [`KEEPALIVE_IDLE`] of silence) and, on Linux, a
//! `TCP_USER_TIMEOUT` of [`USER_TIMEOUT`] for data that stays unacknowledged:
//! a vanished host breaks the connection within about a minute, and the
//! command in flight ends as lost.

use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_ssh2_lite::ssh2::{self, BlockDirections, Session};
use async_ssh2_lite::AsyncSessionStream;
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// Keepalive probes start after this much silence on the connection...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
/// ... and go every this often...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ... this many times without answer before the connection is dropped.
const KEEPALIVE_PROBES: u32 = 4;
/// Sent data unacknowledged this long drops the connection (Linux).
const USER_TIMEOUT: Duration = Duration::from_secs(60);

/// A session's TCP socket (with `TCP_NODELAY`) and its watcher.
pub(crate) struct SessionSocket {
    shared: Arc<Shared>,
    watcher: AbortHandle,
}

struct Shared {
    stream: AsyncFd<std::net::TcpStream>,
    /// Bumped by the watcher each time bytes arrived.
    generation: AtomicU64,
    /// The newest generation in which a call found the socket drained.
    drained: AtomicU64,
    /// Tells the watcher that `drained` moved.
    drain_reported: Notify,
    /// Tasks waiting for the next generation.
    waiters: Mutex<Vec<Waker>>,
    /// The peer closed the connection, or the socket failed.
    closed: AtomicBool,
}

impl SessionSocket {
    /// Takes over a connected socket: sets `TCP_NODELAY` (without it every
    /// small request waits for the peer's delayed ACK, ~40 ms a command)
    /// and the keepalive (see the module doc), and starts the watcher on
    /// the current runtime.
    pub(crate) fn new(stream: TcpStream) -> io::Result<SessionSocket> {
        stream.set_nodelay(true)?;
        let socket = socket2::SockRef::from(&stream);
        socket.set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_PROBES),
        )?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        socket.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
        // Readiness events, not bytes, start generations: `AsyncFd` tells
        // each event apart, whoever took the bytes (see the module doc).
        let stream = stream.into_std()?;
        stream.set_nonblocking(true)?;
        let stream = register(stream)?;
        let shared = Arc::new(Shared {
            stream,
            generation: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            drain_reported: Notify::new(),
            waiters: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let watcher = tokio::spawn(watch(Arc::clone(&shared))).abort_handle();
        Ok(SessionSocket { shared, watcher })
    }
}

/// Registers the socket with the reactor.
#[expect(
    deprecated,
    reason = "`AsyncFd::register` is `unsafe` (forbidden here) only because an arbitrary \
              `AsRawFd` may close its descriptor while registered; a `TcpStream` owns its \
              descriptor and closes it only when dropped, after the `AsyncFd` that holds it"
)]
fn register(stream: std::net::TcpStream) -> io::Result<AsyncFd<std::net::TcpStream>> {
    AsyncFd::new(stream)
}

impl Drop for SessionSocket {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl AsRawFd for SessionSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.shared.stream.get_ref().as_raw_fd()
    }
}

/// The watcher: one generation each time bytes arrive (see the module doc).
async fn watch(shared: Arc<Shared>) {
    loop {
        let mut ready = match shared.stream.readable().await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::debug!("the SSH socket failed: {e}");
                break;
            }
        };
        // Only to tell the end of the connection: a peek that finds nothing
        // means some call already took the bytes, and the waiters must
        // still be woken.
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        match socket2::SockRef::from(shared.stream.get_ref()).peek(&mut byte) {
            Ok(0) => {
                tracing::debug!("the SSH server closed the connection");
                break;
            }
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
                tracing::debug!("the SSH socket failed: {e}");
                break;
            }
            Ok(_) | Err(_) => {}
        }
        let generation = shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        shared.wake_all();
        loop {
            let reported = shared.drain_reported.notified();
            tokio::pin!(reported);
            reported.as_mut().enable();
            if shared.drained.load(Ordering::SeqCst) >= generation {
                break;
            }
            reported.await;
        }
        // Forgotten only if no newer event came since `readable` returned.
        ready.clear_ready();
    }
    // Whatever libssh2 still buffers is for the waiters to take; after that
    // their calls fail.
    shared.closed.store(true, Ordering::SeqCst);
    shared.generation.fetch_add(1, Ordering::SeqCst);
    shared.wake_all();
}

impl Shared {
    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.lock_waiters());
        for waker in waiters {
            waker.wake();
        }
    }

    fn register(&self, waker: &Waker) {
        let mut waiters = self.lock_waiters();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // Wakers stay valid even if a holder of the lock panicked.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report_drained(&self, generation: u64) {
        if self.drained.fetch_max(generation, Ordering::SeqCst) < generation {
            self.drain_reported.notify_one();
        }
    }

    /// Runs `op` until it does not report "would block", waiting in between
    /// as the module doc describes.
    fn poll_op<R, E: From<io::Error>>(
        &self,
        cx: &mut Context<'_>,
        op: &mut dyn FnMut() -> Result<R, E>,
        would_block: fn(&E) -> bool,
        session: &Session,
    ) -> Poll<Result<R, E>> {
        let directions = |session: &Session| match session.block_directions() {
            BlockDirections::None => (false, false),
            BlockDirections::Inbound => (true, false),
            BlockDirections::Outbound => (false, true),
            BlockDirections::Both => (true, true),
        };
        loop {
            let generation = self.generation.load(Ordering::SeqCst);
            match op() {
                Err(e) if would_block(&e) => {}
                done => return Poll::Ready(done),
            }
            let (reads, writes) = directions(session);
            if !reads && !writes {
                // Blocked on nothing: libssh2 has more to do. Let others run.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if writes {
                match self.stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(mut ready)) => {
                        // Perhaps stale: retry where tokio forgets the
                        // readiness if the call still cannot send.
                        let mut outcome = None;
                        let _ = ready.try_io(|_| {
                            let result = op();
                            let blocked = matches!(&result, Err(e) if would_block(e))
                                && directions(session).1;
                            outcome = Some(result);
                            if blocked {
                                Err(io::ErrorKind::WouldBlock.into())
                            } else {
                                Ok(())
                            }
                        });
                        match outcome {
                            Some(Err(e)) if would_block(&e) => {}
                            Some(done) => return Poll::Ready(done),
                            None => {}
                        }
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => {}
                }
            }
            if reads {
                if self.closed.load(Ordering::SeqCst) {
                    let closed = io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the SSH connection is closed",
                    );
                    return Poll::Ready(Err(closed.into()));
                }
                self.report_drained(generation);
                self.register(cx.waker());
                if self.generation.load(Ordering::SeqCst) != generation {
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

fn ssh2_would_block(e: &async_ssh2_lite::Error) -> bool {
    match e {
        async_ssh2_lite::Error::Ssh2(e) => async_ssh2_lite::util::ssh2_error_is_would_block(e),
        _ => false,
    }
}

fn io_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

#[async_trait::async_trait]
impl AsyncSessionStream for SessionSocket {
    async fn x_with<R>(
        &self,
        mut op: impl FnMut() -> Result<R, ssh2::Error> + Send,
        sess: &Session,
        _expected_block_directions: BlockDirections,
        _sleep_dur: Option<Duration>,
    ) -> Result<R, async_ssh2_lite::Error> {
        let mut op = || op().map_err(async_ssh2_lite::Error::Ssh2);
        std::future::poll_fn(|cx| self.shared.poll_op(cx, &mut op, ssh2_would_block, sess)).await
    }

    fn poll_x_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut() -> Result<R, io::Error> + Send,
        sess: &Session,
        _expected_block_directions: BlockDirections,
        _sleep_dur: Option<Duration>,
    ) -> Poll<Result<R, io::Error>> {
        self.shared.poll_op(cx, &mut op, io_would_block, sess)
    }
}

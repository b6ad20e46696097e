//! A copy of the log for a log shipper: every durable batch of lines, sent as it is to a Unix or
//! TCP socket by a thread of its own.
//!
//! The files stay the record. The copy never holds a request up: batches wait in a bounded queue,
//! and when the queue is full, or the socket is gone, they are dropped and counted. The thread
//! reconnects at most once a second.

use parking_lot::Mutex;
use socket2::{Domain, SockAddr, Socket, Type};
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Where the copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSocket {
    /// A Unix domain stream socket.
    Unix(PathBuf),
    /// A TCP address, `host:port`.
    Tcp(String),
}

impl std::str::FromStr for AuditSocket {
    type Err = String;

    /// `unix:/path/to/socket` or `tcp:host:port`.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("tcp:")
            && let Some((host, port)) = addr.rsplit_once(':')
            && !host.is_empty()
            && port.parse::<u16>().is_ok()
        {
            return Ok(Self::Tcp(addr.to_string()));
        }
        Err(format!(
            "'{s}' is neither unix:/path/to/socket nor tcp:host:port"
        ))
    }
}

impl std::fmt::Display for AuditSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// How the copy is doing.
#[derive(Debug, Default)]
pub(crate) struct SocketStats {
    pub connected: AtomicBool,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketSnapshot {
    /// Whether the socket is connected now.
    pub connected: bool,
    /// Records written to the socket.
    pub sent: u64,
    /// Records not sent: the socket was gone, too slow, or failed mid-write.
    pub dropped: u64,
}

impl SocketStats {
    pub fn snapshot(&self) -> SocketSnapshot {
        SocketSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// How much the copy's queue holds before new batches are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketQueue {
    pub batches: usize,
    pub bytes: usize,
}

impl Default for SocketQueue {
    fn default() -> Self {
        Self {
            batches: 4096,
            bytes: 64 * 1024 * 1024,
        }
    }
}

/// Longest a connect, or the sending of one batch, may take before the connection is given up.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// At shutdown, how long the queue may take to drain before the rest is dropped; the sending
/// thread is then left to end on its own.
const STOP_WITHIN: Duration = Duration::from_secs(2);

/// The writer's end: hands batches to the sending thread.
pub(crate) struct Forwarder {
    tx: Option<mpsc::SyncSender<(Vec<u8>, u64)>>,
    /// The queue's byte budget.
    max_bytes: usize,
    pub stats: Arc<SocketStats>,
    shared: Arc<Shared>,
    /// Closed by the sending thread when it ends.
    ended: Option<mpsc::Receiver<()>>,
}

/// What the writer's end and the sending thread share.
struct Shared {
    /// Set at shutdown: the queue gets STOP_WITHIN to drain.
    stop_by: Mutex<Option<Instant>>,
    /// Bytes queued and not yet taken by the sending thread.
    queued_bytes: AtomicUsize,
}

impl Forwarder {
    pub fn start(target: AuditSocket, queue: SocketQueue) -> Result<Self, String> {
        let stats = Arc::new(SocketStats::default());
        let (tx, rx) = mpsc::sync_channel(queue.batches.max(1));
        let (ended_tx, ended) = mpsc::channel();
        let shared = Arc::new(Shared {
            stop_by: Mutex::new(None),
            queued_bytes: AtomicUsize::new(0),
        });
        let sender = Sender {
            target,
            stats: stats.clone(),
            shared: shared.clone(),
            conn: None,
            last_attempt: None,
            warned: false,
        };
        std::thread::Builder::new()
            .name("trent-audit-socket".into())
            .spawn(move || {
                sender.run(rx);
                drop(ended_tx);
            })
            .map_err(|e| e.to_string())?;
        Ok(Self {
            tx: Some(tx),
            max_bytes: queue.bytes,
            stats,
            shared,
            ended: Some(ended),
        })
    }

    /// Queue `lines` (`records` of them, each ending in a newline) to be sent; dropped and
    /// counted if the queue is full. A batch larger than the byte budget is taken when the
    /// queue is empty.
    pub fn offer(&self, lines: &[u8], records: u64) {
        let Some(tx) = &self.tx else { return };
        let queued = self.shared.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued.saturating_add(lines.len()) > self.max_bytes {
            self.stats.dropped.fetch_add(records, Ordering::Relaxed);
            return;
        }
        self.shared
            .queued_bytes
            .fetch_add(lines.len(), Ordering::Relaxed);
        if tx.try_send((lines.to_vec(), records)).is_err() {
            self.shared
                .queued_bytes
                .fetch_sub(lines.len(), Ordering::Relaxed);
            self.stats.dropped.fetch_add(records, Ordering::Relaxed);
        }
    }

    /// Send what is queued, for at most about STOP_WITHIN, then stop; what is left is dropped.
    pub fn stop(&mut self) {
        *self.shared.stop_by.lock() = Some(Instant::now() + STOP_WITHIN);
        self.tx.take();
        if let Some(ended) = self.ended.take() {
            // A connect or write in progress ends within IO_TIMEOUT; past that the thread is
            // left to finish (or be ended with the process).
            let _ = ended.recv_timeout(STOP_WITHIN + IO_TIMEOUT + Duration::from_millis(500));
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Sender {
    target: AuditSocket,
    stats: Arc<SocketStats>,
    shared: Arc<Shared>,
    conn: Option<Socket>,
    last_attempt: Option<Instant>,
    /// Whether a failed connect has been logged since the last connection: a receiver that
    /// stays away is reported once, not every second.
    warned: bool,
}

impl Sender {
    fn run(mut self, rx: mpsc::Receiver<(Vec<u8>, u64)>) {
        // Connect at once, so that the gauge says whether the receiver is there.
        self.connected();
        while let Ok((lines, records)) = rx.recv() {
            self.shared
                .queued_bytes
                .fetch_sub(lines.len(), Ordering::Relaxed);
            let past_stop = self
                .shared
                .stop_by
                .lock()
                .is_some_and(|by| Instant::now() >= by);
            if !past_stop && self.connected() && self.send(&lines) {
                self.stats.sent.fetch_add(records, Ordering::Relaxed);
            } else {
                self.stats.dropped.fetch_add(records, Ordering::Relaxed);
            }
        }
    }

    /// Whether there is a connection, making one if none was tried in the last second.
    fn connected(&mut self) -> bool {
        if self.conn.is_some() {
            return true;
        }
        if self
            .last_attempt
            .is_some_and(|t| t.elapsed() < RECONNECT_EVERY)
        {
            return false;
        }
        self.last_attempt = Some(Instant::now());
        match connect(&self.target) {
            Ok(c) => {
                tracing::info!(socket = %self.target, "audit socket connected");
                self.conn = Some(c);
                self.warned = false;
                self.stats.connected.store(true, Ordering::Relaxed);
                true
            }
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(socket = %self.target, error = %e, "audit socket: cannot connect; records are dropped until it can");
                false
            }
            Err(e) => {
                tracing::debug!(socket = %self.target, error = %e, "audit socket: still cannot connect");
                false
            }
        }
    }

    fn send(&mut self, lines: &[u8]) -> bool {
        let Some(conn) = self.conn.as_ref() else {
            return false;
        };
        match send_within(conn, lines, IO_TIMEOUT) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(socket = %self.target, error = %e, "audit socket: write failed; reconnecting");
                self.conn = None;
                self.stats.connected.store(false, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Most bytes one send call is given. A Unix socket's send waits afresh for every buffer it
/// fills, so one call for a whole batch could outlast any time limit while a receiver reads a
/// trickle; one call per chunk waits at most once.
const SEND_CHUNK: usize = 16 * 1024;

/// Send all of `bytes` within `limit`, however slowly the receiver reads: a receiver that takes
/// a trickle cannot keep the copy waiting on one batch. No SIGPIPE when the peer has gone.
fn send_within(conn: &Socket, mut bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + limit;
    while !bytes.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the receiver did not take the batch in time",
            ));
        }
        // At least a millisecond: socket2 rounds down to microseconds, and zero means no limit.
        conn.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
        let chunk = &bytes[..bytes.len().min(SEND_CHUNK)];
        match conn.send_with_flags(chunk, libc::MSG_NOSIGNAL) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connection to `target`, made within IO_TIMEOUT.
fn connect(target: &AuditSocket) -> std::io::Result<Socket> {
    let socket = match target {
        AuditSocket::Unix(path) => {
            let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
            s.connect_timeout(&SockAddr::unix(path)?, IO_TIMEOUT)?;
            s
        }
        AuditSocket::Tcp(addr) => {
            let mut last = None;
            let mut made = None;
            for a in addr.to_socket_addrs()? {
                let s = Socket::new(Domain::for_address(a), Type::STREAM, None)?;
                match s.connect_timeout(&a.into(), IO_TIMEOUT) {
                    Ok(()) => {
                        s.set_tcp_nodelay(true)?;
                        made = Some(s);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            made.ok_or_else(|| {
                last.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                })
            })?
        }
    };
    Ok(socket)
}

//! A copy of the log for a log shipper: every durable batch of lines, sent as it is to a Unix or
//! TCP socket by a thread of its own.
//!
//! The files stay the record. The copy never holds a request up: batches wait in a bounded queue,
//! and when the queue is full, or the socket is gone, they are dropped and counted. The thread
//! reconnects at most once a second.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Batches the queue holds before new ones are dropped.
const QUEUE_BATCHES: usize = 4096;
/// Longest a write may block before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// At shutdown, how long the queue may take to drain before the rest is dropped.
const STOP_WITHIN: Duration = Duration::from_secs(2);

/// The writer's end: hands batches to the sending thread.
pub(crate) struct Forwarder {
    tx: Option<mpsc::SyncSender<(Vec<u8>, u64)>>,
    pub stats: Arc<SocketStats>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    pub fn start(target: AuditSocket) -> Result<Self, String> {
        let stats = Arc::new(SocketStats::default());
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let stopping = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            target,
            stats: stats.clone(),
            stopping: stopping.clone(),
            conn: None,
            last_attempt: None,
        };
        let thread = std::thread::Builder::new()
            .name("trent-audit-socket".into())
            .spawn(move || sender.run(rx))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            tx: Some(tx),
            stats,
            stopping,
            thread: Some(thread),
        })
    }

    /// Queue `lines` (`records` of them, each ending in a newline) to be sent; dropped and
    /// counted if the queue is full.
    pub fn offer(&self, lines: &[u8], records: u64) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send((lines.to_vec(), records)).is_err() {
            self.stats.dropped.fetch_add(records, Ordering::Relaxed);
        }
    }

    /// Send what is queued (for at most STOP_WITHIN), then stop.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

trait Conn: Write + Send {}
impl<T: Write + Send> Conn for T {}

struct Sender {
    target: AuditSocket,
    stats: Arc<SocketStats>,
    stopping: Arc<AtomicBool>,
    conn: Option<Box<dyn Conn>>,
    last_attempt: Option<Instant>,
}

impl Sender {
    fn run(mut self, rx: mpsc::Receiver<(Vec<u8>, u64)>) {
        let mut stop_seen: Option<Instant> = None;
        while let Ok((lines, records)) = rx.recv() {
            if self.stopping.load(Ordering::Acquire) {
                let since = *stop_seen.get_or_insert_with(Instant::now);
                if since.elapsed() > STOP_WITHIN {
                    self.stats.dropped.fetch_add(records, Ordering::Relaxed);
                    continue;
                }
            }
            if self.connected() && self.send(&lines) {
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
        let conn: std::io::Result<Box<dyn Conn>> = match &self.target {
            AuditSocket::Unix(path) => UnixStream::connect(path).and_then(|s| {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Ok(Box::new(s) as Box<dyn Conn>)
            }),
            AuditSocket::Tcp(addr) => TcpStream::connect(addr.as_str()).and_then(|s| {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                s.set_nodelay(true)?;
                Ok(Box::new(s) as Box<dyn Conn>)
            }),
        };
        match conn {
            Ok(c) => {
                tracing::info!(socket = %self.target, "audit socket connected");
                self.conn = Some(c);
                self.stats.connected.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::warn!(socket = %self.target, error = %e, "audit socket: cannot connect; records are dropped until it can");
                false
            }
        }
    }

    fn send(&mut self, lines: &[u8]) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        match conn.write_all(lines).and_then(|_| conn.flush()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(socket = %self.target, error = %e, "audit socket: write failed; reconnecting");
                self.conn = None;
                self.stats.connected.store(false, Ordering::Relaxed);
                // Try again at once for the next batch.
                self.last_attempt = None;
                false
            }
        }
    }
}

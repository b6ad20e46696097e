//! The writer: one thread that seals records into the chain, writes them in batches and makes
//! each batch durable before it acknowledges it (group commit), rolls and signs files, and
//! writes signed digests of the open file.

use crate::attest::Attestation;
use crate::chain::{GENESIS_HASH, hash_line, read_chain, seal};
use crate::forward::{AuditSocket, Forwarder, SocketQueue, SocketSnapshot, SocketStats};
use crate::prune::{Anchor, ClosedFile, PRUNE_FILE, PruneStatement, RemovedFile, Retention, plan};
use crate::signer::AuditSigner;
use crate::{HEAD_FILE, PUBLIC_KEY_FILE, log_file_name, parse_log_file_name};
use aws_lc_rs::digest;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// Where and how the log is written.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// A file is closed (and signed) once it holds this many bytes...
    pub max_file_bytes: u64,
    /// ...or has been open this long.
    pub max_file_age: Duration,
    /// The open file gets a signed digest at least this often while records are written.
    pub digest_interval: Duration,
    /// Also copy every durable line to standard output.
    pub stdout: bool,
    /// Also send every durable line to this socket (best effort).
    pub socket: Option<AuditSocket>,
    /// How much of the copy may wait for the socket before batches are dropped.
    pub socket_queue: SocketQueue,
    /// The node's name, in signature files and digests.
    pub node: String,
    /// What the log keeps; past it the oldest closed files are removed (off: everything kept).
    pub retention: Retention,
    /// The time written in statements and against which a file's age is measured.
    pub clock: fn() -> OffsetDateTime,
}

impl AuditConfig {
    pub fn new(dir: PathBuf, node: &str) -> Self {
        Self {
            dir,
            max_file_bytes: 64 * 1024 * 1024,
            max_file_age: Duration::from_secs(3600),
            digest_interval: Duration::from_secs(300),
            stdout: false,
            socket: None,
            socket_queue: SocketQueue::default(),
            node: node.to_string(),
            retention: Retention::default(),
            clock: OffsetDateTime::now_utc,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The record could not be made durable; it is not in the log.
    #[error("the audit log cannot be written")]
    Unwritable,
    #[error("the audit log is closed")]
    Closed,
}

/// Upper bounds (seconds) of the write-latency histogram's buckets; the last is +Inf.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// What the writer has done, for metrics and readiness.
#[derive(Debug, Default)]
pub struct AuditStats {
    healthy: AtomicBool,
    /// Set by close: nothing more is taken, and the writer does not try to recover.
    closing: AtomicBool,
    queued: AtomicU64,
    records: AtomicU64,
    batches: AtomicU64,
    failed_batches: AtomicU64,
    /// Batch write latency: counts per bucket of LATENCY_BUCKETS, then +Inf.
    latency_buckets: [AtomicU64; 13],
    latency_sum_micros: AtomicU64,
    pruned_files: AtomicU64,
    pruned_bytes: AtomicU64,
    prune_failures: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    pub healthy: bool,
    /// Records waiting to be written.
    pub queue_depth: u64,
    pub records: u64,
    pub batches: u64,
    pub failed_batches: u64,
    /// Cumulative counts per bucket (the Prometheus histogram form), the last is +Inf.
    pub latency_cumulative: Vec<u64>,
    pub latency_sum_seconds: f64,
    /// The copy sent to a socket, when one is configured.
    pub socket: Option<SocketSnapshot>,
    /// What retention removed since the start.
    pub pruned: PrunedSnapshot,
}

/// What retention did since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunedSnapshot {
    /// Log files removed (each with its signature file).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Prunes that failed or stopped short of what retention asks (retried a minute later).
    pub failures: u64,
}

impl AuditStats {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self, socket: Option<&SocketStats>) -> StatsSnapshot {
        let mut running = 0;
        let latency_cumulative = self
            .latency_buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        StatsSnapshot {
            healthy: self.healthy.load(Ordering::Acquire),
            queue_depth: self.queued.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
            latency_cumulative,
            latency_sum_seconds: self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            socket: socket.map(SocketStats::snapshot),
            pruned: PrunedSnapshot {
                files: self.pruned_files.load(Ordering::Relaxed),
                bytes: self.pruned_bytes.load(Ordering::Relaxed),
                failures: self.prune_failures.load(Ordering::Relaxed),
            },
        }
    }
}

type Reply = oneshot::Sender<Result<(), AuditError>>;

enum Msg {
    /// A record, serialized (a JSON object).
    Record(String, Reply),
    /// Answered once every record sent before it is durable and the log is writable.
    Barrier(Reply),
    Close(oneshot::Sender<()>),
}

/// The audit log of one node.
pub struct AuditLog {
    /// Taken away on close.
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    stats: Arc<AuditStats>,
    socket: Option<Arc<SocketStats>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AuditLog {
    /// Open the log in `config.dir` (made if missing): check the newest file against the signed
    /// head and pick up the chain where the last run left it, sign the file that run left open,
    /// and start the writer thread.
    pub fn open(config: AuditConfig, signer: AuditSigner) -> Result<Self, String> {
        let dir = &config.dir;
        private_dir_builder()
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        write_atomically(dir, PUBLIC_KEY_FILE, signer.public_key_pem().as_bytes())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let stats = Arc::new(AuditStats::default());
        let mut writer = Writer {
            config: config.clone(),
            signer,
            stats: stats.clone(),
            sequence: 0,
            last_hash: GENESIS_HASH.to_string(),
            current: None,
            last_digest_sequence: 0,
            last_digest_at: Instant::now(),
            buf: String::new(),
            forward: None,
            closed: Vec::new(),
            anchor: None,
            head_first: 1,
            prune_due: true,
            last_prune: Instant::now(),
            prune_problem: None,
        };
        writer.recover()?;
        writer.load_retention_state();
        // What retention asks is done now (and a prune cut short by a stop is finished).
        writer.prune_if_due();
        // Started once the log is known to be sound, so that a refused start waits on no connect.
        writer.forward = config
            .socket
            .clone()
            .map(|target| Forwarder::start(target, config.socket_queue))
            .transpose()?;
        let socket = writer.forward.as_ref().map(|f| f.stats.clone());
        stats.healthy.store(true, Ordering::Release);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("trent-audit".into())
            .spawn(move || {
                let stats = writer.stats.clone();
                writer.run(rx);
                // Whatever ended the writer, nothing is written from now on.
                stats.healthy.store(false, Ordering::Release);
            })
            .map_err(|e| e.to_string())?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            stats,
            socket,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Add `record` to the log; returns once it is durable (or failed to be).
    pub async fn append(&self, record: Map<String, Value>) -> Result<(), AuditError> {
        // Serialized here, on the caller's task, not on the one writer thread.
        let json = serde_json::to_string(&record).unwrap_or_else(|_| "{}".into());
        self.append_json(json).await
    }

    /// Add a record already serialized (a JSON object); returns once it is durable.
    pub async fn append_json(&self, record: String) -> Result<(), AuditError> {
        let (reply, done) = oneshot::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if !self.is_healthy() || !self.send(Msg::Record(record, reply)) {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(AuditError::Unwritable);
        }
        done.await.unwrap_or(Err(AuditError::Closed))
    }

    /// Add several records together; returns once all are durable, or with the first failure.
    pub async fn append_all(&self, records: Vec<Map<String, Value>>) -> Result<(), AuditError> {
        let mut waiting = Vec::with_capacity(records.len());
        for record in records {
            let (reply, done) = oneshot::channel();
            let json = serde_json::to_string(&record).unwrap_or_else(|_| "{}".into());
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
            if !self.send(Msg::Record(json, reply)) {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(AuditError::Closed);
            }
            waiting.push(done);
        }
        let mut result = Ok(());
        for done in waiting {
            let r = done.await.unwrap_or(Err(AuditError::Closed));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Returns once every record appended before it is durable, and only if the log is
    /// writable: what a change waits for before it is committed, so that nothing takes effect
    /// while the log cannot record it.
    pub async fn barrier(&self) -> Result<(), AuditError> {
        if !self.is_healthy() {
            return Err(AuditError::Unwritable);
        }
        let (reply, done) = oneshot::channel();
        if !self.send(Msg::Barrier(reply)) {
            return Err(AuditError::Closed);
        }
        done.await.unwrap_or(Err(AuditError::Closed))
    }

    fn send(&self, msg: Msg) -> bool {
        self.tx
            .lock()
            .as_ref()
            .is_some_and(|tx| tx.send(msg).is_ok())
    }

    /// Whether records are being made durable: false from a failed write until the writer has
    /// written to the directory again, and from the moment the log is closed.
    pub fn is_healthy(&self) -> bool {
        self.stats.healthy.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot(self.socket.as_deref())
    }

    /// Refuse new records, write what is queued, close and sign the open file, and stop the
    /// writer.
    pub async fn close(&self) {
        self.stats.closing.store(true, Ordering::Release);
        self.stats.healthy.store(false, Ordering::Release);
        let (reply, done) = oneshot::channel();
        if self.send(Msg::Close(reply)) {
            let _ = done.await;
        }
        self.tx.lock().take();
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// The file records are being added to.
struct Current {
    file: File,
    name: String,
    first_sequence: u64,
    /// Bytes durably written.
    bytes: u64,
    /// SHA-256 of exactly those bytes, as written: what the node signs (never a re-read of the
    /// file, which someone may have changed).
    hasher: digest::Context,
    opened: Instant,
}

struct Writer {
    config: AuditConfig,
    signer: AuditSigner,
    stats: Arc<AuditStats>,
    /// The last sequence number durably written.
    sequence: u64,
    last_hash: String,
    current: Option<Current>,
    last_digest_sequence: u64,
    last_digest_at: Instant,
    /// The lines of a batch, kept between batches so that its memory is reused.
    buf: String,
    /// Sends a copy of each durable batch to a socket.
    forward: Option<Forwarder>,
    /// The closed files, oldest first, as their signatures describe them.
    closed: Vec<ClosedFile>,
    /// Where the log begins (what `pruned.json` says was removed); None when that statement
    /// cannot be trusted, which stops retention.
    anchor: Option<Anchor>,
    /// The first sequence number of the file the head names: it and later files are kept.
    head_first: u64,
    /// A file was closed since the last prune.
    prune_due: bool,
    last_prune: Instant,
    /// Why the last prune failed or stopped short, so that it is logged when it changes.
    prune_problem: Option<String>,
}

/// How often retention is checked when no file is closed (for files growing old).
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Most records one batch takes.
const BATCH_MAX: usize = 8192;

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            // Wake for the next digest even while records keep coming.
            let until_digest = self
                .config
                .digest_interval
                .saturating_sub(self.last_digest_at.elapsed());
            let wait = Duration::from_millis(250)
                .min(until_digest)
                .max(Duration::from_millis(1));
            let first = match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.on_tick();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.close_current();
                    return;
                }
            };
            let mut records = Vec::new();
            let mut barriers = Vec::new();
            let mut close = None;
            let mut next = Some(first);
            while let Some(m) = next.take() {
                match m {
                    Msg::Record(r, reply) => records.push((r, reply)),
                    Msg::Barrier(reply) => barriers.push(reply),
                    Msg::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if records.len() < BATCH_MAX {
                    next = rx.try_recv().ok();
                }
            }
            self.stats
                .queued
                .fetch_sub(records.len() as u64, Ordering::Relaxed);
            let ok = self.write_batch(records);
            for reply in barriers {
                let _ = reply.send(if ok && self.healthy() {
                    Ok(())
                } else {
                    Err(AuditError::Unwritable)
                });
            }
            if let Some(reply) = close {
                self.shut(reply);
                return;
            }
            self.on_tick();
        }
    }

    fn shut(&mut self, reply: oneshot::Sender<()>) {
        if let Err(e) = self.close_current() {
            tracing::error!(error = %e, "could not close the audit log file");
        }
        if let Some(f) = self.forward.as_mut() {
            f.stop();
        }
        let _ = reply.send(());
    }

    fn healthy(&self) -> bool {
        self.stats.healthy.load(Ordering::Acquire)
    }

    fn set_healthy(&self, healthy: bool) {
        if self.stats.healthy.swap(healthy, Ordering::AcqRel) != healthy {
            if healthy {
                tracing::warn!(dir = %self.config.dir.display(), "the audit log is writable again");
            } else {
                tracing::error!(dir = %self.config.dir.display(), "the audit log cannot be written: requests are refused until it can");
            }
        }
    }

    /// Write a batch; whether it (and so the log) is durable. An empty batch is a check.
    fn write_batch(&mut self, batch: Vec<(String, Reply)>) -> bool {
        if batch.is_empty() {
            return self.healthy();
        }
        let started = Instant::now();
        // While unhealthy nothing is written, not even by a request that slipped past the
        // check: the writer's recovery decides when writing resumes.
        let result = if self.healthy() {
            self.write_records(&batch)
        } else {
            Err("the audit log is not writable".to_string())
        };
        match result {
            Ok(()) => {
                self.stats
                    .records
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.observe(started.elapsed());
                for (_, reply) in batch {
                    let _ = reply.send(Ok(()));
                }
                true
            }
            Err(e) => {
                if self.healthy() {
                    tracing::error!(error = %e, "audit write failed");
                }
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                self.set_healthy(false);
                for (_, reply) in batch {
                    let _ = reply.send(Err(AuditError::Unwritable));
                }
                false
            }
        }
    }

    fn write_records(&mut self, batch: &[(String, Reply)]) -> Result<(), String> {
        self.roll_if_due()?;
        if self.current.is_none() {
            self.open_file()?;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.write_lines(batch, &mut buf);
        // A batch far larger than usual does not keep its memory.
        if buf.capacity() <= 4 * 1024 * 1024 {
            self.buf = buf;
        }
        result
    }

    fn write_lines(&mut self, batch: &[(String, Reply)], buf: &mut String) -> Result<(), String> {
        let mut sequence = self.sequence;
        let mut hash = self.last_hash.clone();
        for (record, _) in batch {
            sequence += 1;
            let line = seal(record, sequence, &hash);
            hash = hash_line(line.as_bytes());
            buf.push_str(&line);
            buf.push('\n');
        }
        let current = self.current.as_mut().ok_or("no open file")?;
        let written = current
            .file
            .write_all(buf.as_bytes())
            .and_then(|_| current.file.sync_data());
        if let Err(e) = written {
            // Take back what may have reached the file, so that it ends on the last durable
            // record; the file is closed and a new one begun once the directory is writable.
            let _ = current.file.set_len(current.bytes);
            let _ = current.file.sync_data();
            return Err(e.to_string());
        }
        current.bytes += buf.len() as u64;
        current.hasher.update(buf.as_bytes());
        self.sequence = sequence;
        self.last_hash = hash;
        if self.config.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(buf.as_bytes());
            let _ = out.flush();
        }
        if let Some(f) = &self.forward {
            f.offer(buf.as_bytes(), batch.len() as u64);
        }
        Ok(())
    }

    fn roll_if_due(&mut self) -> Result<(), String> {
        let due = self.current.as_ref().is_some_and(|c| {
            c.bytes > 0
                && (c.bytes >= self.config.max_file_bytes
                    || c.opened.elapsed() >= self.config.max_file_age)
        });
        if due {
            self.close_current()?;
        }
        Ok(())
    }

    /// Between batches: recover after a failure, roll an old file, and keep the head fresh.
    fn on_tick(&mut self) {
        if !self.healthy() {
            if !self.stats.closing.load(Ordering::Acquire) {
                // Removing old files may be what makes room again.
                self.prune_if_due();
                match self.recover_writes() {
                    Ok(()) => self.set_healthy(true),
                    Err(e) => tracing::debug!(error = %e, "the audit log is still not writable"),
                }
            }
            return;
        }
        if let Err(e) = self.roll_if_due() {
            tracing::error!(error = %e, "could not roll the audit log");
            self.set_healthy(false);
            return;
        }
        let digest_due = self.current.is_some()
            && self.sequence > self.last_digest_sequence
            && self.last_digest_at.elapsed() >= self.config.digest_interval;
        if digest_due && let Err(e) = self.write_digest() {
            tracing::error!(error = %e, "could not write an audit digest");
            self.set_healthy(false);
        }
        self.prune_if_due();
    }

    /// After a failure: close (sign) the file that was open, prove that the directory takes a
    /// durable write, and begin a new file.
    fn recover_writes(&mut self) -> Result<(), String> {
        self.close_current()?;
        let probe = self.config.dir.join(".probe");
        let result = (|| {
            let mut f = private_file().truncate(true).open(&probe)?;
            f.write_all(&[0u8; 4096])?;
            f.sync_all()
        })();
        let _ = std::fs::remove_file(&probe);
        result.map_err(|e| e.to_string())?;
        self.open_file()
    }

    fn open_file(&mut self) -> Result<(), String> {
        let first_sequence = self.sequence + 1;
        let name = log_file_name(first_sequence);
        let path = self.config.dir.join(&name);
        let file = private_file()
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes = file.metadata().map_err(|e| e.to_string())?.len();
        if bytes != 0 {
            return Err(format!(
                "{}: exists and is not empty; run `trent audit verify`",
                path.display()
            ));
        }
        sync_dir(&self.config.dir).map_err(|e| e.to_string())?;
        self.current = Some(Current {
            file,
            name,
            first_sequence,
            bytes: 0,
            hasher: digest::Context::new(&digest::SHA256),
            opened: Instant::now(),
        });
        Ok(())
    }

    /// A statement of what `c` holds, from what was written to it.
    fn attestation(&self, kind: &str, c: &Current) -> Attestation {
        Attestation {
            kind: kind.into(),
            file: c.name.clone(),
            first_sequence: c.first_sequence,
            last_sequence: self.sequence,
            last_hash: self.last_hash.clone(),
            bytes: c.bytes,
            sha256: hex::encode(c.hasher.clone().finish()),
            time: self.now_text(),
            node: self.config.node.clone(),
            algorithm: self.signer.spec().name().into(),
            key_id: self.signer.key_id().into(),
        }
    }

    fn now_text(&self) -> String {
        iso((self.config.clock)())
    }

    /// A signed digest of the open file as it is now: the head.
    fn write_digest(&mut self) -> Result<(), String> {
        let Some(c) = &self.current else {
            return Ok(());
        };
        let a = self.attestation("digest", c);
        self.write_head(&a)
    }

    /// Replace `head.json`, the signed statement of the log's newest record: which file holds
    /// it, and that file's first `bytes` bytes. A file cut short, or files removed from the end
    /// of the log, no longer reach it.
    fn write_head(&mut self, a: &Attestation) -> Result<(), String> {
        let mut head = a.clone();
        head.kind = "digest".into();
        write_atomically(&self.config.dir, HEAD_FILE, &head.sign(&self.signer)?)
            .map_err(|e| e.to_string())?;
        self.last_digest_sequence = head.last_sequence;
        self.last_digest_at = Instant::now();
        self.head_first = head.first_sequence;
        Ok(())
    }

    /// Close the open file: cut it to what was durably written, sign it (`<file>.sig`) and move
    /// the head to its end, or remove it if it holds no record.
    fn close_current(&mut self) -> Result<(), String> {
        let Some(c) = &self.current else {
            return Ok(());
        };
        if c.bytes == 0 {
            let _ = std::fs::remove_file(self.config.dir.join(&c.name));
            self.current = None;
            return Ok(());
        }
        c.file
            .set_len(c.bytes)
            .and_then(|_| c.file.sync_all())
            .map_err(|e| format!("{}: {e}", c.name))?;
        let a = self.attestation("file", c);
        write_atomically(
            &self.config.dir,
            &format!("{}.sig", c.name),
            &a.sign(&self.signer)?,
        )
        .map_err(|e| format!("{}: {e}", self.config.dir.display()))?;
        self.write_head(&a)?;
        self.current = None;
        self.closed.push(ClosedFile::from_attestation(&a));
        self.prune_due = true;
        Ok(())
    }

    /// At start, when retention is on: where the log begins (`pruned.json`), and the closed
    /// files as their signatures describe them. A signature file left by a prune cut short is
    /// removed.
    fn load_retention_state(&mut self) {
        if self.config.retention.is_off() {
            return;
        }
        let dir = self.config.dir.clone();
        let key = self.signer.public_key();
        let untrusted = |why: String| {
            tracing::error!(file = %dir.join(PRUNE_FILE).display(), problem = %why,
                "audit retention is stopped: the prune statement cannot be trusted; run `trent audit verify`");
            None
        };
        self.anchor = match std::fs::read(dir.join(PRUNE_FILE)) {
            Ok(bytes) => match PruneStatement::open(&bytes, &key) {
                Ok(Some(s)) => match s.inconsistency() {
                    None => Some(Anchor::of(&s)),
                    Some(why) => untrusted(why),
                },
                Ok(None) => untrusted("it is not signed by this node's key".into()),
                Err(e) => untrusted(e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Anchor::genesis()),
            Err(e) => untrusted(e.to_string()),
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        self.closed = names
            .iter()
            .filter_map(|n| Some((parse_log_file_name(n)?, n)))
            .map(|(first, name)| ClosedFile::read(&dir, name, first, &key))
            .collect();
        let Some(anchor) = &self.anchor else {
            return;
        };
        for sig in names.iter().filter(|n| n.ends_with(".jsonl.sig")) {
            let log = sig.trim_end_matches(".sig");
            if names.iter().any(|n| n == log) {
                continue;
            }
            let covered = std::fs::read(dir.join(sig))
                .ok()
                .and_then(|b| Attestation::open(&b, &key).ok().flatten())
                .is_some_and(|a| a.kind == "file" && a.last_sequence <= anchor.last_sequence);
            if covered {
                let _ = std::fs::remove_file(dir.join(sig));
            }
        }
    }

    /// Remove old files if retention asks for it: after a file is closed, and every minute.
    /// A failure is logged (when it changes), counted, and tried again a minute later; it never
    /// stops the log.
    fn prune_if_due(&mut self) {
        if self.config.retention.is_off()
            || !(self.prune_due || self.last_prune.elapsed() >= PRUNE_INTERVAL)
        {
            return;
        }
        self.prune_due = false;
        self.last_prune = Instant::now();
        let problem = match self.prune() {
            Ok(blocked) => blocked,
            Err(e) => Some(e),
        };
        match problem {
            None => {
                if self.prune_problem.take().is_some() {
                    tracing::warn!("audit retention removes old files again");
                }
            }
            Some(p) => {
                self.stats.prune_failures.fetch_add(1, Ordering::Relaxed);
                if self.prune_problem.as_ref() != Some(&p) {
                    tracing::error!(problem = %p,
                        "audit retention cannot remove the old files it should; it tries again every minute");
                }
                self.prune_problem = Some(p);
            }
        }
    }

    /// One prune: what retention asks to remove, a signed statement of it (written durably
    /// first), then the files. `Ok(Some(why))` when it stopped short of what retention asks.
    fn prune(&mut self) -> Result<Option<String>, String> {
        let Some(anchor) = self.anchor.clone() else {
            return Ok(Some(format!(
                "{PRUNE_FILE} cannot be trusted; run `trent audit verify`"
            )));
        };
        self.finish_prune(&anchor)?;
        let dir = self.config.dir.clone();
        let now = (self.config.clock)();
        let open_bytes = self.current.as_ref().map_or(0, |c| c.bytes);
        let keep_from = self
            .current
            .as_ref()
            .map_or(self.head_first, |c| c.first_sequence.min(self.head_first));
        let mut p = plan(
            &self.closed,
            &anchor,
            keep_from,
            open_bytes,
            &self.config.retention,
            now,
        );
        // The files must still be what the node signed, as far as their length shows: a file
        // removed or cut behind the node's back is left for `trent audit verify` to name.
        let mut removed = Vec::new();
        let mut last = None;
        for (i, reason) in std::mem::take(&mut p.remove) {
            let f = &self.closed[i];
            let Ok(signed) = &f.signed else { break };
            match std::fs::metadata(dir.join(&f.name)) {
                Ok(m) if m.len() == f.bytes => {}
                Ok(m) => {
                    p.blocked = Some(format!(
                        "{}: it holds {} bytes, its signature {}",
                        f.name,
                        m.len(),
                        f.bytes
                    ));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    p.blocked = Some(format!("{}: it was removed, but not by retention", f.name));
                    break;
                }
                Err(e) => return Err(format!("{}: {e}", f.name)),
            }
            removed.push(RemovedFile {
                file: f.name.clone(),
                first_sequence: f.first_sequence,
                last_sequence: signed.last_sequence,
                bytes: f.bytes,
                sha256: signed.sha256.clone(),
                closed: signed.closed_text.clone(),
                reason,
            });
            last = Some(signed.clone());
        }
        let Some(last) = last else {
            return Ok(p.blocked);
        };
        let statement = PruneStatement {
            kind: "prune".into(),
            last_sequence: last.last_sequence,
            last_hash: last.last_hash,
            files: anchor.files + removed.len() as u64,
            bytes: anchor.bytes + removed.iter().map(|f| f.bytes).sum::<u64>(),
            previous_last_sequence: anchor.last_sequence,
            removed,
            time: iso(now),
            node: self.config.node.clone(),
            algorithm: self.signer.spec().name().into(),
            key_id: self.signer.key_id().into(),
        };
        write_atomically(&dir, PRUNE_FILE, &statement.sign(&self.signer)?)
            .map_err(|e| format!("{}: {e}", dir.join(PRUNE_FILE).display()))?;
        let anchor = Anchor::of(&statement);
        self.anchor = Some(anchor.clone());
        tracing::info!(
            files = statement.removed.len(),
            first = statement.previous_last_sequence + 1,
            last = statement.last_sequence,
            "audit retention removed the oldest files"
        );
        self.finish_prune(&anchor)?;
        Ok(p.blocked)
    }

    /// Remove the closed files `anchor` covers (those of the prune just stated, or those a
    /// prune cut short left), each log file before its signature file.
    fn finish_prune(&mut self, anchor: &Anchor) -> Result<(), String> {
        let dir = self.config.dir.clone();
        let remove = |path: PathBuf| match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", path.display()))
            }
            _ => Ok(()),
        };
        let mut done = 0;
        for f in &self.closed {
            let covered = f
                .signed
                .as_ref()
                .is_ok_and(|s| s.last_sequence <= anchor.last_sequence);
            if !covered {
                break;
            }
            let gone =
                remove(dir.join(&f.name)).and_then(|_| remove(dir.join(format!("{}.sig", f.name))));
            if let Err(e) = gone {
                self.closed.drain(..done);
                return Err(e);
            }
            self.stats.pruned_files.fetch_add(1, Ordering::Relaxed);
            self.stats
                .pruned_bytes
                .fetch_add(f.bytes, Ordering::Relaxed);
            done += 1;
        }
        self.closed.drain(..done);
        if done > 0 {
            sync_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// At start: continue the chain from the newest file, after checking it against the signed
    /// head. A record the last run was writing when it stopped (an incomplete last line) was
    /// never acknowledged and is cut off. The newest file, left open by a run that was killed, is
    /// signed now; the new run writes to a new file.
    fn recover(&mut self) -> Result<(), String> {
        let dir = self.config.dir.clone();
        let shown = dir.display().to_string();
        let refuse = |why: String| {
            format!(
                "the audit log in {shown} does not match its signed head: {why}; run `trent audit verify {shown}`"
            )
        };
        let mut logs: Vec<(u64, String)> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{shown}: {e}"))?
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                Some((parse_log_file_name(&name)?, name))
            })
            .collect();
        logs.sort();
        let head = match std::fs::read(dir.join(HEAD_FILE)) {
            Ok(bytes) => Some(
                Attestation::open(&bytes, &self.signer.public_key())
                    .map_err(|e| refuse(format!("{HEAD_FILE}: {e}")))?
                    .ok_or_else(|| {
                        refuse(format!("{HEAD_FILE} is not signed by this node's key"))
                    })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{shown}/{HEAD_FILE}: {e}")),
        };
        let Some((first, name)) = logs.pop() else {
            if head.as_ref().is_some_and(|h| h.last_sequence > 0) {
                return Err(refuse("the log files it names are gone".into()));
            }
            // A new log: its head says so, so that deleting everything later is seen.
            let genesis = Attestation {
                kind: "digest".into(),
                file: String::new(),
                first_sequence: 1,
                last_sequence: 0,
                last_hash: GENESIS_HASH.into(),
                bytes: 0,
                sha256: hex::encode(digest::digest(&digest::SHA256, b"").as_ref()),
                time: self.now_text(),
                node: self.config.node.clone(),
                algorithm: self.signer.spec().name().into(),
                key_id: self.signer.key_id().into(),
            };
            return self.write_head(&genesis);
        };
        let Some(head) = head else {
            return Err(refuse(format!("{HEAD_FILE} is missing")));
        };
        self.head_first = head.first_sequence;
        let path = dir.join(&name);
        let mut data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < data.len() {
            tracing::warn!(file = %path.display(), bytes = data.len() - complete,
                "cutting off an incomplete audit record the last run never acknowledged");
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.set_len(complete as u64)
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            data.truncate(complete);
        }
        // Where the chain must pick up in this file: from the head, if it covers this file, or
        // from the end of the file the head covers.
        let (from_byte, mut sequence, mut hash) = if head.file == name {
            let prefix = data.get(..head.bytes as usize).ok_or_else(|| {
                refuse(format!(
                    "{name} is shorter than the {} bytes the head covers",
                    head.bytes
                ))
            })?;
            if hex::encode(digest::digest(&digest::SHA256, prefix).as_ref()) != head.sha256 {
                return Err(refuse(format!(
                    "{name} was changed within what the head covers"
                )));
            }
            (
                head.bytes as usize,
                head.last_sequence,
                head.last_hash.clone(),
            )
        } else if head.last_sequence + 1 == first {
            (0, head.last_sequence, head.last_hash.clone())
        } else {
            return Err(refuse(format!(
                "the head names {} up to record {}, the newest file {name} starts at {first}",
                head.file, head.last_sequence
            )));
        };
        // The records written after the head: each must follow the one before.
        let tail = &data[from_byte..];
        for line in tail
            .strip_suffix(b"\n")
            .map(|b| b.split(|c| *c == b'\n'))
            .into_iter()
            .flatten()
        {
            match read_chain(line) {
                Some((s, prev)) if s == sequence + 1 && prev == hash => {
                    sequence = s;
                    hash = hash_line(line);
                }
                _ => {
                    return Err(refuse(format!(
                        "{name}: record {} does not follow the chain",
                        sequence + 1
                    )));
                }
            }
        }
        self.sequence = sequence;
        self.last_hash = hash;
        self.last_digest_sequence = sequence;
        if !dir.join(format!("{name}.sig")).exists() {
            let mut hasher = digest::Context::new(&digest::SHA256);
            hasher.update(&data);
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            self.current = Some(Current {
                file,
                name,
                first_sequence: first,
                bytes: data.len() as u64,
                hasher,
                opened: Instant::now(),
            });
            self.close_current()?;
        }
        Ok(())
    }
}

fn iso(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Opening for writing, creating the file if missing with mode 0600: the log names ARNs,
/// access key ids, source addresses and encryption contexts.
fn private_file() -> OpenOptions {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts
}

/// Making a directory and its missing parents, mode 0700.
fn private_dir_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `name` in `dir` whole or not at all: a temporary file, fsync, rename, fsync the dir.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = private_file().truncate(true).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

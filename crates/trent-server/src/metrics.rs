//! Prometheus metrics: counters the request path bumps, and the text exposition format (0.0.4)
//! the admin listener serves.
//!
//! The request path takes no lock on success: every operation of [`ALL_OPERATIONS`] has its
//! counters and latency histogram made up front, split into shards (one per worker thread, as
//! far as there are shards) so that threads do not fight over one cache line. Error codes and
//! per-key counters live in maps behind read-write locks that only the first occurrence of a
//! code or key writes to. Everything read at scrape time (keys, audit log) comes in a [`Scrape`].
//!
//! See docs/metrics.md for the reference of every metric.

use crate::dispatch::ALL_OPERATIONS;
use parking_lot::{Mutex, RwLock};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use trent_audit::{AuditLog, LATENCY_BUCKETS, StatsSnapshot};
use trent_kms::Kms;
use trent_kms::inventory::Inventory;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of `trent_request_duration_seconds`' buckets; +Inf follows.
pub const REQUEST_DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The `operation` label of requests that named no operation of the API.
pub const UNKNOWN_OPERATION: &str = "unknown";

/// The `error_code` label an operation's error codes share past [`MAX_ERROR_CODES`] of them.
pub const OTHER_ERROR_CODE: &str = "other";

/// Distinct error codes counted per operation; the API has about 35, this keeps a caller from
/// making series without bound.
const MAX_ERROR_CODES: usize = 64;

/// Shards of each operation's counters (a power of two).
const SHARDS: usize = 16;

/// Shards of the per-key map.
const KEY_SHARDS: usize = 64;

const OUTCOMES: [&str; 3] = ["success", "client_error", "server_error"];

/// The outcome of an HTTP status, as an index into [`OUTCOMES`].
fn outcome(status: u16) -> usize {
    match status {
        ..400 => 0,
        400..500 => 1,
        _ => 2,
    }
}

/// This thread's shard: threads take shards in turn as they first count something.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SHARD.with(|s| {
        s.get().unwrap_or_else(|| {
            let i = NEXT.fetch_add(1, Relaxed) % SHARDS;
            s.set(Some(i));
            i
        })
    })
}

/// One thread's share of an operation's counters, alone on its cache lines.
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    /// Successful requests (no error code).
    success: AtomicU64,
    /// Requests per latency bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; REQUEST_DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// The counters of one operation.
#[derive(Default)]
struct OpStats {
    shards: [Shard; SHARDS],
    /// Error code ("" for none) -> requests per outcome.
    errors: RwLock<HashMap<Box<str>, [AtomicU64; 3]>>,
}

impl OpStats {
    fn count_code(&self, outcome: usize, code: &str) {
        if let Some(counts) = self.errors.read().get(code) {
            counts[outcome].fetch_add(1, Relaxed);
            return;
        }
        let mut errors = self.errors.write();
        let code = if errors.len() >= MAX_ERROR_CODES && !errors.contains_key(code) {
            OTHER_ERROR_CODE
        } else {
            code
        };
        errors.entry(code.into()).or_default()[outcome].fetch_add(1, Relaxed);
    }
}

/// The successful crypto operations of one key.
struct KeyUses {
    /// Per operation of [`ALL_OPERATIONS`], in its order.
    ops: [AtomicU64; ALL_OPERATIONS.len()],
    /// Operation names outside the API's list (ReEncryptFrom, say), rare.
    other: Mutex<Vec<(&'static str, u64)>>,
}

impl Default for KeyUses {
    fn default() -> Self {
        Self {
            ops: std::array::from_fn(|_| AtomicU64::new(0)),
            other: Mutex::new(Vec::new()),
        }
    }
}

/// Key ARN -> uses, for the keys whose ARN hashes to one shard.
type KeyShard = RwLock<HashMap<Box<str>, KeyUses>>;

/// The two listeners whose connections are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Api,
    Admin,
}

impl Listener {
    const ALL: [Listener; 2] = [Listener::Api, Listener::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Api => "api",
            Listener::Admin => "admin",
        }
    }
}

/// Why trent closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its source address had as many connections open as it may.
    SourceLimit,
    /// Its request headers (or TLS handshake) did not arrive in time.
    HeaderTimeout,
    /// It stayed without a request after its last answer for too long.
    IdleTimeout,
}

impl CloseReason {
    const ALL: [CloseReason; 3] = [
        CloseReason::SourceLimit,
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::SourceLimit => "source_limit",
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
        }
    }
}

/// Connection counts of one listener.
#[derive(Default)]
struct ConnStats {
    open: AtomicU64,
    /// Per [`CloseReason::ALL`].
    cut: [AtomicU64; 3],
}

/// What a scrape reads besides the counters: the keys and the audit log, as they are now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub keys: Inventory,
    /// None when the audit log is off: its metrics are left out.
    pub audit: Option<StatsSnapshot>,
}

impl Scrape {
    /// Read the inventory of `kms` and the statistics of `audit`.
    pub fn collect(kms: &Kms, audit: Option<&AuditLog>) -> Scrape {
        Scrape {
            keys: kms.inventory(),
            audit: audit.map(AuditLog::stats),
        }
    }
}

/// The server's counters and histograms.
pub struct Metrics {
    /// One per operation of [`ALL_OPERATIONS`], then the unknown operation.
    ops: Box<[OpStats]>,
    /// (name, index into `ops`), sorted by name.
    op_index: Box<[(&'static str, usize)]>,
    hasher: RandomState,
    /// Key ARN -> uses, sharded by the ARN's hash.
    keys: Box<[KeyShard]>,
    /// Whether series name key ARNs (`--metrics-per-key`).
    per_key: bool,
    /// (operation, quota class) -> throttled requests.
    throttled: RwLock<HashMap<(&'static str, &'static str), AtomicU64>>,
    /// Per [`Listener::ALL`].
    connections: [ConnStats; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut op_index: Vec<(&'static str, usize)> = ALL_OPERATIONS
            .iter()
            .copied()
            .enumerate()
            .map(|(i, op)| (op, i))
            .collect();
        op_index.sort_unstable();
        Metrics {
            ops: (0..=ALL_OPERATIONS.len())
                .map(|_| OpStats::default())
                .collect(),
            op_index: op_index.into(),
            hasher: RandomState::new(),
            keys: (0..KEY_SHARDS).map(|_| RwLock::default()).collect(),
            per_key: true,
            throttled: RwLock::default(),
            connections: Default::default(),
        }
    }

    /// With `false`, no series names a key ARN: per-key counters are not kept, and imported
    /// material expiry is one series, the soonest.
    pub fn with_per_key(mut self, per_key: bool) -> Metrics {
        self.per_key = per_key;
        self
    }

    /// Count one request refused by its quota: its operation and quota class.
    pub fn observe_throttled(&self, operation: &'static str, class: &'static str) {
        if let Some(n) = self.throttled.read().get(&(operation, class)) {
            n.fetch_add(1, Relaxed);
            return;
        }
        self.throttled
            .write()
            .entry((operation, class))
            .or_default()
            .fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_opened(&self, listener: Listener) {
        self.connections[listener as usize]
            .open
            .fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_closed(&self, listener: Listener) {
        self.connections[listener as usize]
            .open
            .fetch_sub(1, Relaxed);
    }

    /// Count a connection trent closed itself.
    pub fn connection_cut(&self, listener: Listener, reason: CloseReason) {
        self.connections[listener as usize].cut[reason as usize].fetch_add(1, Relaxed);
    }

    /// The index into `ops` of `operation` (a name of the API, with or without the
    /// `TrentService.` prefix); anything else is the unknown operation.
    fn op(&self, operation: &str) -> usize {
        let name = operation.strip_prefix("TrentService.").unwrap_or(operation);
        self.op_index
            .binary_search_by(|(op, _)| (*op).cmp(name))
            .map_or(ALL_OPERATIONS.len(), |i| self.op_index[i].1)
    }

    /// The label of the operation at `index` of `ops`.
    fn op_name(index: usize) -> &'static str {
        ALL_OPERATIONS
            .get(index)
            .copied()
            .unwrap_or(UNKNOWN_OPERATION)
    }

    /// Count one answered request: `operation` as the API names it (anything else, "-" for no
    /// `X-Amz-Target`, counts as `unknown`), the AWS error name it failed with, its HTTP status
    /// and how long it took.
    pub fn observe_request(
        &self,
        operation: &str,
        error_code: Option<&str>,
        status: u16,
        latency: Duration,
    ) {
        let op = &self.ops[self.op(operation)];
        let shard = &op.shards[shard_index()];
        let secs = latency.as_secs_f64();
        let bucket = REQUEST_DURATION_BUCKETS.partition_point(|le| *le < secs);
        shard.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        shard.sum_nanos.fetch_add(nanos, Relaxed);
        let outcome = outcome(status);
        match error_code.filter(|c| !c.is_empty()) {
            None if outcome == 0 => {
                shard.success.fetch_add(1, Relaxed);
            }
            code => op.count_code(outcome, code.unwrap_or("")),
        }
    }

    /// Count one successful cryptographic operation with the key `key_arn`.
    pub fn observe_key_use(&self, key_arn: &str, operation: &'static str) {
        if !self.per_key {
            return;
        }
        let shard = &self.keys[self.hasher.hash_one(key_arn) as usize % KEY_SHARDS];
        let op = ALL_OPERATIONS.iter().position(|o| *o == operation);
        let count = |uses: &KeyUses| match op {
            Some(i) => {
                uses.ops[i].fetch_add(1, Relaxed);
            }
            None => {
                let mut other = uses.other.lock();
                match other.iter_mut().find(|(o, _)| *o == operation) {
                    Some((_, n)) => *n += 1,
                    None => other.push((operation, 1)),
                }
            }
        };
        if let Some(uses) = shard.read().get(key_arn) {
            return count(uses);
        }
        count(shard.write().entry(key_arn.into()).or_default());
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let o = &mut out;

        family(
            o,
            "trent_build_info",
            "gauge",
            "Always 1; the version of the trent build serving.",
        );
        sample(
            o,
            "trent_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );

        self.render_requests(o);
        self.render_throttled(o);
        if self.per_key {
            self.render_key_uses(o);
        }
        self.render_connections(o);

        family(
            o,
            "trent_keys",
            "gauge",
            "KMS keys of every account and Region, by key state and key spec.",
        );
        for ((state, spec), n) in &scrape.keys.keys_by_state_and_spec {
            sample(
                o,
                "trent_keys",
                &[("state", state), ("key_spec", spec)],
                *n as f64,
            );
        }

        family(
            o,
            "trent_imported_material_expiry_seconds",
            "gauge",
            "Seconds until imported key material expires (only material with an expiry; 0 once past it).",
        );
        if self.per_key {
            for (arn, material, secs) in &scrape.keys.imported_expiries {
                sample(
                    o,
                    "trent_imported_material_expiry_seconds",
                    &[("key_arn", arn), ("key_material_id", material)],
                    secs.max(0.0),
                );
            }
        } else if let Some(soonest) = scrape
            .keys
            .imported_expiries
            .iter()
            .map(|(_, _, secs)| *secs)
            .reduce(f64::min)
        {
            sample(
                o,
                "trent_imported_material_expiry_seconds",
                &[],
                soonest.max(0.0),
            );
        }

        family(
            o,
            "trent_keys_unusable",
            "gauge",
            "KMS keys whose stored key material cannot be read under the root key: every use of them fails (the log names each).",
        );
        sample(
            o,
            "trent_keys_unusable",
            &[],
            scrape.keys.unusable_keys as f64,
        );
        family(
            o,
            "trent_store_rows_skipped",
            "gauge",
            "Stored key records and grants the last load left out because they do not parse (the log names each).",
        );
        for (kind, n) in [
            ("key", scrape.keys.skipped.skipped_keys),
            ("grant", scrape.keys.skipped.skipped_grants),
        ] {
            sample(o, "trent_store_rows_skipped", &[("kind", kind)], n as f64);
        }

        if let Some(audit) = &scrape.audit {
            render_audit(o, audit);
        }
        out
    }

    fn render_requests(&self, o: &mut String) {
        struct Totals {
            buckets: [u64; REQUEST_DURATION_BUCKETS.len() + 1],
            sum_nanos: u128,
            success: u64,
        }
        let totals: Vec<Totals> = self
            .ops
            .iter()
            .map(|op| {
                let mut t = Totals {
                    buckets: [0; REQUEST_DURATION_BUCKETS.len() + 1],
                    sum_nanos: 0,
                    success: 0,
                };
                for s in &op.shards {
                    t.success += s.success.load(Relaxed);
                    t.sum_nanos += u128::from(s.sum_nanos.load(Relaxed));
                    for (sum, b) in t.buckets.iter_mut().zip(&s.buckets) {
                        *sum += b.load(Relaxed);
                    }
                }
                t
            })
            .collect();

        family(
            o,
            "trent_requests_total",
            "counter",
            "Requests answered, by operation, outcome (success, client_error, server_error) and AWS error code (empty on success).",
        );
        for (i, (op, t)) in self.ops.iter().zip(&totals).enumerate() {
            let name = Self::op_name(i);
            let errors = op.errors.read();
            let mut rows: Vec<(usize, &str, u64)> = errors
                .iter()
                .flat_map(|(code, counts)| {
                    counts
                        .iter()
                        .enumerate()
                        .map(move |(outcome, n)| (outcome, &**code, n.load(Relaxed)))
                })
                .filter(|(_, _, n)| *n > 0)
                .collect();
            if t.success > 0 {
                match rows
                    .iter_mut()
                    .find(|(oc, code, _)| *oc == 0 && code.is_empty())
                {
                    Some(row) => row.2 += t.success,
                    None => rows.push((0, "", t.success)),
                }
            }
            rows.sort_unstable();
            for (outcome, code, n) in rows {
                sample(
                    o,
                    "trent_requests_total",
                    &[
                        ("operation", name),
                        ("outcome", OUTCOMES[outcome]),
                        ("error_code", code),
                    ],
                    n as f64,
                );
            }
        }

        family(
            o,
            "trent_request_duration_seconds",
            "histogram",
            "Time from reading a request to its answer, by operation.",
        );
        for (i, t) in totals.iter().enumerate() {
            let count: u64 = t.buckets.iter().sum();
            if count == 0 {
                continue;
            }
            let name = Self::op_name(i);
            histogram(
                o,
                "trent_request_duration_seconds",
                ("operation", name),
                &REQUEST_DURATION_BUCKETS,
                &cumulative(&t.buckets),
                t.sum_nanos as f64 / 1e9,
            );
        }
    }

    fn render_throttled(&self, o: &mut String) {
        family(
            o,
            "trent_throttled_requests_total",
            "counter",
            "Requests refused with ThrottlingException because their account was over its quota in the Region, by operation and quota class.",
        );
        let mut rows: Vec<(&str, &str, u64)> = self
            .throttled
            .read()
            .iter()
            .map(|((op, class), n)| (*op, *class, n.load(Relaxed)))
            .collect();
        rows.sort_unstable();
        for (op, class, n) in rows {
            sample(
                o,
                "trent_throttled_requests_total",
                &[("operation", op), ("quota", class)],
                n as f64,
            );
        }
    }

    fn render_connections(&self, o: &mut String) {
        family(
            o,
            "trent_connections_open",
            "gauge",
            "Connections being served, by listener (api, admin).",
        );
        for l in Listener::ALL {
            sample(
                o,
                "trent_connections_open",
                &[("listener", l.as_str())],
                self.connections[l as usize].open.load(Relaxed) as f64,
            );
        }
        family(
            o,
            "trent_connections_closed_total",
            "counter",
            "Connections trent closed itself, by listener and reason: source_limit (refused at once: its address had as many open as it may), header_timeout (no complete request headers or TLS handshake in time), idle_timeout (no request in time after the last answer).",
        );
        for l in Listener::ALL {
            for r in CloseReason::ALL {
                sample(
                    o,
                    "trent_connections_closed_total",
                    &[("listener", l.as_str()), ("reason", r.as_str())],
                    self.connections[l as usize].cut[r as usize].load(Relaxed) as f64,
                );
            }
        }
    }

    fn render_key_uses(&self, o: &mut String) {
        family(
            o,
            "trent_key_operations_total",
            "counter",
            "Successful cryptographic operations, by key ARN and operation.",
        );
        let mut rows: Vec<(String, &'static str, u64)> = Vec::new();
        for shard in &*self.keys {
            for (arn, uses) in shard.read().iter() {
                for (op, n) in ALL_OPERATIONS.iter().zip(&uses.ops) {
                    let n = n.load(Relaxed);
                    if n > 0 {
                        rows.push((arn.to_string(), op, n));
                    }
                }
                for (op, n) in uses.other.lock().iter() {
                    rows.push((arn.to_string(), op, *n));
                }
            }
        }
        rows.sort_unstable();
        for (arn, op, n) in rows {
            sample(
                o,
                "trent_key_operations_total",
                &[("key_arn", &arn), ("operation", op)],
                n as f64,
            );
        }
    }
}

fn render_audit(o: &mut String, audit: &StatsSnapshot) {
    family(
        o,
        "trent_audit_writable",
        "gauge",
        "1 while the audit log makes records durable, 0 from a failed write until a write succeeds again.",
    );
    sample(
        o,
        "trent_audit_writable",
        &[],
        if audit.healthy { 1.0 } else { 0.0 },
    );
    family(
        o,
        "trent_audit_queue_depth",
        "gauge",
        "Audit records waiting to be written.",
    );
    sample(o, "trent_audit_queue_depth", &[], audit.queue_depth as f64);
    family(
        o,
        "trent_audit_records_total",
        "counter",
        "Audit records made durable.",
    );
    sample(o, "trent_audit_records_total", &[], audit.records as f64);
    family(
        o,
        "trent_audit_failed_batches_total",
        "counter",
        "Audit batches that could not be made durable (their records were refused).",
    );
    sample(
        o,
        "trent_audit_failed_batches_total",
        &[],
        audit.failed_batches as f64,
    );
    family(
        o,
        "trent_audit_write_duration_seconds",
        "histogram",
        "Time to write and sync one batch of audit records.",
    );
    // LATENCY_BUCKETS then +Inf; a snapshot of another length is cut or padded with its total.
    let total = audit.latency_cumulative.last().copied().unwrap_or(0);
    let counts: Vec<u64> = (0..=LATENCY_BUCKETS.len())
        .map(|i| {
            if i == LATENCY_BUCKETS.len() {
                total
            } else {
                audit.latency_cumulative.get(i).copied().unwrap_or(total)
            }
        })
        .collect();
    histogram(
        o,
        "trent_audit_write_duration_seconds",
        ("", ""),
        &LATENCY_BUCKETS,
        &counts,
        audit.latency_sum_seconds,
    );
    for (name, help, n) in [
        (
            "trent_audit_pruned_files_total",
            "Audit log files removed by retention (--audit-max-total-bytes, --audit-max-age-days), each with its signature file.",
            audit.pruned.files,
        ),
        (
            "trent_audit_pruned_bytes_total",
            "Bytes of the audit log files removed by retention.",
            audit.pruned.bytes,
        ),
        (
            "trent_audit_prune_failures_total",
            "Retention passes that failed or stopped short of what retention asks (a file changed or removed behind the node's back, an unreadable prune statement, an I/O error); each is retried a minute later.",
            audit.pruned.failures,
        ),
    ] {
        family(o, name, "counter", help);
        sample(o, name, &[], n as f64);
    }
    if let Some(socket) = &audit.socket {
        family(
            o,
            "trent_audit_socket_connected",
            "gauge",
            "1 while the socket that gets a copy of the audit log is connected.",
        );
        sample(
            o,
            "trent_audit_socket_connected",
            &[],
            if socket.connected { 1.0 } else { 0.0 },
        );
        family(
            o,
            "trent_audit_socket_records_total",
            "counter",
            "Audit records copied to the socket (outcome sent), or not copied because it was gone or too slow (outcome dropped). The files keep every record either way.",
        );
        for (outcome, n) in [("sent", socket.sent), ("dropped", socket.dropped)] {
            sample(
                o,
                "trent_audit_socket_records_total",
                &[("outcome", outcome)],
                n as f64,
            );
        }
    }
}

/// Running totals of per-bucket counts.
fn cumulative(buckets: &[u64]) -> Vec<u64> {
    buckets
        .iter()
        .scan(0u64, |running, n| {
            *running += n;
            Some(*running)
        })
        .collect()
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// One histogram: `cumulative` has one count per bound of `bounds`, then the +Inf count (the
/// histogram's count). `label` is the one label besides `le` ("" for none).
fn histogram(
    o: &mut String,
    name: &str,
    label: (&str, &str),
    bounds: &[f64],
    cumulative: &[u64],
    sum: f64,
) {
    let bucket_name = format!("{name}_bucket");
    let extra: &[(&str, &str)] = if label.0.is_empty() {
        &[]
    } else {
        std::slice::from_ref(&label)
    };
    for (i, n) in cumulative.iter().enumerate() {
        let le = bounds
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| float(*b));
        let mut labels = extra.to_vec();
        labels.push(("le", &le));
        sample(o, &bucket_name, &labels, *n as f64);
    }
    sample(o, &format!("{name}_sum"), extra, sum);
    let count = cumulative.last().copied().unwrap_or(0);
    sample(o, &format!("{name}_count"), extra, count as f64);
}

fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    o.push_str(name);
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(k);
            o.push_str("=\"");
            escape_label_value(o, v);
            o.push('"');
        }
        o.push('}');
    }
    o.push(' ');
    o.push_str(&float(value));
    o.push('\n');
}

/// A label value as the exposition format writes it: `\`, `"` and line feeds escaped.
fn escape_label_value(o: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
}

/// A sample value or bound: `+Inf`, `-Inf`, `NaN`, or the shortest decimal that reads back.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    fn audit_snapshot() -> StatsSnapshot {
        let mut latency_cumulative = vec![0; LATENCY_BUCKETS.len() + 1];
        for (i, c) in latency_cumulative.iter_mut().enumerate() {
            *c = if i >= 3 { 5 } else { 0 };
        }
        StatsSnapshot {
            healthy: true,
            queue_depth: 7,
            records: 40,
            batches: 5,
            failed_batches: 1,
            latency_cumulative,
            latency_sum_seconds: 0.004,
            socket: Some(trent_audit::SocketSnapshot {
                connected: true,
                sent: 38,
                dropped: 2,
            }),
            pruned: trent_audit::PrunedSnapshot {
                files: 3,
                bytes: 12288,
                failures: 1,
            },
        }
    }

    #[test]
    fn requests_are_counted_by_operation_outcome_and_code() {
        let m = Metrics::new();
        let ms = Duration::from_millis(1);
        m.observe_request("Encrypt", None, 200, ms);
        m.observe_request("TrentService.Encrypt", None, 200, ms);
        m.observe_request("Encrypt", Some("NotFoundException"), 400, ms);
        m.observe_request("Encrypt", Some("KMSInternalException"), 500, ms);
        m.observe_request("-", Some("UnknownOperationException"), 400, ms);
        m.observe_request("Nope", Some("UnknownOperationException"), 400, ms);
        m.observe_request("Decrypt", Some(""), 200, ms);
        let text = m.render(&Scrape::default());
        assert_eq!(
            lines_of(&text, "trent_requests_total"),
            [
                r#"trent_requests_total{operation="Decrypt",outcome="success",error_code=""} 1"#,
                r#"trent_requests_total{operation="Encrypt",outcome="success",error_code=""} 2"#,
                r#"trent_requests_total{operation="Encrypt",outcome="client_error",error_code="NotFoundException"} 1"#,
                r#"trent_requests_total{operation="Encrypt",outcome="server_error",error_code="KMSInternalException"} 1"#,
                r#"trent_requests_total{operation="unknown",outcome="client_error",error_code="UnknownOperationException"} 2"#,
            ]
        );
    }

    #[test]
    fn latency_lands_in_the_first_bucket_whose_bound_holds_it() {
        let m = Metrics::new();
        m.observe_request("Sign", None, 200, Duration::from_micros(100));
        m.observe_request("Sign", None, 200, Duration::from_micros(101));
        m.observe_request("Sign", None, 200, Duration::from_secs(11));
        let text = m.render(&Scrape::default());
        let lines = lines_of(&text, "trent_request_duration_seconds");
        assert_eq!(
            lines.len(),
            REQUEST_DURATION_BUCKETS.len() + 3,
            "{lines:#?}"
        );
        assert_eq!(
            lines[0],
            r#"trent_request_duration_seconds_bucket{operation="Sign",le="0.0001"} 1"#
        );
        assert_eq!(
            lines[1],
            r#"trent_request_duration_seconds_bucket{operation="Sign",le="0.00025"} 2"#
        );
        assert_eq!(
            lines[15],
            r#"trent_request_duration_seconds_bucket{operation="Sign",le="10"} 2"#
        );
        assert_eq!(
            lines[16],
            r#"trent_request_duration_seconds_bucket{operation="Sign",le="+Inf"} 3"#
        );
        assert_eq!(
            lines[17],
            r#"trent_request_duration_seconds_sum{operation="Sign"} 11.000201"#
        );
        assert_eq!(
            lines[18],
            r#"trent_request_duration_seconds_count{operation="Sign"} 3"#
        );
    }

    #[test]
    fn counts_from_many_threads_add_up() {
        let m = Metrics::new();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        m.observe_request("Encrypt", None, 200, Duration::from_micros(300));
                        m.observe_key_use("arn:aws:kms:us-east-1:1:key/k", "Encrypt");
                    }
                });
            }
        });
        let text = m.render(&Scrape::default());
        assert!(text.contains(
            "trent_requests_total{operation=\"Encrypt\",outcome=\"success\",error_code=\"\"} 8000\n"
        ));
        assert!(
            text.contains("trent_request_duration_seconds_count{operation=\"Encrypt\"} 8000\n")
        );
        assert!(text.contains(
            "trent_key_operations_total{key_arn=\"arn:aws:kms:us-east-1:1:key/k\",operation=\"Encrypt\"} 8000\n"
        ));
    }

    #[test]
    fn key_uses_are_counted_per_key_and_operation() {
        let m = Metrics::new();
        m.observe_key_use("arn:b", "Sign");
        m.observe_key_use("arn:a", "Encrypt");
        m.observe_key_use("arn:a", "Encrypt");
        m.observe_key_use("arn:a", "ReEncryptFrom");
        let text = m.render(&Scrape::default());
        assert_eq!(
            lines_of(&text, "trent_key_operations_total"),
            [
                r#"trent_key_operations_total{key_arn="arn:a",operation="Encrypt"} 2"#,
                r#"trent_key_operations_total{key_arn="arn:a",operation="ReEncryptFrom"} 1"#,
                r#"trent_key_operations_total{key_arn="arn:b",operation="Sign"} 1"#,
            ]
        );
    }

    #[test]
    fn error_codes_past_the_limit_share_one_series() {
        let m = Metrics::new();
        for i in 0..MAX_ERROR_CODES + 10 {
            m.observe_request("Encrypt", Some(&format!("E{i}")), 400, Duration::ZERO);
        }
        let text = m.render(&Scrape::default());
        assert_eq!(
            lines_of(&text, "trent_requests_total").len(),
            MAX_ERROR_CODES + 1
        );
        assert!(text.contains(
            "trent_requests_total{operation=\"Encrypt\",outcome=\"client_error\",error_code=\"other\"} 10\n"
        ));
    }

    #[test]
    fn scrape_time_values_are_rendered() {
        let m = Metrics::new();
        let scrape = Scrape {
            keys: Inventory {
                keys_by_state_and_spec: vec![
                    (("Enabled".into(), "SYMMETRIC_DEFAULT".into()), 3),
                    (("PendingDeletion".into(), "RSA_2048".into()), 1),
                ],
                imported_expiries: vec![("arn:k".into(), "ab".into(), 86400.5)],
                unusable_keys: 2,
                skipped: trent_kms::service::LoadReport {
                    skipped_keys: 1,
                    skipped_grants: 3,
                },
            },
            audit: Some(audit_snapshot()),
        };
        let text = m.render(&scrape);
        assert_eq!(
            lines_of(&text, "trent_keys_unusable"),
            ["trent_keys_unusable 2"]
        );
        assert_eq!(
            lines_of(&text, "trent_store_rows_skipped"),
            [
                r#"trent_store_rows_skipped{kind="key"} 1"#,
                r#"trent_store_rows_skipped{kind="grant"} 3"#,
            ]
        );
        assert_eq!(
            lines_of(&text, "trent_keys{"),
            [
                r#"trent_keys{state="Enabled",key_spec="SYMMETRIC_DEFAULT"} 3"#,
                r#"trent_keys{state="PendingDeletion",key_spec="RSA_2048"} 1"#,
            ]
        );
        assert_eq!(
            lines_of(&text, "trent_imported_material_expiry_seconds"),
            [
                r#"trent_imported_material_expiry_seconds{key_arn="arn:k",key_material_id="ab"} 86400.5"#
            ]
        );
        assert_eq!(
            lines_of(&text, "trent_build_info"),
            [format!(
                "trent_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )]
        );
        for line in [
            "trent_audit_writable 1",
            "trent_audit_queue_depth 7",
            "trent_audit_records_total 40",
            "trent_audit_failed_batches_total 1",
            "trent_audit_pruned_files_total 3",
            "trent_audit_pruned_bytes_total 12288",
            "trent_audit_prune_failures_total 1",
            "trent_audit_socket_connected 1",
            r#"trent_audit_socket_records_total{outcome="sent"} 38"#,
            r#"trent_audit_socket_records_total{outcome="dropped"} 2"#,
            r#"trent_audit_write_duration_seconds_bucket{le="0.0001"} 0"#,
            r#"trent_audit_write_duration_seconds_bucket{le="0.001"} 5"#,
            r#"trent_audit_write_duration_seconds_bucket{le="1"} 5"#,
            r#"trent_audit_write_duration_seconds_bucket{le="+Inf"} 5"#,
            "trent_audit_write_duration_seconds_sum 0.004",
            "trent_audit_write_duration_seconds_count 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert_eq!(
            lines_of(&text, "trent_audit_write_duration_seconds_bucket").len(),
            LATENCY_BUCKETS.len() + 1
        );
        let off = m.render(&Scrape::default());
        assert!(!off.contains("trent_audit"), "{off}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.observe_key_use("a\\b\"c\nd", "Encrypt");
        let text = m.render(&Scrape::default());
        assert!(text.contains(r#"{key_arn="a\\b\"c\nd",operation="Encrypt"} 1"#));
    }

    #[test]
    fn every_sample_follows_the_type_of_its_family() {
        let m = Metrics::new();
        m.observe_request("Encrypt", None, 200, Duration::from_millis(3));
        m.observe_key_use("arn:a", "Encrypt");
        let scrape = Scrape {
            keys: Inventory {
                keys_by_state_and_spec: vec![(("Enabled".into(), "HMAC_256".into()), 1)],
                imported_expiries: vec![("arn:a".into(), "00".into(), 5.0)],
                ..Inventory::default()
            },
            audit: Some(audit_snapshot()),
        };
        let text = m.render(&scrape);
        assert!(text.ends_with('\n'));
        let mut families: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    families.iter().all(|(n, _)| n != name),
                    "{name} declared twice"
                );
                families.push((name.into(), kind.into()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            let (family, kind) = families.last().unwrap();
            let ok = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(family)),
                _ => name == family,
            };
            assert!(ok, "{line} is not part of {family}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn throttled_requests_are_counted_by_operation_and_quota() {
        let m = Metrics::new();
        m.observe_throttled("Encrypt", "symmetric");
        m.observe_throttled("Encrypt", "symmetric");
        m.observe_throttled("Sign", "rsa");
        m.observe_throttled("CreateKey", "CreateKey");
        let text = m.render(&Scrape::default());
        assert_eq!(
            lines_of(&text, "trent_throttled_requests_total"),
            [
                r#"trent_throttled_requests_total{operation="CreateKey",quota="CreateKey"} 1"#,
                r#"trent_throttled_requests_total{operation="Encrypt",quota="symmetric"} 2"#,
                r#"trent_throttled_requests_total{operation="Sign",quota="rsa"} 1"#,
            ]
        );
    }

    #[test]
    fn connections_are_counted_by_listener() {
        let m = Metrics::new();
        m.connection_opened(Listener::Api);
        m.connection_opened(Listener::Api);
        m.connection_closed(Listener::Api);
        m.connection_opened(Listener::Admin);
        m.connection_cut(Listener::Api, CloseReason::IdleTimeout);
        m.connection_cut(Listener::Admin, CloseReason::SourceLimit);
        let text = m.render(&Scrape::default());
        assert_eq!(
            lines_of(&text, "trent_connections_open"),
            [
                r#"trent_connections_open{listener="api"} 1"#,
                r#"trent_connections_open{listener="admin"} 1"#,
            ]
        );
        assert_eq!(
            lines_of(&text, "trent_connections_closed_total"),
            [
                r#"trent_connections_closed_total{listener="api",reason="source_limit"} 0"#,
                r#"trent_connections_closed_total{listener="api",reason="header_timeout"} 0"#,
                r#"trent_connections_closed_total{listener="api",reason="idle_timeout"} 1"#,
                r#"trent_connections_closed_total{listener="admin",reason="source_limit"} 1"#,
                r#"trent_connections_closed_total{listener="admin",reason="header_timeout"} 0"#,
                r#"trent_connections_closed_total{listener="admin",reason="idle_timeout"} 0"#,
            ]
        );
    }

    #[test]
    fn without_per_key_metrics_no_series_names_a_key() {
        let m = Metrics::new().with_per_key(false);
        m.observe_key_use("arn:aws:kms:us-east-1:111122223333:key/a", "Encrypt");
        let scrape = Scrape {
            keys: Inventory {
                keys_by_state_and_spec: vec![(("Enabled".into(), "SYMMETRIC_DEFAULT".into()), 2)],
                imported_expiries: vec![
                    (
                        "arn:aws:kms:us-east-1:111122223333:key/a".into(),
                        "ab".into(),
                        900.0,
                    ),
                    (
                        "arn:aws:kms:us-east-1:111122223333:key/b".into(),
                        "cd".into(),
                        300.0,
                    ),
                ],
                ..Inventory::default()
            },
            audit: None,
        };
        let text = m.render(&scrape);
        assert!(!text.contains("arn:"), "{text}");
        assert!(!text.contains("trent_key_operations_total"), "{text}");
        // The soonest expiry, as one series.
        assert_eq!(
            lines_of(&text, "trent_imported_material_expiry_seconds"),
            ["trent_imported_material_expiry_seconds 300"]
        );
        let with = Metrics::new().render(&scrape);
        assert!(with.contains("arn:aws:kms:us-east-1:111122223333:key/b"));
    }

    #[test]
    fn floats_read_back() {
        assert_eq!(float(0.00025), "0.00025");
        assert_eq!(float(10.0), "10");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
    }
}

//! The copy of the log sent to a socket (`--audit-socket`): every durable line arrives, byte for
//! byte as in the files and in order; while the socket is gone the files still get everything,
//! the copy drops and counts, and it reconnects; a receiver that stops reading holds up neither
//! requests nor shutdown.

mod common;

use common::all_lines;
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};
use trent_audit::{
    AuditConfig, AuditKeySpec, AuditLog, AuditSigner, AuditSocket, SocketQueue, SocketSnapshot,
};

const PATIENCE: Duration = Duration::from_secs(10);

fn record(i: u64) -> Map<String, Value> {
    json!({"eventName": "Encrypt", "requestID": format!("req-{i}")})
        .as_object()
        .unwrap()
        .clone()
}

fn open(dir: &Path, socket: AuditSocket) -> AuditLog {
    open_with(dir, socket, SocketQueue::default())
}

fn open_with(dir: &Path, socket: AuditSocket, queue: SocketQueue) -> AuditLog {
    let mut c = AuditConfig::new(dir.to_path_buf(), "test-node");
    c.socket = Some(socket);
    c.socket_queue = queue;
    AuditLog::open(c, AuditSigner::generate(AuditKeySpec::Ed25519).unwrap().0).unwrap()
}

/// Read `n` lines from `conn`, failing after PATIENCE.
fn read_lines(conn: UnixStream, n: usize) -> Vec<String> {
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reader = BufReader::new(conn);
    (0..n)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.ends_with('\n'), "a line cut short: {line:?}");
            line.trim_end_matches('\n').to_string()
        })
        .collect()
}

/// The next connection to `listener`, failing after PATIENCE.
fn accept(listener: &UnixListener) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return conn;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("no connection: {e}"),
        }
    }
}

fn wait_for(log: &AuditLog, what: impl Fn(SocketSnapshot) -> bool) -> SocketSnapshot {
    let until = Instant::now() + PATIENCE;
    loop {
        let s = log.stats().socket.expect("socket stats");
        if what(s) {
            return s;
        }
        assert!(Instant::now() < until, "socket stats stuck at {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn addresses_are_unix_paths_or_tcp_host_ports() {
    assert_eq!(
        "unix:/run/trent/audit.sock".parse::<AuditSocket>(),
        Ok(AuditSocket::Unix("/run/trent/audit.sock".into()))
    );
    assert_eq!(
        "tcp:127.0.0.1:5170".parse::<AuditSocket>(),
        Ok(AuditSocket::Tcp("127.0.0.1:5170".into()))
    );
    assert_eq!(
        "tcp:[::1]:5170".parse::<AuditSocket>(),
        Ok(AuditSocket::Tcp("[::1]:5170".into()))
    );
    assert_eq!(
        "tcp:logs.internal:5170"
            .parse::<AuditSocket>()
            .unwrap()
            .to_string(),
        "tcp:logs.internal:5170"
    );
    for bad in [
        "udp:1.2.3.4:5",
        "tcp:host",
        "tcp::5170",
        "tcp:h:99999",
        "unix:",
        "/a/path",
    ] {
        assert_eq!(
            bad.parse::<AuditSocket>(),
            Err(format!(
                "'{bad}' is neither unix:/path/to/socket nor tcp:host:port"
            )),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_gets_every_durable_line_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("audit.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir, AuditSocket::Unix(path));
    let conn = accept(&listener);
    wait_for(&log, |s| s.connected);
    for i in 0..50 {
        log.append(record(i)).await.unwrap();
    }
    let got = tokio::task::spawn_blocking(move || read_lines(conn, 50))
        .await
        .unwrap();
    let s = wait_for(&log, |s| s.sent == 50);
    assert_eq!(
        s,
        SocketSnapshot {
            connected: true,
            sent: 50,
            dropped: 0
        }
    );
    log.close().await;
    assert_eq!(got, all_lines(&dir));
    let ids: Vec<String> = got
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["requestID"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, (0..50).map(|i| format!("req-{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_listener_the_files_get_everything_and_the_copy_resumes_once_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens at this path yet: connecting fails at once.
    let path = tmp.path().join("later.sock");
    let dir = tmp.path().join("audit");
    let log = open(&dir, AuditSocket::Unix(path.clone()));
    for i in 0..5 {
        log.append(record(i)).await.unwrap();
    }
    let s = wait_for(&log, |s| s.dropped == 5);
    assert_eq!(
        s,
        SocketSnapshot {
            connected: false,
            sent: 0,
            dropped: 5
        }
    );
    assert_eq!(all_lines(&dir).len(), 5, "the files miss nothing");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    // The next attempt comes with the first batch a second or more after the last; until then
    // batches are dropped.
    let until = Instant::now() + PATIENCE;
    let mut i = 5;
    let conn = loop {
        log.append(record(i)).await.unwrap();
        i += 1;
        if let Ok((conn, _)) = listener.accept() {
            break conn;
        }
        assert!(Instant::now() < until, "no reconnection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    conn.set_nonblocking(false).unwrap();
    log.append(record(i)).await.unwrap();
    let s = wait_for(&log, |s| s.sent + s.dropped == i + 1);
    assert!(s.connected && s.sent >= 1, "{s:?}");
    let sent = s.sent as usize;
    let got = tokio::task::spawn_blocking(move || read_lines(conn, sent))
        .await
        .unwrap();
    log.close().await;
    let all = all_lines(&dir);
    assert_eq!(all.len() as u64, i + 1);
    // What was sent is the end of the log, line for line.
    assert_eq!(got, all[all.len() - sent..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_receiver_that_goes_away_costs_the_copy_only() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir, AuditSocket::Tcp(addr.to_string()));
    log.append(record(0)).await.unwrap();
    let (conn, _) = listener.accept().unwrap();
    wait_for(&log, |s| s.sent == 1);
    drop(conn);
    drop(listener);
    // Writes to a closed peer fail (at the latest the second one, after the reset).
    for i in 1..20 {
        log.append(record(i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = wait_for(&log, |s| s.sent + s.dropped == 20 && !s.connected);
    assert!(s.dropped >= 1, "{s:?}");
    assert!(log.is_healthy());
    log.close().await;
    assert_eq!(all_lines(&dir).len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_reads_holds_up_neither_requests_nor_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("stuck.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let dir = tmp.path().join("audit");
    // A small queue, so that it fills: past that, batches must be dropped, not waited for.
    let small = SocketQueue {
        batches: 4,
        bytes: 64 * 1024,
    };
    let log = open_with(&dir, AuditSocket::Unix(path), small);
    let _held = accept(&listener);
    // Far more than the socket buffers and the queue hold: the sender blocks, while requests go
    // on at the pace of the disk. A writer that waited on the socket would wait 2 s (the send
    // limit) for some append.
    let big = "x".repeat(16 * 1024);
    let mut slowest = Duration::ZERO;
    for i in 0..300 {
        let mut r = record(i);
        r.insert("pad".into(), json!(big));
        let started = Instant::now();
        log.append(r).await.unwrap();
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "an append waited on the socket: {slowest:?}"
    );
    assert!(
        log.stats().socket.unwrap().dropped > 0,
        "the queue never filled"
    );
    let closing = Instant::now();
    log.close().await;
    // STOP_WITHIN (2 s) for the queue, and a send in progress gives up within 2 s.
    assert!(
        closing.elapsed() < Duration::from_secs(6),
        "close took {:?}",
        closing.elapsed()
    );
    // Every record is accounted for: sent or dropped, once.
    wait_for(&log, |s| s.sent + s.dropped == 300);
    assert_eq!(all_lines(&dir).len(), 300, "the files miss nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_reads_a_trickle_cannot_keep_the_copy_on_one_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("slow.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir, AuditSocket::Unix(path));
    let mut conn = accept(&listener);
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Reads 1 KiB every 50 ms: progress, but a 4 MiB batch would take minutes.
    let reading = std::thread::spawn({
        let done = done.clone();
        move || {
            use std::io::Read;
            let mut buf = [0u8; 1024];
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    });
    let mut r = record(0);
    r.insert("pad".into(), json!("y".repeat(4 * 1024 * 1024)));
    log.append(r).await.unwrap();
    // Given up within the 2 s limit for the batch, not after the receiver's minutes.
    let s = wait_for(&log, |s| s.dropped == 1);
    assert_eq!((s.sent, s.connected), (0, false), "{s:?}");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    log.close().await;
    reading.join().unwrap();
    assert_eq!(all_lines(&dir).len(), 1);
}

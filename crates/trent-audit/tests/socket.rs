//! The copy of the log sent to a socket (`--audit-socket`): every durable line arrives, byte for
//! byte as in the files and in order; while the socket is gone the files still get everything,
//! the copy drops and counts, and it reconnects.

use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};
use trent_audit::{AuditConfig, AuditKeySpec, AuditLog, AuditSigner, AuditSocket, SocketSnapshot};

fn record(i: u64) -> Map<String, Value> {
    json!({"eventName": "Encrypt", "requestID": format!("req-{i}")})
        .as_object()
        .unwrap()
        .clone()
}

fn open(dir: &Path, socket: AuditSocket) -> AuditLog {
    let mut c = AuditConfig::new(dir.to_path_buf(), "test-node");
    c.socket = Some(socket);
    AuditLog::open(c, AuditSigner::generate(AuditKeySpec::Ed25519).unwrap().0).unwrap()
}

/// Every line of the log's files, in order.
fn file_lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Read `n` lines from `reader`, failing after 10 s.
fn read_lines(reader: &mut impl BufRead, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.ends_with('\n'), "a line cut short: {line:?}");
            line.trim_end_matches('\n').to_string()
        })
        .collect()
}

fn wait_for(log: &AuditLog, what: impl Fn(SocketSnapshot) -> bool) -> SocketSnapshot {
    let until = Instant::now() + Duration::from_secs(10);
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
    for i in 0..50 {
        log.append(record(i)).await.unwrap();
    }
    let (conn, _) = listener.accept().unwrap();
    let got = tokio::task::spawn_blocking(move || read_lines(&mut BufReader::new(conn), 50))
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
    assert_eq!(got, file_lines(&dir));
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
async fn without_a_listener_the_files_get_everything_and_the_copy_catches_up_once_it_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    // Bound once to learn a free port, then closed: nothing listens there for now.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tmp.path().join("audit");
    let log = open(&dir, AuditSocket::Tcp(addr.to_string()));
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
    assert_eq!(file_lines(&dir).len(), 5, "the files miss nothing");
    let listener = TcpListener::bind(addr).unwrap();
    // The next attempt comes at most a second after the last; until then batches are dropped.
    let accepted = std::thread::spawn(move || listener.accept().unwrap().0);
    let mut i = 5;
    while !accepted.is_finished() {
        log.append(record(i)).await.unwrap();
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conn = accepted.join().unwrap();
    log.append(record(i)).await.unwrap();
    let s = wait_for(&log, |s| s.sent + s.dropped == i + 1);
    assert!(s.connected && s.sent >= 1, "{s:?}");
    let sent = s.sent as usize;
    let got = tokio::task::spawn_blocking(move || read_lines(&mut BufReader::new(conn), sent))
        .await
        .unwrap();
    log.close().await;
    let all = file_lines(&dir);
    assert_eq!(all.len() as u64, i + 1);
    // What was sent is the end of the log, line for line.
    assert_eq!(got, all[all.len() - sent..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_goes_away_costs_the_copy_only() {
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
    assert_eq!(file_lines(&dir).len(), 20);
}

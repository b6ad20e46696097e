//! `SqliteStore` on a real file: migrations, durability across reopen, several handles, and
//! acknowledged writes surviving `kill -9`.

use std::path::Path;
use trent_store::{
    KeyRow, MaterialRow, Scope, Snapshot, SqliteStore, Store, StoreError, Transaction, Write,
};

fn s1() -> Scope {
    Scope {
        account: "111122223333".into(),
        region: "us-east-1".into(),
    }
}

fn key(key_id: &str, version: i64) -> KeyRow {
    KeyRow {
        scope: s1(),
        key_id: key_id.to_string(),
        version,
        doc: format!("{{\"id\":\"{key_id}\",\"v\":{version}}}"),
    }
}

fn insert(key_id: &str) -> Transaction {
    Transaction::new().push(Write::PutKey {
        row: key(key_id, 1),
        expected_version: None,
    })
}

/// Applied migrations, as recorded in the file.
fn migrations(path: &Path) -> Vec<i64> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<i64>, _>>()
        .unwrap()
}

#[tokio::test]
async fn open_requires_existing_parent_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("trent.db");
    let e = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(e.to_string().contains("trent.db"), "{e}");
    assert!(!path.exists());
}

/// The database and the `-wal` and `-shm` files SQLite makes next to it are the owner's alone,
/// whatever the process's umask (the test runner's is usually 022).
#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_wal_and_shm_files_are_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let store = SqliteStore::open(&path).unwrap();
    store.apply(insert("k1")).await.unwrap();
    for name in ["trent.db", "trent.db-wal", "trent.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
    }
}

/// Opening (and closing) a store that is up to date writes nothing: a start refused after it
/// opened the store (a missing root key, a passphrase needed) leaves the file byte for byte.
#[tokio::test]
async fn reopening_an_up_to_date_store_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let store = SqliteStore::open(&path).unwrap();
    store.apply(insert("k1")).await.unwrap();
    drop(store);
    let before = std::fs::read(&path).unwrap();
    drop(SqliteStore::open(&path).unwrap());
    assert!(std::fs::read(&path).unwrap() == before, "the file changed");
    assert!(!dir.path().join("trent.db-wal").exists());
}

#[tokio::test]
async fn file_is_created_in_wal_mode_with_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    assert!(!path.exists());
    let _store = SqliteStore::open(&path).unwrap();
    assert!(path.exists());

    let c = rusqlite::Connection::open(&path).unwrap();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut st = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "aliases",
            "grants",
            "identity_policies",
            "key_usage",
            "keys",
            "leases",
            "materials",
            "principals",
            "schema_migrations",
            "settings"
        ]
    );
    assert_eq!(migrations(&path), vec![1, 2, 3]);
    let user_version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(user_version, 3);
}

#[tokio::test]
async fn legacy_user_version_file_is_adopted() {
    // The layout of the first development builds: schema version only in `user_version`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE keys (account TEXT NOT NULL, region TEXT NOT NULL, key_id TEXT NOT NULL,
                version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (account, region, key_id));
             CREATE TABLE materials (account TEXT NOT NULL, region TEXT NOT NULL,
                key_id TEXT NOT NULL, material_id TEXT NOT NULL, wrapped BLOB NOT NULL,
                created_at INTEGER NOT NULL, PRIMARY KEY (account, region, key_id, material_id));
             CREATE TABLE aliases (account TEXT NOT NULL, region TEXT NOT NULL,
                alias_name TEXT NOT NULL, key_id TEXT NOT NULL, created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL, PRIMARY KEY (account, region, alias_name));
             CREATE TABLE principals (access_key_id TEXT PRIMARY KEY, arn TEXT NOT NULL,
                account TEXT NOT NULL, wrapped_secret BLOB NOT NULL, created_at INTEGER NOT NULL);
             CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);
             INSERT INTO keys VALUES ('111122223333', 'us-east-1', 'old', 3, 'doc');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(migrations(&path), vec![1, 2, 3]);
    assert_eq!(
        store.load_all().await.unwrap().keys,
        vec![KeyRow {
            scope: s1(),
            key_id: "old".into(),
            version: 3,
            doc: "doc".into(),
        }]
    );
    drop(store);
    let _again = SqliteStore::open(&path).unwrap();
    assert_eq!(migrations(&path), vec![1, 2, 3]);
}

#[tokio::test]
async fn reopen_is_durable_and_migrations_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let m = MaterialRow {
        scope: s1(),
        key_id: "k1".into(),
        material_id: "ab".repeat(32),
        wrapped: vec![1, 2, 3, 0, 255],
        created_at: 1_700_000_000,
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .apply(insert("k1").push(Write::PutMaterial(m.clone())))
            .await
            .unwrap();
        store.put_setting("s", b"v").await.unwrap();
    }
    for round in 0..3 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(migrations(&path), vec![1, 2, 3], "round {round}");
        assert_eq!(
            store.load_all().await.unwrap(),
            Snapshot {
                keys: vec![key("k1", 1)],
                materials: vec![m.clone()],
                aliases: vec![],
                grants: vec![],
                usage: vec![],
            }
        );
        assert_eq!(store.get_setting("s").await.unwrap(), Some(b"v".to_vec()));
    }
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)",
            [],
        )
        .unwrap();
    }
    let e = SqliteStore::open(&path).unwrap_err();
    match e {
        StoreError::Backend(msg) => assert!(msg.contains("99"), "{msg}"),
        other => panic!("expected Backend, got {other:?}"),
    }
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    assert_eq!(migrations(&path), vec![1, 2, 3]);

    a.apply(insert("from-a")).await.unwrap();
    assert_eq!(b.load_all().await.unwrap().keys, vec![key("from-a", 1)]);

    b.apply(Transaction::new().push(Write::PutKey {
        row: key("from-a", 2),
        expected_version: Some(1),
    }))
    .await
    .unwrap();
    assert_eq!(a.load_all().await.unwrap().keys, vec![key("from-a", 2)]);

    // A's view is stale: its optimistic update conflicts.
    let e = a
        .apply(Transaction::new().push(Write::PutKey {
            row: key("from-a", 2),
            expected_version: Some(1),
        }))
        .await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");

    b.put_setting("x", b"1").await.unwrap();
    assert_eq!(a.get_setting("x").await.unwrap(), Some(b"1".to_vec()));
    a.reset().await.unwrap();
    assert_eq!(b.load_all().await.unwrap(), Snapshot::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_write_concurrently_without_busy_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    const N: usize = 40;
    let run = |store: SqliteStore, prefix: &'static str| {
        tokio::spawn(async move {
            for i in 0..N {
                store
                    .apply(insert(&format!("{prefix}-{i:03}")))
                    .await
                    .unwrap();
            }
        })
    };
    let (ra, rb) = tokio::join!(run(a.clone(), "a"), run(b.clone(), "b"));
    ra.unwrap();
    rb.unwrap();
    let keys = a.load_all().await.unwrap().keys;
    assert_eq!(keys.len(), 2 * N);
    assert_eq!(keys, b.load_all().await.unwrap().keys);
    assert_eq!(keys[0].key_id, "a-000");
    assert_eq!(keys[2 * N - 1].key_id, format!("b-{:03}", N - 1));
}

/// The child side of `acknowledged_writes_survive_kill_9`: when `TRENT_STORE_CRASH_DB` is set,
/// insert keys forever, printing `ack N` after each acknowledged transaction.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var("TRENT_STORE_CRASH_DB") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use std::io::Write as _;
        let store = SqliteStore::open(Path::new(&path)).unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0.. {
            store
                .apply(
                    insert(&format!("k{i:06}")).push(Write::PutMaterial(MaterialRow {
                        scope: s1(),
                        key_id: format!("k{i:06}"),
                        material_id: format!("{i:064x}"),
                        wrapped: vec![i as u8; 48],
                        created_at: i,
                    })),
                )
                .await
                .unwrap();
            writeln!(out, "ack {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[cfg(unix)]
#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TRENT_STORE_CRASH_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_ack = None;
    // Keep the pipe open until the child is dead, so it is killed mid-write and not by EPIPE.
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            let n: i64 = n.parse().unwrap();
            last_ack = Some(n);
            if n >= 60 {
                break;
            }
        }
    }
    // SIGKILL, mid-stream: the child is still writing.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    drop(lines);
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    let last_ack = last_ack.expect("child acknowledged nothing");
    assert!(last_ack >= 60);

    let store = SqliteStore::open(&path).unwrap();
    let snap = store.load_all().await.unwrap();
    // Every acknowledged transaction is there, whole; at most the one in flight may also be.
    let acked = (last_ack + 1) as usize;
    assert!(
        snap.keys.len() == acked || snap.keys.len() == acked + 1,
        "{} keys after {acked} acks",
        snap.keys.len()
    );
    assert_eq!(snap.materials.len(), snap.keys.len());
    for (i, (k, m)) in snap.keys.iter().zip(&snap.materials).enumerate() {
        assert_eq!(k.key_id, format!("k{i:06}"));
        assert_eq!(m.key_id, k.key_id);
        assert_eq!(m.wrapped, vec![i as u8; 48]);
    }
}

/// Two nodes on one store file: only one holds a lease at a time; it passes on when it expires
/// or is released, and the holder may renew it.
#[tokio::test]
async fn a_lease_has_one_holder_at_a_time_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    assert!(
        a.try_lease("scheduler", "node-a", 1_000, 500)
            .await
            .unwrap()
    );
    assert!(
        !b.try_lease("scheduler", "node-b", 1_200, 500)
            .await
            .unwrap()
    );
    // Renewal by the holder moves the expiry on.
    assert!(
        a.try_lease("scheduler", "node-a", 1_400, 500)
            .await
            .unwrap()
    );
    assert!(
        !b.try_lease("scheduler", "node-b", 1_600, 500)
            .await
            .unwrap()
    );
    // Expired (1_400 + 500): the other node takes it, and the first no longer holds it.
    assert!(
        b.try_lease("scheduler", "node-b", 1_900, 500)
            .await
            .unwrap()
    );
    assert!(
        !a.try_lease("scheduler", "node-a", 2_000, 500)
            .await
            .unwrap()
    );
    // Another lease name is independent.
    assert!(a.try_lease("other", "node-a", 2_000, 500).await.unwrap());
    // Released by a non-holder: nothing changes; by the holder: free at once.
    a.release_lease("scheduler", "node-a").await.unwrap();
    assert!(
        !a.try_lease("scheduler", "node-a", 2_100, 500)
            .await
            .unwrap()
    );
    b.release_lease("scheduler", "node-b").await.unwrap();
    assert!(
        a.try_lease("scheduler", "node-a", 2_100, 500)
            .await
            .unwrap()
    );
}

/// Many handles racing for a free lease: exactly one wins.
#[tokio::test]
async fn racing_for_a_free_lease_has_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let stores: Vec<SqliteStore> = (0..6).map(|_| SqliteStore::open(&path).unwrap()).collect();
    let mut tasks = Vec::new();
    for (i, s) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            s.try_lease("scheduler", &format!("node-{i}"), 10_000, 60_000)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
}

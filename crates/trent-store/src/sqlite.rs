//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so that every
//! acknowledged write is in the database file (or its WAL) and fsynced before the call returns:
//! it survives `kill -9` of the process and a power cut.
//!
//! One [`rusqlite::Connection`] per [`SqliteStore`] lives behind a mutex; the async methods run
//! the blocking SQLite work on tokio's blocking pool. Several processes (the server and an admin
//! command) may open the same file: every write takes SQLite's write lock up front
//! (`BEGIN IMMEDIATE`) and waits up to [`BUSY_TIMEOUT`] for it.

use crate::{
    AliasRow, GrantRow, IdentityPolicyRow, KeyRow, KeyUsageRow, MaterialRow, PrincipalRow, Scope,
    Snapshot, Store, StoreError, Transaction, Write,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a statement waits for another connection's lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The ordered schema migrations. Migration `n` (1-based) is `MIGRATIONS[n - 1]`; the versions
/// applied are recorded in `schema_migrations` (the latest also in `PRAGMA user_version`).
/// Never edit a released migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE keys (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        key_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account, region, key_id)
    ) STRICT;
    CREATE TABLE materials (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        key_id TEXT NOT NULL,
        material_id TEXT NOT NULL,
        wrapped BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (account, region, key_id, material_id)
    ) STRICT;
    CREATE TABLE aliases (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        alias_name TEXT NOT NULL,
        key_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (account, region, alias_name)
    ) STRICT;
    CREATE INDEX aliases_by_key ON aliases (account, region, key_id);
    CREATE TABLE principals (
        access_key_id TEXT NOT NULL PRIMARY KEY,
        arn TEXT NOT NULL,
        account TEXT NOT NULL,
        wrapped_secret BLOB NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE settings (
        name TEXT NOT NULL PRIMARY KEY,
        value BLOB NOT NULL
    ) STRICT;",
    // 2: grants and identity policies (access control).
    "CREATE TABLE grants (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        key_id TEXT NOT NULL,
        grant_id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account, region, key_id, grant_id)
    ) STRICT;
    CREATE TABLE identity_policies (
        arn TEXT NOT NULL,
        name TEXT NOT NULL,
        document TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (arn, name)
    ) STRICT;",
    // 3: leases for scheduled work, and the last use of each key.
    "CREATE TABLE leases (
        name TEXT NOT NULL PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE key_usage (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        key_id TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (account, region, key_id)
    ) STRICT;",
];

/// The schema version this build creates and understands.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The embedded SQLite store. Cloning it shares the same connection.
///
/// [`Store::load_all`] returns keys, materials and aliases sorted by their primary keys
/// (account, region, then key id / material id / alias name); [`Store::list_principals`] sorts
/// by access key id.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    /// `None` for an in-memory database.
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only where the data lives; never a row.
        let mut d = f.debug_struct("SqliteStore");
        match &self.inner.path {
            Some(p) => d.field("path", p),
            None => d.field("path", &":memory:"),
        };
        d.finish_non_exhaustive()
    }
}

/// Maps a rusqlite error to [`StoreError::Backend`], saying what was being done. rusqlite's
/// messages carry SQLite's error text, codes, column names and types, never bound values.
fn backend(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("{context}: {e}"))
}

fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Make `path` as an empty file only its owner may read and write, unless it exists.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl SqliteStore {
    /// Opens (creating it if missing, mode 0600) the database file at `path` and runs pending
    /// migrations. The parent directory must exist. SQLite gives the `-wal` and `-shm` files the
    /// database file's mode.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_private_file(path).map_err(|e| {
            StoreError::Backend(format!("{}: creating database: {e}", path.display()))
        })?;
        // No SQLITE_OPEN_URI: the path is a path, never a `file:` URI with options.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags(path, flags)
            .map_err(backend("opening database"))
            .and_then(|conn| Self::init(conn, Some(path.to_path_buf())))
            .map_err(|e| match e {
                StoreError::Backend(m) => StoreError::Backend(format!("{}: {m}", path.display())),
                e => e,
            })
    }

    /// A private in-memory database (nothing touches the disk; gone when the last clone drops).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend("opening in-memory database"))?;
        Self::init(conn, None)
    }

    /// Where the database lives; `None` for an in-memory one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(backend("setting busy timeout"))?;
        if path.is_some() {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .map_err(backend("enabling WAL"))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Backend(format!(
                    "enabling WAL: the database stayed in journal mode {mode:?}"
                )));
            }
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend("setting synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend("enabling foreign keys"))?;
        // Overwrite deleted rows (wrapped material of deleted keys) instead of leaving them in
        // free pages.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(backend("enabling secure_delete"))?;
        migrate(&mut conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
            }),
        })
    }

    /// Runs `f` on the connection on tokio's blocking pool.
    async fn with<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&mut inner.conn.lock()))
            .await
            .map_err(|e| {
                // Not the panic payload: it is arbitrary text.
                StoreError::Backend(if e.is_panic() {
                    "storage task panicked".to_string()
                } else {
                    "storage task cancelled".to_string()
                })
            })?
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction, committing if it returns `Ok`; any
    /// error rolls everything back.
    async fn write_tx<R, F>(&self, what: &'static str, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.with(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend(what))?;
            let r = f(&tx)?; // dropping `tx` rolls back
            tx.commit().map_err(backend(what))?;
            Ok(r)
        })
        .await
    }
}

/// Applies the pending migrations in one immediate transaction, so that two processes opening
/// the same new file at once do not both run them.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    const CTX: &str = "migrating schema";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend(CTX))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER NOT NULL PRIMARY KEY,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )
    .map_err(backend(CTX))?;
    let mut current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(backend(CTX))?;
    if current == 0 {
        // Files made by the first development builds recorded their version only in
        // `PRAGMA user_version`: adopt it.
        let legacy: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend(CTX))?;
        for version in 1..=legacy.min(SCHEMA_VERSION) {
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, now_epoch()],
            )
            .map_err(backend(CTX))?;
        }
        current = legacy;
    }
    if current > SCHEMA_VERSION {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this build supports ({SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Backend(format!("{CTX}: migration {version}: {e}")))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now_epoch()],
        )
        .map_err(backend(CTX))?;
    }
    // Mirrored for tools that look at the header (`sqlite3 trent.db 'PRAGMA user_version'`).
    // Only when it changes: setting it rewrites the header, and opening a store that is up to
    // date writes nothing (a start refused after opening leaves the file as it was).
    let header: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend(CTX))?;
    if header != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend(CTX))?;
    }
    tx.commit().map_err(backend(CTX))
}

fn apply_write(tx: &rusqlite::Transaction<'_>, w: &Write) -> Result<(), StoreError> {
    const CTX: &str = "applying transaction";
    match w {
        Write::PutKey {
            row,
            expected_version,
        } => {
            let s = &row.scope;
            match expected_version {
                None => {
                    let n = tx
                        .execute(
                            "INSERT INTO keys (account, region, key_id, version, doc)
                             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                            params![s.account, s.region, row.key_id, row.version, row.doc],
                        )
                        .map_err(backend(CTX))?;
                    if n == 0 {
                        return Err(StoreError::Conflict(format!(
                            "key {} already exists in {}/{}",
                            row.key_id, s.account, s.region
                        )));
                    }
                }
                Some(expected) => {
                    let n = tx
                        .execute(
                            "UPDATE keys SET version = ?4, doc = ?5
                             WHERE account = ?1 AND region = ?2 AND key_id = ?3 AND version = ?6",
                            params![
                                s.account,
                                s.region,
                                row.key_id,
                                row.version,
                                row.doc,
                                expected
                            ],
                        )
                        .map_err(backend(CTX))?;
                    if n == 0 {
                        return Err(StoreError::Conflict(format!(
                            "key {} in {}/{} is missing or not at version {expected}",
                            row.key_id, s.account, s.region
                        )));
                    }
                }
            }
        }
        Write::DeleteKey { scope, key_id } => {
            for sql in [
                "DELETE FROM aliases WHERE account = ?1 AND region = ?2 AND key_id = ?3",
                "DELETE FROM grants WHERE account = ?1 AND region = ?2 AND key_id = ?3",
                "DELETE FROM key_usage WHERE account = ?1 AND region = ?2 AND key_id = ?3",
                "DELETE FROM materials WHERE account = ?1 AND region = ?2 AND key_id = ?3",
                "DELETE FROM keys WHERE account = ?1 AND region = ?2 AND key_id = ?3",
            ] {
                tx.execute(sql, params![scope.account, scope.region, key_id])
                    .map_err(backend(CTX))?;
            }
        }
        Write::PutMaterial(m) => {
            let n = tx
                .execute(
                    "INSERT INTO materials (account, region, key_id, material_id, wrapped, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                    params![
                        m.scope.account,
                        m.scope.region,
                        m.key_id,
                        m.material_id,
                        m.wrapped,
                        m.created_at
                    ],
                )
                .map_err(backend(CTX))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "material {} of key {} already exists",
                    m.material_id, m.key_id
                )));
            }
        }
        Write::PutAlias { row, replace } => {
            let s = &row.scope;
            if *replace {
                let n = tx
                    .execute(
                        "UPDATE aliases SET key_id = ?4, updated_at = ?5
                         WHERE account = ?1 AND region = ?2 AND alias_name = ?3",
                        params![
                            s.account,
                            s.region,
                            row.alias_name,
                            row.key_id,
                            row.updated_at
                        ],
                    )
                    .map_err(backend(CTX))?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "alias {} does not exist in {}/{}",
                        row.alias_name, s.account, s.region
                    )));
                }
            } else {
                let n = tx
                    .execute(
                        "INSERT INTO aliases (account, region, alias_name, key_id, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                        params![
                            s.account,
                            s.region,
                            row.alias_name,
                            row.key_id,
                            row.created_at,
                            row.updated_at
                        ],
                    )
                    .map_err(backend(CTX))?;
                if n == 0 {
                    return Err(StoreError::AliasExists(row.alias_name.clone()));
                }
            }
        }
        Write::DeleteAlias { scope, alias_name } => {
            tx.execute(
                "DELETE FROM aliases WHERE account = ?1 AND region = ?2 AND alias_name = ?3",
                params![scope.account, scope.region, alias_name],
            )
            .map_err(backend(CTX))?;
        }
        Write::PutGrant(g) => {
            let n = tx
                .execute(
                    "INSERT INTO grants (account, region, key_id, grant_id, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![g.scope.account, g.scope.region, g.key_id, g.grant_id, g.doc],
                )
                .map_err(backend(CTX))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "grant {} of key {} already exists",
                    g.grant_id, g.key_id
                )));
            }
        }
        Write::DeleteMaterial {
            scope,
            key_id,
            material_id,
        } => {
            tx.execute(
                "DELETE FROM materials
                 WHERE account = ?1 AND region = ?2 AND key_id = ?3 AND material_id = ?4",
                params![scope.account, scope.region, key_id, material_id],
            )
            .map_err(backend(CTX))?;
        }
        Write::PutKeyUsage(u) => {
            // Only for a key that still exists: a late flush must not outlive its key.
            tx.execute(
                "INSERT INTO key_usage (account, region, key_id, doc)
                 SELECT ?1, ?2, ?3, ?4 WHERE EXISTS
                   (SELECT 1 FROM keys WHERE account = ?1 AND region = ?2 AND key_id = ?3)
                 ON CONFLICT (account, region, key_id) DO UPDATE SET doc = excluded.doc",
                params![u.scope.account, u.scope.region, u.key_id, u.doc],
            )
            .map_err(backend(CTX))?;
        }
        Write::DeleteGrant {
            scope,
            key_id,
            grant_id,
        } => {
            tx.execute(
                "DELETE FROM grants
                 WHERE account = ?1 AND region = ?2 AND key_id = ?3 AND grant_id = ?4",
                params![scope.account, scope.region, key_id, grant_id],
            )
            .map_err(backend(CTX))?;
        }
    }
    Ok(())
}

fn scope_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Scope> {
    Ok(Scope {
        account: r.get(0)?,
        region: r.get(1)?,
    })
}

fn principal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PrincipalRow> {
    Ok(PrincipalRow {
        access_key_id: r.get(0)?,
        arn: r.get(1)?,
        account: r.get(2)?,
        wrapped_secret: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn grant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok(GrantRow {
        scope: scope_of(r)?,
        key_id: r.get(2)?,
        grant_id: r.get(3)?,
        doc: r.get(4)?,
    })
}

fn query_all<T>(
    c: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ctx: &str,
) -> Result<Vec<T>, StoreError> {
    c.prepare(sql)
        .map_err(backend(ctx))?
        .query_map([], f)
        .map_err(backend(ctx))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend(ctx))
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_all(&self) -> Result<Snapshot, StoreError> {
        self.with(|c| {
            const CTX: &str = "loading snapshot";
            // One read transaction: the three reads see the same state even if another process
            // writes in between.
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(backend(CTX))?;
            let keys = query_all(
                &tx,
                "SELECT account, region, key_id, version, doc FROM keys
                 ORDER BY account, region, key_id",
                |r| {
                    Ok(KeyRow {
                        scope: scope_of(r)?,
                        key_id: r.get(2)?,
                        version: r.get(3)?,
                        doc: r.get(4)?,
                    })
                },
                CTX,
            )?;
            let materials = query_all(
                &tx,
                "SELECT account, region, key_id, material_id, wrapped, created_at FROM materials
                 ORDER BY account, region, key_id, material_id",
                |r| {
                    Ok(MaterialRow {
                        scope: scope_of(r)?,
                        key_id: r.get(2)?,
                        material_id: r.get(3)?,
                        wrapped: r.get(4)?,
                        created_at: r.get(5)?,
                    })
                },
                CTX,
            )?;
            let aliases = query_all(
                &tx,
                "SELECT account, region, alias_name, key_id, created_at, updated_at FROM aliases
                 ORDER BY account, region, alias_name",
                |r| {
                    Ok(AliasRow {
                        scope: scope_of(r)?,
                        alias_name: r.get(2)?,
                        key_id: r.get(3)?,
                        created_at: r.get(4)?,
                        updated_at: r.get(5)?,
                    })
                },
                CTX,
            )?;
            let grants = query_all(
                &tx,
                "SELECT account, region, key_id, grant_id, doc FROM grants
                 ORDER BY account, region, key_id, grant_id",
                grant_row,
                CTX,
            )?;
            let usage = query_all(
                &tx,
                "SELECT account, region, key_id, doc FROM key_usage
                 ORDER BY account, region, key_id",
                |r| {
                    Ok(KeyUsageRow {
                        scope: scope_of(r)?,
                        key_id: r.get(2)?,
                        doc: r.get(3)?,
                    })
                },
                CTX,
            )?;
            tx.commit().map_err(backend(CTX))?;
            Ok(Snapshot {
                keys,
                materials,
                aliases,
                grants,
                usage,
            })
        })
        .await
    }

    async fn apply(&self, tx: Transaction) -> Result<(), StoreError> {
        self.write_tx("applying transaction", move |t| {
            tx.writes.iter().try_for_each(|w| apply_write(t, w))
        })
        .await
    }

    async fn get_principal(&self, access_key_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let id = access_key_id.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT access_key_id, arn, account, wrapped_secret, created_at FROM principals
                 WHERE access_key_id = ?1",
                params![id],
                principal_row,
            )
            .optional()
            .map_err(backend("reading principal"))
        })
        .await
    }

    async fn list_principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        self.with(|c| {
            query_all(
                c,
                "SELECT access_key_id, arn, account, wrapped_secret, created_at FROM principals
                 ORDER BY access_key_id",
                principal_row,
                "listing principals",
            )
        })
        .await
    }

    async fn put_principal(&self, row: PrincipalRow) -> Result<(), StoreError> {
        self.write_tx("inserting principal", move |t| {
            let n = t
                .execute(
                    "INSERT INTO principals (access_key_id, arn, account, wrapped_secret, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![
                        row.access_key_id,
                        row.arn,
                        row.account,
                        row.wrapped_secret,
                        row.created_at
                    ],
                )
                .map_err(backend("inserting principal"))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "access key id {} already exists",
                    row.access_key_id
                )));
            }
            Ok(())
        })
        .await
    }

    async fn delete_principal(&self, access_key_id: &str) -> Result<bool, StoreError> {
        let id = access_key_id.to_owned();
        self.write_tx("deleting principal", move |t| {
            t.execute(
                "DELETE FROM principals WHERE access_key_id = ?1",
                params![id],
            )
            .map(|n| n > 0)
            .map_err(backend("deleting principal"))
        })
        .await
    }

    async fn get_grant(
        &self,
        scope: &Scope,
        key_id: &str,
        grant_id: &str,
    ) -> Result<Option<GrantRow>, StoreError> {
        let (scope, key_id, grant_id) = (scope.clone(), key_id.to_owned(), grant_id.to_owned());
        self.with(move |c| {
            c.query_row(
                "SELECT account, region, key_id, grant_id, doc FROM grants
                 WHERE account = ?1 AND region = ?2 AND key_id = ?3 AND grant_id = ?4",
                params![scope.account, scope.region, key_id, grant_id],
                grant_row,
            )
            .optional()
            .map_err(backend("reading grant"))
        })
        .await
    }

    async fn list_identity_policies(&self) -> Result<Vec<IdentityPolicyRow>, StoreError> {
        self.with(|c| {
            query_all(
                c,
                "SELECT arn, name, document, updated_at FROM identity_policies ORDER BY arn, name",
                |r| {
                    Ok(IdentityPolicyRow {
                        arn: r.get(0)?,
                        name: r.get(1)?,
                        document: r.get(2)?,
                        updated_at: r.get(3)?,
                    })
                },
                "listing identity policies",
            )
        })
        .await
    }

    async fn put_identity_policy(&self, row: IdentityPolicyRow) -> Result<(), StoreError> {
        self.write_tx("writing identity policy", move |t| {
            t.execute(
                "INSERT INTO identity_policies (arn, name, document, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (arn, name) DO UPDATE
                 SET document = excluded.document, updated_at = excluded.updated_at",
                params![row.arn, row.name, row.document, row.updated_at],
            )
            .map(|_| ())
            .map_err(backend("writing identity policy"))
        })
        .await
    }

    async fn delete_identity_policy(&self, arn: &str, name: &str) -> Result<bool, StoreError> {
        let (arn, name) = (arn.to_owned(), name.to_owned());
        self.write_tx("deleting identity policy", move |t| {
            t.execute(
                "DELETE FROM identity_policies WHERE arn = ?1 AND name = ?2",
                params![arn, name],
            )
            .map(|n| n > 0)
            .map_err(backend("deleting identity policy"))
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT value FROM settings WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend("reading setting"))
        })
        .await
    }

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write_tx("writing setting", move |t| {
            t.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map(|_| ())
            .map_err(backend("writing setting"))
        })
        .await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write_tx("taking lease", move |t| {
            // Taken when free, expired, or already ours (renewal); one statement under the
            // write lock, so two takers cannot both win.
            t.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                                                  expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
                params![name, holder, now_ms.saturating_add(ttl_ms), now_ms],
            )
            .map(|n| n > 0)
            .map_err(backend("taking lease"))
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write_tx("releasing lease", move |t| {
            t.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .map(|_| ())
            .map_err(backend("releasing lease"))
        })
        .await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.write_tx("resetting store", |t| {
            t.execute_batch(
                "DELETE FROM grants; DELETE FROM aliases; DELETE FROM materials; DELETE FROM keys;
                 DELETE FROM key_usage;",
            )
            .map_err(backend("resetting store"))
        })
        .await
    }
}

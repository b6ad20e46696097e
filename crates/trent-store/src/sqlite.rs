//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`, so that every
//! acknowledged transaction survives `kill -9` and a power cut.

use crate::{
    AliasRow, KeyRow, MaterialRow, PrincipalRow, Scope, Snapshot, Store, StoreError, Transaction,
    Write,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Ordered schema migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &["CREATE TABLE keys (
        account TEXT NOT NULL, region TEXT NOT NULL, key_id TEXT NOT NULL,
        version INTEGER NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (account, region, key_id));
     CREATE TABLE materials (
        account TEXT NOT NULL, region TEXT NOT NULL, key_id TEXT NOT NULL,
        material_id TEXT NOT NULL, wrapped BLOB NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (account, region, key_id, material_id));
     CREATE TABLE aliases (
        account TEXT NOT NULL, region TEXT NOT NULL, alias_name TEXT NOT NULL,
        key_id TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        PRIMARY KEY (account, region, alias_name));
     CREATE INDEX aliases_by_key ON aliases (account, region, key_id);
     CREATE TABLE principals (
        access_key_id TEXT PRIMARY KEY, arn TEXT NOT NULL, account TEXT NOT NULL,
        wrapped_secret BLOB NOT NULL, created_at INTEGER NOT NULL);
     CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);"];

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path` and run pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        Self::init(conn)
    }

    /// A private in-memory database (nothing touches the disk).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(backend)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let done: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done.max(0) as usize) {
            tx.execute_batch(sql).map_err(backend)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Run `f` on the connection off the async threads.
    async fn with<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&mut conn.lock()))
            .await
            .map_err(|e| StoreError::Backend(format!("storage task failed: {e}")))?
    }
}

fn apply_write(tx: &rusqlite::Transaction<'_>, w: &Write) -> Result<(), StoreError> {
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
                            "INSERT OR IGNORE INTO keys (account, region, key_id, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![s.account, s.region, row.key_id, row.version, row.doc],
                        )
                        .map_err(backend)?;
                    if n == 0 {
                        return Err(StoreError::Conflict(format!(
                            "key {} already exists",
                            row.key_id
                        )));
                    }
                }
                Some(expected) => {
                    let n = tx
                        .execute(
                            "UPDATE keys SET version = ?4, doc = ?5 WHERE account = ?1 AND region = ?2 AND key_id = ?3 AND version = ?6",
                            params![s.account, s.region, row.key_id, row.version, row.doc, expected],
                        )
                        .map_err(backend)?;
                    if n == 0 {
                        return Err(StoreError::Conflict(format!(
                            "key {} is not at version {expected}",
                            row.key_id
                        )));
                    }
                }
            }
        }
        Write::DeleteKey { scope, key_id } => {
            for table in ["keys", "materials", "aliases"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE account = ?1 AND region = ?2 AND key_id = ?3"
                    ),
                    params![scope.account, scope.region, key_id],
                )
                .map_err(backend)?;
            }
        }
        Write::PutMaterial(m) => {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO materials (account, region, key_id, material_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![m.scope.account, m.scope.region, m.key_id, m.material_id, m.wrapped, m.created_at],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "material {} already exists",
                    m.material_id
                )));
            }
        }
        Write::PutAlias { row, replace } => {
            let s = &row.scope;
            if *replace {
                let n = tx
                    .execute(
                        "UPDATE aliases SET key_id = ?4, updated_at = ?5 WHERE account = ?1 AND region = ?2 AND alias_name = ?3",
                        params![s.account, s.region, row.alias_name, row.key_id, row.updated_at],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::Conflict(format!(
                        "alias {} does not exist",
                        row.alias_name
                    )));
                }
            } else {
                let n = tx
                    .execute(
                        "INSERT OR IGNORE INTO aliases (account, region, alias_name, key_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![s.account, s.region, row.alias_name, row.key_id, row.created_at, row.updated_at],
                    )
                    .map_err(backend)?;
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
            .map_err(backend)?;
        }
    }
    Ok(())
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

#[async_trait]
impl Store for SqliteStore {
    async fn load_all(&self) -> Result<Snapshot, StoreError> {
        self.with(|c| {
            let scope = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Scope> {
                Ok(Scope {
                    account: r.get(0)?,
                    region: r.get(1)?,
                })
            };
            let keys = c
                .prepare("SELECT account, region, key_id, version, doc FROM keys ORDER BY account, region, key_id")
                .map_err(backend)?
                .query_map([], |r| {
                    Ok(KeyRow {
                        scope: scope(r)?,
                        key_id: r.get(2)?,
                        version: r.get(3)?,
                        doc: r.get(4)?,
                    })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let materials = c
                .prepare("SELECT account, region, key_id, material_id, wrapped, created_at FROM materials ORDER BY account, region, key_id, created_at")
                .map_err(backend)?
                .query_map([], |r| {
                    Ok(MaterialRow {
                        scope: scope(r)?,
                        key_id: r.get(2)?,
                        material_id: r.get(3)?,
                        wrapped: r.get(4)?,
                        created_at: r.get(5)?,
                    })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            let aliases = c
                .prepare("SELECT account, region, alias_name, key_id, created_at, updated_at FROM aliases ORDER BY account, region, alias_name")
                .map_err(backend)?
                .query_map([], |r| {
                    Ok(AliasRow {
                        scope: scope(r)?,
                        alias_name: r.get(2)?,
                        key_id: r.get(3)?,
                        created_at: r.get(4)?,
                        updated_at: r.get(5)?,
                    })
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(Snapshot {
                keys,
                materials,
                aliases,
            })
        })
        .await
    }

    async fn apply(&self, tx: Transaction) -> Result<(), StoreError> {
        self.with(move |c| {
            let t = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            for w in &tx.writes {
                apply_write(&t, w)?; // dropping `t` on error rolls back
            }
            t.commit().map_err(backend)
        })
        .await
    }

    async fn get_principal(&self, access_key_id: &str) -> Result<Option<PrincipalRow>, StoreError> {
        let id = access_key_id.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT access_key_id, arn, account, wrapped_secret, created_at FROM principals WHERE access_key_id = ?1",
                params![id],
                principal_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_principals(&self) -> Result<Vec<PrincipalRow>, StoreError> {
        self.with(|c| {
            c.prepare("SELECT access_key_id, arn, account, wrapped_secret, created_at FROM principals ORDER BY created_at, access_key_id")
                .map_err(backend)?
                .query_map([], principal_row)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)
        })
        .await
    }

    async fn put_principal(&self, row: PrincipalRow) -> Result<(), StoreError> {
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT OR IGNORE INTO principals (access_key_id, arn, account, wrapped_secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![row.access_key_id, row.arn, row.account, row.wrapped_secret, row.created_at],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("access key {} exists", row.access_key_id)));
            }
            Ok(())
        })
        .await
    }

    async fn delete_principal(&self, access_key_id: &str) -> Result<bool, StoreError> {
        let id = access_key_id.to_string();
        self.with(move |c| {
            c.execute(
                "DELETE FROM principals WHERE access_key_id = ?1",
                params![id],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }

    async fn get_setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let name = name.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT value FROM settings WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_setting(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let (name, value) = (name.to_string(), value.to_vec());
        self.with(move |c| {
            c.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute_batch("BEGIN IMMEDIATE; DELETE FROM keys; DELETE FROM materials; DELETE FROM aliases; COMMIT;")
                .map_err(backend)
        })
        .await
    }
}

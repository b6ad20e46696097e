//! Behaviour of `SqliteStore` through the `Store` trait.

use trent_store::{
    AliasRow, GrantRow, IdentityPolicyRow, KeyRow, KeyUsageRow, MaterialRow, PrincipalRow, Scope,
    Snapshot, SqliteStore, Store, StoreError, Transaction, Write,
};

fn scope(account: &str, region: &str) -> Scope {
    Scope {
        account: account.to_string(),
        region: region.to_string(),
    }
}

fn s1() -> Scope {
    scope("111122223333", "us-east-1")
}

fn key(scope: &Scope, key_id: &str, version: i64, doc: &str) -> KeyRow {
    KeyRow {
        scope: scope.clone(),
        key_id: key_id.to_string(),
        version,
        doc: doc.to_string(),
    }
}

fn material(scope: &Scope, key_id: &str, n: u8, created_at: i64) -> MaterialRow {
    MaterialRow {
        scope: scope.clone(),
        key_id: key_id.to_string(),
        material_id: format!("{n:02x}").repeat(32),
        wrapped: vec![n, 0, 0xff, n.wrapping_mul(7)],
        created_at,
    }
}

fn alias(scope: &Scope, name: &str, key_id: &str, created_at: i64, updated_at: i64) -> AliasRow {
    AliasRow {
        scope: scope.clone(),
        alias_name: name.to_string(),
        key_id: key_id.to_string(),
        created_at,
        updated_at,
    }
}

fn principal(id: &str, account: &str, secret: &[u8], created_at: i64) -> PrincipalRow {
    PrincipalRow {
        access_key_id: id.to_string(),
        arn: format!("arn:aws:iam::{account}:user/{id}"),
        account: account.to_string(),
        wrapped_secret: secret.to_vec(),
        created_at,
    }
}

fn grant(scope: &Scope, key_id: &str, n: u8) -> GrantRow {
    GrantRow {
        scope: scope.clone(),
        key_id: key_id.to_string(),
        grant_id: format!("{n:02x}").repeat(32),
        doc: format!("grant {n}"),
    }
}

fn delete_grant(g: &GrantRow) -> Write {
    Write::DeleteGrant {
        scope: g.scope.clone(),
        key_id: g.key_id.clone(),
        grant_id: g.grant_id.clone(),
    }
}

fn insert_key(row: KeyRow) -> Write {
    Write::PutKey {
        row,
        expected_version: None,
    }
}

fn update_key(row: KeyRow, expected_version: i64) -> Write {
    Write::PutKey {
        row,
        expected_version: Some(expected_version),
    }
}

fn put_material(scope: &Scope, key_id: &str, n: u8, created_at: i64) -> Write {
    Write::PutMaterial(material(scope, key_id, n, created_at))
}

fn insert_alias(row: AliasRow) -> Write {
    Write::PutAlias {
        row,
        replace: false,
    }
}

fn replace_alias(row: AliasRow) -> Write {
    Write::PutAlias { row, replace: true }
}

fn delete_key(scope: &Scope, key_id: &str) -> Write {
    Write::DeleteKey {
        scope: scope.clone(),
        key_id: key_id.into(),
    }
}

fn delete_alias(scope: &Scope, alias_name: &str) -> Write {
    Write::DeleteAlias {
        scope: scope.clone(),
        alias_name: alias_name.into(),
    }
}

/// Apply `writes` as one transaction.
async fn apply(store: &SqliteStore, writes: Vec<Write>) -> Result<(), StoreError> {
    store.apply(Transaction { writes }).await
}

async fn one(store: &SqliteStore, w: Write) -> Result<(), StoreError> {
    apply(store, vec![w]).await
}

async fn snapshot(store: &SqliteStore) -> Snapshot {
    store.load_all().await.unwrap()
}

#[track_caller]
fn assert_conflict(e: Result<(), StoreError>) {
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
}

fn mem() -> SqliteStore {
    SqliteStore::open_in_memory().expect("open in memory")
}

/// A fresh in-memory store holding `writes`, applied as one transaction.
async fn store_with(writes: Vec<Write>) -> SqliteStore {
    let store = mem();
    apply(&store, writes).await.unwrap();
    store
}

#[tokio::test]
async fn empty_store_loads_empty_snapshot() {
    let store = mem();
    assert_eq!(snapshot(&store).await, Snapshot::default());
    assert_eq!(store.list_principals().await.unwrap(), vec![]);
    assert_eq!(store.get_setting("anything").await.unwrap(), None);
    // An empty transaction is fine.
    store.apply(Transaction::new()).await.unwrap();
    assert_eq!(snapshot(&store).await, Snapshot::default());
}

#[tokio::test]
async fn put_key_insert_then_update_with_version() {
    let store = mem();
    let s = s1();
    let v1 = key(&s, "k1", 1, "{\"v\":1}");
    let v2 = key(&s, "k1", 2, "{\"v\":2}");
    one(&store, insert_key(v1.clone())).await.unwrap();
    assert_eq!(snapshot(&store).await.keys, vec![v1]);

    one(&store, update_key(v2.clone(), 1)).await.unwrap();
    assert_eq!(snapshot(&store).await.keys, vec![v2]);
}

#[tokio::test]
async fn put_key_conflicts() {
    let s = s1();
    let store = store_with(vec![insert_key(key(&s, "k1", 1, "a"))]).await;

    for w in [
        // Insert of an existing key.
        insert_key(key(&s, "k1", 1, "b")),
        // Update expecting a stale version.
        update_key(key(&s, "k1", 3, "c"), 2),
        // Update of a missing key.
        update_key(key(&s, "nope", 2, "d"), 1),
    ] {
        assert_conflict(one(&store, w).await);
    }

    // Nothing changed.
    assert_eq!(snapshot(&store).await.keys, vec![key(&s, "k1", 1, "a")]);
}

#[tokio::test]
async fn same_key_id_in_other_scopes_is_distinct() {
    let a = s1();
    let b = scope("111122223333", "eu-west-1");
    let c = scope("444455556666", "us-east-1");
    let store = store_with(vec![
        insert_key(key(&a, "k", 1, "a")),
        insert_key(key(&b, "k", 1, "b")),
        insert_key(key(&c, "k", 1, "c")),
        insert_alias(alias(&a, "alias/x", "k", 1, 1)),
        insert_alias(alias(&b, "alias/x", "k", 2, 2)),
    ])
    .await;
    let snap = snapshot(&store).await;
    // Sorted by (account, region, key_id).
    assert_eq!(
        snap.keys,
        vec![
            key(&b, "k", 1, "b"),
            key(&a, "k", 1, "a"),
            key(&c, "k", 1, "c")
        ]
    );
    assert_eq!(
        snap.aliases,
        vec![
            alias(&b, "alias/x", "k", 2, 2),
            alias(&a, "alias/x", "k", 1, 1)
        ]
    );

    // Deleting the key in one scope leaves the others.
    one(&store, delete_key(&a, "k")).await.unwrap();
    let snap = snapshot(&store).await;
    assert_eq!(snap.keys, vec![key(&b, "k", 1, "b"), key(&c, "k", 1, "c")]);
    assert_eq!(snap.aliases, vec![alias(&b, "alias/x", "k", 2, 2)]);
}

#[tokio::test]
async fn put_material_and_duplicate_conflicts() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "d")),
        put_material(&s, "k1", 2, 200),
        put_material(&s, "k1", 1, 100),
    ])
    .await;
    let both = vec![material(&s, "k1", 1, 100), material(&s, "k1", 2, 200)];
    assert_eq!(snapshot(&store).await.materials, both);

    let mut dup = material(&s, "k1", 1, 300);
    dup.wrapped = vec![9, 9, 9];
    assert_conflict(one(&store, Write::PutMaterial(dup)).await);
    assert_eq!(snapshot(&store).await.materials, both);

    // The same material id under another key is a different row.
    one(&store, put_material(&s, "k2", 1, 50)).await.unwrap();
    assert_eq!(snapshot(&store).await.materials.len(), 3);
}

#[tokio::test]
async fn alias_insert_exists_replace_delete() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "1")),
        insert_key(key(&s, "k2", 1, "2")),
        insert_alias(alias(&s, "alias/app", "k1", 10, 10)),
    ])
    .await;
    assert_eq!(
        snapshot(&store).await.aliases,
        vec![alias(&s, "alias/app", "k1", 10, 10)]
    );

    // Insert of a taken name.
    match one(&store, insert_alias(alias(&s, "alias/app", "k2", 20, 20))).await {
        Err(StoreError::AliasExists(name)) => assert_eq!(name, "alias/app"),
        other => panic!("expected AliasExists, got {other:?}"),
    }

    // Replace keeps created_at and updates key_id and updated_at.
    one(&store, replace_alias(alias(&s, "alias/app", "k2", 999, 30)))
        .await
        .unwrap();
    assert_eq!(
        snapshot(&store).await.aliases,
        vec![alias(&s, "alias/app", "k2", 10, 30)]
    );

    // Replace of a missing alias.
    let missing = alias(&s, "alias/missing", "k2", 40, 40);
    assert_conflict(one(&store, replace_alias(missing)).await);
    assert_eq!(snapshot(&store).await.aliases.len(), 1);

    // Delete, then delete again (not an error).
    for _ in 0..2 {
        one(&store, delete_alias(&s, "alias/app")).await.unwrap();
        assert_eq!(snapshot(&store).await.aliases, vec![]);
    }
    // The keys are untouched.
    assert_eq!(snapshot(&store).await.keys.len(), 2);
}

#[tokio::test]
async fn delete_key_cascades_only_its_own_rows() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "1")),
        insert_key(key(&s, "k2", 1, "2")),
        put_material(&s, "k1", 1, 1),
        put_material(&s, "k1", 2, 2),
        put_material(&s, "k2", 3, 3),
        insert_alias(alias(&s, "alias/a", "k1", 1, 1)),
        insert_alias(alias(&s, "alias/b", "k1", 1, 1)),
        insert_alias(alias(&s, "alias/c", "k2", 1, 1)),
    ])
    .await;

    one(&store, delete_key(&s, "k1")).await.unwrap();
    assert_eq!(
        snapshot(&store).await,
        Snapshot {
            keys: vec![key(&s, "k2", 1, "2")],
            materials: vec![material(&s, "k2", 3, 3)],
            aliases: vec![alias(&s, "alias/c", "k2", 1, 1)],
            grants: vec![],
            usage: vec![],
        }
    );

    // Deleting a missing key is not an error and changes nothing.
    one(&store, delete_key(&s, "k1")).await.unwrap();
    assert_eq!(snapshot(&store).await.keys.len(), 1);
}

#[tokio::test]
async fn failed_transaction_rolls_back_every_write() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "orig")),
        insert_alias(alias(&s, "alias/taken", "k1", 1, 1)),
    ])
    .await;
    let before = snapshot(&store).await;

    // Every kind of write, then a failing one.
    let e = apply(
        &store,
        vec![
            insert_key(key(&s, "k2", 1, "new")),
            put_material(&s, "k2", 1, 1),
            update_key(key(&s, "k1", 2, "changed"), 1),
            insert_alias(alias(&s, "alias/new", "k2", 1, 1)),
            delete_alias(&s, "alias/taken"),
            delete_key(&s, "k1"),
            insert_key(key(&s, "k2", 1, "again")),
        ],
    )
    .await;
    assert_conflict(e);
    assert_eq!(snapshot(&store).await, before);

    // Failing on AliasExists rolls back too.
    let e = apply(
        &store,
        vec![
            insert_key(key(&s, "k3", 1, "x")),
            insert_alias(alias(&s, "alias/taken", "k3", 1, 1)),
        ],
    )
    .await;
    assert!(matches!(e, Err(StoreError::AliasExists(_))), "{e:?}");
    assert_eq!(snapshot(&store).await, before);

    // The connection is usable after a rollback.
    one(&store, insert_key(key(&s, "k4", 1, "ok")))
        .await
        .unwrap();
    assert_eq!(snapshot(&store).await.keys.len(), 2);
}

#[tokio::test]
async fn writes_within_one_transaction_see_each_other() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "v1")),
        update_key(key(&s, "k1", 2, "v2"), 1),
        insert_alias(alias(&s, "alias/a", "k1", 5, 5)),
        replace_alias(alias(&s, "alias/a", "k9", 0, 6)),
        insert_key(key(&s, "gone", 1, "g")),
        delete_key(&s, "gone"),
    ])
    .await;
    assert_eq!(
        snapshot(&store).await,
        Snapshot {
            keys: vec![key(&s, "k1", 2, "v2")],
            materials: vec![],
            aliases: vec![alias(&s, "alias/a", "k9", 5, 6)],
            grants: vec![],
            usage: vec![],
        }
    );
}

#[tokio::test]
async fn reset_keeps_principals_and_settings() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "1")),
        put_material(&s, "k1", 1, 1),
        insert_alias(alias(&s, "alias/a", "k1", 1, 1)),
    ])
    .await;
    let p = principal("AKIAEXAMPLE", "111122223333", b"wrapped", 7);
    store.put_principal(p.clone()).await.unwrap();
    store.put_setting("root.check", b"\x01\x02").await.unwrap();

    store.reset().await.unwrap();
    assert_eq!(snapshot(&store).await, Snapshot::default());
    assert_eq!(store.list_principals().await.unwrap(), vec![p]);
    assert_eq!(
        store.get_setting("root.check").await.unwrap(),
        Some(vec![1, 2])
    );

    // Reset of an empty store, and the store is still writable.
    store.reset().await.unwrap();
    let again = key(&s, "k1", 1, "again");
    one(&store, insert_key(again.clone())).await.unwrap();
    assert_eq!(snapshot(&store).await.keys, vec![again]);
}

#[tokio::test]
async fn principals_crud() {
    let store = mem();
    let b = principal("AKIAB", "444455556666", &[0, 1, 2, 255], 20);
    let a = principal("AKIAA", "111122223333", &[9; 60], 30);
    store.put_principal(b.clone()).await.unwrap();
    store.put_principal(a.clone()).await.unwrap();

    assert_eq!(store.get_principal("AKIAA").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_principal("AKIAB").await.unwrap(), Some(b.clone()));
    assert_eq!(store.get_principal("AKIAC").await.unwrap(), None);
    // Sorted by access key id.
    assert_eq!(
        store.list_principals().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    // Duplicate insert conflicts and does not overwrite.
    let e = store
        .put_principal(principal("AKIAA", "999999999999", b"other", 1))
        .await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    assert_eq!(store.get_principal("AKIAA").await.unwrap(), Some(a.clone()));

    assert!(store.delete_principal("AKIAA").await.unwrap());
    assert!(!store.delete_principal("AKIAA").await.unwrap());
    assert!(!store.delete_principal("AKIANEVER").await.unwrap());
    assert_eq!(store.get_principal("AKIAA").await.unwrap(), None);
    assert_eq!(store.list_principals().await.unwrap(), vec![b]);
}

#[tokio::test]
async fn settings_get_put_overwrite() {
    let store = mem();
    assert_eq!(store.get_setting("a").await.unwrap(), None);
    store.put_setting("a", b"one").await.unwrap();
    store.put_setting("b", b"").await.unwrap();
    assert_eq!(store.get_setting("a").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(store.get_setting("b").await.unwrap(), Some(vec![]));
    store.put_setting("a", &[0, 0xff]).await.unwrap();
    assert_eq!(store.get_setting("a").await.unwrap(), Some(vec![0, 0xff]));
    assert_eq!(store.get_setting("b").await.unwrap(), Some(vec![]));
}

#[tokio::test]
async fn debug_prints_no_data() {
    let store = mem();
    let secret = b"SUPERSECRETVALUE";
    store
        .put_principal(principal("AKIASECRET", "111122223333", secret, 1))
        .await
        .unwrap();
    store.put_setting("root.check", secret).await.unwrap();
    let dbg = format!("{store:?}");
    assert_eq!(dbg, "SqliteStore { path: \":memory:\", .. }");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(
        format!("{store:?}"),
        format!("SqliteStore {{ path: {:?}, .. }}", path)
    );
}

#[tokio::test]
async fn in_memory_stores_are_independent() {
    let a = mem();
    let b = mem();
    one(&a, insert_key(key(&s1(), "k", 1, "x"))).await.unwrap();
    assert_eq!(snapshot(&a).await.keys.len(), 1);
    assert_eq!(snapshot(&b).await, Snapshot::default());
    assert_eq!(a.path(), None);
}

#[tokio::test]
async fn backend_errors_do_not_leak_blobs() {
    // A NUL-free but non-UTF-8 doc is impossible through the API, so provoke an error by opening
    // a file that is not a database.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db");
    std::fs::write(
        &path,
        b"SECRETSECRETSECRET this is not sqlite at all, really not",
    )
    .unwrap();
    let e = SqliteStore::open(&path).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
    assert!(!msg.contains("SECRET"), "{msg}");
}

#[tokio::test]
async fn grants_insert_conflict_read_delete_and_go_with_their_key() {
    let s = s1();
    let other = scope("444455556666", "us-east-1");
    let (g1, g2, g3) = (
        grant(&s, "k1", 1),
        grant(&s, "k1", 2),
        grant(&other, "k1", 1),
    );
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "1")),
        insert_key(key(&other, "k1", 1, "1")),
        Write::PutGrant(g2.clone()),
        Write::PutGrant(g1.clone()),
        Write::PutGrant(g3.clone()),
    ])
    .await;
    // Sorted by scope, key and grant id.
    assert_eq!(
        snapshot(&store).await.grants,
        vec![g1.clone(), g2.clone(), g3.clone()]
    );
    assert_eq!(
        store.get_grant(&s, "k1", &g2.grant_id).await.unwrap(),
        Some(g2.clone())
    );
    assert_eq!(store.get_grant(&s, "k2", &g2.grant_id).await.unwrap(), None);

    // The same grant id again on the same key conflicts and changes nothing.
    let dup = GrantRow {
        doc: "other".into(),
        ..g1.clone()
    };
    assert_conflict(one(&store, Write::PutGrant(dup)).await);
    assert_eq!(
        store.get_grant(&s, "k1", &g1.grant_id).await.unwrap(),
        Some(g1.clone())
    );

    one(&store, delete_grant(&g1)).await.unwrap();
    // Deleting a missing grant is not an error.
    one(&store, delete_grant(&g1)).await.unwrap();
    assert_eq!(snapshot(&store).await.grants, vec![g2, g3.clone()]);

    // Deleting a key deletes its grants, and only its own.
    one(&store, delete_key(&s, "k1")).await.unwrap();
    assert_eq!(snapshot(&store).await.grants, vec![g3]);
    store.reset().await.unwrap();
    assert_eq!(snapshot(&store).await.grants, vec![]);
}

#[tokio::test]
async fn identity_policies_upsert_list_delete_and_survive_reset() {
    let store = mem();
    let row = |arn: &str, name: &str, doc: &str, at: i64| IdentityPolicyRow {
        arn: arn.into(),
        name: name.into(),
        document: doc.into(),
        updated_at: at,
    };
    let bob = "arn:aws:iam::111122223333:user/bob";
    let alice = "arn:aws:iam::111122223333:user/alice";
    store
        .put_identity_policy(row(bob, "b", "{1}", 1))
        .await
        .unwrap();
    store
        .put_identity_policy(row(alice, "z", "{2}", 2))
        .await
        .unwrap();
    store
        .put_identity_policy(row(alice, "a", "{3}", 3))
        .await
        .unwrap();
    // Putting the same ARN and name replaces the document.
    store
        .put_identity_policy(row(bob, "b", "{4}", 4))
        .await
        .unwrap();
    store.reset().await.unwrap();
    assert_eq!(
        store.list_identity_policies().await.unwrap(),
        vec![
            row(alice, "a", "{3}", 3),
            row(alice, "z", "{2}", 2),
            row(bob, "b", "{4}", 4)
        ]
    );
    assert!(store.delete_identity_policy(alice, "z").await.unwrap());
    assert!(!store.delete_identity_policy(alice, "z").await.unwrap());
    assert_eq!(store.list_identity_policies().await.unwrap().len(), 2);
}

fn usage(scope: &Scope, key_id: &str, doc: &str) -> KeyUsageRow {
    KeyUsageRow {
        scope: scope.clone(),
        key_id: key_id.into(),
        doc: doc.into(),
    }
}

#[tokio::test]
async fn delete_material_removes_only_that_material() {
    let s = s1();
    let store = store_with(vec![
        insert_key(key(&s, "k1", 1, "1")),
        put_material(&s, "k1", 1, 1),
        put_material(&s, "k1", 2, 2),
    ])
    .await;
    let gone = material(&s, "k1", 1, 1);
    let delete = |m: &MaterialRow| Write::DeleteMaterial {
        scope: m.scope.clone(),
        key_id: m.key_id.clone(),
        material_id: m.material_id.clone(),
    };
    one(&store, delete(&gone)).await.unwrap();
    assert_eq!(
        snapshot(&store).await.materials,
        vec![material(&s, "k1", 2, 2)]
    );
    // Deleting it again is not an error; putting it back (a reimport) is allowed.
    one(&store, delete(&gone)).await.unwrap();
    one(&store, put_material(&s, "k1", 1, 1)).await.unwrap();
    assert_eq!(snapshot(&store).await.materials.len(), 2);
}

#[tokio::test]
async fn key_usage_is_upserted_only_for_existing_keys_and_goes_with_its_key() {
    let s = s1();
    let store = store_with(vec![insert_key(key(&s, "k1", 1, "1"))]).await;
    one(&store, Write::PutKeyUsage(usage(&s, "k1", "first")))
        .await
        .unwrap();
    one(&store, Write::PutKeyUsage(usage(&s, "k1", "second")))
        .await
        .unwrap();
    // A flush for a key that is gone is dropped, not an orphan row.
    one(&store, Write::PutKeyUsage(usage(&s, "nope", "x")))
        .await
        .unwrap();
    assert_eq!(
        snapshot(&store).await.usage,
        vec![usage(&s, "k1", "second")]
    );
    one(&store, delete_key(&s, "k1")).await.unwrap();
    assert_eq!(snapshot(&store).await.usage, vec![]);
}

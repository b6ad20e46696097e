//! Scheduled work runs exactly once across nodes: two `Kms` over one SQLite file (one root key),
//! as two trent processes sharing a store would be. Only the holder of the `scheduler` lease
//! works, and a node whose view is stale cannot redo work another node did: its write fails the
//! key's version check and it reloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use trent_crypto::{LocalRootKey, RootKey};
use trent_kms::api::*;
use trent_kms::lifecycle::ScheduleReport;
use trent_kms::{Caller, Kms};
use trent_store::{SqliteStore, Store};

const DAY: i64 = 86_400;
const LEASE_TTL: Duration = Duration::from_millis(300);

/// A user of the test account whose identity policy allows every KMS action.
fn caller() -> Caller {
    let mut c = Caller::new(
        "111122223333",
        "us-east-1",
        "arn:aws:iam::111122223333:user/test",
    );
    let admin = r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;
    c.identity = Arc::from(vec![
        trent_kms::policy::parse_kind(admin, trent_kms::policy::Kind::Identity).unwrap(),
    ]);
    c
}

struct Cluster {
    a: Kms,
    b: Kms,
    db: PathBuf,
    _dir: TempDir,
}

async fn open_node(db: &Path, root: &Arc<dyn RootKey>) -> Kms {
    Kms::open(Arc::new(SqliteStore::open(db).unwrap()), root.clone())
        .await
        .unwrap()
        .with_lease_ttl(LEASE_TTL)
}

/// Two nodes on one store file with one root key.
async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = LocalRootKey::load_or_create_file(&dir.path().join("root.key")).unwrap();
    let root: Arc<dyn RootKey> = Arc::new(root);
    let db = dir.path().join("trent.db");
    let a = open_node(&db, &root).await;
    let b = open_node(&db, &root).await;
    assert_ne!(a.node_id(), b.node_id());
    Cluster {
        a,
        b,
        db,
        _dir: dir,
    }
}

/// A symmetric key made on `kms` with automatic rotation every `days`: (key id, ARN).
async fn rotating_key(kms: &Kms, days: i64) -> (String, String) {
    let md = kms
        .create_key(&caller(), CreateKeyRequest::default())
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    kms.enable_key_rotation(
        &caller(),
        EnableKeyRotationRequest {
            key_id: Some(md.key_id.clone()),
            rotation_period_in_days: Some(days),
        },
    )
    .await
    .unwrap();
    (md.key_id, md.arn)
}

async fn rotations(kms: &Kms, key_id: &str) -> Vec<RotationsListEntry> {
    let r = kms
        .list_key_rotations(
            &caller(),
            ListKeyRotationsRequest {
                key_id: Some(key_id.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!r.truncated);
    r.rotations
}

async fn current_material(kms: &Kms, key_id: &str) -> String {
    kms.describe_key(
        &caller(),
        DescribeKeyRequest {
            key_id: Some(key_id.into()),
            grant_tokens: None,
        },
    )
    .await
    .unwrap()
    .key_metadata
    .unwrap()
    .current_key_material_id
    .unwrap()
}

async fn next_rotation_date(kms: &Kms, key_id: &str) -> f64 {
    kms.get_key_rotation_status(
        &caller(),
        GetKeyRotationStatusRequest {
            key_id: Some(key_id.into()),
        },
    )
    .await
    .unwrap()
    .next_rotation_date
    .unwrap()
}

/// What the store holds for `key_id`, read through a connection of its own: (the key row's
/// version, the ids of its materials).
async fn stored(db: &Path, key_id: &str) -> (i64, Vec<String>) {
    let snapshot = SqliteStore::open(db).unwrap().load_all().await.unwrap();
    let version = snapshot
        .keys
        .iter()
        .find(|k| k.key_id == key_id)
        .unwrap()
        .version;
    let mut materials: Vec<String> = snapshot
        .materials
        .into_iter()
        .filter(|m| m.key_id == key_id)
        .map(|m| m.material_id)
        .collect();
    materials.sort();
    (version, materials)
}

fn led(rotated: Vec<String>) -> ScheduleReport {
    ScheduleReport {
        leader: true,
        rotated,
        ..ScheduleReport::default()
    }
}

/// The report of a node that does not hold the lease: it did nothing (no uses to flush here).
fn followed() -> ScheduleReport {
    ScheduleReport::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_leads_one_rotation_happens_and_the_lease_moves_when_its_holder_stops() {
    let c = cluster().await;
    let (key_id, arn) = rotating_key(&c.a, 90).await;
    let first = current_material(&c.a, &key_id).await;
    c.b.reload().await.unwrap();
    c.a.clock.advance(91 * DAY);
    c.b.clock.advance(91 * DAY);

    // Both nodes run the scheduled work at the same time, several times.
    let mut a_led = Vec::new();
    let mut rotated = Vec::new();
    for round in 0..5 {
        let (ra, rb) = tokio::join!(c.a.run_scheduled(), c.b.run_scheduled());
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.leader != rb.leader, "round {round}: {ra:?} {rb:?}");
        a_led.push(ra.leader);
        let (leader, follower) = if ra.leader { (ra, rb) } else { (rb, ra) };
        assert_eq!(follower, followed(), "round {round}");
        // Only the first round has work to do.
        let expected = if round == 0 {
            vec![arn.clone()]
        } else {
            vec![]
        };
        assert_eq!(leader, led(expected), "round {round}");
        rotated.extend(leader.rotated);
    }
    assert_eq!(rotated, vec![arn.clone()]);
    // The holder renews the lease on every run: the same node led every round.
    assert!(a_led.iter().all(|l| *l == a_led[0]), "{a_led:?}");

    // Both views, reloaded, show the one rotation the store holds.
    c.a.reload().await.unwrap();
    c.b.reload().await.unwrap();
    let mut second = String::new();
    for node in [&c.a, &c.b] {
        let rots = rotations(node, &key_id).await;
        assert_eq!(rots.len(), 1, "{rots:?}");
        assert_eq!(rots[0].rotation_type.as_deref(), Some("AUTOMATIC"));
        assert_eq!(rots[0].key_material_state.as_deref(), Some("CURRENT"));
        second = rots[0].key_material_id.clone().unwrap();
        assert_ne!(second, first);
        assert_eq!(current_material(node, &key_id).await, second);
    }
    assert_eq!(
        next_rotation_date(&c.a, &key_id).await,
        next_rotation_date(&c.b, &key_id).await
    );
    // Created (version 1), rotation enabled (2), rotated once (3); two materials.
    let (version, materials) = stored(&c.db, &key_id).await;
    assert_eq!(version, 3);
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(materials, expected);

    // The leader stops running (and so stops renewing). Until the lease expires the other node
    // still does nothing; once it has, the other node takes over.
    let (leader, follower) = if a_led[0] { (&c.a, &c.b) } else { (&c.b, &c.a) };
    assert_eq!(follower.run_scheduled().await.unwrap(), followed());
    tokio::time::sleep(LEASE_TTL + Duration::from_millis(100)).await;
    assert_eq!(follower.run_scheduled().await.unwrap(), led(vec![]));
    // The old leader, back, finds the lease taken.
    assert_eq!(leader.run_scheduled().await.unwrap(), followed());
    assert_eq!(follower.run_scheduled().await.unwrap(), led(vec![]));
    assert_eq!(stored(&c.db, &key_id).await.0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_a_stale_view_cannot_rotate_a_second_time() {
    let c = cluster().await;
    let (key_id, arn) = rotating_key(&c.a, 90).await;
    let first = current_material(&c.a, &key_id).await;
    c.b.reload().await.unwrap();
    let due = next_rotation_date(&c.b, &key_id).await;
    c.a.clock.advance(91 * DAY);
    c.b.clock.advance(91 * DAY);

    // A rotates, then gives the lease up (as on shutdown).
    assert_eq!(c.a.run_scheduled().await.unwrap(), led(vec![arn.clone()]));
    let second = current_material(&c.a, &key_id).await;
    assert_ne!(second, first);
    c.a.release_scheduler().await;
    assert_eq!(stored(&c.db, &key_id).await.0, 3);

    // B has not reloaded: its view still shows the rotation as due. It takes the lease, sees
    // first that the store moved on (catch_up_with_store), reloads, and finds nothing due. (Were
    // A to write between that check and B's write, B's write would fail the version check.)
    assert_eq!(current_material(&c.b, &key_id).await, first);
    assert_eq!(next_rotation_date(&c.b, &key_id).await, due);
    assert_eq!(c.b.run_scheduled().await.unwrap(), led(vec![]));
    let (version, materials) = stored(&c.db, &key_id).await;
    assert_eq!(version, 3);
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(materials, expected);

    // B's view now is the store's, without an explicit reload.
    assert_eq!(current_material(&c.b, &key_id).await, second);
    let rots = rotations(&c.b, &key_id).await;
    assert_eq!(rots.len(), 1, "{rots:?}");
    assert_eq!(rots[0].key_material_id.as_deref(), Some(second.as_str()));
    assert_eq!(rots[0].rotation_type.as_deref(), Some("AUTOMATIC"));
    let next = next_rotation_date(&c.b, &key_id).await;
    assert_eq!(next, next_rotation_date(&c.a, &key_id).await);
    assert!(next > due + 90.0 * DAY as f64, "{next} {due}");

    // B leads from now on and has nothing more to do; A no longer leads.
    assert_eq!(c.b.run_scheduled().await.unwrap(), led(vec![]));
    assert_eq!(c.a.run_scheduled().await.unwrap(), followed());
    assert_eq!(stored(&c.db, &key_id).await.0, 3);

    // Both nodes read what either encrypts, under the rotated material.
    let blob =
        c.b.encrypt(
            &caller(),
            EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(Blob::new(b"after".to_vec())),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let d =
        c.a.decrypt(
            &caller(),
            DecryptRequest {
                ciphertext_blob: Some(blob),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(d.plaintext.unwrap().0.as_slice(), b"after");
    assert_eq!(d.key_material_id.as_deref(), Some(second.as_str()));
}

/// Work asked for on a node that does not hold the lease (an on-demand rotation, a key made
/// there with rotation due) is done by the node that does: it catches up with the store first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_does_work_asked_for_on_another_node() {
    let c = cluster().await;
    // B leads.
    assert_eq!(c.b.run_scheduled().await.unwrap(), led(vec![]));
    // A (not leading) makes a key and asks for an on-demand rotation.
    let (key_id, arn) = rotating_key(&c.a, 90).await;
    let first = current_material(&c.a, &key_id).await;
    c.a.rotate_key_on_demand(
        &caller(),
        KeyIdRequest {
            key_id: Some(key_id.clone()),
        },
    )
    .await
    .unwrap();
    assert_eq!(c.a.run_scheduled().await.unwrap(), followed());
    // B sees it and rotates once.
    assert_eq!(c.b.run_scheduled().await.unwrap(), led(vec![arn.clone()]));
    assert_eq!(c.b.run_scheduled().await.unwrap(), led(vec![]));
    // A catches up on its next run: the rotation is done, no longer in progress.
    assert_eq!(c.a.run_scheduled().await.unwrap(), followed());
    let rots = rotations(&c.a, &key_id).await;
    assert_eq!(rots.len(), 1, "{rots:?}");
    assert_eq!(rots[0].rotation_type.as_deref(), Some("ON_DEMAND"));
    assert_ne!(current_material(&c.a, &key_id).await, first);
    let status =
        c.a.get_key_rotation_status(
            &caller(),
            GetKeyRotationStatusRequest {
                key_id: Some(key_id.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(status.on_demand_rotation_start_date, None);
    assert_eq!(stored(&c.db, &key_id).await.1.len(), 2);
}

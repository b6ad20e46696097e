//! What a client saw succeed survives `kill -9`: concurrent CreateKey / CreateAlias / Encrypt
//! against a non-dev server, SIGKILL while calls are in flight, restart on the same data
//! directory, and every acknowledged key, alias and ciphertext is still there.

mod common;

use aws_sdk_kms::primitives::Blob;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TASKS: usize = 8;

#[derive(Default)]
struct Acknowledged {
    keys: Vec<String>,
    aliases: Vec<(String, String)>,
    /// (ciphertext, plaintext, key id, task: the encryption context value)
    ciphertexts: Vec<(Vec<u8>, Vec<u8>, String, usize)>,
    failures: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = Server::on_dir(&dir);
    let kms = server.client();
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let kms = kms.clone();
        let acked = acked.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            let mut last_key: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                // CreateKey; the key counts once the response arrived.
                match kms
                    .create_key()
                    .description(format!("t{task}-r{round}"))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let id = out.key_metadata.unwrap().key_id().to_owned();
                        acked.lock().unwrap().keys.push(id.clone());
                        last_key = Some(id);
                    }
                    Err(_) => acked.lock().unwrap().failures += 1,
                }
                let Some(key) = last_key.clone() else {
                    continue;
                };
                if round.is_multiple_of(3) {
                    let name = format!("alias/t{task}-r{round}");
                    match kms
                        .create_alias()
                        .alias_name(&name)
                        .target_key_id(&key)
                        .send()
                        .await
                    {
                        Ok(_) => acked.lock().unwrap().aliases.push((name, key.clone())),
                        Err(_) => acked.lock().unwrap().failures += 1,
                    }
                }
                for i in 0..2u64 {
                    let plaintext = test_bytes((task as u64) << 32 | round << 4 | i, 64);
                    match kms
                        .encrypt()
                        .key_id(&key)
                        .plaintext(Blob::new(plaintext.clone()))
                        .encryption_context("task", task.to_string())
                        .send()
                        .await
                    {
                        Ok(out) => {
                            let blob = out.ciphertext_blob.unwrap().into_inner();
                            acked.lock().unwrap().ciphertexts.push((
                                blob,
                                plaintext,
                                key.clone(),
                                task,
                            ));
                        }
                        Err(_) => acked.lock().unwrap().failures += 1,
                    }
                }
            }
        }));
    }

    // Let the burst run, then pull the plug mid-flight.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        server.is_running(),
        "server died under load:\n{}",
        server.output()
    );
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.keys.len() >= TASKS,
        "too few keys acknowledged before the kill ({}): the test proves nothing",
        acked.keys.len()
    );
    assert!(!acked.ciphertexts.is_empty());
    assert!(
        acked.failures > 0,
        "no call failed after the kill: were calls really in flight?"
    );

    let server = Server::on_dir(&dir);
    let kms = server.client();
    for id in &acked.keys {
        let out = kms.describe_key().key_id(id).send().await;
        let md = match out {
            Ok(out) => out.key_metadata.unwrap(),
            Err(e) => panic!("acknowledged key {id} lost after kill -9: {e:?}"),
        };
        assert_eq!(md.key_id(), id);
        assert!(md.enabled());
    }
    for (name, key) in &acked.aliases {
        let md = kms
            .describe_key()
            .key_id(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged alias {name} lost after kill -9: {e:?}"))
            .key_metadata
            .unwrap();
        assert_eq!(md.key_id(), key, "{name}");
    }
    let mut decrypted = 0;
    for (blob, plaintext, key, task) in &acked.ciphertexts {
        let out = kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .encryption_context("task", task.to_string())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("acknowledged ciphertext under {key} no longer decrypts: {e:?}")
            });
        assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_slice());
        assert_eq!(out.key_id(), Some(key_arn(REGION, ACCOUNT, key).as_str()));
        decrypted += 1;
    }
    assert_eq!(decrypted, acked.ciphertexts.len());
    eprintln!(
        "durability: {} keys, {} aliases, {} ciphertexts acknowledged; {} calls failed at the kill",
        acked.keys.len(),
        acked.aliases.len(),
        acked.ciphertexts.len(),
        acked.failures
    );
}

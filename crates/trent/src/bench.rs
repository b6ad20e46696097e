//! `trent bench`: a load generator that signs every request with SigV4 as an SDK does, over many
//! keep-alive connections, and reports throughput and latency percentiles.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Endpoint of the server, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// Operation: Encrypt, Decrypt, GenerateDataKey, GenerateRandom, Sign, Verify, GenerateMac,
    /// VerifyMac, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext.
    #[arg(long, default_value = "Encrypt", value_parser = OPERATIONS)]
    operation: String,
    /// Key spec of the key bench creates: SYMMETRIC_DEFAULT, or e.g. RSA_2048 (Encrypt/Decrypt
    /// with RSAES_OAEP_SHA_256, or Sign/Verify), ECC_NIST_P256, ML_DSA_65, HMAC_256.
    #[arg(long, default_value = "SYMMETRIC_DEFAULT")]
    key_spec: String,
    /// Signing or MAC algorithm; by default the first one the key lists.
    #[arg(long)]
    algorithm: Option<String>,
    /// KeyPairSpec of GenerateDataKeyPair(WithoutPlaintext).
    #[arg(long, default_value = "ECC_NIST_P256")]
    key_pair_spec: String,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to measure, after the warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of warm-up, not measured.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Plaintext bytes per Encrypt (and Decrypt).
    #[arg(long, default_value_t = 32)]
    payload_bytes: usize,
    /// Key to use; by default bench creates one.
    #[arg(long)]
    key_id: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Shared-credentials file and profile (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win).
    #[arg(long, default_value = "./trent-data/credentials")]
    credentials_file: PathBuf,
    #[arg(long, default_value = "trent")]
    profile: String,
    /// Access control on the key bench creates: `default` (the default key policy) or
    /// `realistic` (a five-statement key policy with encryption-context conditions, and a grant).
    /// `realistic` cannot be used with --key-id: bench replaces only its own key's policy.
    #[arg(long, default_value = "default", value_parser = ["default", "realistic"])]
    access: String,
    /// Rotate the key bench creates this many times (RotateKeyOnDemand, 0..=25, the most a key
    /// may be rotated on demand) after making Decrypt's ciphertext, so that Decrypt reads the
    /// key's oldest material. Not with --key-id: bench rotates only the key it creates.
    #[arg(
        long,
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=25),
        conflicts_with = "key_id"
    )]
    rotations: u32,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The operations bench knows.
const OPERATIONS: [&str; 10] = [
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateRandom",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

/// The key policy of `--access realistic`: five statements, four with conditions, as a team that
/// keys data by tenant might write (every statement is evaluated on each request). The admins
/// may rotate the key on demand and read its rotation status, for `--rotations`.
fn realistic_policy(account: &str) -> String {
    let root = format!("arn:aws:iam::{account}:root");
    json!({
        "Version": "2012-10-17",
        "Id": "bench-realistic",
        "Statement": [
            {"Sid": "Admins", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Create*",
                        "kms:Enable*", "kms:Disable*", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
                        "kms:RotateKeyOnDemand"],
             "Resource": "*"},
            {"Sid": "UseWithPurpose", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
             "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "bench"},
                           "ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["purpose", "tenant*"]}}},
            {"Sid": "ReEncryptWithinTenant", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": "kms:ReEncrypt*", "Resource": "*",
             "Condition": {"ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "tenant*"}}},
            {"Sid": "NoContextNoDecrypt", "Effect": "Deny", "Principal": "*",
             "Action": "kms:Decrypt", "Resource": "*",
             "Condition": {"Null": {"kms:EncryptionContextKeys": "true"}}},
            {"Sid": "OnlyThisAccount", "Effect": "Deny", "Principal": "*", "Action": "kms:*",
             "Resource": "*",
             "Condition": {"StringNotEquals": {"kms:CallerAccount": account}}}
        ]
    })
    .to_string()
}

#[derive(Clone)]
struct Signer {
    access_key_id: String,
    secret: String,
    region: String,
    host: String,
}

fn load_credentials(args: &BenchArgs) -> (String, String) {
    if let (Ok(a), Ok(s)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        return (a, s);
    }
    let mut in_profile = false;
    let (mut akid, mut secret) = (None, None);
    if let Ok(text) = std::fs::read_to_string(&args.credentials_file) {
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_profile = line.trim_matches(|c| c == '[' || c == ']').trim() == args.profile;
            } else if in_profile && let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => akid = Some(v.trim().to_string()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
    }
    // A dev-mode server accepts anything.
    (
        akid.unwrap_or_else(|| "AKIABENCHDEVMODE0000".into()),
        secret.unwrap_or_else(|| "bench".into()),
    )
}

impl Signer {
    /// A signed POST of `body` to `TrentService.<op>`, exactly as an AWS SDK sends it.
    fn request(&self, op: &str, body: Vec<u8>) -> Result<http::Request<Full<Bytes>>, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let target = format!("TrentService.{op}");
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", &self.host)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", &target)
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| e.to_string())?;
        let identity = aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret,
            None,
            None,
            "bench",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let url = format!("http://{}/", self.host);
        let headers = [
            ("host", self.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        instructions.apply_to_request_http1x(&mut req);
        Ok(req)
    }
}

async fn connect(host: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Rotate `key_id` on demand `times` times, each rotation finished before the next is asked for
/// (the server refuses a second one with ConflictException while one is in progress).
async fn rotate(
    sender: &mut SendRequest<Full<Bytes>>,
    signer: &Signer,
    key_id: &str,
    times: u32,
) -> Result<(), String> {
    let key = json!({"KeyId": key_id});
    for _ in 0..times {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = call(sender, signer, "RotateKeyOnDemand", &key).await {
            if !e.contains("ConflictException") || Instant::now() > deadline {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        loop {
            let status = call(sender, signer, "GetKeyRotationStatus", &key).await?;
            if status.get("OnDemandRotationStartDate").is_none() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("rotation of {key_id} did not finish in 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    signer: &Signer,
    op: &str,
    body: &Value,
) -> Result<Value, String> {
    let req = signer.request(op, serde_json::to_vec(body).map_err(|e| e.to_string())?)?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "{op}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    // Refused before anything is made (clap checks --rotations against --key-id).
    if args.key_id.is_some() && args.access != "default" {
        return Err(format!(
            "--access {} replaces the key policy of the key bench creates: it cannot be used with --key-id",
            args.access
        ));
    }
    let host = args
        .endpoint
        .strip_prefix("http://")
        .ok_or("bench speaks plain HTTP: give --endpoint http://HOST:PORT")?
        .trim_end_matches('/')
        .to_string();
    let (access_key_id, secret) = load_credentials(&args);
    let signer = Signer {
        access_key_id,
        secret,
        region: args.region.clone(),
        host: host.clone(),
    };
    let mut setup = connect(&host).await?;
    let usage = match args.operation.as_str() {
        "Sign" | "Verify" => "SIGN_VERIFY",
        "GenerateMac" | "VerifyMac" => "GENERATE_VERIFY_MAC",
        _ => "ENCRYPT_DECRYPT",
    };
    let (key_id, metadata) = match &args.key_id {
        Some(k) => {
            let described = call(&mut setup, &signer, "DescribeKey", &json!({"KeyId": k})).await?;
            (k.clone(), described["KeyMetadata"].clone())
        }
        None => {
            let created = call(
                &mut setup,
                &signer,
                "CreateKey",
                &json!({"Description": "trent bench", "KeySpec": args.key_spec, "KeyUsage": usage}),
            )
            .await?;
            let id = created["KeyMetadata"]["KeyId"]
                .as_str()
                .ok_or("CreateKey returned no KeyId")?
                .to_string();
            (id, created["KeyMetadata"].clone())
        }
    };
    match args.access.as_str() {
        "default" => {}
        "realistic" => {
            let account = metadata["AWSAccountId"].as_str().unwrap_or_default();
            let policy = realistic_policy(account);
            call(
                &mut setup,
                &signer,
                "PutKeyPolicy",
                &json!({"KeyId": key_id, "Policy": policy}),
            )
            .await?;
            call(
                &mut setup,
                &signer,
                "CreateGrant",
                &json!({"KeyId": key_id, "GranteePrincipal": format!("arn:aws:iam::{account}:role/bench-reader"),
                        "Operations": ["Decrypt", "DescribeKey"],
                        "Constraints": {"EncryptionContextSubset": {"purpose": "bench"}}}),
            )
            .await?;
        }
        other => return Err(format!("--access {other}: give default or realistic")),
    }
    // The algorithm: as asked, else the first the key lists.
    let listed = |member: &str| {
        args.algorithm
            .clone()
            .or_else(|| metadata[member][0].as_str().map(str::to_string))
    };
    let plaintext = B64.encode(vec![0x5a; args.payload_bytes]);
    let symmetric = metadata["KeySpec"].as_str() == Some("SYMMETRIC_DEFAULT");
    let encrypt_body = if symmetric {
        json!({"KeyId": key_id, "Plaintext": plaintext, "EncryptionContext": {"purpose": "bench"}})
    } else {
        let alg = args
            .algorithm
            .clone()
            .unwrap_or("RSAES_OAEP_SHA_256".into());
        json!({"KeyId": key_id, "Plaintext": plaintext, "EncryptionAlgorithm": alg})
    };
    let body = match args.operation.as_str() {
        "Encrypt" => encrypt_body,
        "Decrypt" => {
            let enc = call(&mut setup, &signer, "Encrypt", &encrypt_body).await?;
            if symmetric {
                json!({"CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": {"purpose": "bench"}})
            } else {
                json!({"CiphertextBlob": enc["CiphertextBlob"], "KeyId": key_id, "EncryptionAlgorithm": enc["EncryptionAlgorithm"]})
            }
        }
        "GenerateDataKey" => {
            json!({"KeyId": key_id, "KeySpec": "AES_256", "EncryptionContext": {"purpose": "bench"}})
        }
        "GenerateRandom" => json!({"NumberOfBytes": 32}),
        "Sign" | "Verify" => {
            let alg = listed("SigningAlgorithms").ok_or("the key lists no signing algorithm")?;
            // Ed25519ph signs only digests; everything else signs the raw message.
            let (message, kind) = if alg == "ED25519_PH_SHA_512" {
                (B64.encode([0x5a; 64]), "DIGEST")
            } else {
                (plaintext.clone(), "RAW")
            };
            let sign = json!({"KeyId": key_id, "Message": message, "MessageType": kind, "SigningAlgorithm": alg});
            if args.operation == "Sign" {
                sign
            } else {
                let signed = call(&mut setup, &signer, "Sign", &sign).await?;
                let mut verify = sign;
                verify["Signature"] = signed["Signature"].clone();
                verify
            }
        }
        "GenerateMac" | "VerifyMac" => {
            let alg = listed("MacAlgorithms").ok_or("the key lists no MAC algorithm")?;
            let mac = json!({"KeyId": key_id, "Message": plaintext, "MacAlgorithm": alg});
            if args.operation == "GenerateMac" {
                mac
            } else {
                let made = call(&mut setup, &signer, "GenerateMac", &mac).await?;
                let mut verify = mac;
                verify["Mac"] = made["Mac"].clone();
                verify
            }
        }
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            json!({"KeyId": key_id, "KeyPairSpec": args.key_pair_spec, "EncryptionContext": {"purpose": "bench"}})
        }
        other => {
            return Err(format!(
                "--operation {other}: bench knows {}",
                OPERATIONS.join(", ")
            ));
        }
    };
    rotate(&mut setup, &signer, &key_id, args.rotations).await?;
    // What the figures are of: the operation and the spec that matters for it.
    let spec = if args.operation.starts_with("GenerateDataKeyPair") {
        args.key_pair_spec.clone()
    } else {
        metadata["KeySpec"].as_str().unwrap_or("").to_string()
    };
    drop(setup);

    let start = Instant::now();
    let warm_until = start + Duration::from_secs(args.warmup);
    let stop_at = warm_until + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (signer, body, op, host) = (
            signer.clone(),
            body.clone(),
            args.operation.clone(),
            host.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let mut errors = 0u64;
            let mut sender = connect(&host).await?;
            loop {
                let t0 = Instant::now();
                if t0 >= stop_at {
                    break;
                }
                let ok = call(&mut sender, &signer, &op, &body).await.is_ok();
                let done = Instant::now();
                if done >= warm_until && done < stop_at {
                    if ok {
                        hist.saturating_record(done.duration_since(t0).as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    sender = connect(&host).await?;
                }
            }
            Ok::<_, String>((hist, errors))
        }));
    }
    let mut total =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let mut errors = 0;
    for w in workers {
        let (h, e) = w.await.map_err(|e| e.to_string())??;
        total.add(h).map_err(|e| e.to_string())?;
        errors += e;
    }
    let ops = total.len() as f64 / args.duration as f64;
    let ms = |q: f64| total.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        println!(
            "{}",
            json!({"operation": args.operation, "key_spec": spec, "access": args.access, "key_id": args.key_id, "rotations": args.rotations,
                   "concurrency": args.concurrency, "seconds": args.duration,
                   "requests": total.len(), "errors": errors, "ops_per_sec": ops.round(),
                   "p50_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999)})
        );
    } else {
        println!(
            "{} {} c={} {:.0} ops/s  p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  ({} requests, {} errors, {} s)",
            args.operation,
            spec,
            args.concurrency,
            ops,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            total.len(),
            errors,
            args.duration
        );
    }
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}

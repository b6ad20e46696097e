//! Test harness: runs the `trent` binary as a child process and builds `aws-sdk-kms` clients that
//! talk to it, the way any AWS client would (endpoint URL, region, static credentials).
//!
//! Every integration test file includes this module with `mod common;`; not every file uses every
//! helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use aws_sdk_kms::Client;
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyMetadata;
use std::fmt::Debug;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The account dev mode maps every caller to, and the account of the admin principal.
pub const ACCOUNT: &str = "111122223333";
/// The region clients use unless a test asks for another.
pub const REGION: &str = "us-east-1";
/// Another region, for the regional-isolation tests.
pub const OTHER_REGION: &str = "eu-west-1";
/// Credentials the dev-mode clients sign with (dev mode accepts any).
pub const DEV_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const DEV_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// How long a server may take to print its listening line. Generous: `cargo test` runs test
/// binaries and threads in parallel on small machines.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const LISTENING_PREFIX: &str = "trent listening on ";

/// A running `trent serve`. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// The credentials clients built by [`Server::client`] sign with.
    pub access_key: String,
    pub secret_key: String,
    /// The data directory of a non-dev server.
    pub data_dir: Option<PathBuf>,
    /// Everything the process wrote to stdout and stderr so far, for failure messages.
    output: Arc<Mutex<String>>,
}

/// How a process that was expected to exit by itself ended.
pub struct Exited {
    pub status: ExitStatus,
    pub output: String,
}

fn trent_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trent"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Keep the server's logs readable and never let the environment pick a config file or
        // credentials for it.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE");
    // Every setting is overridable by a TRENT_* variable: the tests say what they mean on the
    // command line, whatever the environment of `cargo test` holds.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TRENT_") {
            cmd.env_remove(name);
        }
    }
    // Servers run side by side: each admin listener (metrics, health) takes a free port.
    cmd.env("TRENT_ADMIN_LISTEN", "127.0.0.1:0");
    cmd
}

/// Copies every line of `stream` into `output`, and (if given) sends each line on `lines`.
fn drain<R: Read + Send + 'static>(
    stream: R,
    output: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    output.lock().unwrap().push_str(&line);
                    if let Some(tx) = &lines {
                        // The receiver goes away once the listening line was seen; keep draining.
                        let _ = tx.send(line.trim_end().to_owned());
                    }
                }
            }
        }
    });
}

impl Server {
    /// `trent serve --dev --in-memory --listen 127.0.0.1:0`
    pub fn dev() -> Server {
        Server::dev_with(&[])
    }

    /// A dev-mode, in-memory server with extra command-line arguments.
    pub fn dev_with(extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--dev", "--in-memory", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (child, endpoint, output) = spawn(&args);
        Server {
            child: Some(child),
            endpoint,
            access_key: DEV_ACCESS_KEY.to_owned(),
            secret_key: DEV_SECRET_KEY.to_owned(),
            data_dir: None,
            output,
        }
    }

    /// `trent serve --data-dir DIR --listen 127.0.0.1:0` (SigV4 verified); clients sign with the
    /// admin credentials the server wrote to `DIR/credentials`.
    pub fn on_dir(dir: &Path) -> Server {
        Server::on_dir_with(dir, &[])
    }

    /// A client in us-east-1 signing with this server's credentials.
    pub fn client(&self) -> Client {
        self.client_in(REGION)
    }

    /// A client in `region` signing with this server's credentials.
    pub fn client_in(&self, region: &str) -> Client {
        self.client_with(region, &self.access_key, &self.secret_key)
    }

    /// A client in `region` signing with the given credentials.
    pub fn client_with(&self, region: &str, access_key: &str, secret_key: &str) -> Client {
        Client::from_conf(self.config(region, access_key, secret_key).build())
    }

    /// The client configuration every helper starts from: endpoint, region, static credentials,
    /// no retries (error tests stay fast and see the first response), a bounded operation time.
    pub fn config(
        &self,
        region: &str,
        access_key: &str,
        secret_key: &str,
    ) -> aws_sdk_kms::config::Builder {
        aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "trent-tests",
            ))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
    }

    /// `host:port` of the listener, for hand-written HTTP requests.
    pub fn authority(&self) -> &str {
        self.endpoint
            .strip_prefix("http://")
            .expect("endpoint is http://")
    }

    /// Kill the process with SIGKILL (`kill -9`) and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts `trent` with `args` and waits for its listening line.
fn spawn(args: &[&str]) -> (Child, String, Arc<Mutex<String>>) {
    let mut child = trent_command(args)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", env!("CARGO_BIN_EXE_trent")));
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    drain(child.stdout.take().unwrap(), output.clone(), Some(tx));
    drain(child.stderr.take().unwrap(), output.clone(), None);

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(at) = line.find(LISTENING_PREFIX) {
                    let endpoint = line[at + LISTENING_PREFIX.len()..].trim().to_owned();
                    assert!(
                        endpoint.starts_with("http://127.0.0.1:"),
                        "unexpected listening line {line:?}"
                    );
                    return (child, endpoint, output);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "trent {args:?} printed no '{LISTENING_PREFIX}...' line within {START_TIMEOUT:?}\noutput:\n{}",
                    output.lock().unwrap()
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: the process is gone (or closed stdout, which it must not).
                let status = wait_with_timeout(&mut child, Duration::from_secs(5));
                std::thread::sleep(Duration::from_millis(50)); // let the stderr thread finish
                panic!(
                    "trent {args:?} closed stdout before printing its listening line (exit: {status:?})\noutput:\n{}",
                    output.lock().unwrap()
                );
            }
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `trent args...` expecting it to exit by itself within `timeout`. Panics (after killing
/// it) if it is still running then.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> Exited {
    let cwd = tempfile::tempdir().expect("temporary working directory");
    run_to_exit_in(cwd.path(), args, timeout)
}

/// [`run_to_exit`] with `cwd` as the working directory.
pub fn run_to_exit_in(cwd: &Path, args: &[&str], timeout: Duration) -> Exited {
    let mut child = trent_command(args)
        .current_dir(cwd)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start trent: {e}"));
    let output = Arc::new(Mutex::new(String::new()));
    drain(child.stdout.take().unwrap(), output.clone(), None);
    drain(child.stderr.take().unwrap(), output.clone(), None);
    let status = wait_with_timeout(&mut child, timeout);
    std::thread::sleep(Duration::from_millis(50));
    let output = output.lock().unwrap().clone();
    match status {
        Some(status) => Exited { status, output },
        None => panic!("trent {args:?} was still running after {timeout:?}\noutput:\n{output}"),
    }
}

/// Reads profile `trent` of an AWS shared-credentials file.
pub fn read_credentials(path: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut in_profile = false;
    let (mut access_key, mut secret_key) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_profile = line == "[trent]";
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => access_key = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret_key = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    match (access_key, secret_key) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Ok((a, s)),
        _ => Err(format!(
            "no [trent] profile with aws_access_key_id and aws_secret_access_key in:\n{text}"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A service error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    pub code: String,
    /// `None` when the response carried no message.
    pub message: Option<String>,
    pub status: u16,
    pub request_id: Option<String>,
}

impl ServiceFailure {
    /// The message, with "no message" read as the empty string (what botocore shows).
    pub fn message_text(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

/// The service error `result` must hold. Panics on success and on errors that never reached the
/// service (connection failures, timeouts, request construction).
#[track_caller]
pub fn failure<O, E>(result: Result<O, SdkError<E>>) -> ServiceFailure
where
    O: Debug,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let err = match result {
        Ok(out) => panic!("expected a service error, got success: {out:?}"),
        Err(err) => err,
    };
    let Some(raw) = err.raw_response() else {
        panic!(
            "expected a service error, got a failure without a response: {}",
            DisplayErrorContext(&err)
        );
    };
    let status = raw.status().as_u16();
    let request_id = raw.headers().get("x-amzn-RequestId").map(|v| v.to_owned());
    let code = err.code().map(str::to_owned).unwrap_or_else(|| {
        panic!(
            "error response without a code (status {status}): {}",
            DisplayErrorContext(&err)
        )
    });
    ServiceFailure {
        code,
        message: err.message().map(str::to_owned),
        status,
        request_id,
    }
}

/// Asserts `result` failed with HTTP 400, error `code` and exactly `message` (`""` for none).
#[track_caller]
pub fn assert_error<O, E>(
    result: Result<O, SdkError<E>>,
    code: &str,
    message: &str,
) -> ServiceFailure
where
    O: Debug,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let f = failure(result);
    assert_eq!(
        (f.code.as_str(), f.message_text(), f.status),
        (code, message, 400),
        "unexpected error {f:?}"
    );
    f
}

/// Asserts `result` failed with HTTP 400 and error `code`, whatever the message.
#[track_caller]
pub fn assert_code<O, E>(result: Result<O, SdkError<E>>, code: &str) -> ServiceFailure
where
    O: Debug,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let f = failure(result);
    assert_eq!(
        (f.code.as_str(), f.status),
        (code, 400),
        "unexpected error {f:?}"
    );
    f
}

// ---------------------------------------------------------------------------------------------
// Requests

/// Sends a CreateKey `request` that must succeed and returns the new key's metadata.
pub async fn created_key(request: CreateKeyFluentBuilder) -> KeyMetadata {
    request
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("KeyMetadata")
}

/// DescribeKey of `key_id` (any form), which must succeed: its KeyMetadata.
pub async fn describe(kms: &Client, key_id: &str) -> KeyMetadata {
    kms.describe_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeKey {key_id}: {}", DisplayErrorContext(&e)))
        .key_metadata
        .expect("KeyMetadata")
}

/// Encrypt of `plaintext` under `key_id` with no encryption context and the key's default
/// algorithm, which must succeed: the ciphertext.
pub async fn encrypt(kms: &Client, key_id: &str, plaintext: &[u8]) -> Vec<u8> {
    kms.encrypt()
        .key_id(key_id)
        .plaintext(Blob::new(plaintext))
        .send()
        .await
        .unwrap_or_else(|e| panic!("Encrypt under {key_id}: {}", DisplayErrorContext(&e)))
        .ciphertext_blob
        .expect("CiphertextBlob")
        .into_inner()
}

// ---------------------------------------------------------------------------------------------
// Identifiers and data

pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

pub fn alias_arn(region: &str, account: &str, alias_name: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{alias_name}")
}

/// `Key '<arn>' does not exist`
pub fn not_found_message(region: &str, account: &str, key_id: &str) -> String {
    format!("Key '{}' does not exist", key_arn(region, account, key_id))
}

/// Whether `id` is a lowercase UUID version 4 (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`).
pub fn is_uuid_v4(id: &str) -> bool {
    let b = id.as_bytes();
    id.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Whether `s` is 64 lowercase hex digits (a KeyMaterialId).
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Deterministic pseudo-random bytes (xorshift64*), distinct per `seed`. Test data, not keys.
pub fn test_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A seed that differs between calls and processes.
pub fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP, for endpoints that are not KMS operations and for unsigned requests.

/// A response read by [`http_post`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 `POST path` with `headers` and `body` to `authority` (`host:port`) over a
/// fresh connection (`Connection: close`) and reads the whole response.
pub async fn http_post(
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .unwrap_or_else(|e| panic!("connect {authority}: {e}"));
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("HTTP response within 30 s")
        .expect("read HTTP response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}

/// The error code of an awsJson error body, read the way clients read it: `__type`, text after
/// the last `#` and before any `:`.
pub fn json_error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let t = v.get("__type")?.as_str()?;
    let t = t.rsplit('#').next().unwrap_or(t);
    Some(t.split(':').next().unwrap_or(t).to_owned())
}

// ---------------------------------------------------------------------------------------------
// Servers with extra arguments

impl Server {
    /// [`Server::on_dir`] with extra `trent serve` arguments (`--config FILE`, ...). Clients sign
    /// with the admin credentials in `DIR/credentials`, written at the directory's first start.
    pub fn on_dir_with(dir: &Path, extra: &[&str]) -> Server {
        let dir_arg = dir.to_str().expect("data dir path is UTF-8");
        let mut args = vec!["serve", "--data-dir", dir_arg, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (child, endpoint, output) = spawn(&args);
        let creds_path = dir.join("credentials");
        let (access_key, secret_key) = match read_credentials(&creds_path) {
            Ok(creds) => creds,
            Err(e) => panic!(
                "cannot read admin credentials from {}: {e}\nserver output:\n{}",
                creds_path.display(),
                output.lock().unwrap()
            ),
        };
        Server {
            child: Some(child),
            endpoint,
            access_key,
            secret_key,
            data_dir: Some(dir.to_owned()),
            output,
        }
    }
}

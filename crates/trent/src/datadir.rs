//! What a process that holds the root key does to its own surroundings at start: no core dumps
//! and private file modes (through `trent_crypto::process`), the data directory's permissions
//! checked, and an exclusive lock on the data and audit directories so that one `trent serve` at
//! a time writes them.

use crate::config::{Settings, StoreSettings};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Before anything is read or written: no core dump of this process (unless
/// `--allow-core-dumps`), and no file or directory it makes open to group or others. Returns the
/// warnings to log.
pub fn protect_process(s: &StoreSettings) -> Result<Vec<String>, String> {
    trent_crypto::process::private_umask();
    if s.allow_core_dumps {
        return Ok(vec![
            "--allow-core-dumps: a core dump of this process may be written, and it would hold key material (key schedules and keys AWS-LC keeps); for debugging only".into(),
        ]);
    }
    trent_crypto::process::forbid_core_dumps()
        .map_err(|e| format!("{e} (--allow-core-dumps starts anyway, unsafely)"))?;
    Ok(Vec::new())
}

/// Once the root key and the secrets are loaded: a warning for each kind of secret memory the
/// platform refused (they are still zeroed when dropped).
pub fn secret_memory_warnings() -> Vec<String> {
    let stats = trent_crypto::secret::stats();
    let mut out = Vec::new();
    if stats.unlocked > 0 {
        let limit = match trent_crypto::process::memlock_limit() {
            Some(bytes) => format!("RLIMIT_MEMLOCK is {bytes} bytes"),
            None => "RLIMIT_MEMLOCK".into(),
        };
        out.push(format!(
            "{} of {} secrets could not be locked in memory (mlock refused; {limit}): they stay out of core dumps but may be swapped out; raise the limit (ulimit -l, systemd LimitMEMLOCK=) to lock them",
            stats.unlocked, stats.mapped
        ));
    }
    if stats.dumpable > 0 {
        out.push(format!(
            "{} secrets could not be excluded from core dumps (madvise refused or not Linux)",
            stats.dumpable
        ));
    }
    if stats.on_heap > 0 {
        out.push(format!(
            "{} secrets are on the ordinary heap (no memory mapping could be had)",
            stats.on_heap
        ));
    }
    out
}

/// Make `dir` (and its parents) if it does not exist, mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// An exclusive lock on a directory (`flock` on the directory itself, so nothing is written to
/// take it), held until the process ends.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

/// Lock `dir` (made first if missing) for this process, or say who holds it.
fn lock_dir(dir: &Path, what: &str, flag: &str) -> Result<DirLock, String> {
    create_private_dir(dir)?;
    let file = File::open(dir).map_err(|e| format!("cannot open {what} {}: {e}", dir.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _dir: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "{what} {} is in use by another trent serve (it holds the directory's lock): stop that one first, or give this one its own {flag}",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(format!("cannot lock {what} {}: {e}", dir.display()))
        }
    }
}

/// The locks `trent serve` holds for its life: the data directory's (unless in memory) and the
/// audit directory's, so that a second server on either is refused before it opens anything.
/// The admin commands (`trent principal ...`) take none: they only go through the store, which
/// SQLite shares safely with a running server.
pub fn lock_for_serve(settings: &Settings) -> Result<Vec<DirLock>, String> {
    let mut locks = Vec::new();
    let mut locked: Vec<PathBuf> = Vec::new();
    if !settings.store.in_memory {
        locks.push(lock_dir(
            &settings.store.data_dir,
            "data directory",
            "--data-dir",
        )?);
        locked.push(canonical(&settings.store.data_dir));
    }
    if let Some(audit) = &settings.audit {
        create_private_dir(&audit.dir)?;
        // The same directory twice would be refused by our own first lock.
        if !locked.contains(&canonical(&audit.dir)) {
            locks.push(lock_dir(&audit.dir, "audit directory", "--audit-dir")?);
        }
    }
    Ok(locks)
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Refuse (or, with `--allow-insecure-permissions`, warn about) a data directory, root key file
/// or credentials file that group or others may use. Returns the warnings to log.
pub fn check_permissions(s: &StoreSettings) -> Result<Vec<String>, String> {
    if s.in_memory {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    found.extend(open_to_others(&s.data_dir, "data directory", "700"));
    if !s.passphrase {
        found.extend(open_to_others(&s.root_key_file, "root key file", "600"));
    }
    found.extend(open_to_others(
        &s.data_dir.join("credentials"),
        "credentials file",
        "600",
    ));
    if found.is_empty() || s.allow_insecure_permissions {
        return Ok(found
            .into_iter()
            .map(|f| format!("{f} (starting anyway: --allow-insecure-permissions)"))
            .collect());
    }
    Err(format!(
        "{} (or start with --allow-insecure-permissions to only warn)",
        found.join("; ")
    ))
}

/// What is wrong with `path`'s mode, if group or others have any access to it; nothing for a
/// path that does not exist (yet).
fn open_to_others(path: &Path, what: &str, fix: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{what} {} is open to group or others (mode {mode:04o}): run `chmod {fix} {}`",
                path.display(),
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = (path, what, fix);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn settings(dir: &Path, allow: bool) -> StoreSettings {
        StoreSettings {
            data_dir: dir.to_path_buf(),
            root_key_file: dir.join("root.key"),
            passphrase: false,
            in_memory: false,
            allow_core_dumps: false,
            allow_insecure_permissions: allow,
            partition: trent_kms::ids::DEFAULT_PARTITION.into(),
        }
    }

    #[test]
    fn each_file_open_to_others_is_named_with_its_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        create_private_dir(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::write(dir.join("root.key"), [0u8; 32]).unwrap();
        std::fs::set_permissions(dir.join("root.key"), PermissionsExt::from_mode(0o600)).unwrap();
        assert_eq!(check_permissions(&settings(&dir, false)), Ok(vec![]));
        std::fs::set_permissions(dir.join("root.key"), PermissionsExt::from_mode(0o640)).unwrap();
        let err = check_permissions(&settings(&dir, false)).unwrap_err();
        let shown = dir.join("root.key").display().to_string();
        assert_eq!(
            err,
            format!(
                "root key file {shown} is open to group or others (mode 0640): run `chmod 600 {shown}` (or start with --allow-insecure-permissions to only warn)"
            )
        );
        let warnings = check_permissions(&settings(&dir, true)).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].ends_with("(starting anyway: --allow-insecure-permissions)"));
    }

    #[test]
    fn a_second_lock_on_a_directory_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = lock_dir(tmp.path(), "data directory", "--data-dir").unwrap();
        let err = lock_dir(tmp.path(), "data directory", "--data-dir").unwrap_err();
        assert!(err.contains("is in use by another trent serve"), "{err}");
        drop(first);
        lock_dir(tmp.path(), "data directory", "--data-dir").unwrap();
    }
}

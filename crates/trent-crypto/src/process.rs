//! The process-wide protections of a trent process that holds the root key: no core dump is
//! written of it (`PR_SET_DUMPABLE` 0, which also keeps other users' debuggers out, and a core
//! size limit of 0), and the files it makes are its owner's alone (umask 077). These cover what
//! [`crate::secret`] cannot place: key schedules and parsed keys that AWS-LC keeps in its own
//! allocations. Every `unsafe` block of this module states why it is sound.

/// Make this process non-dumpable and set its core size limit (soft and hard) to 0, so that no
/// core dump of it is written, whatever the kernel's `core_pattern`. Children inherit the limit.
pub fn forbid_core_dumps() -> Result<(), String> {
    #[cfg(unix)]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit reads the struct we pass by reference; no other memory is involved.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
            return Err(format!(
                "cannot set the core size limit to 0: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_DUMPABLE takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(format!(
                "cannot make the process non-dumpable: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Whether this process may be dumped (Linux's `PR_GET_DUMPABLE`); `None` elsewhere.
pub fn dumpable() -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_GET_DUMPABLE takes no pointers and returns the flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        Some(flag > 0)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Files and directories this process creates from now on get no group or other permissions,
/// whatever mode their creator asks for (SQLite's database, WAL and shared-memory files
/// included).
pub fn private_umask() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

/// The soft `RLIMIT_MEMLOCK`, in bytes (`None` for unlimited or unknown): how much `mlock` may
/// lock without privilege.
pub fn memlock_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we pass by mutable reference.
        if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0
            || lim.rlim_cur == libc::RLIM_INFINITY
        {
            return None;
        }
        Some(lim.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}

//! Memory for long-lived secrets: each in a page-aligned anonymous mapping of its own, excluded
//! from core dumps (`MADV_DONTDUMP`), locked against swap (`mlock`) where `RLIMIT_MEMLOCK`
//! allows, and zeroed before it is unmapped.
//!
//! Both calls work on whole pages, so a secret cannot share its page with ordinary heap data: a
//! secret here costs one page (4 KiB) however short it is. Where the platform has no mapping (not
//! unix) or the kernel refuses one, the secret lives in an ordinary zeroizing heap allocation and
//! [`stats`] counts it; a refused `mlock` is counted too (the binary warns at start), never an
//! error. Every `unsafe` block of this module states why it is sound.

use std::fmt;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use zeroize::{Zeroize, Zeroizing};

/// Secrets held in a mapping of their own right now.
static MAPPED: AtomicUsize = AtomicUsize::new(0);
/// ...of which the kernel refused to lock (`RLIMIT_MEMLOCK`, or no `mlock` on this platform).
static UNLOCKED: AtomicUsize = AtomicUsize::new(0);
/// ...of which the kernel refused to exclude from core dumps.
static DUMPABLE: AtomicUsize = AtomicUsize::new(0);
/// Secrets held on the ordinary heap because no mapping could be had.
static ON_HEAP: AtomicUsize = AtomicUsize::new(0);

/// How the secrets alive now are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecretStats {
    /// In a mapping of their own.
    pub mapped: usize,
    /// Mapped, but not locked against swap (`mlock` refused).
    pub unlocked: usize,
    /// Mapped, but not excluded from core dumps (`madvise` refused, or not Linux).
    pub dumpable: usize,
    /// On the ordinary heap (no mapping could be had).
    pub on_heap: usize,
}

/// How the secrets alive now are held.
pub fn stats() -> SecretStats {
    SecretStats {
        mapped: MAPPED.load(Ordering::Relaxed),
        unlocked: UNLOCKED.load(Ordering::Relaxed),
        dumpable: DUMPABLE.load(Ordering::Relaxed),
        on_heap: ON_HEAP.load(Ordering::Relaxed),
    }
}

/// Secret bytes in memory of their own (see the module comment). `Debug` shows only the length.
pub struct SecretBytes {
    backing: Backing,
    len: usize,
}

enum Backing {
    Mapped(Mapping),
    Heap(Zeroizing<Box<[u8]>>),
}

impl SecretBytes {
    /// `len` bytes, written in place by `fill` (reading a file, drawing random bytes, deriving a
    /// key), so that no copy of the secret is made on the way.
    pub fn fill<E>(len: usize, fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<Self, E> {
        let mut secret = match Mapping::new(len) {
            Some(m) => Self {
                backing: Backing::Mapped(m),
                len,
            },
            None => {
                ON_HEAP.fetch_add(1, Ordering::Relaxed);
                Self {
                    backing: Backing::Heap(Zeroizing::new(vec![0u8; len].into_boxed_slice())),
                    len,
                }
            }
        };
        fill(secret.bytes_mut())?;
        Ok(secret)
    }

    /// A copy of `bytes` (the caller zeroizes its own).
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self::fill(bytes.len(), |buf| {
            buf.copy_from_slice(bytes);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {})
    }

    /// The secret. Callers must not copy it into storage that is not zeroized.
    pub fn expose(&self) -> &[u8] {
        match &self.backing {
            Backing::Mapped(m) => &m.bytes()[..self.len],
            Backing::Heap(b) => b,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match &mut self.backing {
            Backing::Mapped(m) => &mut m.bytes_mut()[..self.len],
            Backing::Heap(b) => b,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        Self::copy_from(self.expose())
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.len)
    }
}

/// A secret text (an access key's secret) held as [`SecretBytes`].
#[derive(Clone)]
pub struct SecretString(SecretBytes);

impl SecretString {
    /// A copy of `text` (the caller zeroizes its own).
    pub fn new(text: &str) -> Self {
        Self(SecretBytes::copy_from(text.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        // Made from a &str only, so this never falls back.
        std::str::from_utf8(self.0.expose()).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.expose()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

/// One anonymous private mapping, whole pages, owned by one secret.
struct Mapping {
    ptr: NonNull<u8>,
    /// Bytes mapped: the secret's length rounded up to whole pages (at least one).
    size: usize,
    locked: bool,
    excluded: bool,
}

// SAFETY: the mapping is owned by exactly one `Mapping` (never aliased, unmapped once on drop),
// and it is only written through `&mut self`; sharing `&Mapping` across threads shares only reads.
unsafe impl Send for Mapping {}
// SAFETY: as above: no interior mutability.
unsafe impl Sync for Mapping {}

#[cfg(unix)]
fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a system constant; no pointers involved.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 { n as usize } else { 4096 }
    })
}

impl Mapping {
    #[cfg(unix)]
    fn new(len: usize) -> Option<Mapping> {
        let page = page_size();
        let size = len.max(1).checked_next_multiple_of(page)?;
        // SAFETY: a fresh anonymous private mapping; the kernel picks the address, no existing
        // memory is touched. Anonymous mappings come zero-filled.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        let ptr = NonNull::new(ptr.cast::<u8>())?;
        #[cfg(target_os = "linux")]
        // SAFETY: advice on exactly the mapping made above, which we own.
        let excluded =
            unsafe { libc::madvise(ptr.as_ptr().cast(), size, libc::MADV_DONTDUMP) } == 0;
        #[cfg(not(target_os = "linux"))]
        let excluded = false;
        // SAFETY: locks exactly the mapping made above; fails cleanly past RLIMIT_MEMLOCK.
        let locked = unsafe { libc::mlock(ptr.as_ptr().cast(), size) } == 0;
        MAPPED.fetch_add(1, Ordering::Relaxed);
        if !locked {
            UNLOCKED.fetch_add(1, Ordering::Relaxed);
        }
        if !excluded {
            DUMPABLE.fetch_add(1, Ordering::Relaxed);
        }
        Some(Mapping {
            ptr,
            size,
            locked,
            excluded,
        })
    }

    #[cfg(not(unix))]
    fn new(_len: usize) -> Option<Mapping> {
        None
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `size` bytes at `ptr` are mapped readable and writable for as long as `self`
        // lives, initialized (zero-filled by the kernel, then written through `bytes_mut`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.size) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.size) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        self.bytes_mut().zeroize();
        MAPPED.fetch_sub(1, Ordering::Relaxed);
        if !self.locked {
            UNLOCKED.fetch_sub(1, Ordering::Relaxed);
        }
        if !self.excluded {
            DUMPABLE.fetch_sub(1, Ordering::Relaxed);
        }
        #[cfg(unix)]
        // SAFETY: the mapping made in `new`, unlocked and unmapped once; no reference to it
        // outlives `self`.
        unsafe {
            if self.locked {
                libc::munlock(self.ptr.as_ptr().cast(), self.size);
            }
            libc::munmap(self.ptr.as_ptr().cast(), self.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VmFlags` line of /proc/self/smaps for the mapping that holds `addr`.
    #[cfg(target_os = "linux")]
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((lo, hi)) = range.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
                continue;
            }
            if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.trim().to_string();
            }
        }
        panic!("no mapping holds {addr:#x}")
    }

    #[test]
    fn a_secret_sits_alone_on_its_pages_and_reads_back() {
        let s = SecretBytes::copy_from(b"root key bytes");
        assert_eq!(s.expose(), b"root key bytes");
        assert_eq!(s.len(), 14);
        let Backing::Mapped(m) = &s.backing else {
            panic!("not mapped")
        };
        assert_eq!(m.ptr.as_ptr() as usize % page_size(), 0);
        assert_eq!(m.size, page_size());
        assert!(stats().mapped >= 1);
        let big = SecretBytes::fill(page_size() + 1, |b| {
            b.fill(7);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(big.expose().iter().all(|b| *b == 7));
        let Backing::Mapped(m) = &big.backing else {
            panic!("not mapped")
        };
        assert_eq!(m.size, 2 * page_size());
        let empty = SecretBytes::copy_from(b"");
        assert!(empty.is_empty() && empty.expose().is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_pages_are_excluded_from_core_dumps_and_locked_when_allowed() {
        let s = SecretBytes::copy_from(b"secret");
        let Backing::Mapped(m) = &s.backing else {
            panic!("not mapped")
        };
        let flags = vm_flags(m.ptr.as_ptr() as usize);
        // "dd": do not include in core dumps. "lo": locked (if RLIMIT_MEMLOCK allowed it).
        assert!(flags.split(' ').any(|f| f == "dd"), "VmFlags: {flags}");
        assert_eq!(
            m.locked,
            flags.split(' ').any(|f| f == "lo"),
            "VmFlags: {flags}"
        );
    }

    #[test]
    fn a_failed_fill_drops_the_pages_and_debug_hides_the_bytes() {
        let err = SecretBytes::fill(4, |_| Err("no")).unwrap_err();
        assert_eq!(err, "no");
        let s = SecretString::new("wJalrXUtnFEMI");
        assert_eq!(s.as_str(), "wJalrXUtnFEMI");
        assert_eq!(s.clone().as_bytes(), b"wJalrXUtnFEMI");
        assert_eq!(format!("{s:?}"), "SecretString([REDACTED])");
        assert_eq!(
            format!("{:?}", SecretBytes::copy_from(b"abc")),
            "SecretBytes([REDACTED; 3 bytes])"
        );
    }
}

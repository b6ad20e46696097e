//! Pre-generated RSA key pairs, so that CreateKey and GenerateDataKeyPair do not wait on RSA key
//! generation (about 0.1 s for 2048 bits and seconds for 4096 on two cores; it searches for primes) and never run it
//! on the threads that serve requests.
//!
//! The pool of a spec starts empty and is first filled after the spec's first use (a server that
//! never makes RSA keys never spends CPU on them). It holds at most `capacity` key pairs per spec,
//! as zeroizing PKCS#8 DER in memory only; a background task tops it up after every take. When it
//! is empty, the request waits for a key generated for it. Every RSA generation, for the pool or
//! for a request, runs on a blocking thread and holds one of a few permits (one fewer than the
//! cores, at least one), so a burst of RSA requests queues instead of taking every core and every
//! blocking thread (which the store also uses). Other specs (ECC, Ed25519, ML-DSA, ML-KEM) take
//! well under a millisecond to generate and are not pooled.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use tokio::sync::Semaphore;
use trent_crypto::{AsymmetricSpec, CryptoError};
use zeroize::Zeroizing;

type Pkcs8 = Zeroizing<Vec<u8>>;

#[derive(Default)]
struct State {
    ready: HashMap<AsymmetricSpec, VecDeque<Pkcs8>>,
    refilling: HashSet<AsymmetricSpec>,
}

/// A bounded pool of pre-generated RSA key pairs per RSA spec.
#[derive(Clone)]
pub struct KeyPairPool {
    state: Arc<Mutex<State>>,
    capacity: usize,
    /// Permits to run an RSA generation.
    generators: Arc<Semaphore>,
}

impl std::fmt::Debug for KeyPairPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        let sizes: HashMap<_, _> = state.ready.iter().map(|(k, v)| (*k, v.len())).collect();
        write!(
            f,
            "KeyPairPool {{ capacity: {}, ready: {sizes:?} }}",
            self.capacity
        )
    }
}

/// Default number of key pairs kept per RSA spec.
pub const DEFAULT_CAPACITY: usize = 2;

/// Generate one RSA key pair on a blocking thread, holding a generation permit.
async fn generate(generators: &Arc<Semaphore>, spec: AsymmetricSpec) -> Result<Pkcs8, CryptoError> {
    let permit = generators
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| CryptoError::Unspecified)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        spec.generate()
    })
    .await
    .map_err(|_| CryptoError::Unspecified)?
}

impl KeyPairPool {
    /// A pool keeping up to `capacity` key pairs per RSA spec (0: no pooling).
    pub fn new(capacity: usize) -> Self {
        let permits = std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1);
        Self {
            state: Arc::new(Mutex::new(State::default())),
            capacity,
            generators: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Key pairs ready for `spec` now.
    pub fn ready(&self, spec: AsymmetricSpec) -> usize {
        self.state.lock().ready.get(&spec).map_or(0, VecDeque::len)
    }

    /// A fresh key pair of `spec` as PKCS#8 DER. Never generates RSA on the calling thread.
    pub async fn take(&self, spec: AsymmetricSpec) -> Result<Pkcs8, CryptoError> {
        if !spec.is_rsa() {
            return spec.generate();
        }
        let pooled = self
            .state
            .lock()
            .ready
            .get_mut(&spec)
            .and_then(VecDeque::pop_front);
        self.refill(spec);
        match pooled {
            Some(der) => Ok(der),
            None => generate(&self.generators, spec).await,
        }
    }

    /// Top the pool of `spec` up in the background, unless that is already under way. The task
    /// holds the pool weakly: it stops once the service that owns the pool is gone.
    fn refill(&self, spec: AsymmetricSpec) {
        if self.capacity == 0 || !self.state.lock().refilling.insert(spec) {
            return;
        }
        let state: Weak<Mutex<State>> = Arc::downgrade(&self.state);
        let (generators, capacity) = (self.generators.clone(), self.capacity);
        tokio::spawn(async move {
            loop {
                {
                    let Some(state) = state.upgrade() else { return };
                    let mut state = state.lock();
                    // Checked and, when full, the flag cleared under one lock: a take in
                    // between cannot find the flag set and the task already gone.
                    if state.ready.get(&spec).map_or(0, VecDeque::len) >= capacity {
                        state.refilling.remove(&spec);
                        return;
                    }
                }
                let made = generate(&generators, spec).await;
                let Some(state) = state.upgrade() else { return };
                let mut state = state.lock();
                match made {
                    Ok(der) => state.ready.entry(spec).or_default().push_back(der),
                    Err(e) => {
                        tracing::error!(error = %e, ?spec, "key pair pre-generation failed");
                        state.refilling.remove(&spec);
                        return;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn rsa_pool_fills_after_first_use_up_to_capacity_and_hands_out_distinct_keys() {
        let pool = KeyPairPool::new(2);
        assert_eq!(pool.ready(AsymmetricSpec::Rsa2048), 0);
        let first = pool.take(AsymmetricSpec::Rsa2048).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while pool.ready(AsymmetricSpec::Rsa2048) < 2 {
            assert!(std::time::Instant::now() < deadline, "pool never filled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Bounded: it stops at capacity.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(pool.ready(AsymmetricSpec::Rsa2048), 2);
        let second = pool.take(AsymmetricSpec::Rsa2048).await.unwrap();
        assert_ne!(first.as_slice(), second.as_slice());
        assert!(trent_crypto::PrivateKey::from_pkcs8(AsymmetricSpec::Rsa2048, &second).is_ok());
        // Other specs are not pooled.
        pool.take(AsymmetricSpec::EccNistP256).await.unwrap();
        assert_eq!(pool.ready(AsymmetricSpec::EccNistP256), 0);
    }

    #[tokio::test]
    async fn capacity_zero_never_pools() {
        let pool = KeyPairPool::new(0);
        pool.take(AsymmetricSpec::Rsa2048).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(pool.ready(AsymmetricSpec::Rsa2048), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_requests_runs_only_as_many_generations_at_once_as_there_are_permits() {
        let pool = KeyPairPool::new(0);
        let permits = pool.generators.available_permits();
        assert!(permits >= 1);
        let burst: Vec<_> = (0..permits + 3)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.take(AsymmetricSpec::Rsa2048).await })
            })
            .collect();
        // The burst queues on the permits rather than starting a generation each.
        let mut seen_busy = false;
        while !burst.iter().all(|t| t.is_finished()) {
            seen_busy |= pool.generators.available_permits() == 0;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen_busy, "the generations held the permits");
        for t in burst {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(pool.generators.available_permits(), permits);
    }
}

//! Pre-generated RSA key pairs, so that CreateKey and GenerateDataKeyPair never wait on RSA key
//! generation (about half a second for 2048 bits, seconds for 4096 on two cores) and never run it
//! on the threads that serve requests.
//!
//! The pool of a spec starts empty and is first filled after the spec's first use (a server that
//! never makes RSA keys never spends CPU on them). It holds at most `capacity` key pairs per spec,
//! as zeroizing PKCS#8 DER in memory only; a background task on a blocking thread tops it up after
//! every take. When it is empty, the request generates its key on a blocking thread. Other specs
//! (ECC, Ed25519, ML-DSA, ML-KEM) take tens of microseconds to generate and are not pooled.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
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

impl KeyPairPool {
    /// A pool keeping up to `capacity` key pairs per RSA spec (0: no pooling).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            capacity,
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
            None => tokio::task::spawn_blocking(move || spec.generate())
                .await
                .map_err(|_| CryptoError::Unspecified)?,
        }
    }

    /// Top the pool of `spec` up in the background, unless that is already under way.
    fn refill(&self, spec: AsymmetricSpec) {
        if self.capacity == 0 || !self.state.lock().refilling.insert(spec) {
            return;
        }
        let pool = self.clone();
        // A blocking thread: generation never occupies a thread that serves requests.
        tokio::task::spawn_blocking(move || {
            loop {
                if pool.ready(spec) >= pool.capacity {
                    break;
                }
                match spec.generate() {
                    Ok(der) => pool
                        .state
                        .lock()
                        .ready
                        .entry(spec)
                        .or_default()
                        .push_back(der),
                    Err(e) => {
                        tracing::error!(error = %e, ?spec, "key pair pre-generation failed");
                        break;
                    }
                }
            }
            pool.state.lock().refilling.remove(&spec);
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
}

//! The few AWS-LC functions aws-lc-rs does not expose, called through `aws-lc-sys` (the same
//! library aws-lc-rs is built on): Ed25519ph (RFC 8032 HashEdDSA), ML-DSA signing of an external μ
//! (FIPS 204 section 6.2), and ML-KEM keys in their PKCS#8 and SubjectPublicKeyInfo forms
//! (RFC 9935). Every `unsafe` block of the crate is here, in `secret` (memory for secrets) or in
//! `process` (core dumps, umask); each states why it is sound.

use crate::CryptoError;
use aws_lc_sys as sys;
use std::ptr::{self, NonNull};
use zeroize::Zeroizing;

/// An owned `EVP_PKEY`.
pub(crate) struct Pkey(NonNull<sys::EVP_PKEY>);

// SAFETY: an EVP_PKEY is never mutated after it is built here; AWS-LC documents EVP_PKEY
// operations through a fresh EVP_PKEY_CTX per call as safe to run from several threads.
unsafe impl Send for Pkey {}
unsafe impl Sync for Pkey {}

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: we own the one reference taken when the key was made.
        unsafe { sys::EVP_PKEY_free(self.0.as_ptr()) }
    }
}

/// An owned `EVP_PKEY_CTX`.
struct PkeyCtx(NonNull<sys::EVP_PKEY_CTX>);

impl Drop for PkeyCtx {
    fn drop(&mut self) {
        // SAFETY: we own the context.
        unsafe { sys::EVP_PKEY_CTX_free(self.0.as_ptr()) }
    }
}

fn failed(what: &str) -> CryptoError {
    // SAFETY: clears this thread's AWS-LC error queue; no pointers involved.
    unsafe { sys::ERR_clear_error() };
    CryptoError::Library(what.to_string())
}

impl Pkey {
    fn ctx(&self) -> Result<PkeyCtx, CryptoError> {
        // SAFETY: self.0 is a live key; the context takes its own reference to it.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new(self.0.as_ptr(), ptr::null_mut()) };
        NonNull::new(ctx)
            .map(PkeyCtx)
            .ok_or_else(|| failed("EVP_PKEY_CTX_new"))
    }

    /// Parse exactly `der` (nothing may follow the structure) with an `EVP_parse_*` function.
    fn parse(
        der: &[u8],
        f: unsafe extern "C" fn(*mut sys::CBS) -> *mut sys::EVP_PKEY,
        what: &str,
    ) -> Result<Pkey, CryptoError> {
        // SAFETY: CBS only borrows `der`, which outlives the call; the returned key is owned (and
        // freed by `Pkey` if trailing bytes make us refuse it).
        let (key, rest) = unsafe {
            let mut cbs = std::mem::zeroed::<sys::CBS>();
            sys::CBS_init(&mut cbs, der.as_ptr(), der.len());
            let key = f(&mut cbs);
            (key, sys::CBS_len(&cbs))
        };
        let key = NonNull::new(key).map(Pkey).ok_or_else(|| failed(what))?;
        if rest != 0 {
            return Err(failed(what));
        }
        Ok(key)
    }

    /// Parse a DER PKCS#8 `PrivateKeyInfo` (RFC 5208 / 5958).
    pub(crate) fn parse_private(der: &[u8]) -> Result<Pkey, CryptoError> {
        Self::parse(der, sys::EVP_parse_private_key, "not a PKCS#8 private key")
    }

    /// Parse a DER SubjectPublicKeyInfo.
    pub(crate) fn parse_public(der: &[u8]) -> Result<Pkey, CryptoError> {
        Self::parse(der, sys::EVP_parse_public_key, "not a SubjectPublicKeyInfo")
    }

    /// Generate an ML-KEM key pair (`nid` one of NID_MLKEM512/768/1024); its PKCS#8 holds the seed.
    pub(crate) fn generate_kem(nid: i32) -> Result<Pkey, CryptoError> {
        // SAFETY: a fresh context for the KEM type; keygen writes one owned key into `out`.
        unsafe {
            let ctx = NonNull::new(sys::EVP_PKEY_CTX_new_id(sys::EVP_PKEY_KEM, ptr::null_mut()))
                .map(PkeyCtx)
                .ok_or_else(|| failed("EVP_PKEY_CTX_new_id"))?;
            if sys::EVP_PKEY_CTX_kem_set_params(ctx.0.as_ptr(), nid) != 1
                || sys::EVP_PKEY_keygen_init(ctx.0.as_ptr()) != 1
            {
                return Err(failed("ML-KEM parameters"));
            }
            let mut out: *mut sys::EVP_PKEY = ptr::null_mut();
            if sys::EVP_PKEY_keygen(ctx.0.as_ptr(), &mut out) != 1 {
                return Err(failed("ML-KEM key generation"));
            }
            NonNull::new(out)
                .map(Pkey)
                .ok_or_else(|| failed("ML-KEM key generation"))
        }
    }

    fn marshal(
        &self,
        f: unsafe extern "C" fn(*mut sys::CBB, *const sys::EVP_PKEY) -> i32,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // SAFETY: the CBB is initialised before use and always cleaned up or finished; the
        // finished buffer is copied out, wiped (it may hold a private key) and freed.
        unsafe {
            let mut cbb = std::mem::zeroed::<sys::CBB>();
            if sys::CBB_init(&mut cbb, 256) != 1 {
                return Err(failed("CBB_init"));
            }
            if f(&mut cbb, self.0.as_ptr()) != 1 {
                sys::CBB_cleanup(&mut cbb);
                return Err(failed("DER encoding of a key"));
            }
            let mut data: *mut u8 = ptr::null_mut();
            let mut len = 0usize;
            if sys::CBB_finish(&mut cbb, &mut data, &mut len) != 1 || data.is_null() {
                sys::CBB_cleanup(&mut cbb);
                return Err(failed("CBB_finish"));
            }
            let out = Zeroizing::new(std::slice::from_raw_parts(data, len).to_vec());
            sys::OPENSSL_cleanse(data.cast(), len);
            sys::OPENSSL_free(data.cast());
            Ok(out)
        }
    }

    /// DER PKCS#8 of the private key.
    pub(crate) fn private_der(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.marshal(sys::EVP_marshal_private_key)
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub(crate) fn public_der(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(self.marshal(sys::EVP_marshal_public_key)?.to_vec())
    }

    /// The raw private key (for ML-KEM, the expanded decapsulation key).
    pub(crate) fn raw_private(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // SAFETY: the first call asks the length, the second fills a buffer of that length.
        unsafe {
            let mut len = 0usize;
            if sys::EVP_PKEY_get_raw_private_key(self.0.as_ptr(), ptr::null_mut(), &mut len) != 1 {
                return Err(failed("raw private key length"));
            }
            let mut out = Zeroizing::new(vec![0u8; len]);
            if sys::EVP_PKEY_get_raw_private_key(self.0.as_ptr(), out.as_mut_ptr(), &mut len) != 1 {
                return Err(failed("raw private key"));
            }
            out.truncate(len);
            Ok(out)
        }
    }

    /// The raw public key (for ML-DSA, the encoded `pk` of FIPS 204).
    pub(crate) fn raw_public(&self) -> Result<Vec<u8>, CryptoError> {
        // SAFETY: as in `raw_private`.
        unsafe {
            let mut len = 0usize;
            if sys::EVP_PKEY_get_raw_public_key(self.0.as_ptr(), ptr::null_mut(), &mut len) != 1 {
                return Err(failed("raw public key length"));
            }
            let mut out = vec![0u8; len];
            if sys::EVP_PKEY_get_raw_public_key(self.0.as_ptr(), out.as_mut_ptr(), &mut len) != 1 {
                return Err(failed("raw public key"));
            }
            out.truncate(len);
            Ok(out)
        }
    }

    /// ML-DSA signature of an external μ (64 bytes): `EVP_PKEY_sign` on an ML-DSA key signs μ.
    pub(crate) fn mldsa_sign_mu(&self, mu: &[u8], sig_len: usize) -> Result<Vec<u8>, CryptoError> {
        let ctx = self.ctx()?;
        let mut sig = vec![0u8; sig_len];
        let mut len = sig_len;
        // SAFETY: `sig` has room for `len` bytes; `mu` is borrowed for the call.
        let ok = unsafe {
            sys::EVP_PKEY_sign_init(ctx.0.as_ptr()) == 1
                && sys::EVP_PKEY_sign(
                    ctx.0.as_ptr(),
                    sig.as_mut_ptr(),
                    &mut len,
                    mu.as_ptr(),
                    mu.len(),
                ) == 1
        };
        if !ok {
            return Err(failed("ML-DSA external-mu signing"));
        }
        sig.truncate(len);
        Ok(sig)
    }

    /// Verify an ML-DSA signature of an external μ.
    pub(crate) fn mldsa_verify_mu(&self, mu: &[u8], sig: &[u8]) -> bool {
        let Ok(ctx) = self.ctx() else { return false };
        // SAFETY: both buffers are borrowed for the call.
        let ok = unsafe {
            sys::EVP_PKEY_verify_init(ctx.0.as_ptr()) == 1
                && sys::EVP_PKEY_verify(
                    ctx.0.as_ptr(),
                    sig.as_ptr(),
                    sig.len(),
                    mu.as_ptr(),
                    mu.len(),
                ) == 1
        };
        if !ok {
            // SAFETY: clears this thread's error queue after a refused signature.
            unsafe { sys::ERR_clear_error() };
        }
        ok
    }
}

/// Ed25519ph (HashEdDSA, empty context) of `message`; `private_key` is seed || public key.
pub(crate) fn ed25519ph_sign(
    message: &[u8],
    private_key: &[u8; 64],
) -> Result<[u8; 64], CryptoError> {
    let mut sig = [0u8; 64];
    // SAFETY: `sig` is 64 bytes as ED25519ph_sign writes; the inputs are borrowed for the call.
    let ok = unsafe {
        sys::ED25519ph_sign(
            sig.as_mut_ptr(),
            message.as_ptr(),
            message.len(),
            private_key.as_ptr(),
            ptr::null(),
            0,
        )
    };
    if ok != 1 {
        return Err(failed("Ed25519ph signing"));
    }
    Ok(sig)
}

/// Verify an Ed25519ph signature (empty context) with a 32-byte public key.
pub(crate) fn ed25519ph_verify(message: &[u8], signature: &[u8], public_key: &[u8; 32]) -> bool {
    if signature.len() != 64 {
        return false;
    }
    // SAFETY: the signature is 64 bytes and the public key 32, as ED25519ph_verify reads.
    let ok = unsafe {
        sys::ED25519ph_verify(
            message.as_ptr(),
            message.len(),
            signature.as_ptr(),
            public_key.as_ptr(),
            ptr::null(),
            0,
        )
    };
    if ok != 1 {
        // SAFETY: clears this thread's error queue after a refused signature.
        unsafe { sys::ERR_clear_error() };
    }
    ok == 1
}

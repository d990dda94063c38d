//! Ed25519 signature checking (SPEC §2): strict RFC 8032 verification, run in
//! parallel on every core.
//!
//! Owns: the verdict on (public key, message, signature).
//!
//! Why no batch verification: ed25519-dalek's `verify_batch` (random linear
//! combination, cofactorless) can accept a signature whose R carries a small
//! torsion component that `verify_strict` refuses — with probability 1/2 to
//! 1/8 per try, so two verifiers could disagree on the same chain. Making the
//! batch exact needs a torsion check of every R (a full scalar
//! multiplication), and measured on this machine batch + that check was
//! slower than strict single verification (tools/bench.rs prints both beside
//! the raw batch rate). So every verdict here is `verify_strict`'s, by
//! construction; the parallelism comes from splitting work across threads.

use ed25519_dalek::{Signature, VerifyingKey};

/// Below this many signatures the work is not split across threads.
pub const PARALLEL_SIGNATURES_MIN: usize = 64;

/// One signature to check.
pub struct VerifyItem<'a> {
    pub public_key: &'a VerifyingKey,
    pub message: &'a [u8],
    pub signature: &'a [u8; 64],
}

/// Strict RFC 8032 verification (canonical S, no small-order A or R).
pub fn verify_strict(public_key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    public_key.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
}

/// Whether a public key may be registered: a valid point, not of small order
/// (SPEC §2).
pub fn acceptable_public_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    (!key.is_weak()).then_some(key)
}

fn verify_part(items: &[VerifyItem<'_>]) -> Vec<bool> {
    items.iter().map(|item| verify_strict(item.public_key, item.message, item.signature)).collect()
}

/// Verdicts for many signatures, in order, using every core.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Vec<bool> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if items.len() < PARALLEL_SIGNATURES_MIN || threads == 1 {
        return verify_part(items);
    }
    let per_thread = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(per_thread).map(|part| scope.spawn(move || verify_part(part))).collect();
        handles.into_iter().flat_map(|handle| handle.join().expect("signature verification thread panicked")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn parallel_verdicts_are_strict_verdicts() {
        // Goal: bad signatures among many are found, in order; the good ones pass.
        let keys: Vec<SigningKey> = (0..200u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let publics: Vec<VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
        let messages: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut signatures: Vec<[u8; 64]> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m).to_bytes()).collect();
        signatures[77][5] ^= 1;
        signatures[150][31] ^= 0x80;
        let items: Vec<VerifyItem<'_>> = (0..200)
            .map(|i| VerifyItem { public_key: &publics[i], message: &messages[i], signature: &signatures[i] })
            .collect();
        let verdicts = verify_many(&items);
        for (i, verdict) in verdicts.iter().enumerate() {
            assert_eq!(*verdict, i != 77 && i != 150, "item {i}");
        }
    }

    #[test]
    fn small_order_keys_are_refused() {
        // Goal: the identity point (small order) cannot be registered; a real key can.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(acceptable_public_key(&identity).is_none());
        assert!(acceptable_public_key(&SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes()).is_some());
    }
}

//! Ed25519 signature checking: strict single verification and the batched,
//! parallel fast path (SPEC §2).
//!
//! Owns: the verdict on (public key, message, signature). Invariant: the fast
//! path reaches exactly the verdict of `verify_strict`. Batch verification
//! (random linear combination, cofactorless) can accept a signature whose R
//! carries a small torsion component that strict verification refuses, so a
//! signature enters a batch only when its R decodes to a torsion-free point
//! and S is canonical; everything else, and every member of a failed batch,
//! is checked alone with `verify_strict`. Public keys are torsion-free by
//! construction (checked when registered, see `payload::PublicKey`).

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, VerifyingKey};

/// Signatures per batch: large enough to amortise the multiscalar
/// multiplication, small enough that a bad signature costs little re-checking.
pub const BATCH_SIGNATURES_MAX: usize = 64;
/// Below this many signatures the work is not split across threads.
pub const PARALLEL_SIGNATURES_MIN: usize = 128;

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

/// Whether a public key may be registered: a valid point, not of small order,
/// and torsion-free (so batch and strict verification agree on its signatures).
pub fn acceptable_public_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    if key.is_weak() {
        return None;
    }
    let point = CompressedEdwardsY(*bytes).decompress()?;
    point.is_torsion_free().then_some(key)
}

/// Whether a signature may take the batch path without changing the verdict.
fn batchable(signature: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let s_canonical = {
        let mut s = [0u8; 32];
        s.copy_from_slice(&signature[32..]);
        Option::<curve25519_dalek::Scalar>::from(curve25519_dalek::Scalar::from_canonical_bytes(s)).is_some()
    };
    s_canonical
        && CompressedEdwardsY(r).decompress().is_some_and(|point| !point.is_small_order() && point.is_torsion_free())
}

fn verify_chunk(items: &[VerifyItem<'_>]) -> Vec<bool> {
    let mut verdicts = vec![false; items.len()];
    for (chunk_index, chunk) in items.chunks(BATCH_SIGNATURES_MAX).enumerate() {
        let offset = chunk_index * BATCH_SIGNATURES_MAX;
        let all_batchable = chunk.iter().all(|item| batchable(item.signature));
        let batch_ok = all_batchable && {
            let messages: Vec<&[u8]> = chunk.iter().map(|item| item.message).collect();
            let signatures: Vec<Signature> = chunk.iter().map(|item| Signature::from_bytes(item.signature)).collect();
            let keys: Vec<VerifyingKey> = chunk.iter().map(|item| *item.public_key).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
        };
        for (i, item) in chunk.iter().enumerate() {
            verdicts[offset + i] = batch_ok || verify_strict(item.public_key, item.message, item.signature);
        }
    }
    verdicts
}

/// Verdicts for many signatures, in order, using every core.
pub fn verify_many(items: &[VerifyItem<'_>]) -> Vec<bool> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if items.len() < PARALLEL_SIGNATURES_MIN || threads == 1 {
        return verify_chunk(items);
    }
    let per_thread = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(per_thread).map(|part| scope.spawn(move || verify_chunk(part))).collect();
        handles.into_iter().flat_map(|handle| handle.join().expect("signature verification thread panicked")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn batch_agrees_with_strict_on_bad_members() {
        // Goal: one bad signature in a batch is found; the good ones still pass.
        let keys: Vec<SigningKey> = (0..200u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let publics: Vec<VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
        let messages: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let mut signatures: Vec<[u8; 64]> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m).to_bytes()).collect();
        signatures[77][5] ^= 1;
        // Torsion in R: add the order-2 point's effect by flipping the sign bit of R.
        signatures[150][31] ^= 0x80;
        let items: Vec<VerifyItem<'_>> = (0..200)
            .map(|i| VerifyItem { public_key: &publics[i], message: &messages[i], signature: &signatures[i] })
            .collect();
        let verdicts = verify_many(&items);
        for (i, verdict) in verdicts.iter().enumerate() {
            assert_eq!(*verdict, verify_strict(&publics[i], &messages[i], &signatures[i]), "item {i}");
            assert_eq!(*verdict, i != 77 && i != 150, "item {i}");
        }
    }

    #[test]
    fn small_order_keys_are_refused() {
        // Goal: the identity point and other small-order keys cannot be registered.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(acceptable_public_key(&identity).is_none());
        assert!(acceptable_public_key(&SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes()).is_some());
    }
}

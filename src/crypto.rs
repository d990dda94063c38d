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
//! the raw batch rate). So every verdict here is `verify_strict`'s; the
//! parallelism comes from splitting a batch between the caller and a pool of
//! threads started once (`verify_batch`).
//!
//! `verify_strict` below reaches ed25519-dalek 2's `verify_strict` verdict
//! with one square root fewer: dalek decompresses R only
//! to refuse small-order points, then compares R's bytes with the
//! compressed expected point. Comparing the bytes alone already refuses every
//! R that does not decode or is not canonical (the compressed expected point
//! is always a canonical encoding of a valid point), so only R's that are
//! canonical encodings of the eight small-order points are left to refuse,
//! and those are eight fixed byte strings. The proof is in `verify_strict`'s
//! comment; `tests::verdicts_equal_dalek_verify_strict` checks it on crafted
//! inputs. The decompression was ~5% of an import's CPU samples (`perf`);
//! criterion measures the whole check 3.6–5.6% faster (BENCHMARKS.md).

use curve25519_dalek::{edwards::EdwardsPoint, scalar::Scalar};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha512};

/// Below this many signatures the work is not split across threads.
pub const PARALLEL_SIGNATURES_MIN: usize = 64;

/// The canonical encodings of the eight points of small order.
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
    ENCODINGS.get_or_init(|| curve25519_dalek::constants::EIGHT_TORSION.map(|point| point.compress().to_bytes()))
}

/// Strict RFC 8032 verification (canonical S, no small-order A or R): the
/// verdict of ed25519-dalek 2's `VerifyingKey::verify_strict`.
///
/// dalek accepts iff S is canonical, R decodes to a point P of order other
/// than 1, 2, 4, 8, A is not of small order, and compress([S]B − [k]A) = R's
/// bytes, k = SHA-512(R ‖ A ‖ M) mod ℓ. This accepts iff S is canonical, A
/// is not of small order, compress([S]B − [k]A) = R's bytes and those bytes
/// are not one of the eight canonical small-order encodings. The same: if
/// dalek accepts, R's bytes are the canonical encoding of P, which is not of
/// small order, so not in the eight. If this accepts, R's bytes are the
/// compression of a valid point Q, so they decode (to Q), and Q is not of
/// small order, else its canonical encoding would be one of the eight.
pub fn verify_strict(public_key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let (r, s) = signature.split_at(32);
    let s: [u8; 32] = s.try_into().expect("32 bytes");
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
        return false;
    };
    if public_key.is_weak() || small_order_encodings().iter().any(|encoding| encoding[..] == *r) {
        return false;
    }
    let mut hash = Sha512::new();
    hash.update(r);
    hash.update(public_key.as_bytes());
    hash.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    let minus_a = -public_key.to_edwards();
    EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s).compress().as_bytes()[..] == *r
}

/// Whether a public key may be registered: a valid point, not of small order
/// (SPEC §2).
pub fn acceptable_public_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    (!key.is_weak()).then_some(key)
}

/// Signatures to check, owned, so the signature threads can share them
/// without copying: keys and messages are stored once and named by number.
#[derive(Clone, Default)]
pub struct SignatureBatch {
    keys: Vec<VerifyingKey>,
    messages: Vec<Vec<u8>>,
    items: Vec<BatchItem>,
}

#[derive(Clone)]
struct BatchItem {
    key: u32,
    message: u32,
    signature: [u8; 64],
}

impl SignatureBatch {
    /// Adds a key; returns its number for `push`.
    pub fn add_key(&mut self, key: VerifyingKey) -> u32 {
        self.keys.push(key);
        u32::try_from(self.keys.len() - 1).expect("fewer than 2^32 keys in a batch")
    }

    /// Adds a message (moved, not copied); returns its number for `push`.
    pub fn add_message(&mut self, message: Vec<u8>) -> u32 {
        self.messages.push(message);
        u32::try_from(self.messages.len() - 1).expect("fewer than 2^32 messages in a batch")
    }

    /// Adds a signature of message `message` by key `key` to check.
    pub fn push(&mut self, key: u32, message: u32, signature: [u8; 64]) {
        assert!((key as usize) < self.keys.len() && (message as usize) < self.messages.len());
        self.items.push(BatchItem { key, message, signature });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn verify_range(&self, range: std::ops::Range<usize>) -> Vec<bool> {
        self.items[range]
            .iter()
            .map(|item| {
                verify_strict(&self.keys[item.key as usize], &self.messages[item.message as usize], &item.signature)
            })
            .collect()
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The signature threads: started once, at the first parallel check, one
/// fewer than the cores (the caller checks its own share), and kept for the
/// process's life.
///
/// Why not a scope of fresh threads per batch (as before session 8): with
/// mimalloc each thread has its own heap, and the pages of exited threads
/// were not reused: `sunledger verify` of a 10 M-event export, spawning two
/// threads per 4,096-record chunk, reached 1.97 GB resident; with threads
/// that live on it holds 116–120 MB (BENCHMARKS.md, "Session 8"). The writer of a
/// long-running server spawned threads per group the same way.
struct Pool {
    jobs: std::sync::mpsc::Sender<Job>,
    threads: usize,
}

fn pool() -> &'static Pool {
    static POOL: std::sync::OnceLock<Pool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, usize::from).saturating_sub(1);
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        let mut started = 0;
        for n in 0..threads {
            let receiver = std::sync::Arc::clone(&receiver);
            let spawned = std::thread::Builder::new().name(format!("sunledger-verify-{n}")).spawn(move || loop {
                // A poisoned lock still guards a working receiver.
                let job = receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                match job {
                    // A job that panics drops its answer channel, so its
                    // caller checks that share itself; the thread lives on.
                    Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
                    Err(_) => return,
                }
            });
            if spawned.is_ok() {
                started += 1;
            }
        }
        Pool { jobs: sender, threads: started }
    })
}

/// Verdicts for a batch, in order, using every core: the caller checks the
/// first share itself while the pool's threads check the others. A share
/// whose thread fails to answer is checked by the caller. The batch is
/// freed by the caller's thread.
pub fn verify_batch(batch: SignatureBatch) -> Vec<bool> {
    let pool = pool();
    if batch.len() < PARALLEL_SIGNATURES_MIN || pool.threads == 0 {
        return batch.verify_range(0..batch.len());
    }
    let per_share = batch.len().div_ceil(pool.threads + 1);
    let ranges: Vec<std::ops::Range<usize>> =
        (0..batch.len()).step_by(per_share).map(|start| start..(start + per_share).min(batch.len())).collect();
    let batch = std::sync::Arc::new(batch);
    let (answers, answered) = std::sync::mpsc::channel::<(usize, Vec<bool>)>();
    let mut waiting = 0;
    for (n, range) in ranges.iter().enumerate().skip(1) {
        let (batch, answers, range) = (std::sync::Arc::clone(&batch), answers.clone(), range.clone());
        let job: Job = Box::new(move || {
            let verdicts = batch.verify_range(range);
            // Let go of the batch before answering: the caller frees it.
            drop(batch);
            let _ = answers.send((n, verdicts));
        });
        if pool.jobs.send(job).is_ok() {
            waiting += 1;
        }
    }
    drop(answers);
    let mut verdicts: Vec<Option<Vec<bool>>> = vec![None; ranges.len()];
    verdicts[0] = Some(batch.verify_range(ranges[0].clone()));
    for (n, share) in answered.iter().take(waiting) {
        verdicts[n] = Some(share);
    }
    verdicts
        .into_iter()
        .zip(ranges)
        .flat_map(|(share, range)| share.unwrap_or_else(|| batch.verify_range(range)))
        .collect()
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
        let mut batch = SignatureBatch::default();
        for i in 0..200 {
            let (key, message) = (batch.add_key(publics[i]), batch.add_message(messages[i].clone()));
            batch.push(key, message, signatures[i]);
        }
        let verdicts = verify_batch(batch);
        assert_eq!(verdicts.len(), 200);
        for (i, verdict) in verdicts.iter().enumerate() {
            assert_eq!(*verdict, i != 77 && i != 150, "item {i}");
        }
    }

    #[test]
    fn batches_share_keys_and_messages_and_the_pool_serves_many_callers() {
        // Goal: in a batch where keys and messages are shared by several
        // signatures (co-signed events), every verdict lands on its own
        // signature, in order, across the shares the pool checks; and
        // callers on several threads at once each get their own verdicts.
        let signers: Vec<SigningKey> = (0..3u8).map(|i| SigningKey::from_bytes(&[i + 7; 32])).collect();
        let build = |flip: usize| {
            let mut batch = SignatureBatch::default();
            let keys: Vec<u32> = signers.iter().map(|k| batch.add_key(k.verifying_key())).collect();
            let mut expected = Vec::new();
            for m in 0..300u32 {
                let text = format!("event {m}").into_bytes();
                let message = batch.add_message(text.clone());
                for (s, signer) in signers.iter().enumerate().take(1 + m as usize % 3) {
                    let mut signature = signer.sign(&text).to_bytes();
                    let bad = (m as usize * 3 + s) % 97 == flip;
                    if bad {
                        signature[40] ^= 4;
                    }
                    batch.push(keys[s], message, signature);
                    expected.push(!bad);
                }
            }
            (batch, expected)
        };
        let (batch, expected) = build(5);
        assert!(batch.len() > 2 * PARALLEL_SIGNATURES_MIN);
        assert!(expected.iter().any(|ok| !ok) && expected.iter().any(|ok| *ok));
        assert_eq!(verify_batch(batch), expected);
        std::thread::scope(|scope| {
            let callers: Vec<_> = (0..4)
                .map(|flip| {
                    let (batch, expected) = build(flip * 13);
                    scope.spawn(move || assert_eq!(verify_batch(batch), expected, "caller {flip}"))
                })
                .collect();
            callers.into_iter().for_each(|caller| caller.join().unwrap());
        });
    }

    /// dalek's own verdict, which `verify_strict` must equal.
    fn dalek(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }

    /// Encodings of the small-order points, canonical and not: y = 0 and y = 1 with either sign bit,
    /// y + p for those (p = 2^255 − 19), and the canonical eight.
    fn small_order_byte_strings() -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = small_order_encodings().to_vec();
        for y in [0u8, 1] {
            for sign in [0u8, 0x80] {
                let mut low = [0u8; 32];
                low[0] = y;
                low[31] |= sign;
                out.push(low);
                // y + p: p's bytes are ED FF .. FF 7F; adding y (< 19) changes only the low byte.
                let mut high = [0xFF; 32];
                high[0] = 0xED + y;
                high[31] = 0x7F | sign;
                out.push(high);
            }
        }
        out
    }

    #[test]
    fn verdicts_equal_dalek_verify_strict() {
        // Goal: on valid signatures, every single-bit flip of R, S and the message, R swapped for
        // each small-order encoding (canonical or not), R moved by each torsion point, S + ℓ, and
        // small-order or torsion-carrying keys, the verdict equals ed25519-dalek's verify_strict.
        use curve25519_dalek::constants::EIGHT_TORSION;
        let mut checked = 0;
        let mut accepted = 0;
        let mut check = |key: &VerifyingKey, message: &[u8], signature: &[u8; 64]| {
            let expected = dalek(key, message, signature);
            assert_eq!(
                verify_strict(key, message, signature),
                expected,
                "key {:?} sig {:?}",
                key.as_bytes(),
                signature
            );
            checked += 1;
            accepted += usize::from(expected);
        };
        // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let mut order = [0u8; 32];
        order[..16].copy_from_slice(&[
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        ]);
        order[31] = 0x10;
        assert_eq!(Scalar::from_bytes_mod_order(order), Scalar::ZERO);
        for seed in 0..24u8 {
            let signing = SigningKey::from_bytes(&[seed.wrapping_mul(37).wrapping_add(1); 32]);
            let key = signing.verifying_key();
            let message: Vec<u8> = (0..(seed as usize * 7)).map(|i| i as u8 ^ seed).collect();
            let signature = signing.sign(&message).to_bytes();
            check(&key, &message, &signature);
            for bit in (0..512).step_by(if seed < 4 { 1 } else { 37 }) {
                let mut flipped = signature;
                flipped[bit / 8] ^= 1 << (bit % 8);
                check(&key, &message, &flipped);
            }
            let mut other = message.clone();
            other.push(seed);
            check(&key, &other, &signature);
            for encoding in small_order_byte_strings() {
                let mut forged = signature;
                forged[..32].copy_from_slice(&encoding);
                check(&key, &message, &forged);
            }
            let r = curve25519_dalek::edwards::CompressedEdwardsY(signature[..32].try_into().unwrap())
                .decompress()
                .unwrap();
            for torsion in EIGHT_TORSION {
                let mut moved = signature;
                moved[..32].copy_from_slice(&(r + torsion).compress().to_bytes());
                check(&key, &message, &moved);
            }
            // S + ℓ (not canonical; still < 2^256 for these S).
            let mut s_plus = signature;
            let mut carry = 0u16;
            for i in 0..32 {
                let sum = u16::from(s_plus[32 + i]) + u16::from(order[i]) + carry;
                s_plus[32 + i] = sum as u8;
                carry = sum >> 8;
            }
            if carry == 0 {
                check(&key, &message, &s_plus);
            }
            // R the small-order point the equation can actually reach: with S = k·a (a the secret
            // scalar, k = H(R ‖ A ‖ M)), [S]B − [k]A is the identity, so R = the identity's encoding
            // meets the equation and only the small-order refusal stands between it and acceptance.
            let identity = small_order_encodings()[0];
            let mut hash = Sha512::new();
            hash.update(identity);
            hash.update(key.as_bytes());
            hash.update(&message);
            let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
            let mut forged = [0u8; 64];
            forged[..32].copy_from_slice(&identity);
            forged[32..].copy_from_slice((k * signing.to_scalar()).as_bytes());
            assert!(!dalek(&key, &message, &forged));
            let lhs =
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-key.to_edwards(), &(k * signing.to_scalar()));
            assert_eq!(lhs.compress().to_bytes(), identity, "the forged signature meets the equation");
            check(&key, &message, &forged);
            // The identity as the key: [S]B − [k]A = [S]B whatever k, so R = [S]B meets the equation
            // and only the refusal of small-order keys stands in the way.
            let weak = VerifyingKey::from_bytes(&identity).unwrap();
            let s = Scalar::from_bytes_mod_order([seed; 32]);
            let mut forged = [0u8; 64];
            forged[..32].copy_from_slice(&EdwardsPoint::mul_base(&s).compress().to_bytes());
            forged[32..].copy_from_slice(s.as_bytes());
            check(&weak, &message, &forged);
            // A key moved by a torsion point, and small-order keys, with the same signature.
            for torsion in EIGHT_TORSION {
                let moved = VerifyingKey::from_bytes(&(key.to_edwards() + torsion).compress().to_bytes()).unwrap();
                check(&moved, &message, &signature);
                if let Ok(weak) = VerifyingKey::from_bytes(&torsion.compress().to_bytes()) {
                    check(&weak, &message, &signature);
                }
            }
        }
        // Accepted: each valid signature, and the same moved by the identity (R, and the key).
        assert!(checked > 3_000 && accepted == 24 * 3, "{checked} checked, {accepted} accepted");
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

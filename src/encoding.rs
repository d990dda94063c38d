//! The only module that produces bytes that are hashed or signed.
//!
//! Owns: DSSE PAE (SPEC §2), the entry hash (SPEC §5), flag ids (SPEC §7),
//! hex and base64. Never: does I/O, or re-serialises a payload (payload bytes
//! are hashed exactly as submitted).

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The DSSE payload type of every sunledger event.
pub const PAYLOAD_TYPE: &str = "application/vnd.sunledger.event.v1+json";
/// Domain separation of an entry hash: RFC 6962 leaf prefix, then a tag.
pub const ENTRY_HASH_PREFIX: u8 = 0x00;
pub const ENTRY_HASH_TAG: &[u8; 4] = b"SLE1";

pub type Hash = [u8; 32];

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// One signature as it enters the entry hash: key id and raw 64 bytes.
pub struct SignatureRef<'a> {
    pub key_id: &'a str,
    pub signature: &'a [u8; 64],
}

/// SPEC §5 entry hash; also the RFC 6962 leaf hash of the Merkle tree.
pub fn entry_hash(
    seq: u64,
    prev: &Hash,
    recorded_at_ms: i64,
    pae_digest: &Hash,
    signatures: &[SignatureRef<'_>],
) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([ENTRY_HASH_PREFIX]);
    hasher.update(ENTRY_HASH_TAG);
    hasher.update(seq.to_be_bytes());
    hasher.update(prev);
    hasher.update(recorded_at_ms.to_be_bytes());
    hasher.update(pae_digest);
    hasher.update((signatures.len() as u32).to_be_bytes());
    for signature in signatures {
        hasher.update((signature.key_id.len() as u32).to_be_bytes());
        hasher.update(signature.key_id.as_bytes());
        hasher.update(64u32.to_be_bytes());
        hasher.update(signature.signature);
    }
    hasher.finalize().into()
}

/// SPEC §7: first 16 hex of SHA-256(rule 0 kind 0 id 0 u64be(first evidence seq)).
pub fn flag_id(rule: &str, subject_kind: &str, subject_id: &str, first_evidence_seq: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(rule.as_bytes());
    hasher.update([0]);
    hasher.update(subject_kind.as_bytes());
    hasher.update([0]);
    hasher.update(subject_id.as_bytes());
    hasher.update([0]);
    hasher.update(first_evidence_seq.to_be_bytes());
    let digest: Hash = hasher.finalize().into();
    hex(&digest[..8])
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}

/// Lowercase-only hex decoding into a fixed array.
pub fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Standard base64 with padding; non-canonical encodings are refused.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_dsse_definition() {
        // Goal: PAE is byte-exact per the DSSE spec example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_uppercase() {
        // Goal: digests are lowercase hex only.
        let bytes: [u8; 4] = [0, 0xab, 0x10, 0xff];
        assert_eq!(hex_array::<4>(&hex(&bytes)), Some(bytes));
        assert_eq!(hex_array::<4>("00AB10ff"), None);
        assert_eq!(hex_array::<4>("00ab10f"), None);
    }
}

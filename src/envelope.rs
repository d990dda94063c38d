//! DSSE envelopes (SPEC §2): parsing and signing.
//!
//! Owns: the envelope shape, its limits and the signature list. Never: judges
//! whether a key may sign (that is `validate`), or re-encodes payload bytes.

use crate::encoding::{base64_decode, base64_encode, pae, sha256, Hash, PAYLOAD_TYPE};
use crate::error::{reject, Code, Rejection};
use crate::payload::PAYLOAD_BYTES_MAX;
use ed25519_dalek::{Signer, SigningKey};
use serde::Deserialize;

/// SPEC §2: 1–4 signatures.
pub const SIGNATURES_MAX: usize = 4;
/// One envelope line at most: the payload's base64 plus four signatures and
/// the JSON around them, with room for whitespace.
pub const ENVELOPE_BYTES_MAX: usize = PAYLOAD_BYTES_MAX * 4 / 3 + 8 * 1024;

/// One signature of an envelope, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeSignature {
    pub key_id: String,
    pub signature: [u8; 64],
}

/// A decoded DSSE envelope. `payload` holds the exact submitted bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    keyid: String,
    sig: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<RawSignature>,
}

fn bad(message: impl Into<String>) -> Rejection {
    Rejection::new(Code::BadEnvelope, message)
}

impl Envelope {
    /// Parses one envelope (JSON bytes, e.g. one import line or a request body).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, Rejection> {
        if bytes.len() > ENVELOPE_BYTES_MAX {
            return reject(
                Code::BadEnvelope,
                format!("envelope is {} bytes, at most {ENVELOPE_BYTES_MAX}", bytes.len()),
            );
        }
        let raw: RawEnvelope = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a DSSE envelope: {e}")))?;
        Envelope::from_raw(raw)
    }

    fn from_raw(raw: RawEnvelope) -> Result<Envelope, Rejection> {
        if raw.payload_type != PAYLOAD_TYPE {
            return reject(Code::BadEnvelope, format!("payloadType must be {PAYLOAD_TYPE}"));
        }
        let payload = base64_decode(&raw.payload).ok_or_else(|| bad("payload is not standard base64"))?;
        if payload.len() > PAYLOAD_BYTES_MAX {
            return reject(
                Code::BadEnvelope,
                format!("payload is {} bytes, at most {PAYLOAD_BYTES_MAX}", payload.len()),
            );
        }
        if raw.signatures.is_empty() || raw.signatures.len() > SIGNATURES_MAX {
            return reject(Code::BadEnvelope, format!("an envelope carries 1-{SIGNATURES_MAX} signatures"));
        }
        let mut signatures: Vec<EnvelopeSignature> = Vec::with_capacity(raw.signatures.len());
        for raw_signature in raw.signatures {
            if signatures.iter().any(|s| s.key_id == raw_signature.keyid) {
                return reject(Code::BadEnvelope, "signature key ids must be distinct");
            }
            if raw_signature.keyid.is_empty() || raw_signature.keyid.len() > crate::payload::ID_CHARS_MAX {
                return reject(Code::BadEnvelope, "a keyid is 1-64 characters");
            }
            let signature = base64_decode(&raw_signature.sig)
                .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
                .ok_or_else(|| bad("sig is not base64 of 64 bytes"))?;
            signatures.push(EnvelopeSignature { key_id: raw_signature.keyid, signature });
        }
        Ok(Envelope { payload, signatures })
    }

    /// The parsed envelope from a JSON value already read (export records).
    pub fn from_value(value: serde_json::Value) -> Result<Envelope, Rejection> {
        let raw: RawEnvelope = serde_json::from_value(value).map_err(|e| bad(format!("not a DSSE envelope: {e}")))?;
        Envelope::from_raw(raw)
    }

    /// The bytes every signature covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(PAYLOAD_TYPE, &self.payload)
    }

    pub fn pae_digest(&self) -> Hash {
        sha256(&self.pae())
    }

    /// Signs payload bytes exactly as given with each key, in order.
    pub fn sign(payload: Vec<u8>, keys: &[(String, SigningKey)]) -> Envelope {
        let message = pae(PAYLOAD_TYPE, &payload);
        let signatures = keys
            .iter()
            .map(|(key_id, key)| EnvelopeSignature { key_id: key_id.clone(), signature: key.sign(&message).to_bytes() })
            .collect();
        Envelope { payload, signatures }
    }

    /// The canonical compact JSON form (as in the vectors).
    pub fn to_json(&self) -> String {
        let signatures: Vec<serde_json::Value> = self
            .signatures
            .iter()
            .map(|s| serde_json::json!({"keyid": s.key_id, "sig": base64_encode(&s.signature)}))
            .collect();
        let value = serde_json::json!({
            "payload": base64_encode(&self.payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": signatures,
        });
        value.to_string()
    }
}

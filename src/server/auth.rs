//! Authentication of reads that carry personal data (households, flags):
//! each request is signed by a key registered in the ledger.
//!
//! Scheme (documented in README and schemas/openapi.json):
//!
//! ```text
//! Authorization: Sunledger-Ed25519 keyid="<key id>", ts="<unix ms>", sig="<base64 Ed25519>"
//! signed bytes:  "sunledger-read-v1\n" METHOD "\n" PATH_AND_QUERY "\n" TS
//! ```
//!
//! The key must be registered and not revoked; `ts` must be within
//! `AUTH_CLOCK_SKEW_MS_MAX` of the server clock. Replays inside that window
//! are possible and harmless for reads; writes are authenticated by the
//! events' own signatures instead.

use crate::encoding::{base64_decode, base64_encode};
use crate::state::State;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

pub const AUTH_SCHEME: &str = "Sunledger-Ed25519";
/// How far a request's timestamp may be from the server's clock.
pub const AUTH_CLOCK_SKEW_MS_MAX: i64 = 5 * 60 * 1000;
/// Longest Authorization header looked at.
pub const AUTH_HEADER_BYTES_MAX: usize = 512;

/// The bytes a read request signs.
pub fn signing_string(method: &str, path_and_query: &str, timestamp_ms: i64) -> String {
    format!("sunledger-read-v1\n{method}\n{path_and_query}\n{timestamp_ms}")
}

/// The Authorization header value for a request (clients and tests).
pub fn authorization(key_id: &str, key: &SigningKey, method: &str, path_and_query: &str, timestamp_ms: i64) -> String {
    let signature = key.sign(signing_string(method, path_and_query, timestamp_ms).as_bytes());
    format!("{AUTH_SCHEME} keyid=\"{key_id}\", ts=\"{timestamp_ms}\", sig=\"{}\"", base64_encode(&signature.to_bytes()))
}

fn parameter<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(',').map(str::trim).find_map(|part| {
        let (key, value) = part.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

/// Checks a request's Authorization header; returns the key id on success.
pub fn authenticate(
    header: Option<&str>,
    method: &str,
    path_and_query: &str,
    now_ms: i64,
    state: &State,
) -> Result<String, String> {
    let header = header.ok_or("this resource carries personal data: sign the request (see README, Authentication)")?;
    if header.len() > AUTH_HEADER_BYTES_MAX {
        return Err("Authorization header too long".into());
    }
    let parameters = header.strip_prefix(AUTH_SCHEME).ok_or_else(|| format!("use the {AUTH_SCHEME} scheme"))?;
    let key_id = parameter(parameters, "keyid").ok_or("keyid missing")?;
    let timestamp_ms: i64 =
        parameter(parameters, "ts").and_then(|t| t.parse().ok()).ok_or("ts missing or not a number")?;
    let signature = parameter(parameters, "sig")
        .and_then(base64_decode)
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or("sig missing or not base64 of 64 bytes")?;
    if (now_ms - timestamp_ms).abs() > AUTH_CLOCK_SKEW_MS_MAX {
        return Err("ts is too far from the server's clock".into());
    }
    let key = state.keys.get(key_id).ok_or_else(|| format!("key {key_id:?} is not registered"))?;
    if key.revoked_at_seq.is_some() {
        return Err(format!("key {key_id:?} is revoked"));
    }
    let verifying = VerifyingKey::from_bytes(&key.public_key).map_err(|_| "registered key unusable".to_string())?;
    let message = signing_string(method, path_and_query, timestamp_ms);
    if !crate::crypto::verify_strict(&verifying, message.as_bytes(), &signature) {
        return Err("signature does not verify".into());
    }
    Ok(key_id.to_string())
}

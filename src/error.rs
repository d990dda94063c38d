//! Rejection codes of SPEC §4 and the typed error every input path returns.
//!
//! Owns: the stable codes that clients, auditors and scripts match on.
//! Never: panics, or carries raw personal data in a message.

use std::fmt;

/// A SPEC §4 rejection code. The string form is the wire contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// Not DSSE, bad base64, wrong payloadType, too large, bad signature list.
    BadEnvelope,
    /// The payload is not valid per SPEC §3 (also: a first event that is not genesis).
    Schema,
    /// The payload names another ledger id than this ledger's genesis.
    WrongLedger,
    /// A signature's key id is not registered.
    UnknownKey,
    /// A signature's key was revoked before this event.
    RevokedKey,
    /// A signature does not verify under strict RFC 8032 rules.
    BadSignature,
    /// The signing keys lack the authority for this act.
    Forbidden,
    /// Moving at least the dual-control amount needs two finance keys.
    DualControlRequired,
    /// The event id (with other bytes) or a new object's id already exists.
    DuplicateId,
    /// A referenced office, program, household, project, key or event does not exist.
    UnknownReference,
    /// The act would overdraw a fund account.
    InsufficientFunds,
    /// An amount outside 1..=2^53−1, or refunds beyond the original.
    InvalidAmount,
}

impl Code {
    /// Every code, in SPEC §4 check order.
    pub const ALL: [Code; 12] = [
        Code::BadEnvelope,
        Code::Schema,
        Code::InvalidAmount,
        Code::WrongLedger,
        Code::UnknownKey,
        Code::RevokedKey,
        Code::BadSignature,
        Code::DuplicateId,
        Code::Forbidden,
        Code::DualControlRequired,
        Code::UnknownReference,
        Code::InsufficientFunds,
    ];

    /// The wire string of the code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Code::BadEnvelope => "bad_envelope",
            Code::Schema => "schema",
            Code::WrongLedger => "wrong_ledger",
            Code::UnknownKey => "unknown_key",
            Code::RevokedKey => "revoked_key",
            Code::BadSignature => "bad_signature",
            Code::Forbidden => "forbidden",
            Code::DualControlRequired => "dual_control_required",
            Code::DuplicateId => "duplicate_id",
            Code::UnknownReference => "unknown_reference",
            Code::InsufficientFunds => "insufficient_funds",
            Code::InvalidAmount => "invalid_amount",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an input was refused. The ledger is unchanged when one is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: Code,
    pub message: String,
}

impl Rejection {
    pub fn new(code: Code, message: impl Into<String>) -> Rejection {
        Rejection { code, message: message.into() }
    }

    /// The JSON object `{"error":code,"message":…}` used by the CLI and HTTP.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code.as_str(), "message": self.message})
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Rejection {}

/// Shorthand constructor used throughout validation.
pub fn reject<T>(code: Code, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}

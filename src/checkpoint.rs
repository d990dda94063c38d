//! Signed checkpoints: a C2SP tlog-checkpoint body inside a C2SP signed note
//! (SPEC §6).
//!
//! Owns: the checkpoint body text, the note text (body, blank line,
//! signature lines), Ed25519 key hashes, signing, co-signing and verifying.
//!
//! Boundary: does no I/O. Parsers are all-or-nothing and never panic; every
//! input limit is a named constant below. Signatures cover the body bytes
//! exactly as they appear, final newline included, and are checked with
//! `verify_strict` (no malleable or small-order encodings).
//!
//! ```text
//! sunledger/<ledger id>
//! <tree size>
//! <base64 root>
//!
//! — <key_id> <base64(key_hash(4) || ed25519 signature(64))>
//! ```

use crate::merkle::Hash;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use sha2::{Digest, Sha256};
use std::fmt;

/// Every sunledger checkpoint origin is this prefix and the ledger id.
pub const ORIGIN_PREFIX: &str = "sunledger/";
/// A checkpoint body is origin, size and root: C2SP extension lines are not
/// used by sunledger, so they are rejected rather than silently signed.
pub const CHECKPOINT_BODY_LINES: usize = 3;
/// Largest note accepted. A checkpoint with 64 signatures is under 8 KiB;
/// the limit bounds the work an unauthenticated input can cause.
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// Most signature lines accepted in one note (log key plus witnesses).
pub const SIGNATURES_MAX: usize = 64;
/// Longest key id accepted. SPEC key ids are short (`422822-aud/k1`); the
/// bound keeps one signature line far below [`NOTE_BYTES_MAX`].
pub const KEY_ID_BYTES_MAX: usize = 256;
/// C2SP signed-note: a key hash is the first 4 bytes of its SHA-256.
pub const KEY_HASH_BYTES: usize = 4;
/// C2SP signed-note signature type for Ed25519 keys.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;
/// Each signature line starts with U+2014 EM DASH and a space.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// The decoded payload of a signature line: key hash then signature.
const SIGNATURE_LINE_PAYLOAD_BYTES: usize = KEY_HASH_BYTES + SIGNATURE_LENGTH;

/// A tree head: what a checkpoint body states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// First body line: [`ORIGIN_PREFIX`] followed by the ledger id.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// Merkle tree hash of entries `0..size`.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint of ledger `ledger_id` at `size` with `root`.
    pub fn new(ledger_id: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint { origin: format!("{ORIGIN_PREFIX}{ledger_id}"), size, root }
    }

    /// The ledger id, when the origin has the sunledger prefix.
    pub fn ledger_id(&self) -> Option<&str> {
        self.origin.strip_prefix(ORIGIN_PREFIX)
    }

    /// The signed body: three lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }
}

/// Why a note body is not a sunledger checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    /// The body does not end with a newline.
    MissingFinalNewline,
    /// The body does not have exactly [`CHECKPOINT_BODY_LINES`] lines.
    WrongLineCount {
        /// Lines found.
        lines: usize,
    },
    /// The origin is not [`ORIGIN_PREFIX`] and a non-empty ledger id
    /// without whitespace or control characters.
    InvalidOrigin,
    /// The size is not a canonical decimal u64 (digits, no leading zero).
    InvalidSize,
    /// The root is not canonical padded standard base64.
    InvalidRootBase64,
    /// The root does not decode to 32 bytes.
    WrongRootLength {
        /// Bytes decoded.
        bytes: usize,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingFinalNewline => {
                write!(formatter, "checkpoint body does not end with a newline")
            }
            Self::WrongLineCount { lines } => {
                write!(formatter, "checkpoint body has {lines} lines, expected {CHECKPOINT_BODY_LINES}")
            }
            Self::InvalidOrigin => write!(formatter, "checkpoint origin is not {ORIGIN_PREFIX}<ledger id>"),
            Self::InvalidSize => {
                write!(formatter, "checkpoint tree size is not a canonical decimal")
            }
            Self::InvalidRootBase64 => write!(formatter, "checkpoint root is not canonical base64"),
            Self::WrongRootLength { bytes } => {
                write!(formatter, "checkpoint root has {bytes} bytes, expected 32")
            }
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Parses a checkpoint body (C2SP tlog-checkpoint, SPEC §6).
pub fn parse_checkpoint(body: &str) -> Result<Checkpoint, CheckpointError> {
    let text = body.strip_suffix('\n').ok_or(CheckpointError::MissingFinalNewline)?;
    let lines: Vec<&str> = text.split('\n').take(CHECKPOINT_BODY_LINES + 1).collect();
    let [origin, size, root] = lines[..] else {
        return Err(CheckpointError::WrongLineCount { lines: text.split('\n').count() });
    };
    if !is_valid_origin(origin) {
        return Err(CheckpointError::InvalidOrigin);
    }
    let size = parse_size(size).ok_or(CheckpointError::InvalidSize)?;
    let root = decode_canonical(root).ok_or(CheckpointError::InvalidRootBase64)?;
    let root: Hash = root.as_slice().try_into().map_err(|_| CheckpointError::WrongRootLength { bytes: root.len() })?;
    Ok(Checkpoint { origin: origin.to_owned(), size, root })
}

fn is_valid_origin(origin: &str) -> bool {
    match origin.strip_prefix(ORIGIN_PREFIX) {
        Some(ledger_id) => !ledger_id.is_empty() && !ledger_id.chars().any(|c| c.is_whitespace() || c.is_control()),
        None => false,
    }
}

/// Canonical decimal: "0", or digits without a leading zero; no sign.
fn parse_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !canonical || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// Standard padded base64 that re-encodes to the same text (so no two
/// texts mean the same bytes).
fn decode_canonical(text: &str) -> Option<Vec<u8>> {
    let bytes = BASE64.decode(text).ok()?;
    (BASE64.encode(&bytes) == text).then_some(bytes)
}

/// C2SP signed-note key hash: SHA-256(key_id || 0x0A || 0x01 || public
/// key)[:4].
pub fn key_hash(key_id: &str, public_key: &VerifyingKey) -> [u8; KEY_HASH_BYTES] {
    let mut hasher = Sha256::new();
    hasher.update(key_id.as_bytes());
    hasher.update([b'\n', SIGNATURE_TYPE_ED25519]);
    hasher.update(public_key.as_bytes());
    let digest = hasher.finalize();
    let mut hash = [0u8; KEY_HASH_BYTES];
    hash.copy_from_slice(&digest[..KEY_HASH_BYTES]);
    hash
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    /// The key's name (its SPEC key_id).
    pub key_id: String,
    /// [`key_hash`] of the key that claims to have signed.
    pub key_hash: [u8; KEY_HASH_BYTES],
    /// Ed25519 signature over the note body.
    pub signature: [u8; SIGNATURE_LENGTH],
}

impl SignatureLine {
    /// `— <key_id> <base64(key_hash || signature)>\n`.
    pub fn to_text(&self) -> String {
        let mut payload = [0u8; SIGNATURE_LINE_PAYLOAD_BYTES];
        payload[..KEY_HASH_BYTES].copy_from_slice(&self.key_hash);
        payload[KEY_HASH_BYTES..].copy_from_slice(&self.signature);
        format!("{SIGNATURE_LINE_PREFIX}{} {}\n", self.key_id, BASE64.encode(payload))
    }
}

/// C2SP signed-note key names: non-empty, no whitespace, no '+', and (here)
/// no control characters and at most [`KEY_ID_BYTES_MAX`] bytes.
pub fn is_valid_key_id(key_id: &str) -> bool {
    !key_id.is_empty()
        && key_id.len() <= KEY_ID_BYTES_MAX
        && !key_id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// A C2SP signed note: body text and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The signed text: non-empty lines, each ending in a newline.
    pub body: String,
    /// Signature lines in note order.
    pub signatures: Vec<SignatureLine>,
}

/// Why text is not a signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// The note is longer than [`NOTE_BYTES_MAX`].
    TooLarge {
        /// Bytes given.
        bytes: usize,
    },
    /// The bytes are not UTF-8.
    NotUtf8,
    /// A control character other than newline appears.
    ControlCharacter,
    /// No blank line separates the body from the signatures.
    MissingBlankLine,
    /// The body is empty or contains an empty line.
    EmptyBodyLine,
    /// The note has no signature lines.
    NoSignatures,
    /// The note has more than [`SIGNATURES_MAX`] signature lines.
    TooManySignatures {
        /// Signature lines given.
        count: usize,
    },
    /// The last signature line does not end with a newline.
    MissingFinalNewline,
    /// A signature line does not start with an em dash and a space
    /// (`line` counts from 1 within the signature block).
    MissingEmDash {
        /// Signature line number.
        line: usize,
    },
    /// A signature line has no valid key id followed by a space.
    InvalidKeyId {
        /// Signature line number.
        line: usize,
    },
    /// A signature line's payload is not canonical base64.
    InvalidBase64 {
        /// Signature line number.
        line: usize,
    },
    /// A signature line's payload is not 4 + 64 bytes (Ed25519).
    WrongSignatureLength {
        /// Signature line number.
        line: usize,
        /// Bytes decoded.
        bytes: usize,
    },
}

impl fmt::Display for NoteError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { bytes } => {
                write!(formatter, "note has {bytes} bytes, limit {NOTE_BYTES_MAX}")
            }
            Self::NotUtf8 => write!(formatter, "note is not UTF-8"),
            Self::ControlCharacter => write!(formatter, "note contains a control character"),
            Self::MissingBlankLine => {
                write!(formatter, "note has no blank line before its signatures")
            }
            Self::EmptyBodyLine => write!(formatter, "note body is empty or has an empty line"),
            Self::NoSignatures => write!(formatter, "note has no signatures"),
            Self::TooManySignatures { count } => {
                write!(formatter, "note has {count} signatures, limit {SIGNATURES_MAX}")
            }
            Self::MissingFinalNewline => write!(formatter, "note does not end with a newline"),
            Self::MissingEmDash { line } => {
                write!(formatter, "signature line {line} does not start with '— '")
            }
            Self::InvalidKeyId { line } => {
                write!(formatter, "signature line {line} has no valid key id")
            }
            Self::InvalidBase64 { line } => {
                write!(formatter, "signature line {line} is not canonical base64")
            }
            Self::WrongSignatureLength { line, bytes } => {
                write!(formatter, "signature line {line} decodes to {bytes} bytes, expected 68")
            }
        }
    }
}

impl std::error::Error for NoteError {}

/// Checks text that is to be signed: non-empty lines, each ending in a
/// newline, no other control characters, within [`NOTE_BYTES_MAX`].
fn check_body(body: &str) -> Result<(), NoteError> {
    if body.len() > NOTE_BYTES_MAX {
        return Err(NoteError::TooLarge { bytes: body.len() });
    }
    if body.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::ControlCharacter);
    }
    let text = body.strip_suffix('\n').ok_or(NoteError::MissingFinalNewline)?;
    if text.split('\n').any(str::is_empty) {
        return Err(NoteError::EmptyBodyLine);
    }
    Ok(())
}

fn parse_signature_line(text: &str, line: usize) -> Result<SignatureLine, NoteError> {
    let rest = text.strip_prefix(SIGNATURE_LINE_PREFIX).ok_or(NoteError::MissingEmDash { line })?;
    let (key_id, encoded) = rest.split_once(' ').ok_or(NoteError::InvalidKeyId { line })?;
    if !is_valid_key_id(key_id) {
        return Err(NoteError::InvalidKeyId { line });
    }
    let payload = decode_canonical(encoded).ok_or(NoteError::InvalidBase64 { line })?;
    if payload.len() != SIGNATURE_LINE_PAYLOAD_BYTES {
        return Err(NoteError::WrongSignatureLength { line, bytes: payload.len() });
    }
    let mut key_hash = [0u8; KEY_HASH_BYTES];
    key_hash.copy_from_slice(&payload[..KEY_HASH_BYTES]);
    let mut signature = [0u8; SIGNATURE_LENGTH];
    signature.copy_from_slice(&payload[KEY_HASH_BYTES..]);
    Ok(SignatureLine { key_id: key_id.to_owned(), key_hash, signature })
}

impl Note {
    /// The note text: body, blank line, one line per signature.
    pub fn to_text(&self) -> String {
        let mut text = String::with_capacity(self.body.len() + 1 + 100 * self.signatures.len());
        text.push_str(&self.body);
        text.push('\n');
        for signature in &self.signatures {
            text.push_str(&signature.to_text());
        }
        text
    }

    /// Parses note bytes: checks the size limit before UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<Note, NoteError> {
        if bytes.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge { bytes: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| NoteError::NotUtf8)?;
        Note::parse(text)
    }

    /// Parses note text (C2SP signed-note). All or nothing: any malformed
    /// line rejects the whole note. Signatures are not checked here; see
    /// [`verify`].
    pub fn parse(text: &str) -> Result<Note, NoteError> {
        if text.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge { bytes: text.len() });
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::ControlCharacter);
        }
        let (body_text, signature_text) = text.rsplit_once("\n\n").ok_or(NoteError::MissingBlankLine)?;
        // Include the body's final newline, which the signatures cover.
        let body = &text[..body_text.len() + 1];
        check_body(body)?;
        if signature_text.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let signature_text = signature_text.strip_suffix('\n').ok_or(NoteError::MissingFinalNewline)?;
        let count = signature_text.split('\n').count();
        if count > SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures { count });
        }
        let signatures = signature_text
            .split('\n')
            .enumerate()
            .map(|(offset, line)| parse_signature_line(line, offset + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note { body: body.to_owned(), signatures })
    }
}

/// Why a note could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// The key id is not a valid note key name (see [`is_valid_key_id`]).
    InvalidKeyId,
    /// The body is not valid note text.
    InvalidBody(NoteError),
    /// The note already has [`SIGNATURES_MAX`] signatures.
    TooManySignatures,
    /// The note already has a line by this key.
    AlreadySigned,
    /// The signed note would exceed [`NOTE_BYTES_MAX`].
    NoteTooLarge,
}

impl fmt::Display for SignError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKeyId => write!(formatter, "key id is not a valid note key name"),
            Self::InvalidBody(error) => write!(formatter, "cannot sign: {error}"),
            Self::TooManySignatures => {
                write!(formatter, "note already has {SIGNATURES_MAX} signatures")
            }
            Self::AlreadySigned => write!(formatter, "note is already signed by this key"),
            Self::NoteTooLarge => {
                write!(formatter, "signed note would exceed {NOTE_BYTES_MAX} bytes")
            }
        }
    }
}

impl std::error::Error for SignError {}

/// Signs `body` (exactly these bytes, final newline included) as `key_id`.
/// Ed25519 signing is deterministic: the same inputs give the same line.
pub fn sign(body: &str, key_id: &str, signing_key: &SigningKey) -> Result<SignatureLine, SignError> {
    if !is_valid_key_id(key_id) {
        return Err(SignError::InvalidKeyId);
    }
    check_body(body).map_err(SignError::InvalidBody)?;
    Ok(SignatureLine {
        key_id: key_id.to_owned(),
        key_hash: key_hash(key_id, &signing_key.verifying_key()),
        signature: signing_key.sign(body.as_bytes()).to_bytes(),
    })
}

/// The note of `checkpoint` signed by the log key.
pub fn sign_checkpoint(checkpoint: &Checkpoint, key_id: &str, signing_key: &SigningKey) -> Result<Note, SignError> {
    let body = checkpoint.body();
    let signature = sign(&body, key_id, signing_key)?;
    Ok(Note { body, signatures: vec![signature] })
}

/// `note` with one more signature line, by `key_id` (a witness co-signing).
/// Does not check the existing signatures: witnesses call [`verify`] first.
pub fn cosign(note: &Note, key_id: &str, signing_key: &SigningKey) -> Result<Note, SignError> {
    if note.signatures.len() >= SIGNATURES_MAX {
        return Err(SignError::TooManySignatures);
    }
    let line = sign(&note.body, key_id, signing_key)?;
    let duplicate =
        note.signatures.iter().any(|existing| existing.key_id == line.key_id && existing.key_hash == line.key_hash);
    if duplicate {
        return Err(SignError::AlreadySigned);
    }
    let mut cosigned = note.clone();
    cosigned.signatures.push(line);
    if cosigned.to_text().len() > NOTE_BYTES_MAX {
        return Err(SignError::NoteTooLarge);
    }
    Ok(cosigned)
}

/// A checkpoint whose note carried a valid signature by the required key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The parsed body.
    pub checkpoint: Checkpoint,
    /// Every known key that signed validly, in line order, the required
    /// key included.
    pub signed_by: Vec<String>,
}

/// Why a note is not a verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The body is not a sunledger checkpoint.
    Checkpoint(CheckpointError),
    /// The note has more than [`SIGNATURES_MAX`] signature lines.
    TooManySignatures,
    /// The required key id is not among the known keys.
    RequiredKeyUnknown {
        /// The required key id.
        key_id: String,
    },
    /// A line by a known key (same name and key hash) has a bad signature.
    InvalidSignature {
        /// The key whose line failed.
        key_id: String,
    },
    /// A known key signed more than once.
    DuplicateSignature {
        /// The key with more than one line.
        key_id: String,
    },
    /// No valid signature by the required key.
    MissingRequiredSignature {
        /// The required key id.
        key_id: String,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checkpoint(error) => write!(formatter, "{error}"),
            Self::TooManySignatures => {
                write!(formatter, "note has more than {SIGNATURES_MAX} signatures")
            }
            Self::RequiredKeyUnknown { key_id } => {
                write!(formatter, "required key {key_id} is not known")
            }
            Self::InvalidSignature { key_id } => {
                write!(formatter, "signature by {key_id} does not verify")
            }
            Self::DuplicateSignature { key_id } => {
                write!(formatter, "{key_id} signed more than once")
            }
            Self::MissingRequiredSignature { key_id } => {
                write!(formatter, "note is not signed by {key_id}")
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a checkpoint note (SPEC §6, C2SP signed-note).
///
/// A line names its key by id and key hash; lines matching no known key
/// are ignored (unknown witnesses). A line matching a known key must carry
/// a valid `verify_strict` signature over the body, or the whole note is
/// rejected. The note must carry a valid signature by `required_key_id`.
pub fn verify<K: AsRef<str>>(
    note: &Note,
    required_key_id: &str,
    known_keys: &[(K, VerifyingKey)],
) -> Result<VerifiedCheckpoint, VerifyError> {
    if !known_keys.iter().any(|(key_id, _)| key_id.as_ref() == required_key_id) {
        return Err(VerifyError::RequiredKeyUnknown { key_id: required_key_id.to_owned() });
    }
    if note.signatures.len() > SIGNATURES_MAX {
        return Err(VerifyError::TooManySignatures);
    }
    let checkpoint = parse_checkpoint(&note.body).map_err(VerifyError::Checkpoint)?;
    let mut signed_by: Vec<String> = Vec::new();
    for line in &note.signatures {
        let Some(public_key) = find_key(line, known_keys) else {
            continue;
        };
        let signature = Signature::from_bytes(&line.signature);
        if public_key.verify_strict(note.body.as_bytes(), &signature).is_err() {
            return Err(VerifyError::InvalidSignature { key_id: line.key_id.clone() });
        }
        if signed_by.contains(&line.key_id) {
            return Err(VerifyError::DuplicateSignature { key_id: line.key_id.clone() });
        }
        signed_by.push(line.key_id.clone());
    }
    if !signed_by.iter().any(|key_id| key_id == required_key_id) {
        return Err(VerifyError::MissingRequiredSignature { key_id: required_key_id.to_owned() });
    }
    Ok(VerifiedCheckpoint { checkpoint, signed_by })
}

/// The known key a line names: same key id and same key hash.
fn find_key<'a, K: AsRef<str>>(line: &SignatureLine, known_keys: &'a [(K, VerifyingKey)]) -> Option<&'a VerifyingKey> {
    known_keys
        .iter()
        .find(|(key_id, public_key)| {
            key_id.as_ref() == line.key_id && key_hash(&line.key_id, public_key) == line.key_hash
        })
        .map(|(_, public_key)| public_key)
}

//! Chain records (SPEC §5): seq, prev, recorded_at, envelope, entry hash, and
//! their JSON Lines export form.
//!
//! Owns: linking and hashing records, and the export line format. Never: does
//! I/O. Invariant: `hash = entry_hash(seq, prev, recorded_at, PAE digest,
//! signatures)` and `prev` is the previous record's hash (zeros for seq 0).

use crate::date::{format_timestamp_ms, parse_timestamp_ms, TimestampMs};
use crate::encoding::{entry_hash, hex, hex_array, Hash, SignatureRef};
use crate::envelope::Envelope;
use serde::Deserialize;
use serde_json::value::RawValue;

/// prev of seq 0.
pub const GENESIS_PREV: Hash = [0u8; 32];
/// An export line holds one envelope plus about 300 bytes of record fields.
pub const RECORD_LINE_BYTES_MAX: usize = crate::envelope::ENVELOPE_BYTES_MAX + 1024;

/// The entry hash of an envelope at a position of the chain.
pub fn record_hash(seq: u64, prev: &Hash, recorded_at_ms: TimestampMs, envelope: &Envelope) -> Hash {
    let signatures: Vec<SignatureRef<'_>> =
        envelope.signatures.iter().map(|s| SignatureRef { key_id: &s.key_id, signature: &s.signature }).collect();
    entry_hash(seq, prev, recorded_at_ms, &envelope.pae_digest(), &signatures)
}

/// Writes one export line (without the newline). The envelope bytes are the
/// stored ones; JSON line breaks inside them (whitespace only) become spaces
/// so that each record stays one line.
pub fn export_line(
    out: &mut Vec<u8>,
    seq: u64,
    prev: &Hash,
    recorded_at_ms: TimestampMs,
    envelope_bytes: &[u8],
    hash: &Hash,
) {
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"prev\":\"");
    out.extend_from_slice(hex(prev).as_bytes());
    out.extend_from_slice(b"\",\"recorded_at\":\"");
    out.extend_from_slice(format_timestamp_ms(recorded_at_ms).as_bytes());
    out.extend_from_slice(b"\",\"envelope\":");
    out.extend(envelope_bytes.iter().map(|b| if *b == b'\n' || *b == b'\r' { b' ' } else { *b }));
    out.extend_from_slice(b",\"hash\":\"");
    out.extend_from_slice(hex(hash).as_bytes());
    out.extend_from_slice(b"\"}");
}

/// One parsed export record.
#[derive(Clone, Debug)]
pub struct ExportRecord {
    pub seq: u64,
    pub prev: Hash,
    pub recorded_at_ms: TimestampMs,
    pub envelope_bytes: Vec<u8>,
    pub envelope: Envelope,
    pub hash: Hash,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    seq: u64,
    prev: &'a str,
    recorded_at: &'a str,
    #[serde(borrow)]
    envelope: &'a RawValue,
    hash: &'a str,
}

/// Parses one export line, all or nothing.
pub fn parse_export_line(line: &[u8]) -> Result<ExportRecord, String> {
    if line.len() > RECORD_LINE_BYTES_MAX {
        return Err(format!("record line is {} bytes, at most {RECORD_LINE_BYTES_MAX}", line.len()));
    }
    let raw: RawRecord<'_> = serde_json::from_slice(line).map_err(|e| format!("not a chain record: {e}"))?;
    let prev = hex_array::<32>(raw.prev).ok_or("prev is not 64 lowercase hex")?;
    let hash = hex_array::<32>(raw.hash).ok_or("hash is not 64 lowercase hex")?;
    let recorded_at_ms =
        parse_timestamp_ms(raw.recorded_at).ok_or("recorded_at is not a UTC millisecond RFC 3339 time")?;
    let envelope_bytes = raw.envelope.get().as_bytes().to_vec();
    let envelope = Envelope::parse(&envelope_bytes).map_err(|e| format!("envelope: {}", e.message))?;
    Ok(ExportRecord { seq: raw.seq, prev, recorded_at_ms, envelope_bytes, envelope, hash })
}

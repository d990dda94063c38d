//! Entry points shared by the `cargo fuzz` targets (fuzz/) and the test that
//! replays their committed corpus (tests/fuzz_corpus.rs). Each takes arbitrary
//! bytes and must never panic.

use crate::merkle::{verify_consistency, verify_inclusion, Hash};

/// DSSE envelope, then its payload.
pub fn envelope(data: &[u8]) {
    if let Ok(envelope) = crate::envelope::Envelope::parse(data) {
        let _ = crate::payload::parse_payload(&envelope.payload);
        let _ = envelope.to_json();
    }
}

/// A payload on its own.
pub fn payload(data: &[u8]) {
    let _ = crate::payload::parse_payload(data);
}

/// The import/export line reader and the export record parser.
pub fn import_line(data: &[u8]) {
    let mut reader = data;
    while let Ok(Some(line)) = crate::lines::read_line_bounded(&mut reader, 4096) {
        if let crate::lines::Line::Complete(bytes) = line {
            let _ = crate::chain::parse_export_line(&bytes);
        }
    }
}

/// A signed note and the checkpoint in it.
pub fn note(data: &[u8]) {
    if let Ok(note) = crate::checkpoint::Note::from_bytes(data) {
        let _ = crate::checkpoint::parse_checkpoint(&note.body);
        let _ = note.to_text();
    }
}

/// Proof verification on arbitrary indices, sizes and hashes.
pub fn proof(data: &[u8]) {
    if data.len() < 16 {
        return;
    }
    let first = u64::from_le_bytes(data[0..8].try_into().expect("8 bytes"));
    let second = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    let hashes: Vec<Hash> = data[16..].chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect();
    let (leaf, rest) = hashes.split_first().map_or(([0u8; 32], &[][..]), |(l, r)| (*l, r));
    let (root, path) = rest.split_first().map_or(([0u8; 32], &[][..]), |(r, p)| (*r, p));
    let _ = verify_inclusion(&leaf, first, second, path, &root);
    let _ = verify_consistency(first, second, &leaf, &root, path);
}

//! Tamper campaign: flipping any single bit of any byte of a small export is
//! detected by verify, at the seq of the record that holds the byte.

mod support;

use sunledger::chain::parse_export_line;
use sunledger::verify::Verifier;
use support::*;

fn verify_bytes(bytes: &[u8]) -> Option<u64> {
    let mut verifier = Verifier::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match parse_export_line(line) {
            Ok(record) => verifier.push(record),
            Err(reason) => verifier.push_unreadable(reason),
        }
    }
    verifier.finish().0.failure.map(|f| f.seq)
}

#[test]
fn every_byte_flip_is_caught_at_its_record() {
    // Goal: for the first 8 vector records, each byte XOR 0x01 (and the high bit) fails verification at that record's seq.
    let lines = vector_lines("chain.jsonl");
    let text = lines[..8].join("\n") + "\n";
    let bytes = text.as_bytes();
    assert_eq!(verify_bytes(bytes), None, "the untouched export verifies");
    let mut line_of = Vec::with_capacity(bytes.len());
    let mut line = 0u64;
    for byte in bytes {
        line_of.push(line);
        if *byte == b'\n' {
            line += 1;
        }
    }
    let mut checked = 0;
    for (position, seq) in line_of.iter().enumerate() {
        for mask in [0x01u8, 0x80] {
            let mut tampered = bytes.to_vec();
            tampered[position] ^= mask;
            let found = verify_bytes(&tampered);
            assert_eq!(found, Some(*seq), "byte {position} ^ {mask:#x} (record {seq}) gave {found:?}");
            checked += 1;
        }
    }
    assert!(checked > 10_000);
}
